"""Compiled (numba) loops for the serial part of adaptive coding, one call per step or
per group instead of ~100 small numpy calls and a Python range coder per stream:

- `decode_step` (streams.decode_adaptive): after the language model's tables of a step,
  every live stream of a group is mixed with its successor counts (counts.py), gets its
  candidates and event probabilities (adapt.py), is range-decoded, and then the
  history, tables, mixer and counts learn the step's tokens;
- `encode_candidates` and `encode_steps` (AdaptiveEncoder.encode_group): pass 1 over
  all steps of a group, then pass 2 (mixing, events, range coding, learning, counting).

coding/compiled.py calls them with the state's own arrays, which they update in place.
Every function gives exactly the integers of its numpy counterpart. The numpy semantics
that a loop copies on purpose:

- every update of a step is computed from the state before the step: the n-gram slots'
  runs, the mixer's hit rates (`np.add.at` of deltas read before adding) and the match
  finder (it runs after all of the step's match-table inserts);
- where several streams write one slot, the later stream in file order wins
  (`_last_wins`), which a loop in stream order gives by overwriting;
- sums (`np.add.at`, `np.maximum.at`) do not depend on order; clips come after all adds;
- order-2 counting in rounds (the first stream of each slot per round) is counting
  stream after stream in table order, since distinct slots do not interact;
- hashes wrap at 2**64 before their mask (numpy's int64 products wrap; here uint64,
  whose low bits are the same), and `>>` of a negative int64 floors, in both.

numba does not check indices; all of them come from the model's side (tokens < V,
addresses <= n_tokens, slots masked to their tables), never from archive bytes, which
are only read below their stream's length. All compiled code is in this one file on
purpose: numba's on-disk cache of a function does not notice edits of functions it
calls from another file. numba is optional: without it (or with LMPRESS_KERNELS=numpy)
streams.py runs its numpy passes, to the same bytes (tests/test_coding_kernels.py
compares the two).
"""

from __future__ import annotations

import math

import numpy as np

from . import adapt, counts
from .rangecoder import MAX_TOTAL

try:
    from numba import njit
except ImportError:  # the numpy path is complete without them
    njit = None

AVAILABLE = njit is not None

_LENGTH_BUCKET = adapt._LENGTH_BUCKET
_SQUASH, _STRETCH = adapt.SQUASH, adapt.STRETCH
_ORDER2_KEEP = counts.ORDER2_KEEP
_P_TOTAL = 1 << adapt.PROB_BITS
OK, BAD_CODE, BAD_TOTAL = 0, 1, 2  # decode_step's status: done, damaged, impossible total

if AVAILABLE:
    _jit = njit(cache=True, nogil=True)

    @_jit
    def hash_add(k, c):
        """One column of adapt._hash: k (uint64, < 2**48) and a value c >= -1."""
        return (k * np.uint64(adapt._K) + np.uint64(c + 1)) & np.uint64(0xFFFFFFFFFFFF)

    @_jit
    def hash_end(k, bits):
        return np.int64((k ^ (k >> np.uint64(21))) & np.uint64((1 << bits) - 1))

    @_jit
    def hash_run(hist, j, count, bits):
        """adapt._hash of hist[j], ..., hist[j + count - 1]."""
        k = np.uint64(0)
        for t in range(count):
            k = hash_add(k, hist[j + t])
        return hash_end(k, bits)

    @_jit
    def prev_tokens(hist, base, bos, n, b):
        """Group.prev of stream b at step n: (two before, one before), BOS before 0."""
        p2 = hist[base[b] + n - 2] if n >= 2 else bos
        p1 = hist[base[b] + n - 1] if n >= 1 else bos
        return p2, p1

    @_jit
    def candidates(n, live, hist, bos, grp, ngram_pred, ngram_run, ngram_bits, cand):
        """Group.candidates: cand[i] = (c1, match bucket, c2, run bucket, n-gram slot,
        two before, one before) of live stream i."""
        base, ptr, mlen = grp
        top = len(_LENGTH_BUCKET) - 1
        for i in range(len(live)):
            b = live[i]
            c1 = hist[ptr[b]] if ptr[b] >= 0 else -1  # -1 also while unknown
            p2, p1 = prev_tokens(hist, base, bos, n, b)
            slot = hash_end(hash_add(hash_add(np.uint64(0), p2), p1), ngram_bits)
            pred = ngram_pred[slot] - 1
            cand[i, 0] = c1
            cand[i, 1] = _LENGTH_BUCKET[min(mlen[b], top)]
            cand[i, 2] = pred if pred >= 0 and pred != c1 else -1
            cand[i, 3] = min(ngram_run[slot], 7)
            cand[i, 4] = slot
            cand[i, 5], cand[i, 6] = p2, p1

    @_jit
    def p12(f, total):
        """adapt._p12: the probability f / total in 1/4096, clipped to 1..4095."""
        return min(max((f << 12) // total, 1), 4095)

    @_jit
    def predict(ctx, p_lm12, w, hit, saved, j):
        """Mixer.predict of one event; saved[j] = (ctx, weight set, x0, x1, p)."""
        x0, x1 = _STRETCH[p_lm12], _STRETCH[hit[ctx] >> 4]
        s = ctx * 3 + (p_lm12 >= 410) + (p_lm12 >= 2458)
        d = (w[s, 0] * x0 + w[s, 1] * x1 + w[s, 2] * 256) >> 16
        p = _SQUASH[min(max(d, -2047), 2047) + 2047]
        saved[j, 0], saved[j, 1], saved[j, 2], saved[j, 3], saved[j, 4] = ctx, s, x0, x1, p
        return p

    @_jit
    def event_probs(i, m, cand, f1, f2, total, w, hit, saved):
        """Group.events of live stream i (of m): (p1, p2), 0 where there is no candidate;
        the second is taken in the table without c1. saved[i] and saved[m + i] keep what
        `learn` needs of the two events."""
        has1 = cand[i, 0] >= 0
        total2 = total - f1 if has1 else total
        q1 = predict(cand[i, 1], p12(f1, total), w, hit, saved, i)
        q2 = predict(cand[i, 3] + 16, p12(f2, total2), w, hit, saved, m + i)
        return (q1 if has1 else 0), (q2 if cand[i, 2] >= 0 else 0)

    @_jit
    def learn(cand, saved, tok, coded, w, hit, hits):
        """Group.learn + Mixer.update: the events that coded streams coded, all computed
        from the hit rates before the step (np.add.at of pre-read deltas), then clipped."""
        m = len(cand)
        dh = np.zeros(2 * m, np.int64)
        use = np.zeros(2 * m, np.bool_)
        ys = np.zeros(2 * m, np.int64)
        for i in range(m):
            c1, c2 = cand[i, 0], cand[i, 2]
            use[i] = coded[i] and c1 >= 0
            use[m + i] = coded[i] and c2 >= 0 and c1 != tok[i]
            ys[i] = 1 if c1 == tok[i] else 0
            ys[m + i] = 1 if c2 == tok[i] else 0
            if use[i] and ys[i] == 1:
                hits[0] += 1
            if use[m + i] and ys[m + i] == 1:
                hits[1] += 1
        for j in range(2 * m):
            if use[j]:
                ctx, s, p = saved[j, 0], saved[j, 1], saved[j, 4]
                err = (ys[j] << adapt.PROB_BITS) - p
                w[s, 0] += (saved[j, 2] * err) >> adapt._LR_SHIFT
                w[s, 1] += (saved[j, 3] * err) >> adapt._LR_SHIFT
                w[s, 2] += (256 * err) >> adapt._LR_SHIFT
                dh[j] = ((ys[j] << 16) - hit[ctx]) >> adapt._HIT_RATE
        for j in range(2 * m):
            if use[j]:
                hit[saved[j, 0]] += dh[j]
        lim = adapt._W_LIMIT
        for r in range(w.shape[0]):
            for c in range(3):
                w[r, c] = min(max(w[r, c], -lim), lim)
        for r in range(len(hit)):
            hit[r] = min(max(hit[r], 0), (1 << 16) - 1)

    @_jit
    def push(n, live, tok, cand, hist, grp, match_table, match_bits, ngram_pred,
             ngram_run):
        """Group.push: the step's tokens are known; n-gram slots (later stream wins),
        match pointers, history, match table (max), then the match finder."""
        base, ptr, mlen = grp
        m = len(live)
        run = np.empty(m, np.int64)
        for i in range(m):  # every slot read before any is written
            slot = cand[i, 4]
            run[i] = min(ngram_run[slot] + 1, 255) if ngram_pred[slot] == tok[i] + 1 else 0
        for i in range(m):
            ngram_pred[cand[i, 4]] = tok[i] + 1
            ngram_run[cand[i, 4]] = run[i]
        for i in range(m):
            b = live[i]
            if cand[i, 0] == tok[i]:
                ptr[b] += 1
                mlen[b] += 1
            else:
                ptr[b], mlen[b] = -1, 0
            hist[base[b] + n] = tok[i]
        if n >= adapt.MIN_MATCH:  # the context before token n now has a known successor
            for i in range(m):
                addr = base[live[i]] + n
                key = hash_run(hist, addr - adapt.MIN_MATCH, adapt.MIN_MATCH, match_bits)
                match_table[key] = max(match_table[key], addr + 1)
        if n + 1 >= adapt.MIN_MATCH:
            for i in range(m):
                if ptr[live[i]] < 0:
                    find(live[i], base[live[i]] + n, hist, grp, match_table, match_bits)

    @_jit
    def find(b, end, hist, grp, match_table, match_bits):
        """Group._find for stream b whose last token is at `end`."""
        base, ptr, mlen = grp
        key = hash_run(hist, end - adapt.MIN_MATCH + 1, adapt.MIN_MATCH, match_bits)
        succ = match_table[key] - 1
        if succ <= 0:
            return
        length = 0
        while length < adapt.MAX_VERIFY:
            a, e = succ - 1 - length, end - length
            if a < 0 or e < base[b] or hist[a] != hist[e]:
                break
            length += 1
        if length >= adapt.MIN_MATCH:
            ptr[b], mlen[b] = succ, length

    @_jit
    def order2_slot(p2, p1, V, bits):
        """Counts._slots: (context key, slot) of the two-token context."""
        key = p2 * V + p1 + 1
        return key, ((key * 0x9E3779B1) & 0xFFFFFFFF) >> (32 - bits)

    @_jit
    def multiplier(w_max, k, m, total):
        """counts._multiplier for one stream."""
        w = (w_max * m) // (m + k)
        return (w * total) // ((counts._W_ONE - w) * max(m, 1))

    @_jit
    def mixing(p2, p1, total, cs, V, bits):
        """Counts._multipliers of one stream: (mult1, m1, mult2, m2, order-2 slot or -1
        when the slot holds another context)."""
        cn, blocks, tag, succ, cnt = cs
        m1 = 0
        for j in range(blocks.shape[1]):
            m1 += blocks[p1, j]
        mult1 = multiplier(counts._W1, counts._K1, m1, total)
        key, slot = order2_slot(p2, p1, V, bits)
        m2 = 0
        if tag[slot] == key:
            for e in range(_ORDER2_KEEP):
                m2 += cnt[slot, e]
        else:
            slot = -1
        mult2 = multiplier(counts._W2, counts._K2, m2, total + mult1 * m1)
        return mult1, m1, mult2, m2, slot

    @_jit
    def count(cand, tok, cs, block, V, bits):
        """Counts.add: order 1 summed; order 2 stream after stream (= numpy's rounds)."""
        cn, blocks, tag, succ, cnt = cs
        for i in range(len(cand)):
            p2, p1, t = cand[i, 5], cand[i, 6], tok[i]
            cn[p1, t] += 1
            blocks[p1, t // block] += 1
            key, slot = order2_slot(p2, p1, V, bits)
            if tag[slot] != key:  # another context: the slot starts empty
                tag[slot] = key
                succ[slot, :] = -1
                cnt[slot, :] = 0
            place = -1
            for e in range(_ORDER2_KEEP):
                if succ[slot, e] == t:
                    place = e
                    break
            if place >= 0:
                cnt[slot, place] += 1
            else:
                place = 0  # argmin: the first place with the lowest count
                for e in range(1, _ORDER2_KEEP):
                    if cnt[slot, e] < cnt[slot, place]:
                        place = e
                cnt[slot, place] = 1
            succ[slot, place] = t

    # The range decoders of a group, in arrays dec = (bytes, offsets, code, range, read
    # position): code and range fit uint64 (only rangecoder.py's encoder carries past
    # 2**64). With 2**56 <= range < 2**64 after every step and 0 < total <= 2**40
    # (checked, as RangeDecoder.target does): r = range // total >= 2**16; the value
    # v = min(code // r, total - 1) < total; the chosen symbol starts at or below v, so
    # r * start <= code and the subtraction never wraps; r * freq <= r * total <= range;
    # a byte is shifted in only while code < range < 2**56, so code << 8 < 2**64.

    @_jit
    def _advance(dec, b, r, start, freq):
        """RangeDecoder.advance of stream b; False when the archive is damaged (the
        value is outside the symbol's interval)."""
        buf, off, code, rng, pos = dec
        c = code[b] - r * np.uint64(start)
        g = r * np.uint64(freq)
        if c >= g:
            return False
        p, end = pos[b], off[b + 1] - off[b]
        while g < np.uint64(1 << 56):
            byte = np.uint64(buf[off[b] + p]) if p < end else np.uint64(0)
            p += 1
            c = (c << np.uint64(8)) | byte
            g = g << np.uint64(8)
        code[b], rng[b], pos[b] = c, g, p
        return True

    @_jit
    def _event(dec, b, p):
        """One binary event with P(hit) = p / 4096 (hits take the top of the interval):
        (hit, ok)."""
        buf, off, code, rng, pos = dec
        r = rng[b] // np.uint64(_P_TOTAL)
        v = min(code[b] // r, np.uint64(_P_TOTAL - 1))
        if v >= np.uint64(_P_TOTAL - p):
            return True, _advance(dec, b, r, _P_TOTAL - p, p)
        return False, _advance(dec, b, r, 0, _P_TOTAL - p)

    @_jit
    def _table(dec, b, row, c1, c2, total):
        """The token of a table without candidates c1, c2 (-1: none) summing to `total`
        (reduced): (token, status). `row` = (LM row, its block sums, order-1 row, its
        block sums, mult1, order-2 shares by token and by block, block size). Instead of
        numpy's cumulative sum and `searchsorted` of a value shifted past the excluded
        intervals, a running sum that skips them, by blocks, then tokens: the same token
        and interval. Block sums of the counts equal their rows' sums (they change
        together)."""
        frow, fblk, nrow, nblk, mult1, add2, add2b, blk = row
        if total <= 0 or total > MAX_TOTAL:
            return -1, BAD_TOTAL
        buf, off, code, rng, pos = dec
        r = rng[b] // np.uint64(total)
        v = np.int64(min(code[b] // r, np.uint64(total - 1)))
        acc, j = 0, 0
        while j < len(fblk):  # the block that holds v, then the token in it
            lo = j * blk
            s = fblk[j] + mult1 * nblk[j] + add2b[j]
            s -= _freq(row, c1) if lo <= c1 < lo + blk else 0
            s -= _freq(row, c2) if lo <= c2 < lo + blk else 0
            if acc + s > v:
                break
            acc += s
            j += 1
        fk, t = 0, j * blk
        while t < len(frow):
            if t != c1 and t != c2:
                fk = _freq(row, t)
                if acc + fk > v:
                    break
                acc += fk
            t += 1
        if t == len(frow) or not _advance(dec, b, r, acc, fk):
            return t, BAD_CODE
        return t, OK

    @_jit
    def _freq(row, t):
        """Token t's frequency in the mixed table."""
        return row[0][t] + row[4] * row[2][t] + row[5][t]

    @_jit
    def decode_token(dec, b, row, c1, q1, f1, c2, q2, f2, total):
        """streams._decode_token: the events of candidates c1, c2 (-1: none) with
        probabilities q1, q2, then the table without them. (token, status), or on a bad
        total (that total, status)."""
        for c, q in ((c1, q1), (c2, q2)):
            if c >= 0:
                hit, ok = _event(dec, b, q)
                if not ok:
                    return 0, BAD_CODE
                if hit:
                    return c, OK
        red = total - (f1 if c1 >= 0 else 0) - (f2 if c2 >= 0 else 0)
        t, status = _table(dec, b, row, c1, c2, red)
        return (red if status == BAD_TOTAL else t), status

    @_jit
    def decode_step(n, live, f, toks, coded, ad, grp, cs, params, dec):
        """One step of streams.decode_adaptive for the live streams: toks[:, n] of the
        coded ones are decoded; all of them update the state. Returns (status, value)."""
        hist, bos, match_table, ngram_pred, ngram_run, w, hit, hits = ad
        has_counts, blk, match_bits, ngram_bits, order2_bits = params
        cn, blocks, tag, succ, cnt = cs
        m, V = len(live), f.shape[1]
        cand = np.empty((m, 7), np.int64)
        candidates(n, live, hist, bos, grp, ngram_pred, ngram_run, ngram_bits, cand)
        saved = np.empty((2 * m, 5), np.int64)
        tok, coded_live = np.empty(m, np.int64), np.empty(m, np.bool_)
        fblk = np.empty(blocks.shape[1], np.int64)  # the LM row's block sums
        add2 = np.zeros(V, np.int64)  # the order-2 successors' shares of one row
        add2b = np.zeros(blocks.shape[1], np.int64)  # and of its blocks
        for i in range(m):
            b, a = live[i], cand[i, 6] if has_counts else 0
            frow = f[b]
            for j in range(len(fblk)):
                fblk[j] = frow[j * blk:(j + 1) * blk].sum()
            total = fblk.sum()
            mult1, m1, mult2, m2, slot = 0, 0, 0, 0, -1
            if has_counts:
                mult1, m1, mult2, m2, slot = mixing(cand[i, 5], a, total, cs, V,
                                                    order2_bits)
                total += mult1 * m1 + mult2 * m2
            _order2_shares(slot, succ, cnt, mult2, blk, add2, add2b, False)
            row = (frow, fblk, cn[a], blocks[a], mult1, add2, add2b, blk)
            c1, c2 = cand[i, 0], cand[i, 2]
            f1, f2 = _freq(row, max(c1, 0)), _freq(row, max(c2, 0))
            q1, q2 = event_probs(i, m, cand, f1, f2, total, w, hit, saved)
            coded_live[i] = coded[b]
            if coded[b]:
                t, status = decode_token(dec, b, row, c1, q1, f1, c2, q2, f2, total)
                if status != OK:
                    return status, t
                toks[b, n] = t
            tok[i] = toks[b, n]
            _order2_shares(slot, succ, cnt, mult2, blk, add2, add2b, True)
        push(n, live, tok, cand, hist, grp, match_table, match_bits, ngram_pred, ngram_run)
        learn(cand, saved, tok, coded_live, w, hit, hits)
        if has_counts:
            count(cand, tok, cs, blk, V, order2_bits)
        return OK, 0

    @_jit
    def _order2_shares(slot, succ, cnt, mult2, blk, add2, add2b, clear):
        """Put mult2 * count at each successor of the order-2 slot (-1: none) into add2
        and its block into add2b (Counts.mix_table's order-2 part), or clear them again."""
        if slot < 0:
            return
        for e in range(succ.shape[1]):
            t = succ[slot, e]
            if t >= 0:
                add2[t] = 0 if clear else add2[t] + mult2 * cnt[slot, e]
                add2b[t // blk] = 0 if clear else add2b[t // blk] + mult2 * cnt[slot, e]

    # -- the encoder (streams.AdaptiveEncoder): pass 1 over all steps, then pass 2 -------

    @_jit
    def live_at(lengths, n):
        """The streams still coding at step n (np.flatnonzero(lengths > n))."""
        live = np.empty(len(lengths), np.int64)
        m = 0
        for b in range(len(lengths)):
            if lengths[b] > n:
                live[m] = b
                m += 1
        return live[:m]

    @_jit
    def encode_candidates(tok, lengths, ad, grp, bits, cand_all):
        """Pass 1 of encode_group: every step's candidates, then its push, in lockstep;
        cand_all[b, n] = the `candidates` row of stream b at step n."""
        hist, bos, match_table, ngram_pred, ngram_run = ad
        match_bits, ngram_bits = bits
        for n in range(tok.shape[1]):
            live = live_at(lengths, n)
            cand = np.empty((len(live), 7), np.int64)
            candidates(n, live, hist, bos, grp, ngram_pred, ngram_run, ngram_bits, cand)
            t = np.empty(len(live), np.int64)
            for i in range(len(live)):
                t[i] = tok[live[i], n]
                cand_all[live[i], n] = cand[i]
            push(n, live, t, cand, hist, grp, match_table, match_bits, ngram_pred, ngram_run)

    @_jit
    def mix_numbers(x, s, f, a, slot, mult1, mult2, cs, blk):
        """Counts.mix_numbers of one id x with LM (start, freq) s, f: order 1 by block
        sums and the rest of x's block (Counts._below1), order 2 from the slot (-1:
        none)."""
        cn, blocks, tag, succ, cnt = cs
        below1 = 0
        for j in range(x // blk):
            below1 += blocks[a, j]
        for v in range(x // blk * blk, x):
            below1 += cn[a, v]
        below2, c2 = 0, 0
        if slot >= 0:
            for e in range(succ.shape[1]):
                if succ[slot, e] == x:
                    c2 += cnt[slot, e]
                elif succ[slot, e] < x:
                    below2 += cnt[slot, e]
        return s + mult1 * below1 + mult2 * below2, f + mult1 * cn[a, x] + mult2 * c2

    @_jit
    def _shift_low(enc, b):
        """RangeEncoder._shift_low; `low` is 65 bits: carry[b] * 2**64 + low[b]."""
        low, carry, rng, cache, pending, out, n_out = enc
        if carry[b] == 1 or low[b] < np.uint64(0xFF << 56):
            temp = cache[b]
            while True:
                out[b, n_out[b]] = (temp + carry[b]) & 0xFF
                n_out[b] += 1
                temp = 0xFF
                pending[b] -= 1
                if pending[b] == 0:
                    break
            cache[b] = np.int64((low[b] >> np.uint64(56)) & np.uint64(0xFF))
        pending[b] += 1
        low[b], carry[b] = low[b] << np.uint64(8), 0

    @_jit
    def _encode(enc, b, start, freq, total):
        """RangeEncoder.encode; False for an impossible interval. low + range never
        grows between shifts and starts below 2**65, so low carries at most once."""
        low, carry, rng, cache, pending, out, n_out = enc
        if not (0 <= start and 0 < freq and start + freq <= total <= MAX_TOTAL):
            return False
        r = rng[b] // np.uint64(total)
        new = low[b] + r * np.uint64(start)
        if new < low[b]:
            carry[b] = 1
        low[b], rng[b] = new, r * np.uint64(freq)
        while rng[b] < np.uint64(1 << 56):
            _shift_low(enc, b)
            rng[b] = rng[b] << np.uint64(8)
        return True

    @_jit
    def encode_token(enc, b, x, c1, q1, c2, q2, s, f, total):
        """streams._encode_token of token x: (cost in bits, ok); s, f: the (start, freq)
        of x, c1 and c2 in the mixed table."""
        bits = 0.0
        for c, q in ((c1, q1), (c2, q2)):
            if c >= 0:
                if c == x:  # a hit takes the top of the interval
                    ok = _encode(enc, b, _P_TOTAL - q, q, _P_TOTAL)
                    return bits + adapt.PROB_BITS - math.log2(q), ok
                if not _encode(enc, b, 0, _P_TOTAL - q, _P_TOTAL):
                    return bits, False
                bits += adapt.PROB_BITS - math.log2(_P_TOTAL - q)
        start = s[0]
        for j, c in ((1, c1), (2, c2)):
            if c >= 0:
                total -= f[j]
                start -= f[j] if s[j] < s[0] else 0
        return bits + math.log2(total / f[0]), _encode(enc, b, start, f[0], total)

    @_jit
    def encode_steps(tok, lengths, cand_all, nums, skip, mixer, cs, params, enc, costs,
                     bits):
        """Pass 2 of encode_group (AdaptiveEncoder._code): per step, the LM numbers of
        (token, c1, c2) mixed with the counts, the events, the coding of the streams not
        in `skip`, then learning and counting. costs[b, n]: each token's bits, summed
        into bits[b] in step order (as floats are summed there); returns the step of a
        bad interval, or -1."""
        starts, freqs, totals = nums
        w, hit, hits = mixer
        has_counts, blk, order2_bits, V = params
        s, f = np.empty(3, np.int64), np.empty(3, np.int64)
        for n in range(tok.shape[1]):
            live = live_at(lengths, n)
            m = len(live)
            cand, saved = np.empty((m, 7), np.int64), np.empty((2 * m, 5), np.int64)
            t, coded = np.empty(m, np.int64), np.empty(m, np.bool_)
            for i in range(m):
                b = live[i]
                cand[i] = cand_all[b, n]
                t[i], coded[i], total = tok[b, n], not skip[b], totals[b, n]
                want = (t[i], max(cand[i, 0], 0), max(cand[i, 2], 0))
                s[:] = starts[b, n]
                f[:] = freqs[b, n]
                if has_counts:
                    a = cand[i, 6]
                    mult1, m1, mult2, m2, slot = mixing(cand[i, 5], a, total, cs, V,
                                                        order2_bits)
                    for j in range(3):
                        s[j], f[j] = mix_numbers(want[j], s[j], f[j], a, slot, mult1,
                                                 mult2, cs, blk)
                    total += mult1 * m1 + mult2 * m2
                q1, q2 = event_probs(i, m, cand, f[1], f[2], total, w, hit, saved)
                if coded[i]:
                    cost, ok = encode_token(enc, b, t[i], cand[i, 0], q1, cand[i, 2], q2,
                                            s, f, total)
                    if not ok:
                        return n
                    costs[b, n] = cost
                    bits[b] += cost
            learn(cand, saved, t, coded, w, hit, hits)
            if has_counts:
                count(cand, t, cs, blk, V, order2_bits)
        return -1
