"""Does `lmpress rank` tell generated text from human text, and training text from unseen?

    python benchmarks/rank_eval.py [--corpus data/corpus] [--out runs/rank_eval]
        [--part llm|memo|ncd|all] [--n 100] [--seed 0] [--decoding LIST]

LLM-likeness (`--part llm`): `n` human documents cut from the held-out validation files
(data/corpus/valid/, never used in training), 400-2000 bytes each at line boundaries,
spread over the genres; and, per generated set, `n` generated ones: document i is sampled
(seeded; end-of-text disabled) as a continuation of the first 16 tokens of human document
i+1, with as many tokens as human document i has, and the prompt removed. The sets differ
by generator (lmpress-small-v1 or lmpress-fast-v1) and decoding (temperature 1, top-p
0.9, temperature 0.7). All are written under OUT/llm/ (so that `lmpress rank` can be run
on them) and scored; ROC AUC of each score, with "low score = generated".

Near-duplicates (`--part ncd`): zlib NCD of distinct pieces of each validation file and
of pieces against copies with 10% of their lines replaced (the default threshold 0.3).

Memorization (`--part memo`): the training sample of lmpress-small-v1 is rebuilt exactly
as its recipe made it (train/data.py `iter_documents`, 6 MB per source, the recipe's
exclusions, seed 0) and tokenized; the trainer's chunk order (torch.randperm with seed
1234, 2400 steps x 16 chunks of 256 tokens) says which chunks the model trained on.
Chunk sets: "seen" and "unseen" = the 256 target tokens of one chunk inside one document,
from the same 11 docs/code sources; "held-out" = 256-token pieces of the validation files
of the same genres. Paragraph sets (300-1500 bytes, blank-line separated): "repeated" =
paragraphs with 5+ copies in the sample, at least one wholly in seen chunks (boilerplate);
"once, seen" / "once, unseen" = single-copy paragraphs wholly inside seen / unseen chunks;
"held-out paragraphs" = paragraphs of the validation files. Score: LM bits / zlib bits
(low = memorized); ROC AUC between the sets.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from lmpress.codec import _Engine
from lmpress.inspect.sample import SampleOptions, sample_tokens
from lmpress.inspect.scores import lm_scores, ncd, xz_size, zlib_size

GENRES = {"prose": 25, "docs": 25, "code": 25, "changelog": 15, "chinese": 10}
PROMPT_TOKENS = 16
SMALL, FAST = "lmpress-small-v1", "lmpress-fast-v1"
MEMO_SOURCES = {"docs": ("python3.11-doc", "perl-doc", "postgresql-doc-15",
                         "python-django-doc", "sqlite3-doc", "manpages", "manpages-dev"),
                "code": ("python-stdlib", "python-stdlib-minimal", "libcurl4-doc",
                         "libxml2-doc")}
CHUNK, STEPS, BATCH, TRAIN_SEED = 256, 2400, 16, 1234  # small-v1's recipe and trainer


def auc(low: list[float], high: list[float]) -> float:
    """P(a score of the `low` set < one of the `high` set), ties counting one half."""
    a, b = np.asarray(low)[:, None], np.asarray(high)[None, :]
    return float(((a < b).sum() + 0.5 * (a == b).sum()) / (a.size * b.size))


def cut_documents(data: bytes, rnd: random.Random, lo: int = 400, hi: int = 2000
                  ) -> list[bytes]:
    """Consecutive pieces of `lo`..`hi` bytes ending at line ends (a line longer than
    `hi` is cut at a UTF-8 character boundary)."""
    pieces, cur = [], b""
    target = rnd.randint(lo, hi)
    for line in data.splitlines(keepends=True):
        while len(line) > hi:
            cut = hi
            while cut and (line[cut] & 0xC0) == 0x80:
                cut -= 1
            line, extra = line[cut:], line[:cut]
            pieces.append(extra)
        if len(cur) + len(line) > hi and len(cur) >= lo:
            pieces.append(cur)
            cur, target = b"", rnd.randint(lo, hi)
        cur += line
        if len(cur) >= target:
            pieces.append(cur)
            cur, target = b"", rnd.randint(lo, hi)
    return [p for p in pieces if lo <= len(p) <= hi]


def human_documents(corpus: Path, n: int, seed: int) -> list[tuple[str, bytes]]:
    rnd = random.Random(seed)
    out = []
    for genre, share in GENRES.items():
        files = sorted((corpus / "valid" / genre).glob("*.txt"))
        pools = [cut_documents(f.read_bytes(), rnd) for f in files]
        want = round(share * n / 100)
        for k in range(want):  # round robin over the genre's files
            pool = pools[k % len(pools)]
            out.append((f"{genre}/{files[k % len(files)].stem}",
                        pool.pop(rnd.randrange(len(pool)))))
    return out[:n]


DECODING = {  # the generated sets: (generator, decoding)
    "small-v1 T=1": (SMALL, SampleOptions(stop_at_eos=False)),
    "small-v1 top-p 0.9": (SMALL, SampleOptions(top_p=0.9, stop_at_eos=False)),
    "small-v1 T=0.7": (SMALL, SampleOptions(temperature=0.7, stop_at_eos=False)),
    "fast-v1 top-p 0.9": (FAST, SampleOptions(top_p=0.9, stop_at_eos=False))}


def doc_scores(small, fast, data: list[bytes]) -> dict[str, list[float]]:
    """Every score of each document, with both role assignments of the two models."""
    a = lm_scores(small, data, (small, fast))  # observer small-v1, performer fast-v1
    b = lm_scores(small, data, (fast, small))  # observer fast-v1, performer small-v1
    n = np.array([len(d) for d in data])
    return {
        "Binoculars (observer small-v1, performer fast-v1; the default)":
            [s.binoculars for s in a],
        "Binoculars (observer fast-v1, performer small-v1)": [s.binoculars for s in b],
        "log perplexity small-v1 (nats/token)": [s.log_ppl for s in b],
        "log perplexity fast-v1 (nats/token)": [s.log_ppl for s in a],
        "bits/byte small-v1": list(np.array([s.bits for s in a]) / n),
        "LM bits / zlib bits (small-v1)": [s.bits / (8 * zlib_size(d)) for s, d in zip(a, data)],
        "LM bits / xz bits (small-v1)": [s.bits / (8 * xz_size(d)) for s, d in zip(a, data)]}


def llm_part(corpus: Path, out: Path, n: int, seed: int, decodings: list[str]) -> dict:
    small, fast = _Engine(SMALL, None, 16), _Engine(FAST, None, 16)
    engines = {SMALL: small, FAST: fast}
    human = human_documents(corpus, n, seed)
    genre_h = [name.split("/")[0] for name, _ in human]
    for k, (name, d) in enumerate(human):
        _write(out / "llm" / "human" / f"{k:03d}-{name.replace('/', '-')}.txt", d)
    t0 = time.time()
    hs = doc_scores(small, fast, [d for _, d in human])
    result = {"n_human": len(human), "bytes_human": sum(len(d) for _, d in human),
              "score_seconds_human": round(time.time() - t0, 1), "decodings": {}}
    ids = [small.tok.encode(d) for _, d in human]
    prompts = np.stack([ids[(i + 1) % len(ids)][:PROMPT_TOKENS] for i in range(len(ids))])
    genre_g = genre_h[1:] + genre_h[:1]  # the genre of each prompt's document
    for name in decodings:
        t0 = time.time()
        gen, (generator, options) = [], DECODING[name]
        for g in range(0, len(ids), 50):  # 50 streams step together
            gen += sample_tokens(engines[generator], [len(x) for x in ids[g:g + 50]],
                                 seed + g, prompts[g:g + 50], options)
        t_sample = time.time() - t0
        data = [small.tok.decode(t.tolist()) for t in gen]
        tag = name.replace(" ", "-").replace("=", "")
        for k, d in enumerate(data):
            _write(out / "llm" / f"generated-{tag}" / f"{k:03d}-after-{genre_g[k]}.txt", d)
        t0 = time.time()
        gs = doc_scores(small, fast, data)
        table = {}
        for key in hs:
            h, g = np.array(hs[key]), np.array(gs[key])
            table[key] = {
                "auc": round(auc(list(g), list(h)), 4),
                "median_generated": round(float(np.median(g)), 4),
                "median_human": round(float(np.median(h)), 4),
                "auc_by_genre": {x: round(auc(list(g[np.array(genre_g) == x]),
                                              list(h[np.array(genre_h) == x])), 3)
                                 for x in GENRES}}
        result["decodings"][name] = {
            "bytes_generated": sum(len(d) for d in data), "sample_seconds": round(t_sample, 1),
            "score_seconds": round(time.time() - t0, 1), "scores": table,
            "per_document_generated": gs}
    result["per_document_human"] = hs
    return result


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def training_sample(corpus: Path, tok, exclude, cache: Path
                    ) -> tuple[list[str], list[str], np.ndarray]:
    """(sources, texts, token offsets) of small-v1's training sample, in training order:
    train/data.py `iter_documents` with the source kept beside each text. The offsets
    (BOS + tokens per document, as train/data.py `prepare` writes them) are cached."""
    from lmpress.train.data import iter_documents

    docs = []
    for path in sorted((corpus / "train").glob("*.jsonl")):
        if path.stem in exclude:
            continue
        budget = int(6.0 * 1e6)
        with path.open(encoding="utf-8") as f:
            for line in f:
                text = json.loads(line)["text"]
                if budget <= 0:
                    break
                docs.append((path.stem, text[:budget]))
                budget -= len(text.encode())
    random.Random(0).shuffle(docs)
    for (_, text), same in zip(docs, iter_documents(corpus, 6.0, 0, exclude)):
        assert text == same, "the rebuilt sample differs from train/data.py's"
    if cache.exists() and len(np.load(cache)) == len(docs) + 1:
        starts = np.load(cache)
    else:
        counts = [1 + len(tok.encode(t.encode("utf-8"))) for _, t in docs]  # BOS + tokens
        starts = np.concatenate([[0], np.cumsum(counts)])
        np.save(cache, starts)
    return [s for s, _ in docs], [t for _, t in docs], starts


def seen_chunks(n_tokens: int) -> np.ndarray:
    """Which 256-token chunks small-v1's 2400 steps drew (trainer.py: the first STEPS x
    BATCH entries of torch.randperm(n_chunks) seeded with 1234; chunk c reads tokens
    c*256 .. c*256+255 and is trained to predict tokens c*256+1 .. c*256+256)."""
    import torch

    n_chunks = (n_tokens - 1) // CHUNK
    order = torch.randperm(n_chunks, generator=torch.Generator().manual_seed(TRAIN_SEED))
    seen = np.zeros(n_chunks, dtype=bool)
    seen[order[:STEPS * BATCH].numpy()] = True
    return seen


def chunk_excerpts(sample, seen, tok, rnd, per_source: int = 10) -> dict[str, list]:
    """The 256 target tokens of seen and of unseen chunks lying inside one document."""
    sources, texts, starts = sample
    out: dict[str, list] = {"seen": [], "unseen": []}
    for genre, names in MEMO_SOURCES.items():
        for source in names:
            cands: dict[bool, list] = {True: [], False: []}
            for i in (i for i, s in enumerate(sources) if s == source):
                first = -(-int(starts[i]) // CHUNK)
                for c in range(first, min(len(seen), (int(starts[i + 1]) - 1) // CHUNK)):
                    cands[bool(seen[c])].append((i, c))
            for flag, name in ((True, "seen"), (False, "unseen")):
                for i, c in rnd.sample(cands[flag], per_source):
                    ids = tok.encode(texts[i].encode("utf-8"))
                    a = c * CHUNK - int(starts[i])  # token c*256+1 is document token a
                    out[name].append((f"{genre}/{source}", tok.decode(ids[a:a + CHUNK].tolist())))
    return out


def heldout_pieces(corpus: Path, tok, rnd) -> list:
    """256-token pieces of the validation files of the same genres."""
    out = []
    for genre in MEMO_SOURCES:
        for f in sorted((corpus / "valid" / genre).glob("*.txt")):
            ids = tok.encode(f.read_bytes())
            pieces = [ids[a:a + CHUNK] for a in range(0, len(ids) - CHUNK, CHUNK)]
            for p in rnd.sample(pieces, 35 if genre == "docs" else 20):
                out.append((f"{genre}/{f.stem}", tok.decode(p.tolist())))
    return out


def paragraph_sets(sample, seen, tok, rnd, min_copies: int = 5, max_repeated: int = 30,
                   n_once: int = 100) -> tuple[dict[str, list], list]:
    """Paragraphs (blank-line separated, 300-1500 bytes) of the training sample:
    "repeated" = at least `min_copies` copies, one or more wholly in seen chunks (most
    copies first); "once, seen" / "once, unseen" = a single copy whose tokens all lie in
    seen / in unseen chunks (documents under 300k characters, for speed)."""
    sources, texts, starts = sample

    def placed(i: int, pos: int, para: str) -> np.ndarray:  # the chunks training its tokens
        a = len(tok.encode(texts[i][:pos].encode("utf-8")))
        g = int(starts[i]) + 1 + a  # global position of the paragraph's first token
        n = len(tok.encode(para.encode("utf-8")))
        chunks = np.arange((g - 1) // CHUNK, (g + n - 2) // CHUNK + 1)
        return chunks[chunks < len(seen)]

    where: dict[str, list] = {}
    for i, text in enumerate(texts):
        pos = 0
        for para in text.split("\n\n"):
            if 300 <= len(para.encode("utf-8")) <= 1500:
                where.setdefault(para, []).append((i, pos))
            pos += len(para) + 2
    sets: dict[str, list] = {"repeated": [], "once, seen": [], "once, unseen": []}
    notes = []
    for para, occ in sorted(where.items(), key=lambda kv: -len(kv[1])):
        if len(occ) < min_copies or len(sets["repeated"]) == max_repeated:
            break
        n_seen = sum(bool(seen[placed(i, pos, para)].all()) for i, pos in occ)
        if n_seen:
            sets["repeated"].append((sources[occ[0][0]], para.encode("utf-8")))
            notes.append({"source": sources[occ[0][0]], "copies": len(occ),
                          "copies_seen": n_seen, "bytes": len(para.encode("utf-8"))})
    singles = sorted(p for p, occ in where.items()
                     if len(occ) == 1 and len(texts[occ[0][0]]) < 300_000)
    rnd.shuffle(singles)
    for para in singles:
        i, pos = where[para][0]
        hit = seen[placed(i, pos, para)]
        name = "once, seen" if hit.all() else "once, unseen" if not hit.any() else None
        if name and len(sets[name]) < n_once:
            sets[name].append((sources[i], para.encode("utf-8")))
        if min(len(sets["once, seen"]), len(sets["once, unseen"])) == n_once:
            break
    return sets, notes


def heldout_paragraphs(corpus: Path, rnd, n: int = 150) -> list:
    """Paragraphs of 300-1500 bytes from every validation file (all genres)."""
    paras = []
    for f in sorted((corpus / "valid").glob("*/*.txt")):
        paras += [(f"{f.parent.name}/{f.stem}", p) for p in f.read_bytes().split(b"\n\n")
                  if 300 <= len(p) <= 1500]
    return rnd.sample(paras, n)


def memo_part(corpus: Path, out: Path, seed: int) -> dict:
    from lmpress.train.recipe import RECIPES

    model = _Engine(SMALL, None, 16)
    t0 = time.time()
    sample = training_sample(corpus, model.tok, RECIPES["small-v1"]["exclude"],
                             out / "memo-token-offsets.npy")
    n_tokens = int(sample[2][-1])
    seen = seen_chunks(n_tokens)
    rnd = random.Random(seed)
    sets = chunk_excerpts(sample, seen, model.tok, rnd)
    sets["held-out"] = heldout_pieces(corpus, model.tok, rnd)
    paragraphs, repeated_notes = paragraph_sets(sample, seen, model.tok, rnd)
    sets.update(paragraphs)
    sets["held-out paragraphs"] = heldout_paragraphs(corpus, rnd)
    result = {"train_tokens": n_tokens, "chunks": len(seen), "chunks_seen": int(seen.sum()),
              "rebuild_seconds": round(time.time() - t0, 1), "repeated": repeated_notes,
              "sets": {}}
    ratios = {}
    for name, items in sets.items():
        data = [d for _, d in items]
        s = lm_scores(model, data)
        r = np.array([x.bits / (8 * zlib_size(d)) for x, d in zip(s, data)])
        rx = np.array([x.bits / (8 * xz_size(d)) for x, d in zip(s, data)])
        bpb = np.array([x.bits / len(d) for x, d in zip(s, data)])
        ratios[name] = r
        result["sets"][name] = {
            "n": len(items), "mean_bytes": round(float(np.mean([len(d) for d in data])), 1),
            "lm_zlib_quartiles": np.percentile(r, [25, 50, 75]).round(4).tolist(),
            "lm_xz_median": round(float(np.median(rx)), 4),
            "bpb_median": round(float(np.median(bpb)), 4), "lm_zlib": r.round(4).tolist()}
        for k, (label, d) in enumerate(items):
            folder = name.replace(", ", "-").replace(" ", "-")
            _write(out / "memo" / folder / f"{k:03d}-{label.replace('/', '-')}.txt", d)
    result["auc"] = {f"{a} vs {b}": round(auc(list(ratios[a]), list(ratios[b])), 4)
                     for a, b in (("seen", "unseen"), ("seen", "held-out"),
                                  ("unseen", "held-out"), ("once, seen", "once, unseen"),
                                  ("once, seen", "held-out paragraphs"),
                                  ("once, unseen", "held-out paragraphs"),
                                  ("repeated", "held-out paragraphs"),
                                  ("repeated", "once, unseen"), ("repeated", "once, seen"))}
    held = np.sort(ratios["held-out paragraphs"])
    result["repeated_below_every_heldout"] = int((ratios["repeated"] < held[0]).sum())
    result["repeated_percentile_in_heldout"] = [
        round(100 * float(np.searchsorted(held, v) / len(held)), 1) for v in ratios["repeated"]]
    return result


def llm_table(res: dict) -> str:
    """Markdown: ROC AUC of each score (rows) for each generated set (columns)."""
    names = list(res["decodings"])
    lines = ["| score (low = generated) | " + " | ".join(f"AUC, {n}" for n in names) + " |",
             "|---|" + "---:|" * len(names)]
    for key in res["per_document_human"]:
        cells = [res["decodings"][n]["scores"][key] for n in names]
        lines.append(f"| {key} | " + " | ".join(
            f"{c['auc']:.3f} ({c['median_generated']:.3f} vs {c['median_human']:.3f})"
            for c in cells) + " |")
    return "\n".join(lines)


def ncd_part(corpus: Path, seed: int) -> dict:
    """zlib NCD between distinct pieces of one validation file (25 per file), and between
    a piece and a near-duplicate of it with 10% of its lines replaced (10 per file)."""
    rnd = random.Random(seed)
    distinct, near = [], []
    for f in sorted((corpus / "valid").glob("*/*.txt")):
        pieces = cut_documents(f.read_bytes()[:200_000], rnd)[:25]
        distinct += [ncd(a, b) for i, a in enumerate(pieces) for b in pieces[i + 1:]]
        for p in pieces[:10]:
            lines = p.splitlines(keepends=True)
            for _ in range(max(1, len(lines) // 10)):
                lines[rnd.randrange(len(lines))] = b"a changed line\n"
            near.append(ncd(p, b"".join(lines)))
    q = [0, 1, 5, 50]
    return {"distinct_pairs": len(distinct), "near_pairs": len(near),
            "distinct_percentiles_0_1_5_50": np.percentile(distinct, q).round(3).tolist(),
            "near_percentiles_50_95_99_100": np.percentile(near, [50, 95, 99, 100]
                                                           ).round(3).tolist(),
            "share_distinct_at_most_0.3": float(np.mean(np.array(distinct) <= 0.3)),
            "share_near_at_most_0.3": float(np.mean(np.array(near) <= 0.3))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--out", type=Path, default=Path("runs/rank_eval"))
    p.add_argument("--part", choices=("llm", "memo", "ncd", "all"), default="all")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--decoding", default=",".join(DECODING), metavar="LIST",
                   help=f"generated sets to make, of {', '.join(DECODING)}")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    if args.part in ("llm", "all"):
        results["llm"] = llm_part(args.corpus, args.out, args.n, args.seed,
                                  args.decoding.split(","))
        print(llm_table(results["llm"]), flush=True)
    if args.part in ("memo", "all"):
        results["memo"] = memo_part(args.corpus, args.out, args.seed)
        print(json.dumps({k: v for k, v in results["memo"].items() if k != "sets"},
                         indent=1), flush=True)
        print(json.dumps({k: {x: y for x, y in v.items() if x != "lm_zlib"}
                          for k, v in results["memo"]["sets"].items()}, indent=1), flush=True)
    if args.part in ("ncd", "all"):
        results["ncd"] = ncd_part(args.corpus, args.seed)
        print(json.dumps(results["ncd"], indent=1), flush=True)
    (args.out / f"results-{args.part}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
