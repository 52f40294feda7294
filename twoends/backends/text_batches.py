"""Text batches at full speed: tokenize once, sort by length, pad each batch to its longest.

A batch of texts is padded to its longest text, so one long text in a batch of
short ones makes the whole batch pay for it. The Classifier hands a text backend
a window of inputs at once (``inputs_per_call``, at least 512 texts); they are
tokenized without padding, sorted by length, cut into batches of at most the
planned size where padding and calls cost least (``length_groups``), each padded
only to its own longest text, run, and the rows put back in input order.
With the attention mask, padding does not change a text's logits (beyond float
reassociation, ~1e-6): the outputs are the same as one text at a time.

Framework-free: a tokenizer (Hugging Face's) and NumPy. ``TextGraphBackend`` runs
an exported text graph (ONNX Runtime or OpenVINO) with this batching.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from twoends.backends.base import Backend, ModelInfo
from twoends.errors import InputError, ModelError
from twoends.preprocess.text import TextInput, TextSpec

__all__ = [
    "SORT_BATCHES",
    "SORT_INPUTS",
    "sort_window",
    "Tokenized",
    "tokenize",
    "CALL_TOKENS",
    "length_groups",
    "pad",
    "run_sorted",
    "TextGraphBackend",
]

# How many texts are sorted together: at least SORT_BATCHES batches and at least SORT_INPUTS texts.
# The padding left after sorting shrinks as the window grows (neighbours in length order are closer):
# on 400 docstring paragraphs at batch 8 (17,257 real tokens) the forward passes computed 24,392
# tokens with 64-text windows and 18,656 with 512, and took 23% less CPU (bench/RESULTS.md, text).
# The cost is latency to the first output of a stream (a window is read before it is run) and the
# memory of 512 token lists, a few hundred kB.
SORT_BATCHES = 8
SORT_INPUTS = 512


def sort_window(batch_size: int) -> int:
    """Texts handed to one collate/forward call for batches of ``batch_size`` (``Backend.inputs_per_call``)."""
    return max(batch_size * SORT_BATCHES, SORT_INPUTS)


class Tokenized(NamedTuple):
    """Texts tokenized without padding: one dict of token lists per text, and the spec they follow."""

    encodings: list[dict[str, list[int]]]
    spec: TextSpec
    limit: int


def tokenize(tokenizer: Any, inputs: Sequence[Any], default_spec: TextSpec, model_limit: int) -> Tokenized:
    spec = inputs[0].spec if isinstance(inputs[0], TextInput) else default_spec
    texts = [x.text if isinstance(x, TextInput) else x for x in inputs]
    if not all(isinstance(t, str) for t in texts):
        bad = next(type(t).__name__ for t in texts if not isinstance(t, str))
        raise InputError(f"a text model takes str inputs, got {bad}")
    limit = spec.max_length or model_limit
    enc = tokenizer(texts, truncation=spec.truncation, max_length=limit if spec.truncation else None)
    encodings = [{k: list(v[i]) for k, v in enc.items()} for i in range(len(texts))]
    if not spec.truncation:
        longest = max(len(e["input_ids"]) for e in encodings)
        if longest > limit:
            raise InputError(
                f"the text has {longest} tokens, the model takes at most {limit}; pass "
                "spec={'truncation': True} to cut it, or split the text"
            )
    return Tokenized(encodings, spec, limit)


# What one more forward call costs, in padded tokens: PyTorch eager BERT (MiniLM-L6) on one core took
# about 4 ms for a call of one 4-token text and 0.15 ms per token in batches; ONNX Runtime and OpenVINO
# calls cost less. The grouping below is near its best anywhere from 8 to 32 (bench/RESULTS.md, text).
CALL_TOKENS = 16


def length_groups(lengths: Sequence[int], size: int, call_tokens: int = CALL_TOKENS) -> list[list[int]]:
    """Indices grouped in batches of at most ``size``, shortest texts first (stable for equal lengths).

    Each batch costs its padded tokens (rows x its longest) plus ``call_tokens`` for the call. In
    length order the cheapest cut into runs of at most ``size`` is found exactly (dynamic
    programming, ``len x size`` steps): a few long texts among short ones get batches of their own
    instead of making seven short ones pay for their length, and runs of like lengths stay full
    (on 48 docstring paragraphs: 35% less estimated forward time than cutting every ``size``).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    best = [0] * (n + 1)  # best[j]: the cheapest cost of the first j texts in length order
    start = [0] * (n + 1)  # where the last batch of that cheapest cut starts
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]  # the batch ending at j is padded to it
        best[j], start[j] = min((best[i] + call_tokens + (j - i) * longest, i) for i in range(max(0, j - size), j))
    groups = []
    while n:
        groups.append(order[start[n] : n])
        n = start[n]
    return groups[::-1]


def pad(tokenizer: Any, batch: Tokenized, rows: Sequence[int] | None = None, tensors: str = "np") -> dict[str, Any]:
    """The rows of ``batch`` padded to their longest (or to max_length, as the spec says)."""
    chosen = batch.encodings if rows is None else [batch.encodings[i] for i in rows]
    fixed = batch.spec.padding == "max_length"
    return dict(
        tokenizer.pad(
            chosen,
            padding="max_length" if fixed else "longest",
            max_length=batch.limit if fixed else None,
            return_tensors=tensors,
        )
    )


def run_sorted(batch: Tokenized, size: int, run: Callable[[Sequence[int]], Any], concat: Callable) -> Any:
    """``run(rows)`` on length-sorted groups of ``size`` rows; the outputs back in input order."""
    groups = length_groups([len(e["input_ids"]) for e in batch.encodings], size)
    outputs = [run(rows) for rows in groups]
    order = [i for rows in groups for i in rows]
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    return concat(outputs)[inverse]


class TextGraphBackend(Backend):
    """An exported text graph run by a runtime, fed by the model's own tokenizer.

    ``run_graph(feed)`` runs the graph on a dict of int64 arrays (its inputs by name)
    and returns the logits.
    """

    def __init__(
        self,
        run_graph: Callable[[dict], np.ndarray],
        input_names: Sequence[str],
        tokenizer: Any,
        *,
        info: ModelInfo,
        max_length: int,
        runtime: str,
        device: str = "cpu",
        what: str = "",
    ) -> None:
        self.run_graph = run_graph
        self.input_names = tuple(input_names)
        self.tokenizer = tokenizer
        self.info = info
        self.max_length = max_length
        self.runtime = runtime
        self.device = device
        self.what = what
        self.batch_size = 8

    def plan_batches(self, batch_size: int) -> None:
        self.batch_size = int(batch_size)

    def inputs_per_call(self, batch_size: int) -> int:
        return sort_window(batch_size)

    def collate(self, inputs: Sequence[Any]) -> Tokenized:
        return tokenize(self.tokenizer, inputs, self.info.spec, self.max_length)

    def forward(self, batch: Any) -> np.ndarray:
        if not isinstance(batch, Tokenized):
            raise ModelError(f"{self.info.name} is a text model: forward takes a tokenized batch from collate(texts)")

        def run(rows):
            enc = pad(self.tokenizer, batch, rows)
            return self.run_graph({k: np.asarray(enc[k], dtype=np.int64) for k in self.input_names})

        out = run_sorted(batch, self.batch_size, run, np.concatenate)
        if self.info.num_outputs is None:
            self.info = dataclasses.replace(self.info, num_outputs=int(out.shape[-1]))
        return out

    def describe(self) -> str:
        return f"TextGraphBackend({self.info.name}, {self.runtime}{', ' + self.what if self.what else ''})"
