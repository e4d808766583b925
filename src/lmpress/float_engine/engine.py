"""FloatEngine: a loaded float model behind the codec's engine surface (codec._Engine):
`tables(state, tokens)`, `new_state(B)`, `prepare(n_bytes)`, `tok`, `cfg`, `weights`,
`batch_size`.

Float results depend on batch shape and kernel, so a float engine is `stepwise`: the
encoder feeds it exactly the (B, 1) inputs, in the same batches, that the decoder will
(streams.py honours the flag), and `tables` steps token by token even when given more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelNotFoundError
from . import ENGINE_GGUF, FloatEngineError, is_float_model, is_float_spec, load_float_model
from .tables import (
    check_fingerprint,
    describe,
    freq_table,
    pack_fingerprint,
    unpack_fingerprint,
)


@dataclass(frozen=True)
class FloatConfig:
    bos_id: int  # the start token (BOS, else EOS)
    vocab_size: int  # width of the model's logits
    max_positions: int  # tokens a stream may have: the model's context
    window: int  # = max_positions: no sliding, a stream fits the context


@dataclass(frozen=True)
class FloatWeights:
    name: str  # "hf:DIR-NAME" or "gguf:FILE-NAME", recorded as the archive's model name
    digest: str  # sha256 hex over the model's files


class FloatEngine:
    """What the codec needs of a float model; one per Compressor/Decompressor."""

    stepwise = True

    def __init__(self, model, backend: str | None = None, batch_size: int = 32):
        if is_float_spec(model):
            model = load_float_model(model, backend)
        self.model = model
        self.lm = model  # new_state(B)
        self.kind = model.engine_kind
        self.batch_size = 1 if self.kind == ENGINE_GGUF else batch_size
        self.tok = model.tok
        self.cfg = FloatConfig(model.start_id, model.vocab_size, model.max_positions,
                               model.max_positions)
        self.weights = FloatWeights(model.name, model.digest)
        self.weights_digest = bytes.fromhex(model.digest)[:16]
        self.tokenizer_digest = bytes.fromhex(model.tok.digest)[:16]

    @property
    def fingerprint(self) -> dict:
        return self.model.fingerprint

    @property
    def fingerprint_bytes(self) -> bytes:
        """What the archive records, taken when it is written."""
        return pack_fingerprint(self.model.fingerprint)

    def new_state(self, batch: int) -> dict:
        """One state for the whole batch: float tables depend on the batch, so it is
        never split (no threads)."""
        return self.lm.new_state(batch)

    def prepare(self, n_bytes: int) -> None:
        """Nothing to load ahead of a long input (the integer engine loads kernels)."""

    def tables(self, st, tokens: np.ndarray) -> np.ndarray:
        """(B, l) token ids read one position at a time -> (B, l, V) integer tables."""
        tokens = np.asarray(tokens)
        if tokens.shape[0] != st["batch"]:
            raise FloatEngineError("internal error: a batch changed size between steps")
        steps = [freq_table(self.model.step(st, tokens[:, j])) for j in range(tokens.shape[1])]
        return np.stack(steps, 1)

    def numbers(self, st, tokens: np.ndarray, want: np.ndarray):
        """`tables`, then the (start, freq) of the `want` ids (B, l, k) and the totals."""
        from ..streams import table_numbers

        return table_numbers(self.tables(st, tokens), want)

    def check(self, header, force: bool) -> None:
        """Refuse an archive made by another engine setup (FingerprintError) unless
        `force`."""
        check_fingerprint(unpack_fingerprint(header.fingerprint), self.fingerprint, force)


def engine_for_archive(header, model, backend: str | None, batch_size: int) -> FloatEngine:
    """The engine to decode a float archive with: the model the caller gave (the archive
    cannot know its path), or a one-line error naming what the archive needs."""
    if model is None or not is_float_model(model):
        recorded = unpack_fingerprint(header.fingerprint)
        kind = recorded.get("engine", "hf")
        raise ModelNotFoundError(
            f"this archive was coded by {describe(recorded)}, model digest "
            f"{str(recorded.get('digest'))[:16]}; decode it with -m {kind}:"
            f"{'DIR' if kind == 'hf' else 'FILE'} naming that model")
    return FloatEngine(model, backend, batch_size)
