"""Cutting an input into the streams that the codec codes side by side.

A decoder advances the streams of a lockstep group one token each per model step, so a
group takes as many steps as its longest stream has tokens, and every shorter stream
idles for the rest. The default cut (`balanced_segments`) therefore balances *tokens*, not bytes:
text varies in density (code, Chinese and tables take more tokens per byte than prose),
and equal byte lengths left the longest stream of a group 1.3-1.6 times the average on
held-out files (docs/BENCHMARKS.md). It also sizes the group to hold all of a member's
streams when they number at most twice the batch (fewer for a model whose key and
value rings are large: `most_streams`), instead of running a second, nearly empty group
after the first.

Stream boundaries are the encoder's choice and the archive's stream table records them,
so decoders need nothing of this. An explicit `segment_bytes` keeps the plain byte cut.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .model.config import ModelConfig
from .model.tokenizer import ByteTokenizer

MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES = 4096, 16384
TOKEN_FILL = 15 / 16  # streams are planned to at most this share of the model's positions
SNAP_SHARE = 1 / 32  # a cut moves at most this share of a segment to end after a newline
GROUP_RING_BYTES = 256 << 20  # a lockstep group's key and value rings, at most


def auto_segment_bytes(n_bytes: int, batch_size: int) -> int:
    """Segments of 16 KiB, made smaller (down to 4 KiB) for short inputs so that a batch
    of streams still advances together."""
    return max(MIN_SEGMENT_BYTES, min(MAX_SEGMENT_BYTES, -(-n_bytes // batch_size)))


def byte_segments(data: bytes, size: int) -> Iterator[bytes]:
    """Cut into pieces of about `size` bytes, preferring to end just after a newline."""
    pos = 0
    while pos < len(data):
        end = min(len(data), pos + size)
        if end < len(data):
            nl = data.rfind(b"\n", pos + size * 3 // 4, end)
            end = nl + 1 if nl >= 0 else end
        yield data[pos:end]
        pos = end


def group_size(n_streams: int, batch_size: int, most: int | None = None) -> int:
    """Streams per lockstep group: all of them up to `most` (default twice the batch),
    else as few groups of equal size as hold them at that limit."""
    most = most or 2 * batch_size
    n_groups = max(1, -(-n_streams // most))
    return max(1, -(-n_streams // n_groups))


def most_streams(configs: list[ModelConfig], batch_size: int) -> int:
    """The largest group for a model (the configs of a mix's parts): twice the batch
    while the group's key and value rings (int16) stay within GROUP_RING_BYTES, never
    under the batch. The default model's 64 streams take 63 MB; max-v1's 64 would take
    403 MB, and 42 take 264 MB (its peak on dense text stays under 1 GB:
    docs/BENCHMARKS.md)."""
    per_stream = sum(2 * c.n_layer * c.kv_heads * c.window * c.head_size * 2
                     for c in configs)
    return max(batch_size, min(2 * batch_size, GROUP_RING_BYTES // per_stream))


def balanced_segments(data: bytes, tok: ByteTokenizer, max_positions: int,
                      batch_size: int) -> list[bytes]:
    """`data` cut into as many segments as `auto_segment_bytes` gives, or more where
    that many would not fit the model's positions, each holding about the same number
    of tokens; a cut ends after the nearest newline (else space) within a 32nd of a
    segment, and never inside a UTF-8 sequence."""
    if not data:
        return []
    ends = np.cumsum(tok.n_bytes[tok.encode(data)])  # end byte of each token
    n_tok = len(ends)
    n_streams = max(-(-len(data) // auto_segment_bytes(len(data), batch_size)),
                    -(-n_tok // int(TOKEN_FILL * max_positions)))
    slack = max(16, int(SNAP_SHARE * len(data) / n_streams))
    out, pos = [], 0
    for k in range(1, n_streams):
        cut = _snap(data, int(ends[k * n_tok // n_streams - 1]), slack)
        if pos < cut < len(data):
            out.append(data[pos:cut])
            pos = cut
    out.append(data[pos:])
    return out


def _snap(data: bytes, target: int, slack: int) -> int:
    """The cut nearest `target` that ends after a newline, else after a space, within
    `slack` bytes; else `target` moved past any UTF-8 continuation bytes."""
    lo, hi = max(0, target - slack), min(len(data), target + slack)
    for sep in (b"\n", b" "):
        near = [i + 1 for i in (data.rfind(sep, lo, target), data.find(sep, target, hi))
                if i >= 0]
        if near:
            return min(near, key=lambda i: abs(i - target))
    while target < len(data) and 0x80 <= data[target] < 0xC0:
        target += 1
    return target
