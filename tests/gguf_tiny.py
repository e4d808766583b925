"""Test helper: write a saved tiny HF Llama as an F32 GGUF file with the `gguf` package,
the way llama.cpp's convert_hf_to_gguf.py does (q/k rows permuted for its rope layout).

llama-cpp-python is not in the test extra (it compiles llama.cpp for about 20 minutes), so
the tests using this file skip without it; their manual runs are recorded in
docs/BENCH.md and docs/FLOAT_ENGINES.md."""

import json
from pathlib import Path

import numpy as np

_LAYER_NAMES = [("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"),
                ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
                ("self_attn.o_proj", "attn_output"), ("post_attention_layernorm", "ffn_norm"),
                ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"),
                ("mlp.down_proj", "ffn_down")]


def _permute(x: np.ndarray, n_head: int) -> np.ndarray:
    """HF's rotate-half q/k rows to llama.cpp's interleaved pairs."""
    return (x.reshape(n_head, 2, x.shape[0] // n_head // 2, *x.shape[1:])
            .swapaxes(1, 2).reshape(x.shape))


def hf_to_gguf(hf_dir: str, out: str) -> None:
    import gguf
    from safetensors.numpy import load_file

    hf = Path(hf_dir)
    cfg = json.loads((hf / "config.json").read_text())
    tj = json.loads((hf / "tokenizer.json").read_text())
    tensors = load_file(str(hf / "model.safetensors"))
    n_head, n_kv, n_embd = (cfg["num_attention_heads"], cfg["num_key_value_heads"],
                            cfg["hidden_size"])
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(n_embd)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)

    added = {a["content"]: a["id"] for a in tj.get("added_tokens", [])}
    vocab = {**tj["model"]["vocab"], **added}
    tokens = [""] * (max(vocab.values()) + 1)
    for piece, idx in vocab.items():
        tokens[idx] = piece
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in added else gguf.TokenType.NORMAL
                       for t in tokens])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m)
                        for m in tj["model"]["merges"]])
    w.add_bos_token_id(added["<s>"])
    w.add_eos_token_id(added["<s>"])
    w.add_add_bos_token(False)

    names = {"model.embed_tokens.weight": "token_embd.weight",
             "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    for i in range(cfg["num_hidden_layers"]):
        for a, b in _LAYER_NAMES:
            names[f"model.layers.{i}.{a}.weight"] = f"blk.{i}.{b}.weight"
    for name, x in tensors.items():
        x = x.astype(np.float32)
        if name.endswith("q_proj.weight"):
            x = _permute(x, n_head)
        elif name.endswith("k_proj.weight"):
            x = _permute(x, n_kv)
        w.add_tensor(names[name], np.ascontiguousarray(x))
    if "lm_head.weight" not in tensors:  # tied embeddings
        w.add_tensor("output.weight", tensors["model.embed_tokens.weight"].astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
