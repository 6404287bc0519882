#!/usr/bin/env python3
"""PyTorch eager fp32 companion of `bertlab bench --step`: the same training step on the same shapes,
printing the same JSON fields, so that a ratio comes from one run on one machine.

    python3 scripts/bench_step_torch.py tiny --batch 32 --len 128 [--steps 5] [--device cpu|cuda]

One full fine-tuning step = BertForSequenceClassification (2 labels, dropout on) forward with labels,
backward, clip_grad_norm_(1.0), AdamW(lr=1e-4, weight_decay=0.01) step, loss.item(). Median of
`--steps` after 2 warm-up steps. `dispatches_per_step` counts CUDA kernel launches (torch.profiler) on
CUDA and is null on the CPU, where PyTorch has no dispatch to count. Needs torch and transformers
(run by developers, like tests/fixtures/*.py; CI never needs them).
"""
import argparse
import json
import statistics
import time

import torch
from transformers import BertConfig, BertForSequenceClassification

# (name, layers, hidden, heads): the same table as STEP_CONFIGS in src/bench.rs
CONFIGS = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8), "minilm": (6, 384, 12), "base": (12, 768, 12)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config", choices=sorted(CONFIGS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    layers, hidden, heads = CONFIGS[a.config]
    dev = torch.device(a.device)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=4 * hidden, max_position_embeddings=512, num_labels=2)
    model = BertForSequenceClassification(cfg).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    g = torch.Generator().manual_seed(7)

    def batch():
        ids = torch.randint(1000, 30000, (a.batch, a.len), generator=g).to(dev)
        labels = (torch.arange(a.batch) % 2).to(dev)
        return ids, labels

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def train_step(ids, labels):
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(2):
        train_step(*batch())
    times = []
    for _ in range(a.steps):
        ids, labels = batch()
        sync()
        t0 = time.perf_counter()
        train_step(ids, labels)
        times.append((time.perf_counter() - t0) * 1e3)
    fwd = []
    ids, labels = batch()
    with torch.no_grad():
        for _ in range(min(3, a.steps)):
            sync()
            t0 = time.perf_counter()
            model(input_ids=ids, labels=labels).loss.item()
            fwd.append((time.perf_counter() - t0) * 1e3)
    launches = None
    if dev.type == "cuda":
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            train_step(*batch())
            sync()
        launches = sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(json.dumps({
        "engine": f"pytorch {torch.__version__} eager fp32",
        "device": name,
        "config": a.config, "layers": layers, "hidden": hidden, "batch": a.batch, "len": a.len,
        "ms_per_step": statistics.median(times),
        "ms_per_forward": statistics.median(fwd),
        "host_encode_ms": None,
        "dispatches_per_step": launches,
        "submits_per_step": None,
        "bytes_written_per_step": a.batch * a.len * 8 + a.batch * 8,
        "bytes_read_per_step": 4,
        "buffers_created_per_step": None,
        "bind_groups_created_per_step": None,
    }))


if __name__ == "__main__":
    main()
