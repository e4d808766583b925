"""The integer model file: int8 weights, integer scales and lookup tables in safetensors,
with the config, fixed-point layout and tokenizer in its metadata. Never pickle."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load, save

from ..engine.fixed import FixedPoint
from ..errors import ModelFileError
from .config import ModelConfig

FILE_FORMAT = "lmpress-int8-v1"
# Files whose config or fixed-point layout uses a field added later (grouped-query
# attention, biases, a separate head, ...): an older lmpress refuses them by this name
# instead of running them wrongly. Version 1 files are written exactly as before.
FILE_FORMAT_V2 = "lmpress-int8-v2"
READABLE_FORMATS = (FILE_FORMAT, FILE_FORMAT_V2)


@dataclass
class IntegerWeights:
    """Everything the engine needs; `digest` is the sha256 of the file's bytes."""

    name: str
    config: ModelConfig
    fixed: FixedPoint
    tokenizer_json: str
    tensors: dict[str, np.ndarray]
    digest: str = ""
    summary: str = ""  # one line for `lmpress models` (converted models say their source)

    @property
    def file_format(self) -> str:
        return FILE_FORMAT_V2 if self.config.extended or self.fixed.extended else FILE_FORMAT

    def to_bytes(self) -> bytes:
        meta = {"format": self.file_format, "name": self.name,
                "config": self.config.to_json(),
                "fixed_point": json.dumps(self.fixed.to_dict(), sort_keys=True),
                "tokenizer": self.tokenizer_json}
        if self.summary:
            meta["summary"] = self.summary
        data = save({k: np.ascontiguousarray(v) for k, v in sorted(self.tensors.items())},
                    metadata=meta)
        return _canonical_header(data)

    def save(self, path: Path) -> str:
        data = self.to_bytes()
        tmp = Path(str(path) + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        self.digest = hashlib.sha256(data).hexdigest()
        return self.digest

    @classmethod
    def from_bytes(cls, data: bytes, expected_sha256: str | None = None) -> IntegerWeights:
        digest = hashlib.sha256(data).hexdigest()
        if expected_sha256 is not None and digest != expected_sha256:
            raise ModelFileError(f"model file digest is {digest[:16]}..., expected "
                                 f"{expected_sha256[:16]}...; reinstall lmpress or the model")
        try:
            meta = _read_metadata(data)
            tensors = load(data)
        except Exception as e:  # safetensors raises several types on bad files
            raise ModelFileError(f"not a readable lmpress model file ({e}); "
                                 "re-export or reinstall the model") from e
        if meta.get("format") not in READABLE_FORMATS:
            raise ModelFileError(f"model file format is {meta.get('format')!r}, expected one "
                                 f"of {', '.join(READABLE_FORMATS)}; re-export it with this "
                                 "lmpress version")
        fixed = FixedPoint(**json.loads(meta["fixed_point"]))
        return cls(meta["name"], ModelConfig.from_json(meta["config"]), fixed,
                   meta["tokenizer"], tensors, digest, meta.get("summary", ""))

    @classmethod
    def load(cls, path: Path, expected_sha256: str | None = None) -> IntegerWeights:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ModelFileError(f"cannot read model file {path}: {e.strerror}") from e
        return cls.from_bytes(data, expected_sha256)


def _canonical_header(data: bytes) -> bytes:
    """safetensors writes its JSON header in hash-map order, so the same model could get a
    different sha256 on each export; rewrite the header with sorted keys, same length."""
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8:8 + n]), sort_keys=True, separators=(",", ":"),
                        ensure_ascii=False).encode()
    if len(header) > n:  # cannot happen for safetensors' own compact header; keep it as is
        return data
    return data[:8] + header.ljust(n) + data[8 + n:]


def read_metadata(path: Path) -> dict:
    """The metadata of a model file (name, config, summary, ...) without its tensors."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n > 100_000_000:
                raise ValueError("header length is implausible")
            meta = json.loads(f.read(n)).get("__metadata__", {})
    except (OSError, ValueError) as e:
        raise ModelFileError(f"not a readable lmpress model file {path} ({e})") from e
    return meta


def _read_metadata(data: bytes) -> dict:
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise ValueError("header length exceeds file")
    return json.loads(data[8:8 + n]).get("__metadata__", {})
