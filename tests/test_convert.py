"""`lmpress convert`: tiny Llama, SmolLM, Qwen2 and Qwen3-shaped checkpoints with random
weights (no download) and tokenizers trained here are converted; the integer model's
per-token bits stay within 2% of the float model's; files round-trip through the
converted model on numpy and torch, with identical archives; bad input gives one line."""

import io
import json
import math
import sys

import numpy as np
import pytest
from conftest import TEXT

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lmpress import cli  # noqa: E402
from lmpress.codec import Compressor, Decompressor  # noqa: E402
from lmpress.convert import ConvertError  # noqa: E402
from lmpress.convert.build import convert  # noqa: E402
from lmpress.convert.report import integer_bits, token_streams  # noqa: E402
from lmpress.engine.backends import TorchBackend  # noqa: E402
from lmpress.engine.transformer import IntegerLM  # noqa: E402
from lmpress.model.tokenizer import ByteTokenizer  # noqa: E402
from lmpress.model.weights import FILE_FORMAT, FILE_FORMAT_V2, IntegerWeights  # noqa: E402

QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
              r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
EVAL = TEXT.encode()[:1500]  # ~600 tokens: longer than the window, so it slides
ARCHS = ("llama", "smollm", "qwen2", "qwen3")


def _tokenizer(specials, qwen):
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )

    tok = Tokenizer(models.BPE())
    if qwen:  # Qwen2's own pipeline: NFC, a split regex, byte-level without its regex
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN_SPLIT), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([TEXT], trainer=trainer)
    return tok


def _checkpoint(arch, path):
    """A save_pretrained directory: random weights (std 0.2, so that the float model's
    predictions are far from uniform) and a byte-level BPE tokenizer."""
    torch.manual_seed(len(arch))
    common = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  initializer_range=0.2)
    specials_inside = arch == "smollm"  # SmolLM: <|endoftext|> is id 0 of the BPE
    tok = _tokenizer(["<|endoftext|>", "<|im_start|>"] if specials_inside else [],
                     qwen=arch.startswith("qwen"))
    n = tok.get_vocab_size()
    if arch == "llama":  # Llama 3 style: BOS added after the BPE, Llama 3 rotary scaling
        tok.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>"])
        hf_tok = dict(bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")
        cfg = transformers.LlamaConfig(
            vocab_size=n + 2, num_key_value_heads=4, tie_word_embeddings=False,
            rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                             "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 64},
            **{k: v for k, v in common.items() if k != "num_key_value_heads"})
    elif arch == "smollm":  # Llama architecture, tied embeddings, grouped-query attention
        hf_tok = dict(bos_token="<|endoftext|>", eos_token="<|endoftext|>")
        cfg = transformers.LlamaConfig(vocab_size=n, tie_word_embeddings=True, **common)
    else:  # Qwen: no BOS, EOS starts; Qwen2 has QKV biases, Qwen3 per-head q/k norms
        tok.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        hf_tok = dict(eos_token="<|endoftext|>")
        kind = transformers.Qwen2Config if arch == "qwen2" else transformers.Qwen3Config
        extra = dict(rope_theta=1e6) if arch == "qwen2" else dict(head_dim=32)
        cfg = kind(vocab_size=n + 3, tie_word_embeddings=arch == "qwen3", **extra, **common)
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    if arch == "qwen2":
        with torch.no_grad():  # real Qwen2 biases are far from zero
            for layer in model.model.layers:
                for lin in (layer.self_attn.q_proj, layer.self_attn.k_proj,
                            layer.self_attn.v_proj):
                    lin.bias.normal_(0, 0.5)
    model.save_pretrained(path)
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, **hf_tok).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """arch -> (checkpoint dir, Conversion, model file)."""
    out = {}
    for arch in ARCHS:
        d = _checkpoint(arch, tmp_path_factory.mktemp(arch))
        conv = convert(d, f"tiny-{arch}", window=64, max_positions=512, evaluation=EVAL)
        path = d / f"tiny-{arch}.safetensors"
        conv.weights.save(path)
        out[arch] = (d, conv, path)
    return out


def _float_bits(directory, tok: ByteTokenizer, rows, start_id, data):
    """Independent float reference: transformers fp32, full causal attention, one stream;
    per-token bits."""
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    ids = torch.from_numpy(rows[tok.encode(data)])
    inp = torch.cat([torch.tensor([start_id]), ids[:-1]])[None]
    with torch.no_grad():
        logp = torch.log_softmax(model(inp).logits[0].double(), -1)
    return -logp.gather(-1, ids[:, None])[:, 0].numpy() / math.log(2)


def _deviation(int_bits, float_bits):
    """Mean per-token |integer - float| bits, relative to the float model's mean: a
    random model's average cost hardly moves when a conversion is wrong, its per-token
    costs do (test_the_comparison_catches_a_wrong_conversion)."""
    return np.abs(int_bits - float_bits).mean() / float_bits.mean()


@pytest.mark.parametrize("arch", ARCHS)
def test_integer_bits_within_two_percent_of_float(converted, arch):
    d, conv, _ = converted[arch]
    w = conv.weights
    tok = ByteTokenizer(w.tokenizer_json)
    data = EVAL[:150]  # shorter than the window: plain causal attention on both sides
    hf_tok = transformers.AutoTokenizer.from_pretrained(d)
    start = hf_tok.bos_token_id if hf_tok.bos_token_id is not None else hf_tok.eos_token_id
    rows = np.arange(tok.vocab_size)
    if tok.bos_id != start:  # the start token was moved next to the BPE pieces
        rows[tok.bos_id] = start
    fbits = _float_bits(d, tok, rows, start, data)
    ibits = integer_bits(w, token_streams(tok, data, 512))
    assert abs(fbits.mean() - math.log2(tok.vocab_size)) > 0.5  # far from uniform
    assert _deviation(ibits, fbits) < 0.02 and abs(ibits.mean() / fbits.mean() - 1) < 0.02
    q = conv.quality  # the report, over text longer than the sliding window, agrees
    assert q.n_tokens > 2 * w.config.window and q.deviation < 0.02 and abs(q.cost) < 0.02, q


def test_the_comparison_catches_a_wrong_conversion(converted):
    """Without Qwen2's biases the per-token bits move far beyond the 2% allowed."""
    d, conv, _ = converted["qwen2"]
    w = conv.weights
    tok = ByteTokenizer(w.tokenizer_json)
    broken = {k: np.zeros_like(v) if k.endswith((".bq", ".bk", ".bv")) else v
              for k, v in w.tensors.items()}
    data = EVAL[:150]
    start = transformers.AutoTokenizer.from_pretrained(d).eos_token_id
    rows = np.append(np.arange(tok.vocab_size - 1), start)
    fbits = _float_bits(d, tok, rows, start, data)
    streams = token_streams(tok, data, 512)
    bad = integer_bits(IntegerWeights(w.name, w.config, w.fixed, w.tokenizer_json, broken),
                       streams)
    assert _deviation(integer_bits(w, streams), fbits) < 0.02 < 0.05 < _deviation(bad, fbits)


@pytest.mark.parametrize("arch", ARCHS)
def test_round_trip_numpy_and_torch_identical_archives(converted, arch):
    _, _, path = converted[arch]
    data = EVAL[:300] + b"\x00\xff invalid \xc3( utf-8\n" + "数据压缩 😀\n".encode()
    archives = [Compressor(str(path), backend=b, fallback=False).compress(data)
                for b in ("numpy", "torch-cpu")]
    assert archives[0] == archives[1]
    for b in ("numpy", "torch-cpu"):
        assert Decompressor(str(path), backend=b).decompress(archives[0]) == data


@pytest.mark.parametrize("arch", ["qwen2", "qwen3"])
def test_tables_equal_on_numpy_torch_and_int8_products(converted, arch):
    """Grouped-query attention, biases and q/k norms give the same integers everywhere,
    including torch's int8 matrix products (the CUDA path, run here on the CPU), and the
    parallel pass equals the step-by-step one."""
    w = IntegerWeights.load(converted[arch][2])
    tokens = np.random.default_rng(1).integers(0, w.config.vocab_size, (3, 40))
    tables = []
    for backend in ("numpy", "torch-cpu"):
        lm = IntegerLM(w, backend)
        st = lm.new_state(3)
        tables.append(np.concatenate([lm.xp.to_numpy(lm.freqs(lm.forward(st, tokens[:, c:c + 16])))
                                      for c in range(0, 40, 16)], 1))
    assert np.array_equal(tables[0], tables[1])
    lm = IntegerLM(w, TorchBackend("cpu", int8_mm=True))
    assert type(lm.layers[0]["wqkv"][0]).__name__ == "Int8Matrix"
    st = lm.new_state(3)
    steps = [lm.xp.to_numpy(lm.freqs(lm.forward(st, tokens[:, t:t + 1]))) for t in range(40)]
    assert np.array_equal(np.concatenate(steps, 1), tables[0])
    total = tables[0].sum(-1)
    assert (tables[0] >= 1).all() and (total >= 2**28).all()
    assert (total <= 2**28 + w.config.vocab_size).all()


def test_old_model_files_keep_format_one(tiny_model, converted):
    assert tiny_model.file_format == FILE_FORMAT
    assert "n_kv_head" not in tiny_model.config.to_json()
    assert "freq_exp_frac" not in json.dumps(tiny_model.fixed.to_dict())
    w = IntegerWeights.load(converted["qwen2"][2])
    assert w.file_format == FILE_FORMAT_V2 and w.config.n_kv_head == 2 and w.config.qkv_bias


def _cli(monkeypatch, capsys, *argv):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    rc = cli.main(list(argv))
    return rc, out.getvalue(), capsys.readouterr().err


def test_cli_installs_lists_and_uses_by_name(converted, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LMPRESS_MODELS_DIR", str(tmp_path / "models"))
    d = converted["smollm"][0]
    rc, out, err = _cli(monkeypatch, capsys, "convert", f"hf:{d}", "-o", "my-smol",
                        "--window", "32", "--max-positions", "256")
    assert rc == 0 and err == "", err
    assert "float model" in out and "integer model" in out and "-m my-smol" in out
    rc, out, _ = _cli(monkeypatch, capsys, "models")
    assert rc == 0 and "my-smol" in out and "converted llama" in out
    (tmp_path / "a.txt").write_bytes(EVAL[:400])
    assert _cli(monkeypatch, capsys, "-m", "my-smol", str(tmp_path / "a.txt"))[0] == 0
    (tmp_path / "a.txt").rename(tmp_path / "orig.txt")
    assert _cli(monkeypatch, capsys, "-d", str(tmp_path / "a.txt.lmp"))[0] == 0
    assert (tmp_path / "a.txt").read_bytes() == EVAL[:400]
    rc, _, err = _cli(monkeypatch, capsys, "convert", f"hf:{d}", "-o", "my-smol")
    assert rc == 1 and err.count("\n") == 1 and "exists; use -f" in err


@pytest.mark.parametrize("config, fragment", [
    ({"model_type": "bert", "architectures": ["BertForMaskedLM"]},
     "is not a causal language model (architectures: BertForMaskedLM)"),
    ({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]},
     "is not a causal language model"),
    ({"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"]},
     "architecture 'gpt_neox' is not supported by convert; supported: llama"),
    (None, "has no config.json"),
])
def test_cli_bad_directories(tmp_path, monkeypatch, capsys, config, fragment):
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("LMPRESS_MODELS_DIR", str(tmp_path / "models"))
    rc, out, err = _cli(monkeypatch, capsys, "convert", f"hf:{tmp_path}", "-o", "x")
    assert rc == 1 and out == "" and err.count("\n") == 1, err
    assert err.startswith("lmpress convert: ") and fragment in err, err
    assert not (tmp_path / "models").exists()


def test_missing_extra_names_the_pip_command(converted, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails
    with pytest.raises(ConvertError, match=r"pip install 'lmpress\[hf\]'"):
        convert(converted["llama"][0], "x")


def test_sentencepiece_tokenizers_are_refused(converted, tmp_path):
    import shutil

    from tokenizers import Tokenizer, models, pre_tokenizers

    d = shutil.copytree(converted["smollm"][0], tmp_path / "sp")
    tok = Tokenizer(models.BPE(vocab={"▁a": 0, "<unk>": 1}, merges=[], unk_token="<unk>",
                               byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<unk>"
                                         ).save_pretrained(d)
    with pytest.raises(ConvertError, match="not byte-level BPE"):
        convert(d, "x")
