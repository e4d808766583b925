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
    # batches of the seeded chunk order already seen by the model this run starts from
    # (`init`): training goes on with the chunks after them
    data_offset_steps: int = 0


def lr_at(step: int, tc: TrainConfig, frac: float | None = None) -> float:
    """Linear warmup, then a cosine from lr to lr * min_lr_frac. Progress is measured in
    steps, or by `frac` (the share of the wall-clock budget spent) when the recipe has no
    step count (max_steps = 0: a one-sitting run on a machine of unknown speed)."""
    if step < tc.warmup_steps:
        return tc.lr * (step + 1) / tc.warmup_steps
    if frac is None:
        frac = (step - tc.warmup_steps) / max(1, tc.max_steps - tc.warmup_steps)
    frac = min(1.0, frac)
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
          device: str = "cpu", log: Log = lambda s: None,
          init: dict[str, np.ndarray] | None = None, precision: str = "fp32") -> dict:
    """Train (or resume) the model in `run_dir` for at most `minutes` of wall time. A new
    run starts from the float weights `init` (torch names) when given, else at random.
    `precision` "bf16" runs the forward pass under bfloat16 autocast (GPUs); the weights
    and the optimizer stay fp32."""
    tokens = torch.from_numpy(np.load(run_dir / "tokens.npy").astype(np.int64)).to(device)
    T = cfg.window
    n_chunks = (tokens.numel() - 1) // T
    torch.manual_seed(tc.seed)
    model = LlamaLM(cfg)
    if init is not None:
        model.load_state_dict({k: torch.as_tensor(v, dtype=torch.float32)
                               for k, v in init.items()})
    model = model.to(device)
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
    order = order.to(device)
    token_bytes = _token_byte_lengths(run_dir).to(device)
    span = torch.arange(T + 1, device=device)[None, :]
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16,
                              enabled=precision == "bf16")
    budget = minutes * 60
    t0, step = time.time(), state["step"]
    pending = torch.zeros(4, dtype=torch.float64, device=device)  # bits, tokens, bytes, loss
    n_pending = 0

    def frac() -> float | None:
        return (time.time() - t0) / budget if tc.max_steps == 0 and budget > 0 else None

    def flush() -> None:  # one device-to-host copy per log line, not per step
        nonlocal n_pending
        bits, n_tok, n_bytes, loss_sum = pending.tolist()
        state["prequential_bits"] += bits
        state["prequential_tokens"] += int(n_tok)
        state["prequential_bytes"] += int(n_bytes)
        if n_pending:
            mean = loss_sum / n_pending
            bpb = state["prequential_bits"] / max(1, state["prequential_bytes"])
            log(f"step {step} loss {mean:.3f} nats/token, prequential {bpb:.3f} bits/byte, "
                f"lr {lr_at(step, tc, frac()):.2e}, {time.time() - t0:.0f}s")
            state["history"].append([step, round(mean, 4)])
        pending.zero_()
        n_pending = 0

    while (tc.max_steps == 0 or step < tc.max_steps) and time.time() - t0 < budget:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, tc, frac())
        first = (step + tc.data_offset_steps) * tc.batch_size
        idx = order[(torch.arange(tc.batch_size, device=device) + first) % n_chunks]
        batch = tokens[idx[:, None] * T + span]  # (B, T+1)
        bos = torch.rand(tc.batch_size, generator=torch.Generator().manual_seed(step)) \
            < tc.bos_start_frac
        batch[bos.to(device), 0] = cfg.bos_id
        with autocast:
            logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size).float(),
                               batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        n_pending += 1
        pending[3] += loss.detach()
        if first < n_chunks:  # first pass over the data: prequential
            n = batch[:, 1:].numel()
            pending[0] += loss.detach() * (n / math.log(2))
            pending[1] += n
            pending[2] += token_bytes[batch[:, 1:]].sum()
        if step % 20 == 0:
            flush()
        if step % tc.ckpt_every == 0:
            flush()
            state["step"] = step
            _save_checkpoint(ckpt, model, opt, state)
    flush()
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
