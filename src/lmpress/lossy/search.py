"""The reconstruction search: run the decoder's model over its own reconstruction and,
unit by unit, keep the original or pick a cheaper variant the level allows.

The text (already layout-normalised outside protected spans, `units.prepare`) is cut
into segments at unit boundaries, about the size the Compressor will use, and B segments
step through the integer LM together exactly as the decoder steps them (`decode_plain`):
one (B, 1) table per step. At the start of each unit the stream's table proposes

- its case variants (lower / Capitalised / UPPER) when the level frees case (free under
  the level's normalisation; they may not need more tokens),
- for a word, the model's N_CANDIDATES likeliest word tokens of the same shape (leading
  space or not): substitutions,
- leaving the word out before a space, comma or full stop,

each only if its first-token estimate reaches PREFILTER of the saving it needs. The
proposals and the original are then priced over the same window (`lookahead.price`: the
option's tokens plus the next LOOKAHEAD_TOKENS original tokens, from a copy of the
stream's state), so a change that makes the following words more surprising pays for
it. A case variant is taken when it saves CASE_MARGIN_BITS over the window; an edit
when it saves at least max(min_gain_bits, bits_per_char x edit), is not a word fragment
(the model would continue it with letters with probability > CONTINUE_MAX), and the
stream's running edit allowance has room. The best score wins; the chosen unit's tokens
are fed one per step, and the next original unit follows, so original and
reconstruction stay aligned unit by unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..streams import lm_numbers
from .levels import Level
from .lookahead import Row, price
from .units import Unit, to_bytes

CASE_MARGIN_BITS = 1.0  # a case variant must be this much cheaper than the original
LOOKAHEAD_TOKENS = 8  # options are priced over their own tokens and this many more
N_CANDIDATES = 3  # the model's likeliest words tried as substitutes
PREFILTER = 0.3  # share of the needed saving a first-token estimate must reach to be priced
CONTINUE_MAX = 0.5  # a substitute the model would likely continue is a fragment: skipped
SAFETY = 0.98  # share of the budget the search may spend (the bound is checked after)


@dataclass
class Choice:
    """What the search did with one unit."""

    original: str
    chosen: str
    kind: str  # "keep", "case", "sub" (substituted) or "drop" (left out)
    edit: int  # characters edited under the level's normalisation (0 for case)
    saved_bits: float  # bits saved over the lookahead window (model's estimate)


@dataclass
class Option:
    """One way to write a unit: its text, the edit it costs and its tokens."""

    text: str
    kind: str  # as Choice.kind
    edit: int
    tokens: list[int]
    row: Row | None = None  # its pricing over the window
    gain: float = 0.0  # window bits saved against keeping the unit


class WordTokens:
    """Masks of the vocabulary: tokens that are a whole letters-only unit, with and
    without a leading space (the shapes a substituted word may take)."""

    def __init__(self, tok):
        self.texts = [b.decode("utf-8", "replace") for b in tok.token_bytes]
        spaced = np.array([len(t) > 2 and t[0] == " " and t[1:].isalpha() for t in self.texts])
        bare = np.array([len(t) > 1 and t.isalpha() for t in self.texts])
        self.spaced, self.bare = spaced, bare
        self.continues = np.array([len(t) > 0 and t[0].isalpha() for t in self.texts])


def _levenshtein(a: str, b: str) -> int:
    from .distortion import levenshtein

    return levenshtein(a, b)


def _case_variants(word: str) -> list[str]:
    lead, body = (" ", word[1:]) if word.startswith(" ") else ("", word)
    out = []
    for v in (body.lower(), body[:1].upper() + body[1:].lower(), body.upper()):
        if v != body and lead + v not in out:
            out.append(lead + v)
    return out


class Search:
    """One search over the segments of a text for one level."""

    def __init__(self, engine, level: Level, allowance_per_char: float):
        self.e, self.level = engine, level
        self.rate = allowance_per_char * SAFETY  # edit characters earned per character
        self.words = WordTokens(engine.tok)

    def run(self, segments: list[list[Unit]]) -> list[list[Choice]]:
        out: list[list[Choice]] = [[] for _ in segments]
        B = self.e.batch_size
        for g in range(0, len(segments), B):
            group = list(range(g, min(len(segments), g + B)))
            for i, choices in zip(group, self._group([segments[i] for i in group])):
                out[i] = choices
        return out

    def _prices(self, segs: list[list[Unit]]):
        """Token ids per unit, and from one parallel pass over the original segments
        each unit's first-token bits and the bits of its later tokens (in O's context)."""
        ids = [[self.e.tok.encode(to_bytes(u.text)) for u in seg] for seg in segs]
        streams = [np.concatenate(x) if x else np.zeros(0, np.int64) for x in ids]
        first, rest = [], []
        if self.level.edit_budget > 0 and any(len(s) for s in streams):
            _, fr, tot = lm_numbers(self.e, [s if len(s) else np.zeros(1, np.int64)
                                             for s in streams], None, None)
            for b, x in enumerate(ids):
                bits = np.log2(tot[b] / fr[b, :, 0])
                ends = np.cumsum([len(t) for t in x]).astype(int)
                starts = ends - [len(t) for t in x]
                first.append(bits[starts].tolist() if len(x) else [])
                c = np.concatenate([[0.0], np.cumsum(bits)])
                rest.append((c[ends] - c[starts + 1]).tolist() if len(x) else [])
        else:
            first = rest = [[0.0] * len(x) for x in ids]
        return ids, first, rest

    def _group(self, segs: list[list[Unit]]) -> list[list[Choice]]:
        e, B = self.e, len(segs)
        ids, first, rest = self._prices(segs)
        st = e.lm.new_state(B)
        cur = np.full((B, 1), e.cfg.bos_id, dtype=np.int64)
        queue: list[list[int]] = [[] for _ in range(B)]
        nxt = [0] * B  # next unit index
        seen = [0] * B  # characters of the segment passed so far
        spent = [0] * B  # edit characters spent
        choices: list[list[Choice]] = [[] for _ in range(B)]
        while any(queue[b] or nxt[b] < len(segs[b]) for b in range(B)):
            if st.pos >= e.cfg.max_positions:  # cannot happen: segments are cut to fit
                break
            f = e.tables(st, cur)[:, 0]  # (B, V)
            cur = np.zeros((B, 1), dtype=np.int64)  # 0 once a stream has ended
            while True:  # rounds: a unit left out needs the next one chosen at this step
                todo = [b for b in range(B) if not queue[b] and nxt[b] < len(segs[b])]
                if not todo:
                    break
                options = {}
                for b in todo:
                    k = nxt[b]
                    room = self.rate * (seen[b] + len(segs[b][k].text)) - spent[b]
                    options[b] = self._options(segs[b], ids[b], first[b], rest[b], k, f[b],
                                               room)
                self._price(st, f, ids, nxt, options)
                for b in todo:
                    k = nxt[b]
                    nxt[b] += 1
                    c, queue[b] = self._decide(options[b])
                    seen[b] += len(segs[b][k].text)
                    spent[b] += c.edit
                    choices[b].append(c)
            for b in range(B):
                if queue[b]:
                    cur[b, 0] = queue[b].pop(0)
        for b in range(B):  # a stream cut short keeps the rest unchanged
            choices[b] += [Choice(u.text, u.text, "keep", 0, 0.0) for u in segs[b][nxt[b]:]]
        return choices

    def _options(self, seg: list[Unit], ids: list[np.ndarray], first: list[float],
                 rest: list[float], k: int, f: np.ndarray, room: float) -> list[Option]:
        """Unit k's options worth pricing over the window, keep first: the cheapest case
        variant, the model's likeliest words of the same shape, and leaving the word out,
        each kept only if its first-token estimate reaches PREFILTER of what it needs."""
        unit = seg[k]
        keep = Option(unit.text, "keep", 0, ids[k].tolist())
        if unit.protected or not unit.word:
            return [keep]
        tok, lv = self.e.tok, self.level
        total = float(np.log2(f.sum()))
        cost = total - float(np.log2(f[ids[k][0]])) + rest[k]  # bits to keep the unit

        def est(t: int) -> float:
            return cost - (total - float(np.log2(f[t])))

        out = [keep]
        if lv.case:
            case = []
            for v in _case_variants(unit.text):
                vid = tok.encode(to_bytes(v))
                gain = est(vid[0]) - rest[k]
                if len(vid) <= len(ids[k]) and gain >= PREFILTER * CASE_MARGIN_BITS:
                    case.append((gain, Option(v, "case", 0, vid.tolist())))
            out += [max(case, key=lambda x: x[0])[1]] if case else []
        if lv.edit_budget <= 0:
            return out
        mask = self.words.spaced if unit.text.startswith(" ") else self.words.bare
        g = np.where(mask, f, 0)
        for cand in np.argsort(g)[::-1][:N_CANDIDATES].tolist():
            text = self.words.texts[cand]
            if not mask[cand] or text.casefold() == unit.text.casefold():
                continue
            edit = _levenshtein(unit.text.casefold(), text.casefold())
            if edit <= room and est(cand) >= PREFILTER * max(lv.min_gain_bits,
                                                             lv.bits_per_char * edit):
                out.append(Option(text, "sub", edit, [cand]))
        if k + 1 < len(seg) and unit.text.startswith(" ") and seg[k + 1].text[:1] in " ,.":
            after = total - float(np.log2(f[ids[k + 1][0]]))  # next unit's first token
            edit = len(unit.text.casefold())
            if edit <= room and cost + first[k + 1] - after >= PREFILTER * max(
                    lv.min_gain_bits, lv.bits_per_char * edit):
                out.append(Option("", "drop", edit, []))
        return out

    def _price(self, st, f: np.ndarray, ids, nxt: list[int],
               options: dict[int, list[Option]]) -> None:
        """Price every option of the streams that have a choice over the same window:
        the option's tokens, then the next LOOKAHEAD_TOKENS tokens of the original."""
        rows = []
        for b, opts in options.items():
            if len(opts) < 2:
                continue
            k = nxt[b]
            ahead = [t for x in ids[b][k + 1:k + 1 + LOOKAHEAD_TOKENS] for t in x.tolist()]
            for o in opts:
                o.row = Row(b, o.tokens + ahead[:LOOKAHEAD_TOKENS], len(o.tokens))
                rows.append(o.row)
        if rows:
            price(self.e, st, f, [r for r in rows if r.tokens], self.words.continues)

    def _decide(self, options: list[Option]) -> tuple[Choice, list[int]]:
        """The option with the best score over the window (keep when none qualifies),
        and the tokens to feed for it."""
        keep = options[0]
        best, best_score = keep, 0.0
        lv = self.level
        for o in options[1:]:
            if not o.row.tokens:  # nothing to price it by (cannot happen: see _options)
                continue
            gain = keep.row.bits - o.row.bits
            if o.kind == "case":
                ok, score = gain >= CASE_MARGIN_BITS, gain
            else:
                score = gain - lv.bits_per_char * o.edit
                ok = gain >= lv.min_gain_bits and (o.kind != "sub" or
                                                   o.row.p_continue <= CONTINUE_MAX)
            if ok and score >= best_score:
                best, best_score, o.gain = o, score, gain
        return Choice(keep.text, best.text, best.kind, best.edit, best.gain), best.tokens
