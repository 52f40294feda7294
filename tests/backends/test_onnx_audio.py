"""An ONNX audio model runs with the two ends its sidecar gives: the same answers as the torch module."""

from __future__ import annotations

import numpy as np
import pytest

from tests import audio  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import twoends  # noqa: E402
from twoends.preprocess.audio import AudioClip  # noqa: E402
from twoends.preprocess.audio_spec import AudioSpec  # noqa: E402
from twoends.sidecar import write_sidecar  # noqa: E402

SPEC = AudioSpec(sample_rate=8000, window=4000, hop=2000, normalize="zero_mean_unit_var", pad=True)


class TinyAudioNet(torch.nn.Module):
    """A 1-D convolution over the samples, pooled: [batch, samples] -> [batch, 3] logits."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 8, 64, stride=32)
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x[:, None])).mean(-1))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    net = TinyAudioNet().eval()
    path = tmp_path_factory.mktemp("onnx") / "tiny_audio.onnx"
    torch.onnx.export(
        net,
        (torch.zeros(2, SPEC.window),),
        str(path),
        dynamo=False,
        input_names=["audio"],
        output_names=["logits"],
        dynamic_axes={"audio": {0: "batch"}, "logits": {0: "batch"}},
    )
    write_sidecar(
        path.with_name(path.name + ".json"),
        {"spec": SPEC.to_dict(), "labels": ["speech", "music", "noise"], "activation": "softmax"},
    )
    return net, path


def test_the_sidecar_makes_it_an_audio_model_equal_to_the_torch_module(exported, tmp_path):
    net, path = exported
    onnx_clf = twoends.load(f"onnx:{path}")
    torch_clf = twoends.wrap(net, spec=SPEC, labels=["speech", "music", "noise"])
    assert onnx_clf.plan.kind == "audio" and onnx_clf.spec == SPEC
    clips = [audio.tone(0.3, 8000), audio.noise(1.7, 8000), audio.tone(3.1, 8000, freq=200)]
    files = [audio.write(tmp_path / f"c{i}.flac", x, 8000) for i, x in enumerate(clips)]
    a = onnx_clf.predict([str(f) for f in files])
    b = torch_clf.predict([AudioClip(x, 8000) for x in clips])
    for p, q in zip(a, b, strict=True):
        assert p.ok and q.ok and p.label == q.label
        np.testing.assert_allclose(p.probabilities, q.probabilities, atol=1e-5)
        assert [(s.label, s.start, s.end) for s in p.segments] == [(s.label, s.start, s.end) for s in q.segments]
    assert len(a[2].segments) >= 1 and a[2].segments[-1].end == pytest.approx(3.1, abs=1e-3)
