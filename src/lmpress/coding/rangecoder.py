"""A 64-bit range coder (queue/FIFO) over integer frequency tables, in Python integers.

The encoder narrows [low, low + range) by `start/total .. (start+freq)/total` and emits a
byte whenever range drops below 2**56 (LZMA's carry-propagating scheme, widened to 64 bits
so that tables totalling about 2**28 keep ~28 bits of precision). Python integers make the
arithmetic identical on every machine. The constriction library's Python models take float
probabilities and quantize them internally; lmpress's tables are already exact integers,
so this small coder takes them as they are.
"""

from __future__ import annotations

from ..errors import FormatError

_BITS = 64
_MASK = (1 << _BITS) - 1
_TOP = 1 << (_BITS - 8)
MAX_TOTAL = 1 << 40  # tables total at most this (about 2**28 in practice)
CORRUPT = ("corrupt archive: the coded stream is inconsistent; the file is damaged — "
           "restore it from a good copy")


class RangeEncoder:
    """Encode symbols given as (start, freq, total); `finish()` returns the bytes."""

    def __init__(self) -> None:
        self.low = 0
        self.range = _MASK
        self.cache = 0
        self.cache_size = 1
        self.out = bytearray()

    @classmethod
    def resumed(cls, low: int, range_: int, cache: int, cache_size: int,
                out: bytes) -> RangeEncoder:
        """An encoder in the state another one reached (coding/kernels.py's compiled
        encoder, whose bytes `finish` then completes)."""
        enc = cls()
        enc.low, enc.range, enc.cache, enc.cache_size = low, range_, cache, cache_size
        enc.out = bytearray(out)
        return enc

    def encode(self, start: int, freq: int, total: int) -> None:
        if not (0 <= start and 0 < freq and start + freq <= total <= MAX_TOTAL):
            raise ValueError(f"bad symbol interval start={start} freq={freq} total={total}")
        r = self.range // total
        self.low += r * start
        self.range = r * freq
        while self.range < _TOP:
            self._shift_low()
            self.range <<= 8

    def _shift_low(self) -> None:
        low = self.low
        if low < (0xFF << (_BITS - 8)) or low > _MASK:
            carry = low >> _BITS
            temp = self.cache
            while True:
                self.out.append((temp + carry) & 0xFF)
                temp = 0xFF
                self.cache_size -= 1
                if self.cache_size == 0:
                    break
            self.cache = (low >> (_BITS - 8)) & 0xFF
        self.cache_size += 1
        self.low = (low << 8) & _MASK

    def finish(self) -> bytes:
        """Flush the shortest value inside the final interval; trailing zero bytes are
        dropped (the decoder reads zeros past the end), as is the always-zero first byte."""
        for k in range(_BITS, -1, -1):
            v = ((self.low + (1 << k) - 1) >> k) << k
            if v < self.low + self.range:
                self.low = v
                break
        for _ in range(_BITS // 8 + 1):
            self._shift_low()
        return bytes(self.out[1:]).rstrip(b"\x00")


class RangeDecoder:
    """Decode with `target(total)` -> a value in [0, total), then `advance(start, freq)`
    with the interval of the symbol whose range holds that value."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = _BITS // 8
        self.code = int.from_bytes(data[:self.pos].ljust(self.pos, b"\x00"), "big")
        self.range = _MASK
        self._r = 1

    def target(self, total: int) -> int:
        if not 0 < total <= MAX_TOTAL:
            raise ValueError(f"bad total {total}")
        self._r = self.range // total
        return min(self.code // self._r, total - 1)

    def advance(self, start: int, freq: int) -> None:
        r = self._r
        self.code -= r * start
        self.range = r * freq
        if not 0 <= self.code < self.range:
            raise FormatError(CORRUPT)
        while self.range < _TOP:
            byte = self.data[self.pos] if self.pos < len(self.data) else 0
            self.pos += 1
            self.code = (self.code << 8) | byte
            self.range <<= 8

    def overrun(self) -> int:
        """Bytes read past the end of the data (zeros); large values mean corruption."""
        return max(0, self.pos - len(self.data))
