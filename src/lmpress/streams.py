"""Coding token streams with the language model, alone or mixed with online adaptation.

Plain streams are independent: any batching decodes them. Adaptive streams advance in
lockstep groups of `group` streams, in archive order, sharing one `Adaptation` state
(coding/adapt.py explains what a stream may see). The encoder works in three passes per
group: the adaptive candidates (tokens only), the language model (parallel chunks), then
mixing and range coding in lockstep order. The decoder does all three per step.

Float engines (`engine.stepwise`) give last-bit differences for other batch shapes, so
for them the LM pass steps one position at a time over exactly the decoder's inputs: BOS,
then each stream's tokens, then zeros once a stream has ended (both decoders feed that),
in the decoder's batches (plain streams in table order, `batch` at a time).

An optional `recorder` (None when compressing; `lmpress inspect` passes one) sees what
the encoder computes anyway: `recorder.batch(positions)` is called before each batch's LM
pass with the batch's positions in the list of LM streams (file order) and returns an
`observe(table, want)` callback for that pass's chunks; `recorder.costs(bits)` then gets
the coder's cost of every token of the batch, (B, L) bits. Recording changes no byte.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np

from .coding.adapt import PROB_BITS, Adaptation
from .coding.rangecoder import RangeDecoder, RangeEncoder
from .errors import ChecksumError

Progress = Callable[[int], None]
Observe = Callable[[np.ndarray, np.ndarray], None]  # (tables (B, l, V), want (B, l, k))
_P_TOTAL = 1 << PROB_BITS


def lm_numbers(engine, streams: list[np.ndarray], extra: np.ndarray | None,
               progress: Progress, observe: Observe | None = None):
    """Run the LM over a batch of token arrays (each read after BOS) in parallel chunks;
    returns per position (start, freq) of the true token, the table total, and (start,
    freq) of each `extra` candidate token (B, L, k; -1 = none)."""
    B, L = len(streams), max(len(s) for s in streams)
    tgt = np.zeros((B, L), dtype=np.int64)
    for b, s in enumerate(streams):
        tgt[b, :len(s)] = s
    want = tgt[..., None] if extra is None else np.concatenate(
        [tgt[..., None], np.maximum(extra, 0)], -1)
    inp = np.concatenate([np.full((B, 1), engine.cfg.bos_id), tgt[:, :-1]], axis=1)
    return chunked_tables(engine, inp, want, progress, observe)


def chunked_tables(engine, inp: np.ndarray, want: np.ndarray,
                   progress: Progress | None = None, observe: Observe | None = None):
    """The LM reads `inp` (B, L) in chunks; returns the (start, freq) of the `want` token
    ids (B, L, k) in each position's table, and the tables' totals (B, L). `observe`, if
    given, is called with each chunk's tables (B, l, V) and want ids (B, l, k)."""
    B, L = inp.shape
    # 2**22 table entries a chunk: level 6 on 100 KB took 26.9 s (535 MB) against 27.9 s
    # (429 MB) with 2**21 and 29.5 s (677 MB) with 2**23 (2-core CI machine, 2026-11-30)
    chunk = max(1, min(engine.cfg.window, (1 << 22) // (B * engine.cfg.vocab_size)))
    if getattr(engine, "stepwise", False):
        chunk = 1  # the decoder's (B, 1) steps
    st = engine.new_state(B)
    starts, freqs, totals = [], [], []
    for c in range(0, L, chunk):
        w = want[:, c:c + chunk]
        if observe is None:
            s, fr, tot = engine.numbers(st, inp[:, c:c + chunk], w)
        else:
            f = engine.tables(st, inp[:, c:c + chunk])  # (B, l, V)
            observe(f, w)
            s, fr, tot = table_numbers(f, w)
        starts.append(s)
        freqs.append(fr)
        totals.append(tot)
        if progress is not None:
            progress(int(engine.tok.n_bytes[w[..., 0]].sum()))
    return tuple(np.concatenate(a, 1) for a in (starts, freqs, totals))


def table_numbers(f: np.ndarray, want: np.ndarray):
    """Tables f (..., V) and ids `want` (..., k) -> the ids' (start, freq) (..., k) and
    the tables' totals (...): what the range coder needs of each table."""
    fr = np.take_along_axis(f, want, -1)
    cum = np.cumsum(f, -1)
    return np.take_along_axis(cum, want, -1) - fr, fr, cum[..., -1].copy()  # no view of cum


def encode_plain(engine, streams: list[np.ndarray], progress: Progress, recorder=None):
    """Range-code independent streams; returns (payload, estimated bits) per stream."""
    results = [None] * len(streams)
    order = sorted(range(len(streams)), key=lambda i: -len(streams[i]))
    if getattr(engine, "stepwise", False):
        order = list(range(len(streams)))  # the decoder's batches: table order
    for g in range(0, len(order), engine.batch_size):
        group = order[g:g + engine.batch_size]
        observe = recorder.batch(group) if recorder is not None else None
        starts, freqs, totals = lm_numbers(engine, [streams[i] for i in group], None,
                                           progress, observe)
        if recorder is not None:
            recorder.costs(np.log2(totals / freqs[..., 0]))
        for b, i in enumerate(group):
            n = len(streams[i])
            enc = RangeEncoder()
            for s, f_, t_ in zip(starts[b, :n, 0].tolist(), freqs[b, :n, 0].tolist(),
                                 totals[b, :n].tolist()):
                enc.encode(s, f_, t_)
            bits = float(-np.log2(freqs[b, :n, 0] / totals[b, :n]).sum())
            results[i] = (enc.finish(), bits)
    return results


def decode_plain(engine, jobs: list[tuple[int, int, bytes]], progress: Progress,
                 batch: int | None = None):
    """Decode independent streams given (index, n_tokens, body), `batch` (default the
    engine's batch size) at a time; yields (index, tokens)."""
    batch = batch or engine.batch_size
    for g in range(0, len(jobs), batch):
        group = jobs[g:g + batch]
        B, n = len(group), [j[1] for j in group]
        decs = [RangeDecoder(j[2]) for j in group]
        toks = np.zeros((B, max(n)), dtype=np.int64)
        cur = np.full((B, 1), engine.cfg.bos_id, dtype=np.int64)
        st = engine.new_state(B)
        for t in range(max(n)):
            f = engine.tables(st, cur)[:, 0]  # (B, V)
            cum = np.cumsum(f, -1)
            for b in range(B):
                if t < n[b]:
                    toks[b, t] = _decode_token(decs[b], (), f[b], cum[b])
            cur[:, 0] = toks[:, t]  # 0 once a stream has ended, as the encoder pads
            progress(int(engine.tok.n_bytes[toks[:, t]].sum()))
        for b, (idx, nb, _) in enumerate(group):
            _check_end(decs[b].overrun())
            yield idx, toks[b, :nb]


class RemappedRecorder:
    """A recorder seen through a renumbering of the streams (the Compressor codes a
    subset again: plain streams of a stepwise engine after fallback)."""

    def __init__(self, recorder, positions: list[int]):
        self.recorder, self.positions = recorder, positions

    def batch(self, group: list[int]):
        return self.recorder.batch([self.positions[g] for g in group])

    def costs(self, bits) -> None:
        self.recorder.costs(bits)


# -- one token: binary events first, then the LM table without the candidates ----------


def _encode_token(enc: RangeEncoder, events, tok: int, start: int, freq: int,
                  total: int, excluded) -> float:
    """Code `tok` after the binary events [(candidate, p), ...]; `excluded` are the
    (start, freq) of candidates that missed. Returns the cost in bits (statistics)."""
    bits = 0.0
    for cand, p in events:
        if cand == tok:  # a hit takes the top of the interval, so that long runs of
            enc.encode(_P_TOTAL - p, p, _P_TOTAL)  # hits do not end in zero bytes
            return bits + PROB_BITS - math.log2(p)
        enc.encode(0, _P_TOTAL - p, _P_TOTAL)
        bits += PROB_BITS - math.log2(_P_TOTAL - p)
    total -= sum(f for _, f in excluded)
    enc.encode(start - sum(f for s, f in excluded if s < start), freq, total)
    return bits + math.log2(total / freq)


def _decode_token(dec: RangeDecoder, events, f: np.ndarray, cum: np.ndarray,
                  excluded=()) -> int:
    for cand, p in events:
        if dec.target(_P_TOTAL) >= _P_TOTAL - p:
            dec.advance(_P_TOTAL - p, p)
            return cand
        dec.advance(0, _P_TOTAL - p)
    v = dec.target(int(cum[-1]) - sum(fc for _, fc in excluded))
    for s, fc in sorted(excluded):
        if v >= s:
            v += fc
    k = int(np.searchsorted(cum, v, side="right"))
    fk = int(f[k])
    start = int(cum[k]) - fk
    dec.advance(start - sum(fc for s, fc in excluded if s < start), fk)
    return k


def _check_end(overrun: int) -> None:
    """A decoder that read more than 16 bytes past its data read a damaged stream."""
    if overrun > 16:
        raise ChecksumError("decoded data fails the archive's stream table; the archive is "
                            "damaged or was made by a different model")


def _events(c1: int, p1: int, c2: int, p2: int) -> list[tuple[int, int]]:
    return [(c, p) for c, p in ((c1, p1), (c2, p2)) if c >= 0]


# -- adaptive groups ---------------------------------------------------------------------


class AdaptiveEncoder:
    """Encodes the adaptive streams of one member, group by group, in file order."""

    def __init__(self, engine, group: int, n_tokens: int, progress: Progress,
                 recorder=None, counts: bool = False):
        self.engine, self.group, self.progress = engine, group, progress
        self.ad = Adaptation(engine.cfg.bos_id, n_tokens,
                             engine.cfg.vocab_size if counts else None)  # 2 or 1
        self.recorder = recorder  # see the module docstring; None: record nothing
        self.n_streams = 0  # streams coded so far (positions for the recorder)

    def encode_group(self, streams: list[np.ndarray], alternative: list[int],
                     fallback: bool) -> list[tuple[bytes, float] | None]:
        """Code one group; a stream whose payload would not beat `alternative` bytes
        (when `fallback`) gets None: it is stored another way but still feeds history."""
        B, L = len(streams), max(len(s) for s in streams)
        grp = self.ad.group([len(s) for s in streams])
        tok = np.zeros((B, L), dtype=np.int64)
        for b, s in enumerate(streams):
            tok[b, :len(s)] = s
        fused = _compiled(self.engine)  # pass 1: the candidates of every step, in lockstep
        passes = (fused.GroupEncoder(self.ad, grp, tok, self.engine.cfg.vocab_size)
                  if fused is not None else _NumpyPasses(self.ad, grp, tok))
        observe = None
        if self.recorder is not None:
            observe = self.recorder.batch(list(range(self.n_streams, self.n_streams + B)))
        self.n_streams += B
        nums = lm_numbers(self.engine, streams, passes.extra, self.progress, observe)
        snapshot = copy.deepcopy((self.ad.mixer, self.ad.hits))
        counts = self.ad.counts
        if counts is not None:  # the contexts and tokens this group will count
            mark = counts.mark(*passes.contexts())
        skip = np.zeros(B, dtype=bool)
        while True:  # pass 2: mix and code; redo if a stream is better stored otherwise
            out, costs = passes.code(nums, skip)
            worse = [b for b in range(B) if not skip[b] and fallback
                     and len(out[b][0]) >= alternative[b]]
            if not worse:
                if self.recorder is not None:
                    self.recorder.costs(costs)
                return out
            skip[worse] = True
            self.ad.mixer, self.ad.hits = copy.deepcopy(snapshot)
            if counts is not None:  # the counts of this try are taken back
                counts.rewind(mark)


class _NumpyPasses:
    """encode_group's passes in numpy: pass 1 (every step's candidates, then its push)
    at construction; `code` is pass 2. coding/compiled.py's GroupEncoder is the same in
    compiled loops."""

    def __init__(self, ad: Adaptation, grp, tok: np.ndarray):
        self.ad, self.grp, self.tok = ad, grp, tok
        self.steps = []
        for n in range(tok.shape[1]):
            live = np.flatnonzero(grp.lengths > n)
            cands = grp.candidates(n, live)
            grp.push(n, live, tok[live, n], cands)
            self.steps.append((live, cands))
        self.extra = np.full(tok.shape + (2,), -1, dtype=np.int64)  # (B, L, 2) c1, c2
        for n, (live, cands) in enumerate(self.steps):
            self.extra[live, n, 0], self.extra[live, n, 1] = cands[0], cands[2]

    def contexts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(two before, one before, token) of every coded position, step by step."""
        steps = list(enumerate(self.steps))
        ctx = [np.concatenate(a) for a in zip(*(self.grp.prev(n, live) for n, (live, _)
                                                in steps))]
        return ctx[0], ctx[1], np.concatenate([self.tok[live, n] for n, (live, _) in steps])

    def code(self, nums, skip: np.ndarray):
        """Pass 2: per stream (payload, bits), None where `skip`; each token's bits."""
        grp, tok = self.grp, self.tok
        starts, freqs, totals = nums  # (B, L, 3), (B, L, 3), (B, L)
        B = len(tok)
        encs = [RangeEncoder() for _ in range(B)]
        bits = [0.0] * B
        costs = np.zeros(tok.shape)  # bits per token
        counts = self.ad.counts
        for n, (live, cands) in enumerate(self.steps):
            f, s, t = freqs[live, n], starts[live, n], totals[live, n]
            if counts is not None:
                prev = grp.prev(n, live)
                want = np.stack([tok[live, n], np.maximum(cands[0], 0),
                                 np.maximum(cands[2], 0)], 1)  # lm_numbers' ids
                s, f, t = counts.mix_numbers(*prev, want, s, f, t)
            p1, p2, saved = grp.events(cands, f[:, 1], f[:, 2], t)
            coded = ~skip[live]
            rows = zip(live.tolist(), coded.tolist(), tok[live, n].tolist(),
                       cands[0].tolist(), p1.tolist(), cands[2].tolist(), p2.tolist(),
                       s.tolist(), f.tolist(), t.tolist())
            for b, c, x, c1, q1, c2, q2, sb, fb, tb in rows:
                if c:
                    excl = [(sb[1], fb[1])] if c1 >= 0 else []
                    excl += [(sb[2], fb[2])] if c2 >= 0 else []
                    cost = _encode_token(encs[b], _events(c1, q1, c2, q2), x, sb[0], fb[0],
                                         tb, excl)
                    bits[b] += cost
                    costs[b, n] = cost
            grp.learn(cands, saved, tok[live, n], coded)
            if counts is not None:
                counts.add(*prev, tok[live, n])
        return [None if skip[b] else (encs[b].finish(), bits[b]) for b in range(B)], costs


def decode_adaptive(engine, ad: Adaptation, group: list[tuple[int, np.ndarray | None,
                                                              bytes]], progress: Progress):
    """Decode one lockstep group of (n_tokens, known tokens or None, body); returns the
    token arrays. Streams with known tokens (stored raw/LZMA) only feed the history. With
    the compiled passes (`_compiled`), each step's serial part after the LM is one
    compiled call (coding/compiled.py); else numpy, to the same tokens."""
    B = len(group)
    grp = ad.group([g[0] for g in group])
    toks = np.zeros((B, int(grp.lengths.max())), dtype=np.int64)
    for b, g in enumerate(group):
        if g[1] is not None:
            toks[b, :g[0]] = g[1]
    bodies = [g[2] if g[1] is None else None for g in group]
    fused = _compiled(engine)
    if fused is not None:
        dec = fused.GroupDecoder(ad, grp, bodies, toks, engine.cfg.vocab_size)
        step, overrun = dec.step, dec.overrun
    else:
        step, overrun = _numpy_step(ad, grp, bodies, toks)
    cur = np.full((B, 1), engine.cfg.bos_id, dtype=np.int64)
    st = engine.new_state(B)
    for n in range(toks.shape[1]):
        live = np.flatnonzero(grp.lengths > n)
        step(n, live, engine.tables(st, cur)[:, 0])  # (B, V) tables -> toks[live, n]
        cur[:, 0] = toks[:, n]
        progress(int(engine.tok.n_bytes[toks[live, n]].sum()))
    _check_end(int(overrun().max()))
    return [toks[b, :g[0]] for b, g in enumerate(group)]


def _compiled(engine):
    """coding/compiled.py when the engine's backend asks for it (`compiled_coding`) and
    numba is loaded and LMPRESS_KERNELS allows it, else None: the numpy passes, to the
    same bytes."""
    if not getattr(engine, "compiled_coding", False):
        return None
    from .coding import compiled

    return compiled if compiled.AVAILABLE else None


def _numpy_step(ad: Adaptation, grp, bodies: list[bytes | None],
                toks: np.ndarray):
    """The numpy step of decode_adaptive: (step(n, live, f), overrun())."""
    decs = [RangeDecoder(d) if d is not None else None for d in bodies]
    coded = np.array([d is not None for d in decs])
    counts = ad.counts

    def step(n: int, live: np.ndarray, f: np.ndarray) -> None:
        f = f[live]
        if counts is not None:
            prev = grp.prev(n, live)
            f, cum = counts.mix_table(*prev, f)
        else:
            cum = np.cumsum(f, -1)
        cands = grp.candidates(n, live)
        c1, c2 = cands[0], cands[2]
        at = np.maximum(np.stack([c1, c2], 1), 0)  # (live, 2) candidate ids
        fc = np.take_along_axis(f, at, 1)
        sc = np.take_along_axis(cum, at, 1) - fc
        f1, f2, s1, s2 = fc[:, 0], fc[:, 1], sc[:, 0], sc[:, 1]
        p1, p2, saved = grp.events(cands, f1, f2, cum[:, -1])
        rows = zip(live.tolist(), c1.tolist(), p1.tolist(), c2.tolist(), p2.tolist(),
                   s1.tolist(), f1.tolist(), s2.tolist(), f2.tolist())
        for i, (b, a1, q1, a2, q2, t1, g1, t2, g2) in enumerate(rows):
            if decs[b] is not None:
                excl = [(t1, g1)] if a1 >= 0 else []
                excl += [(t2, g2)] if a2 >= 0 else []
                toks[b, n] = _decode_token(decs[b], _events(a1, q1, a2, q2), f[i], cum[i],
                                           excl)
        grp.push(n, live, toks[live, n], cands)
        grp.learn(cands, saved, toks[live, n], coded[live])
        if counts is not None:
            counts.add(*prev, toks[live, n])

    def overrun() -> np.ndarray:
        return np.array([d.overrun() if d is not None else 0 for d in decs])

    return step, overrun
