"""Float engines (`-m hf:DIR`, `-m gguf:FILE`): tiny Llama, Qwen2 and SmolLM-shaped models
built from configs with random weights and a tokenizer trained here (no download), saved
to a temporary directory and used through the CLI and the API: round trips, the engine
fingerprint, --force, --verify, the encoder stepping exactly like the decoder, fallback
for text the tokenizer cannot spell, and the one-line errors."""

import io
import json
import shutil
import sys

import numpy as np
import pytest
from conftest import CODE, PROSE
from hf_tiny import save_hf_tokenizer

from lmpress import cli, codec
from lmpress.codec import Compressor, Decompressor, VerifyError
from lmpress.container import VERSION_FLOAT, Header, seal
from lmpress.errors import FormatError, LmpressError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lmpress.float_engine import FingerprintError, load_float_model  # noqa: E402
from lmpress.float_engine.engine import FloatEngine  # noqa: E402
from lmpress.float_engine.tables import FREQ_TOTAL, freq_table  # noqa: E402

DATA = ("Ünïcode: naïve café.\n" + PROSE + CODE).encode() + b"\xff\xfe not UTF-8\x00\n"
SHORT = DATA[:400] + DATA[-40:]
SHAPES = ("llama", "qwen2", "smollm")


def _config(shape, vocab):
    common = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=256)
    if shape == "qwen2":
        return transformers.Qwen2Config(**common)
    # SmolLM: a Llama with tied input/output embeddings
    return transformers.LlamaConfig(**common, tie_word_embeddings=shape == "smollm")


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    """shape -> directory of a saved random model with its tokenizer."""
    out = {}
    for seed, shape in enumerate(SHAPES):
        path = tmp_path_factory.mktemp(shape)
        vocab = save_hf_tokenizer(path)
        torch.manual_seed(seed)
        transformers.AutoModelForCausalLM.from_config(_config(shape, vocab)).save_pretrained(
            path)
        out[shape] = str(path)
    return out


@pytest.fixture(scope="module")
def llama(hf_dirs):
    return load_float_model(f"hf:{hf_dirs['llama']}")


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    """run(*argv) -> (status, stderr text), in tmp_path."""
    monkeypatch.chdir(tmp_path)

    def invoke(*argv):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO()))
        rc = cli.main(list(argv))
        return rc, capsys.readouterr().err

    return invoke


def _one_line(err, *fragments):
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err


@pytest.mark.parametrize("shape", SHAPES)
def test_cli_round_trip(run, tmp_path, hf_dirs, shape):
    """compress, list and decompress a file through `-m hf:DIR`; the model config the
    test asked for is what transformers loaded (tied embeddings for SmolLM)."""
    (tmp_path / "a.txt").write_bytes(DATA)
    assert run("-m", f"hf:{hf_dirs[shape]}", "--verify", "a.txt")[0] == 0
    (tmp_path / "a.txt").rename(tmp_path / "orig.txt")
    assert run("-d", "-m", f"hf:{hf_dirs[shape]}", "a.txt.lmp")[0] == 0
    assert (tmp_path / "a.txt").read_bytes() == DATA
    cfg = json.loads((tmp_path / hf_dirs[shape] / "config.json").read_text())
    assert cfg["model_type"] == ("qwen2" if shape == "qwen2" else "llama")
    assert cfg["tie_word_embeddings"] == (shape == "smollm")


def test_archive_records_the_engine(llama, hf_dirs):
    archive = Compressor(llama).compress(DATA)
    header, _ = Header.unpack(archive)
    fp = json.loads(header.fingerprint)
    assert header.version == VERSION_FLOAT and header.engine == 1
    assert header.model_name == f"hf:{llama.fingerprint['model']}"
    assert fp["engine"] == "hf" and fp["dtype"] == "float32" and fp["device"] == "cpu"
    assert fp["libs"]["torch"] == torch.__version__
    assert fp["libs"]["transformers"] == transformers.__version__
    assert header.weights_digest == bytes.fromhex(fp["digest"])[:16]
    # the digest covers the weights: another model's differs
    other = load_float_model(f"hf:{hf_dirs['qwen2']}")
    assert other.fingerprint["digest"] != fp["digest"]


@pytest.mark.parametrize("adapt", [True, False])
def test_encoder_steps_exactly_like_the_decoder(llama, monkeypatch, adapt):
    """Every (B, 1) input the model reads, in order, is the same in both directions,
    including the padding of ended streams and the batches after fallback (plain mode
    codes the kept streams again in the decoder's batches)."""
    calls = []
    real = FloatEngine.tables

    def logged(self, st, tokens):
        calls.append(np.array(tokens))
        return real(self, st, tokens)

    monkeypatch.setattr(FloatEngine, "tables", logged)
    # raw storage wins on random bytes, tokenized when the zlib pre-check is lifted (LZMA
    # no longer wins on a repeated line: adaptation 2's successor counts learn it)
    monkeypatch.setattr(codec, "_INCOMPRESSIBLE", 2.0)
    data = DATA[:700] + np.random.default_rng(4).bytes(600)
    comp = Compressor(llama, adapt=adapt, segment_bytes=300, batch_size=3)
    archive = comp.compress(data)
    assert {"lm", "raw"} <= set(comp.stats.kinds)
    encoded, calls[:] = list(calls), []
    assert Decompressor(llama, batch_size=5).decompress(archive) == data
    if adapt:  # plain: a first pass over every stream, then the kept ones again
        assert len(encoded) == len(calls)
    encoded = encoded[len(encoded) - len(calls):]
    assert len(calls) > 0
    assert all(a.shape == b.shape and (a == b).all() for a, b in zip(encoded, calls))


def test_decoding_needs_the_model(run, tmp_path, hf_dirs, tiny_model_path):
    (tmp_path / "a.txt").write_bytes(DATA)
    assert run("-m", f"hf:{hf_dirs['llama']}", "a.txt")[0] == 0
    rc, err = run("-d", "-c", "a.txt.lmp")
    _one_line(err, "hf:llama", "decode it with -m hf:DIR", "torch " + torch.__version__)
    assert rc == 1
    rc, err = run("-t", "-m", tiny_model_path, "a.txt.lmp")  # an integer model
    assert rc == 1 and "engine fingerprint" not in err
    # an integer archive given to an hf model
    (tmp_path / "b.txt").write_bytes(DATA)
    assert run("-m", tiny_model_path, "b.txt")[0] == 0
    rc, err = run("-t", "-m", f"hf:{hf_dirs['llama']}", "b.txt.lmp")
    _one_line(err, "built-in model 'tiny-test'")
    assert rc == 1


def _with_fingerprint(archive: bytes, change) -> bytes:
    header, off = Header.unpack(archive)
    fp = json.loads(header.fingerprint)
    change(fp)
    raw = json.dumps(fp, sort_keys=True, separators=(",", ":")).encode()
    new = Header(**{**header.__dict__, "fingerprint": raw})
    return seal(new.pack() + archive[off:-4])


def test_changed_fingerprint_is_refused_unless_forced(run, tmp_path, llama, hf_dirs):
    archive = Compressor(llama).compress(DATA)
    (tmp_path / "x.lmp").write_bytes(_with_fingerprint(
        archive, lambda fp: fp["libs"].update(torch="1.0.0")))
    rc, err = run("-d", "-m", f"hf:{hf_dirs['llama']}", "x.lmp")
    _one_line(err, "x.lmp: engine fingerprint differs: libs torch 1.0.0 in the archive, "
              f"{torch.__version__} here", "pass --force")
    assert rc == 1 and not (tmp_path / "x").exists()
    assert run("-d", "-f", "-m", f"hf:{hf_dirs['llama']}", "x.lmp")[0] == 0
    assert (tmp_path / "x").read_bytes() == DATA
    with pytest.raises(FingerprintError, match="device gpu:X in the archive, cpu here"):
        Decompressor(llama).decompress(_with_fingerprint(
            archive, lambda fp: fp.update(device="gpu:X")))


def test_forced_checksum_failure_writes_nothing(run, tmp_path, llama, hf_dirs):
    """--force skips the fingerprint check, never the checksum: a model with other
    weights (and a forged fingerprint) decodes noise, which is reported, not written."""
    other = load_float_model(f"hf:{hf_dirs['smollm']}")
    archive = Compressor(other).compress(DATA)
    forged = _with_fingerprint(archive, lambda fp: fp.update(llama.fingerprint))
    (tmp_path / "y.lmp").write_bytes(forged)
    rc, err = run("-d", "-f", "-m", f"hf:{hf_dirs['llama']}", "y.lmp")
    _one_line(err, "y.lmp: decoded data fails", "made by a different model")
    assert rc == 1 and not (tmp_path / "y").exists()


def test_verify_catches_an_injected_mismatch(run, tmp_path, llama, hf_dirs, monkeypatch):
    """One table on the decoding side puts all its mass on the least likely token. The
    encoder makes the same number of calls every time, so call n_encode + 7 is inside
    the decode that --verify runs. Without the check the broken archive comes back as if
    all were well; with it compression fails and the CLI writes nothing."""
    real = FloatEngine.tables
    at = {"n": 0, "break": 0}

    def perturbed(self, st, tokens):
        f = real(self, st, tokens)
        at["n"] += 1
        if at["n"] == at["break"]:
            worst = np.argmin(f, -1)[..., None]
            f = np.ones_like(f)
            np.put_along_axis(f, worst, FREQ_TOTAL - f.shape[-1] + 1, -1)
        return f

    monkeypatch.setattr(FloatEngine, "tables", perturbed)
    archive = Compressor(llama).compress(SHORT)
    n_encode = at["n"]
    at.update(n=0, **{"break": 7})
    with pytest.raises(FormatError):
        Decompressor(llama).decompress(archive)  # such a table breaks decoding
    at.update(n=0, **{"break": n_encode + 7})
    assert Compressor(llama).compress(SHORT) == archive  # unnoticed without --verify
    at.update(n=0, **{"break": n_encode + 7})
    with pytest.raises(VerifyError, match="round trip failed"):
        Compressor(llama, verify=True).compress(SHORT)
    at.update(n=0, **{"break": n_encode + 7})
    (tmp_path / "a.txt").write_bytes(SHORT)
    rc, err = run("--verify", "-m", f"hf:{hf_dirs['llama']}", "a.txt")
    _one_line(err, "a.txt: round trip failed")
    assert rc == 1 and not (tmp_path / "a.txt.lmp").exists()


def test_verify_with_the_integer_engine(run, tmp_path, tiny_model_path):
    (tmp_path / "a.txt").write_bytes(DATA)
    assert run("--verify", "-m", tiny_model_path, "a.txt")[0] == 0
    (tmp_path / "a.txt").unlink()
    assert run("-d", "-m", tiny_model_path, "a.txt.lmp")[0] == 0
    assert (tmp_path / "a.txt").read_bytes() == DATA


def test_segments_the_tokenizer_cannot_spell_are_stored(tmp_path, hf_dirs):
    """A tokenizer that lowercases cannot give the bytes back: those segments are stored
    raw (LZMA with fallback on), the others are coded, and the round trip is exact."""
    from tokenizers import normalizers

    path = tmp_path / "lower"
    shutil.copytree(hf_dirs["llama"], path)
    save_hf_tokenizer(path, normalizers.Lowercase())
    model = load_float_model(f"hf:{path}")
    assert model.tok.encode(b"Capital letters") is None
    assert model.tok.decode(model.tok.encode(b"lower case only")) == b"lower case only"
    data = b"only lower case words in this line, again and again.\\n" * 6 + DATA
    comp = Compressor(model, segment_bytes=300, fallback=False)
    archive = comp.compress(data)
    assert comp.stats.kinds["lm"] >= 1 and comp.stats.kinds["raw"] >= 1
    assert Decompressor(model).decompress(archive) == data
    from lmpress.inspect.records import inspect_bytes

    ins = inspect_bytes(data, model=model)  # shows the unspellable segments by lines
    assert b"".join(r.raw for r in ins.records) == data
    assert ins.archive_bytes == len(Compressor(model).compress(data))


def test_freq_table():
    rng = np.random.default_rng(1)
    logits = (rng.normal(size=(3, 2, 1000)) * 8).astype(np.float32)
    f = freq_table(logits)
    assert f.dtype == np.int64 and f.shape == logits.shape
    assert (f >= 1).all() and (f.sum(-1) == FREQ_TOTAL).all()
    assert (np.argmax(f, -1) == np.argmax(logits, -1)).all()
    assert (freq_table(logits[1:2]) == f[1:2]).all()  # row by row, whatever the batch
    p = np.exp(logits.astype(np.float64) - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    assert np.abs(f / FREQ_TOTAL - p).max() <= 1001 / FREQ_TOTAL  # floors, rest to the top
    with pytest.raises(LmpressError, match="NaN"):
        freq_table(np.array([[0.0, np.nan]]))


def test_inspect_through_the_compressor(hf_dirs, llama):
    from lmpress.inspect.records import inspect_bytes

    ins = inspect_bytes(DATA, model=llama)
    assert ins.model == f"hf:{llama.fingerprint['model']}"
    assert sum(r.n_bytes for r in ins.records) == len(DATA)
    assert ins.total_bits() == pytest.approx(8 * ins.archive_bytes)
    assert ins.archive == Compressor(llama).compress(DATA)


def test_bad_models_and_missing_extras(run, tmp_path, hf_dirs, monkeypatch):
    (tmp_path / "a.txt").write_bytes(DATA)
    rc, err = run("-m", f"hf:{tmp_path / 'nowhere'}", "a.txt")
    _one_line(err, "no config.json there")
    not_lm = tmp_path / "vit"
    shutil.copytree(hf_dirs["llama"], not_lm)
    transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64).save_pretrained(not_lm)
    rc, err = run("-m", f"hf:{not_lm}", "a.txt")
    _one_line(err, "is not a causal language model")
    assert rc == 1 and not (tmp_path / "a.txt.lmp").exists()
    rc, err = run("--backend", "numpy", "-m", f"hf:{hf_dirs['llama']}", "a.txt")
    _one_line(err, "use torch-cpu or torch-cuda")
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    rc, err = run("-m", f"hf:{hf_dirs['llama']}", "a.txt")
    _one_line(err, "needs transformers and torch; install them with: "
                   "pip install 'lmpress[hf]'")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    rc, err = run("-m", f"gguf:{tmp_path / 'm.gguf'}", "a.txt")
    _one_line(err, "needs llama-cpp-python; install it with: pip install 'lmpress[gguf]'")
    assert rc == 1 and not (tmp_path / "a.txt.lmp").exists()


def test_gguf_round_trip(run, tmp_path, hf_dirs):
    """A tiny Llama written as GGUF by the `gguf` package (tests/gguf_tiny.py) round-trips
    through llama-cpp-python. Skipped where llama-cpp-python is absent (CI: it compiles
    llama.cpp for about 17 minutes); run by hand, see docs/FLOAT_ENGINES.md."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gguf")
    from gguf_tiny import hf_to_gguf

    hf_to_gguf(hf_dirs["llama"], str(tmp_path / "tiny.gguf"))
    spec = f"gguf:{tmp_path / 'tiny.gguf'}"
    model = load_float_model(spec)
    assert model.max_positions == 256  # the file's context_length
    for adapt in (True, False):  # fallback off: LZMA would beat the random model here
        comp = Compressor(model, adapt=adapt, verify=True, segment_bytes=600, fallback=False)
        archive = comp.compress(DATA)
        assert comp.stats.kinds["lm"] >= 2
        header, _ = Header.unpack(archive)
        assert header.engine == 2 and header.group == 1
        assert Decompressor(spec).decompress(archive) == DATA
    (tmp_path / "bad.gguf").write_bytes(b"GGUF" + bytes(60))
    (tmp_path / "a.txt").write_bytes(DATA)
    rc, err = run("-m", f"gguf:{tmp_path / 'bad.gguf'}", "a.txt")
    _one_line(err, "llama.cpp cannot load it")
    assert rc == 1 and not (tmp_path / "a.txt.lmp").exists()


def test_bench_codes_with_an_hf_model(tmp_path, hf_dirs):
    """`lmpress bench -m hf:DIR`: a coded row (round trip checked by the bench) beside
    gzip, its archive bits next to the model's own estimate."""
    from lmpress.bench.command import main as bench_main

    (tmp_path / "a.txt").write_bytes(DATA[:800])
    out, err = io.StringIO(), io.StringIO()
    rc = bench_main([str(tmp_path / "a.txt"), "-m", f"hf:{hf_dirs['qwen2']}", "--codecs",
                     "gzip,lmpress", "--json", str(tmp_path / "r.json"), "-q"],
                    stdin=sys.stdin.buffer, stdout=out, stderr=err)
    assert rc == 0, err.getvalue()
    doc = json.loads((tmp_path / "r.json").read_text())
    rows = [r for r in doc["rows"] if "hf:" in r["codec"]]
    assert len(rows) == 1 and rows[0]["status"] == "ok", rows
    assert rows[0]["n_bytes_in"] == 800 and 0 < rows[0]["n_bytes_out"] < 1600
    assert rows[0]["lm_bytes_in"] and rows[0]["estimate_bits"] > 0


def test_container_version_3(llama, tiny_model):
    """The engine record round-trips; an unknown engine kind, an oversized fingerprint
    and a plain-mode group of 0 are refused; integer archives stay version 2."""
    archive = Compressor(llama, adapt=False).compress(DATA[:300])
    header, off = Header.unpack(archive)
    assert header.version == 3 and header.adapt == 0 and header.group == 32
    assert Header.unpack(header.pack() + archive[off:])[0] == header
    body = archive[off:-4]
    for bad, message in [({"engine": 9}, "engine kind 9, unknown"),
                         ({"fingerprint": b"{" * 5000}, "fingerprint is too long"),
                         ({"group": 0}, "impossible stream group size")]:
        forged = seal(Header(**{**header.__dict__, **bad}).pack() + body)
        with pytest.raises(FormatError, match=message):
            Header.unpack(forged)
    forged = seal(Header(**{**header.__dict__, "fingerprint": b"[1]"}).pack() + body)
    with pytest.raises(FormatError, match="fingerprint is not a JSON object"):
        Decompressor(llama).decompress(forged)
    assert Header.unpack(Compressor(tiny_model).compress(DATA[:300]))[0].version == 2
