"""The message classes of ``oip.proto``, from its compiled descriptor, in a private descriptor pool.

A private pool, not protobuf's default one: Triton's and KServe's client
libraries register the same ``inference.*`` names in the default pool, and a
process that imports one of them next to this server must keep working. No
generated ``_pb2`` module, so no gencode/runtime version check either.

``DESCRIPTOR`` below is ``oip.proto`` compiled by protoc (grpcio-tools);
after editing the proto, regenerate it with ``python -m twoends.serve.oip_pb``
(a test checks that the two agree).
"""

from __future__ import annotations

import base64
from pathlib import Path

from google.protobuf import descriptor_pool, message_factory

__all__ = ["SERVICE", "message", "compile_proto"]

SERVICE = "inference.GRPCInferenceService"
PROTO = Path(__file__).with_name("oip.proto")

# --- generated: python -m twoends.serve.oip_pb -------------------------------------------------
DESCRIPTOR = (
    "CglvaXAucHJvdG8SCWluZmVyZW5jZSITChFTZXJ2ZXJMaXZlUmVxdWVzdCIoChJTZXJ2ZXJMaXZlUmVzcG9uc2USEgoEbGl2"
    "ZRgBIAEoCFIEbGl2ZSIUChJTZXJ2ZXJSZWFkeVJlcXVlc3QiKwoTU2VydmVyUmVhZHlSZXNwb25zZRIUCgVyZWFkeRgBIAEo"
    "CFIFcmVhZHkiQQoRTW9kZWxSZWFkeVJlcXVlc3QSEgoEbmFtZRgBIAEoCVIEbmFtZRIYCgd2ZXJzaW9uGAIgASgJUgd2ZXJz"
    "aW9uIioKEk1vZGVsUmVhZHlSZXNwb25zZRIUCgVyZWFkeRgBIAEoCFIFcmVhZHkiFwoVU2VydmVyTWV0YWRhdGFSZXF1ZXN0"
    "ImYKFlNlcnZlck1ldGFkYXRhUmVzcG9uc2USEgoEbmFtZRgBIAEoCVIEbmFtZRIYCgd2ZXJzaW9uGAIgASgJUgd2ZXJzaW9u"
    "Eh4KCmV4dGVuc2lvbnMYAyADKAlSCmV4dGVuc2lvbnMiRAoUTW9kZWxNZXRhZGF0YVJlcXVlc3QSEgoEbmFtZRgBIAEoCVIE"
    "bmFtZRIYCgd2ZXJzaW9uGAIgASgJUgd2ZXJzaW9uIs8CChVNb2RlbE1ldGFkYXRhUmVzcG9uc2USEgoEbmFtZRgBIAEoCVIE"
    "bmFtZRIaCgh2ZXJzaW9ucxgCIAMoCVIIdmVyc2lvbnMSGgoIcGxhdGZvcm0YAyABKAlSCHBsYXRmb3JtEkcKBmlucHV0cxgE"
    "IAMoCzIvLmluZmVyZW5jZS5Nb2RlbE1ldGFkYXRhUmVzcG9uc2UuVGVuc29yTWV0YWRhdGFSBmlucHV0cxJJCgdvdXRwdXRz"
    "GAUgAygLMi8uaW5mZXJlbmNlLk1vZGVsTWV0YWRhdGFSZXNwb25zZS5UZW5zb3JNZXRhZGF0YVIHb3V0cHV0cxpWCg5UZW5z"
    "b3JNZXRhZGF0YRISCgRuYW1lGAEgASgJUgRuYW1lEhoKCGRhdGF0eXBlGAIgASgJUghkYXRhdHlwZRIUCgVzaGFwZRgDIAMo"
    "A1IFc2hhcGUi1wEKDkluZmVyUGFyYW1ldGVyEh8KCmJvb2xfcGFyYW0YASABKAhIAFIJYm9vbFBhcmFtEiEKC2ludDY0X3Bh"
    "cmFtGAIgASgDSABSCmludDY0UGFyYW0SIwoMc3RyaW5nX3BhcmFtGAMgASgJSABSC3N0cmluZ1BhcmFtEiMKDGRvdWJsZV9w"
    "YXJhbRgEIAEoAUgAUgtkb3VibGVQYXJhbRIjCgx1aW50NjRfcGFyYW0YBSABKARIAFILdWludDY0UGFyYW1CEgoQcGFyYW1l"
    "dGVyX2Nob2ljZSLDAgoTSW5mZXJUZW5zb3JDb250ZW50cxIjCg1ib29sX2NvbnRlbnRzGAEgAygIUgxib29sQ29udGVudHMS"
    "IQoMaW50X2NvbnRlbnRzGAIgAygFUgtpbnRDb250ZW50cxIlCg5pbnQ2NF9jb250ZW50cxgDIAMoA1INaW50NjRDb250ZW50"
    "cxIjCg11aW50X2NvbnRlbnRzGAQgAygNUgx1aW50Q29udGVudHMSJwoPdWludDY0X2NvbnRlbnRzGAUgAygEUg51aW50NjRD"
    "b250ZW50cxIjCg1mcDMyX2NvbnRlbnRzGAYgAygCUgxmcDMyQ29udGVudHMSIwoNZnA2NF9jb250ZW50cxgHIAMoAVIMZnA2"
    "NENvbnRlbnRzEiUKDmJ5dGVzX2NvbnRlbnRzGAggAygMUg1ieXRlc0NvbnRlbnRzIp0IChFNb2RlbEluZmVyUmVxdWVzdBId"
    "Cgptb2RlbF9uYW1lGAEgASgJUgltb2RlbE5hbWUSIwoNbW9kZWxfdmVyc2lvbhgCIAEoCVIMbW9kZWxWZXJzaW9uEg4KAmlk"
    "GAMgASgJUgJpZBJMCgpwYXJhbWV0ZXJzGAQgAygLMiwuaW5mZXJlbmNlLk1vZGVsSW5mZXJSZXF1ZXN0LlBhcmFtZXRlcnNF"
    "bnRyeVIKcGFyYW1ldGVycxJFCgZpbnB1dHMYBSADKAsyLS5pbmZlcmVuY2UuTW9kZWxJbmZlclJlcXVlc3QuSW5mZXJJbnB1"
    "dFRlbnNvclIGaW5wdXRzElEKB291dHB1dHMYBiADKAsyNy5pbmZlcmVuY2UuTW9kZWxJbmZlclJlcXVlc3QuSW5mZXJSZXF1"
    "ZXN0ZWRPdXRwdXRUZW5zb3JSB291dHB1dHMSLAoScmF3X2lucHV0X2NvbnRlbnRzGAcgAygMUhByYXdJbnB1dENvbnRlbnRz"
    "Gs0CChBJbmZlcklucHV0VGVuc29yEhIKBG5hbWUYASABKAlSBG5hbWUSGgoIZGF0YXR5cGUYAiABKAlSCGRhdGF0eXBlEhQK"
    "BXNoYXBlGAMgAygDUgVzaGFwZRJdCgpwYXJhbWV0ZXJzGAQgAygLMj0uaW5mZXJlbmNlLk1vZGVsSW5mZXJSZXF1ZXN0Lklu"
    "ZmVySW5wdXRUZW5zb3IuUGFyYW1ldGVyc0VudHJ5UgpwYXJhbWV0ZXJzEjoKCGNvbnRlbnRzGAUgASgLMh4uaW5mZXJlbmNl"
    "LkluZmVyVGVuc29yQ29udGVudHNSCGNvbnRlbnRzGlgKD1BhcmFtZXRlcnNFbnRyeRIQCgNrZXkYASABKAlSA2tleRIvCgV2"
    "YWx1ZRgCIAEoCzIZLmluZmVyZW5jZS5JbmZlclBhcmFtZXRlclIFdmFsdWU6AjgBGvMBChpJbmZlclJlcXVlc3RlZE91dHB1"
    "dFRlbnNvchISCgRuYW1lGAEgASgJUgRuYW1lEmcKCnBhcmFtZXRlcnMYAiADKAsyRy5pbmZlcmVuY2UuTW9kZWxJbmZlclJl"
    "cXVlc3QuSW5mZXJSZXF1ZXN0ZWRPdXRwdXRUZW5zb3IuUGFyYW1ldGVyc0VudHJ5UgpwYXJhbWV0ZXJzGlgKD1BhcmFtZXRl"
    "cnNFbnRyeRIQCgNrZXkYASABKAlSA2tleRIvCgV2YWx1ZRgCIAEoCzIZLmluZmVyZW5jZS5JbmZlclBhcmFtZXRlclIFdmFs"
    "dWU6AjgBGlgKD1BhcmFtZXRlcnNFbnRyeRIQCgNrZXkYASABKAlSA2tleRIvCgV2YWx1ZRgCIAEoCzIZLmluZmVyZW5jZS5J"
    "bmZlclBhcmFtZXRlclIFdmFsdWU6AjgBIt8FChJNb2RlbEluZmVyUmVzcG9uc2USHQoKbW9kZWxfbmFtZRgBIAEoCVIJbW9k"
    "ZWxOYW1lEiMKDW1vZGVsX3ZlcnNpb24YAiABKAlSDG1vZGVsVmVyc2lvbhIOCgJpZBgDIAEoCVICaWQSTQoKcGFyYW1ldGVy"
    "cxgEIAMoCzItLmluZmVyZW5jZS5Nb2RlbEluZmVyUmVzcG9uc2UuUGFyYW1ldGVyc0VudHJ5UgpwYXJhbWV0ZXJzEkkKB291"
    "dHB1dHMYBSADKAsyLy5pbmZlcmVuY2UuTW9kZWxJbmZlclJlc3BvbnNlLkluZmVyT3V0cHV0VGVuc29yUgdvdXRwdXRzEi4K"
    "E3Jhd19vdXRwdXRfY29udGVudHMYBiADKAxSEXJhd091dHB1dENvbnRlbnRzGtACChFJbmZlck91dHB1dFRlbnNvchISCgRu"
    "YW1lGAEgASgJUgRuYW1lEhoKCGRhdGF0eXBlGAIgASgJUghkYXRhdHlwZRIUCgVzaGFwZRgDIAMoA1IFc2hhcGUSXwoKcGFy"
    "YW1ldGVycxgEIAMoCzI/LmluZmVyZW5jZS5Nb2RlbEluZmVyUmVzcG9uc2UuSW5mZXJPdXRwdXRUZW5zb3IuUGFyYW1ldGVy"
    "c0VudHJ5UgpwYXJhbWV0ZXJzEjoKCGNvbnRlbnRzGAUgASgLMh4uaW5mZXJlbmNlLkluZmVyVGVuc29yQ29udGVudHNSCGNv"
    "bnRlbnRzGlgKD1BhcmFtZXRlcnNFbnRyeRIQCgNrZXkYASABKAlSA2tleRIvCgV2YWx1ZRgCIAEoCzIZLmluZmVyZW5jZS5J"
    "bmZlclBhcmFtZXRlclIFdmFsdWU6AjgBGlgKD1BhcmFtZXRlcnNFbnRyeRIQCgNrZXkYASABKAlSA2tleRIvCgV2YWx1ZRgC"
    "IAEoCzIZLmluZmVyZW5jZS5JbmZlclBhcmFtZXRlclIFdmFsdWU6AjgBIkIKEk1vZGVsQ29uZmlnUmVxdWVzdBISCgRuYW1l"
    "GAEgASgJUgRuYW1lEhgKB3ZlcnNpb24YAiABKAlSB3ZlcnNpb24iRQoTTW9kZWxDb25maWdSZXNwb25zZRIuCgZjb25maWcY"
    "ASABKAsyFi5pbmZlcmVuY2UuTW9kZWxDb25maWdSBmNvbmZpZyLZAQoKTW9kZWxJbnB1dBISCgRuYW1lGAEgASgJUgRuYW1l"
    "EjAKCWRhdGFfdHlwZRgCIAEoDjITLmluZmVyZW5jZS5EYXRhVHlwZVIIZGF0YVR5cGUSNAoGZm9ybWF0GAMgASgOMhwuaW5m"
    "ZXJlbmNlLk1vZGVsSW5wdXQuRm9ybWF0UgZmb3JtYXQSEgoEZGltcxgEIAMoA1IEZGltcyI7CgZGb3JtYXQSDwoLRk9STUFU"
    "X05PTkUQABIPCgtGT1JNQVRfTkhXQxABEg8KC0ZPUk1BVF9OQ0hXEAIijgEKC01vZGVsT3V0cHV0EhIKBG5hbWUYASABKAlS"
    "BG5hbWUSMAoJZGF0YV90eXBlGAIgASgOMhMuaW5mZXJlbmNlLkRhdGFUeXBlUghkYXRhVHlwZRISCgRkaW1zGAMgAygDUgRk"
    "aW1zEiUKDmxhYmVsX2ZpbGVuYW1lGAQgASgJUg1sYWJlbEZpbGVuYW1lIokBChRNb2RlbER5bmFtaWNCYXRjaGluZxIwChRw"
    "cmVmZXJyZWRfYmF0Y2hfc2l6ZRgBIAMoBVIScHJlZmVycmVkQmF0Y2hTaXplEj8KHG1heF9xdWV1ZV9kZWxheV9taWNyb3Nl"
    "Y29uZHMYAiABKARSGW1heFF1ZXVlRGVsYXlNaWNyb3NlY29uZHMipgIKC01vZGVsQ29uZmlnEhIKBG5hbWUYASABKAlSBG5h"
    "bWUSGgoIcGxhdGZvcm0YAiABKAlSCHBsYXRmb3JtEiQKDm1heF9iYXRjaF9zaXplGAQgASgFUgxtYXhCYXRjaFNpemUSKwoF"
    "aW5wdXQYBSADKAsyFS5pbmZlcmVuY2UuTW9kZWxJbnB1dFIFaW5wdXQSLgoGb3V0cHV0GAYgAygLMhYuaW5mZXJlbmNlLk1v"
    "ZGVsT3V0cHV0UgZvdXRwdXQSSgoQZHluYW1pY19iYXRjaGluZxgLIAEoCzIfLmluZmVyZW5jZS5Nb2RlbER5bmFtaWNCYXRj"
    "aGluZ1IPZHluYW1pY0JhdGNoaW5nEhgKB2JhY2tlbmQYESABKAlSB2JhY2tlbmQq+gEKCERhdGFUeXBlEhAKDFRZUEVfSU5W"
    "QUxJRBAAEg0KCVRZUEVfQk9PTBABEg4KClRZUEVfVUlOVDgQAhIPCgtUWVBFX1VJTlQxNhADEg8KC1RZUEVfVUlOVDMyEAQS"
    "DwoLVFlQRV9VSU5UNjQQBRINCglUWVBFX0lOVDgQBhIOCgpUWVBFX0lOVDE2EAcSDgoKVFlQRV9JTlQzMhAIEg4KClRZUEVf"
    "SU5UNjQQCRINCglUWVBFX0ZQMTYQChINCglUWVBFX0ZQMzIQCxINCglUWVBFX0ZQNjQQDBIPCgtUWVBFX1NUUklORxANEg0K"
    "CVRZUEVfQkYxNhAOMswEChRHUlBDSW5mZXJlbmNlU2VydmljZRJLCgpTZXJ2ZXJMaXZlEhwuaW5mZXJlbmNlLlNlcnZlckxp"
    "dmVSZXF1ZXN0Gh0uaW5mZXJlbmNlLlNlcnZlckxpdmVSZXNwb25zZSIAEk4KC1NlcnZlclJlYWR5Eh0uaW5mZXJlbmNlLlNl"
    "cnZlclJlYWR5UmVxdWVzdBoeLmluZmVyZW5jZS5TZXJ2ZXJSZWFkeVJlc3BvbnNlIgASSwoKTW9kZWxSZWFkeRIcLmluZmVy"
    "ZW5jZS5Nb2RlbFJlYWR5UmVxdWVzdBodLmluZmVyZW5jZS5Nb2RlbFJlYWR5UmVzcG9uc2UiABJXCg5TZXJ2ZXJNZXRhZGF0"
    "YRIgLmluZmVyZW5jZS5TZXJ2ZXJNZXRhZGF0YVJlcXVlc3QaIS5pbmZlcmVuY2UuU2VydmVyTWV0YWRhdGFSZXNwb25zZSIA"
    "ElQKDU1vZGVsTWV0YWRhdGESHy5pbmZlcmVuY2UuTW9kZWxNZXRhZGF0YVJlcXVlc3QaIC5pbmZlcmVuY2UuTW9kZWxNZXRh"
    "ZGF0YVJlc3BvbnNlIgASSwoKTW9kZWxJbmZlchIcLmluZmVyZW5jZS5Nb2RlbEluZmVyUmVxdWVzdBodLmluZmVyZW5jZS5N"
    "b2RlbEluZmVyUmVzcG9uc2UiABJOCgtNb2RlbENvbmZpZxIdLmluZmVyZW5jZS5Nb2RlbENvbmZpZ1JlcXVlc3QaHi5pbmZl"
    "cmVuY2UuTW9kZWxDb25maWdSZXNwb25zZSIAYgZwcm90bzM="
)
# --- end of generated -------------------------------------------------------------------------

_pool = descriptor_pool.DescriptorPool()
_pool.AddSerializedFile(base64.b64decode("".join(DESCRIPTOR)))
_classes: dict[str, type] = {}


def message(name: str) -> type:
    """The class of message ``inference.<name>`` (e.g. "ModelInferRequest")."""
    cls = _classes.get(name)
    if cls is None:
        cls = _classes[name] = message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"inference.{name}"))
    return cls


def compile_proto() -> bytes:
    """``oip.proto`` compiled with grpcio-tools' protoc: the serialized FileDescriptorProto."""
    import tempfile

    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    from ..errors import ConfigError

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "oip.pb"
        if protoc.main(["protoc", f"-I{PROTO.parent}", f"--descriptor_set_out={out}", str(PROTO)]) != 0:
            raise ConfigError(f"protoc could not compile {PROTO}: fix the proto (its errors are printed above)")
        (file,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    return file.SerializeToString(deterministic=True)


def _regenerate() -> None:
    text = base64.b64encode(compile_proto()).decode()
    lines = "".join(f'    "{text[i : i + 96]}"\n' for i in range(0, len(text), 96))
    source = Path(__file__).read_text(encoding="utf-8")
    start = source.index("DESCRIPTOR = (\n") + len("DESCRIPTOR = (\n")
    end = source.index(")\n# --- end of generated")
    Path(__file__).write_text(source[:start] + lines + source[end:], encoding="utf-8")


if __name__ == "__main__":
    _regenerate()
