"""Coding token streams with the language model, alone or mixed with online adaptation.

Plain streams are independent: any batching decodes them. Adaptive streams advance in
lockstep groups of `group` streams, in archive order, sharing one `Adaptation` state
(coding/adapt.py explains what a stream may see). The encoder works in three passes per
group: the adaptive candidates (tokens only), the language model (parallel chunks), then
mixing and range coding in lockstep order. The decoder does all three per step.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np

from .coding.adapt import PROB_BITS, Adaptation, Event
from .coding.rangecoder import RangeDecoder, RangeEncoder
from .errors import ChecksumError

Progress = Callable[[int], None]
_P_TOTAL = 1 << PROB_BITS


def lm_numbers(engine, streams: list[np.ndarray], extra: np.ndarray | None,
               progress: Progress):
    """Run the LM over a batch of token arrays in parallel chunks; returns per position
    (start, freq) of the true token, the table total, and (start, freq) of each `extra`
    candidate token (B, L, k; -1 = none)."""
    B, L = len(streams), max(len(s) for s in streams)
    tgt = np.zeros((B, L), dtype=np.int64)
    for b, s in enumerate(streams):
        tgt[b, :len(s)] = s
    want = tgt[..., None] if extra is None else np.concatenate(
        [tgt[..., None], np.maximum(extra, 0)], -1)
    inp = np.concatenate([np.full((B, 1), engine.cfg.bos_id), tgt[:, :-1]], axis=1)
    chunk = max(1, min(engine.cfg.window, (1 << 21) // (B * engine.cfg.vocab_size)))
    st = engine.lm.new_state(B)
    starts, freqs, totals = [], [], []
    for c in range(0, L, chunk):
        f = engine.tables(st, inp[:, c:c + chunk])  # (B, l, V)
        w = want[:, c:c + chunk]
        fr = np.take_along_axis(f, w, -1)
        cum = np.cumsum(f, -1)
        starts.append(np.take_along_axis(cum, w, -1) - fr)
        freqs.append(fr)
        totals.append(cum[..., -1])
        progress(int(engine.tok.n_bytes[tgt[:, c:c + chunk]].sum()))
    return tuple(np.concatenate(a, 1) for a in (starts, freqs, totals))


def encode_plain(engine, streams: list[np.ndarray], progress: Progress):
    """Range-code independent streams; returns (payload, estimated bits) per stream."""
    results = [None] * len(streams)
    order = sorted(range(len(streams)), key=lambda i: -len(streams[i]))
    for g in range(0, len(order), engine.batch_size):
        group = order[g:g + engine.batch_size]
        starts, freqs, totals = lm_numbers(engine, [streams[i] for i in group], None,
                                           progress)
        for b, i in enumerate(group):
            n = len(streams[i])
            enc = RangeEncoder()
            for s, f_, t_ in zip(starts[b, :n, 0].tolist(), freqs[b, :n, 0].tolist(),
                                 totals[b, :n].tolist()):
                enc.encode(s, f_, t_)
            bits = float(-np.log2(freqs[b, :n, 0] / totals[b, :n]).sum())
            results[i] = (enc.finish(), bits)
    return results


def decode_plain(engine, jobs: list[tuple[int, int, bytes]], progress: Progress):
    """Decode independent streams given (index, n_tokens, body); yields (index, tokens)."""
    for g in range(0, len(jobs), engine.batch_size):
        group = jobs[g:g + engine.batch_size]
        B, n = len(group), [j[1] for j in group]
        decs = [RangeDecoder(j[2]) for j in group]
        toks = np.zeros((B, max(n)), dtype=np.int64)
        cur = np.full((B, 1), engine.cfg.bos_id, dtype=np.int64)
        st = engine.lm.new_state(B)
        for t in range(max(n)):
            f = engine.tables(st, cur)[:, 0]  # (B, V)
            cum = np.cumsum(f, -1)
            for b in range(B):
                if t < n[b]:
                    toks[b, t] = cur[b, 0] = _decode_token(decs[b], (), f[b], cum[b])
            progress(int(engine.tok.n_bytes[toks[:, t]].sum()))
        for b, (idx, nb, _) in enumerate(group):
            _check_end(decs[b])
            yield idx, toks[b, :nb]


# -- one token: binary events first, then the LM table without the candidates ----------


def _encode_token(enc: RangeEncoder, events: list[Event], tok: int, start: int,
                  freq: int, total: int, excluded: list[tuple[int, int]]) -> float:
    """Code `tok`; returns its cost in bits (statistics only)."""
    bits = 0.0
    for e in events:
        if e.cand == tok:  # a hit takes the top of the interval, so that long runs of
            enc.encode(_P_TOTAL - e.p, e.p, _P_TOTAL)  # hits do not end in zero bytes
            return bits + PROB_BITS - math.log2(e.p)
        enc.encode(0, _P_TOTAL - e.p, _P_TOTAL)
        bits += PROB_BITS - math.log2(_P_TOTAL - e.p)
    total -= sum(f for _, f in excluded)
    enc.encode(start - sum(f for s, f in excluded if s < start), freq, total)
    return bits + math.log2(total / freq)


def _decode_token(dec: RangeDecoder, events, f: np.ndarray, cum: np.ndarray,
                  excluded: tuple = ()) -> int:
    for e in events:
        if dec.target(_P_TOTAL) >= _P_TOTAL - e.p:
            dec.advance(_P_TOTAL - e.p, e.p)
            return e.cand
        dec.advance(0, _P_TOTAL - e.p)
    v = dec.target(int(cum[-1]) - sum(fc for _, fc in excluded))
    for s, fc in sorted(excluded):
        if v >= s:
            v += fc
    k = int(np.searchsorted(cum, v, side="right"))
    fk = int(f[k])
    start = int(cum[k]) - fk
    dec.advance(start - sum(fc for s, fc in excluded if s < start), fk)
    return k


def _check_end(dec: RangeDecoder) -> None:
    if dec.overrun() > 16:
        raise ChecksumError("decoded data fails the archive's stream table; the archive is "
                            "damaged or was made by a different model")


# -- adaptive groups ---------------------------------------------------------------------


class AdaptiveEncoder:
    """Encodes the LM-candidate streams of one member group by group (file order)."""

    def __init__(self, engine, group: int, progress: Progress):
        self.engine, self.group, self.progress = engine, group, progress
        self.ad = Adaptation(engine.cfg.bos_id)

    def encode_group(self, streams: list[np.ndarray], alternative: list[int],
                     fallback: bool) -> list[tuple[bytes, float] | None]:
        """Code one group; a stream whose payload would not beat `alternative` bytes
        (when `fallback`) gets None: it is stored another way but still feeds history."""
        ad, B = self.ad, len(streams)
        sids = [ad.add_stream() for _ in streams]
        toks = [s.tolist() for s in streams]
        cands = [[] for _ in streams]
        for n in range(max(len(t) for t in toks)):  # pass 1: candidates, in lockstep
            live = [b for b in range(B) if n < len(toks[b])]
            for b in live:
                cands[b].append(ad.candidates(sids[b]))
            for b in live:
                ad.push(sids[b], toks[b][n], cands[b][n][0])
        extra = np.full((B, max(len(t) for t in toks), 2), -1, dtype=np.int64)
        for b in range(B):
            c = np.array(cands[b], dtype=np.int64).reshape(-1, 4)
            extra[b, :len(c)] = c[:, [0, 2]]
        nums = lm_numbers(self.engine, streams, extra, self.progress)
        snapshot = (copy.deepcopy(ad.match_mixer), copy.deepcopy(ad.ngram_mixer),
                    list(ad.hits))
        skip: set[int] = set()
        while True:  # pass 2: mix and code; redo if a stream is better stored otherwise
            out = self._code(toks, cands, nums, skip)
            worse = {b for b in range(B) if b not in skip and fallback
                     and len(out[b][0]) >= alternative[b]}
            if not worse:
                return out
            skip |= worse
            ad.match_mixer, ad.ngram_mixer = (copy.deepcopy(m) for m in snapshot[:2])
            ad.hits = list(snapshot[2])

    def _code(self, toks, cands, nums, skip):
        ad, (starts, freqs, totals) = self.ad, nums
        B = len(toks)
        starts, freqs, totals = starts.tolist(), freqs.tolist(), totals.tolist()
        encs = [RangeEncoder() for _ in range(B)]
        bits = [0.0] * B
        for n in range(max(len(t) for t in toks)):
            live = [b for b in range(B) if n < len(toks[b]) and b not in skip]
            evs = []
            for b in live:
                c1, lb, c2, rb = cands[b][n]
                s, f, total = starts[b][n], freqs[b][n], totals[b][n]
                events = ad.events(c1, lb, c2, rb, f[1], f[2], total)
                excl = [(s[1 + i], f[1 + i]) for i, c in enumerate((c1, c2)) if c >= 0]
                bits[b] += _encode_token(encs[b], events, toks[b][n], s[0], f[0], total,
                                         excl)
                evs.append(events)
            for b, events in zip(live, evs):
                ad.learn(events, toks[b][n])
        return [None if b in skip else (encs[b].finish(), bits[b]) for b in range(B)]


def decode_adaptive(engine, ad: Adaptation, group: list[tuple[int, np.ndarray | None,
                                                              bytes]], progress: Progress):
    """Decode one lockstep group of (n_tokens, known tokens or None, body); returns the
    token arrays. Streams with known tokens (stored raw/LZMA) only feed the history."""
    B = len(group)
    n = [g[0] for g in group]
    sids = [ad.add_stream() for _ in group]
    decs = [RangeDecoder(g[2]) if g[1] is None else None for g in group]
    toks = np.zeros((B, max(n)), dtype=np.int64)
    for b, g in enumerate(group):
        if g[1] is not None:
            toks[b, :n[b]] = g[1]
    cur = np.full((B, 1), engine.cfg.bos_id, dtype=np.int64)
    st = engine.lm.new_state(B)
    for t in range(max(n)):
        f = engine.tables(st, cur)[:, 0]  # (B, V)
        cum = np.cumsum(f, -1)
        live = [b for b in range(B) if t < n[b]]
        cands = [ad.candidates(sids[b]) for b in live]
        evs = []
        for b, (c1, lb, c2, rb) in zip(live, cands):
            if decs[b] is None:
                evs.append(None)
                continue
            fb, cb = f[b], cum[b]
            total = int(cb[-1])
            f1 = int(fb[c1]) if c1 >= 0 else 0
            f2 = int(fb[c2]) if c2 >= 0 else 0
            events = ad.events(c1, lb, c2, rb, f1, f2, total)
            excl = tuple((int(cb[c]) - int(fb[c]), int(fb[c])) for c in (c1, c2) if c >= 0)
            toks[b, t] = _decode_token(decs[b], events, fb, cb, excl)
            evs.append(events)
        for b, (c1, *_), events in zip(live, cands, evs):
            tok = int(toks[b, t])
            ad.push(sids[b], tok, c1)
            if events is not None:
                ad.learn(events, tok)
        cur[:, 0] = toks[:, t]
        progress(int(engine.tok.n_bytes[toks[live, t]].sum()))
    for dec in decs:
        if dec is not None:
            _check_end(dec)
    return [toks[b, :n[b]] for b in range(B)]
