"""Training loop: float torch on the CPU or a GPU, resumable, with the prequential code
length of the run ("what training compressed the data to")."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..model.config import ModelConfig
from .torch_model import LlamaLM

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 16  # sequences per step
    lr: float = 2e-3  # peak AdamW learning rate; small models like it high
    min_lr_frac: float = 0.1  # cosine decays to lr * min_lr_frac
    warmup_steps: int = 200
    max_steps: int = 4000  # the schedule's length; a run may stop earlier by minutes
    weight_decay: float = 0.1
    bos_start_frac: float = 0.5  # sequences that begin with BOS, as every stream does
    seed: int = 1234
    ckpt_every: int = 200


def lr_at(step: int, tc: TrainConfig) -> float:
    if step < tc.warmup_steps:
        return tc.lr * (step + 1) / tc.warmup_steps
    frac = min(1.0, (step - tc.warmup_steps) / max(1, tc.max_steps - tc.warmup_steps))
    return tc.lr * (tc.min_lr_frac + (1 - tc.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))


def _save_checkpoint(path: Path, model: LlamaLM, opt: torch.optim.Optimizer, state: dict) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for i, group in enumerate(opt.param_groups):
        for j, p in enumerate(group["params"]):
            for k, v in opt.state.get(p, {}).items():
                if torch.is_tensor(v):
                    tensors[f"opt.{i}.{j}.{k}"] = v.detach().cpu().contiguous()
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"state": json.dumps(state)})
    tmp.replace(path)


def _load_checkpoint(path: Path, model: LlamaLM, opt: torch.optim.Optimizer) -> dict:
    from safetensors import safe_open

    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    for i, group in enumerate(opt.param_groups):
        for j, p in enumerate(group["params"]):
            st = {k.split(".")[-1]: v.to(p.device) for k, v in tensors.items()
                  if k.startswith(f"opt.{i}.{j}.")}
            if st:
                opt.state[p] = st
    with safe_open(str(path), "pt") as f:
        return json.loads(f.metadata()["state"])


def train(run_dir: Path, cfg: ModelConfig, tc: TrainConfig, minutes: float,
          device: str = "cpu", log: Log = lambda s: None) -> dict:
    """Train (or resume) the model in `run_dir` for at most `minutes` of wall time."""
    tokens = torch.from_numpy(np.load(run_dir / "tokens.npy").astype(np.int64))
    T = cfg.window
    n_chunks = (tokens.numel() - 1) // T
    torch.manual_seed(tc.seed)
    model = LlamaLM(cfg).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=tc.lr, betas=(0.9, 0.95))
    ckpt = run_dir / "checkpoint.safetensors"
    state = {"step": 0, "prequential_bits": 0.0, "prequential_tokens": 0,
             "prequential_bytes": 0, "elapsed_s": 0.0, "history": []}
    if ckpt.exists():
        state = _load_checkpoint(ckpt, model, opt)
        log(f"resumed at step {state['step']}")
    (run_dir / "config.json").write_text(cfg.to_json())
    (run_dir / "train_config.json").write_text(json.dumps(asdict(tc)))
    order = torch.randperm(n_chunks, generator=torch.Generator().manual_seed(tc.seed))
    token_bytes = _token_byte_lengths(run_dir)
    t0, step, ema = time.time(), state["step"], None
    while step < tc.max_steps and time.time() - t0 < minutes * 60:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, tc)
        idx = order[(torch.arange(tc.batch_size) + step * tc.batch_size) % n_chunks]
        batch = tokens[idx[:, None] * T + torch.arange(T + 1)[None, :]]  # (B, T+1)
        bos = torch.rand(tc.batch_size, generator=torch.Generator().manual_seed(step)) \
            < tc.bos_start_frac
        batch[bos, 0] = cfg.bos_id
        batch = batch.to(device)
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size).float(),
                               batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        bits = loss.item() * batch[:, 1:].numel() / math.log(2)
        if (step - 1) * tc.batch_size < n_chunks:  # first pass over the data: prequential
            state["prequential_bits"] += bits
            state["prequential_tokens"] += batch[:, 1:].numel()
            state["prequential_bytes"] += int(token_bytes[batch[:, 1:].cpu()].sum())
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 20 == 0:
            bpb = state["prequential_bits"] / max(1, state["prequential_bytes"])
            log(f"step {step} loss {ema:.3f} nats/token, prequential {bpb:.3f} bits/byte, "
                f"lr {lr_at(step, tc):.2e}, {time.time() - t0:.0f}s")
            state["history"].append([step, round(ema, 4)])
        if step % tc.ckpt_every == 0:
            state["step"] = step
            _save_checkpoint(ckpt, model, opt, state)
    state["step"] = step
    state["elapsed_s"] += time.time() - t0
    _save_checkpoint(ckpt, model, opt, state)
    return state


def _token_byte_lengths(run_dir: Path) -> torch.Tensor:
    from ..model.tokenizer import ByteTokenizer

    tok = ByteTokenizer((run_dir / "tokenizer.json").read_text(encoding="utf-8"))
    return torch.from_numpy(tok.n_bytes)


def load_trained(run_dir: Path) -> LlamaLM:
    cfg = ModelConfig.from_json((run_dir / "config.json").read_text())
    model = LlamaLM(cfg)
    tensors = load_file(str(run_dir / "checkpoint.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    return model.eval()
