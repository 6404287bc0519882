#!/usr/bin/env python3
"""PyTorch eager fp32 companion of `bertlab bench --step`: the same training step on the same shapes,
printing the same JSON fields, so that a ratio comes from one run on one machine.

    python3 scripts/bench_step_torch.py tiny --batch 32 --len 128 [--steps 5] [--device cpu|cuda] [--family roberta]

One full fine-tuning step = BertForSequenceClassification (2 labels, dropout on; with --family, that
family's class and defaults, as ModelConfig::small_of in src/model/config.rs) forward with labels,
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
import transformers as tf

# (name, layers, hidden, heads): the same table as STEP_CONFIGS in src/bench.rs
CONFIGS = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8), "minilm": (6, 384, 12), "base": (12, 768, 12)}


def family_model(family, layers, hidden, heads):
    """The family's classifier of this shape with the defaults ModelConfig::small_of gives it."""
    bert = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=4 * hidden, num_labels=2)
    if family == "distilbert":
        return tf.DistilBertForSequenceClassification(tf.DistilBertConfig(vocab_size=30522, dim=hidden, n_layers=layers, n_heads=heads, hidden_dim=4 * hidden, num_labels=2))
    if family in ("roberta", "xlm-roberta"):
        cfg = (tf.RobertaConfig if family == "roberta" else tf.XLMRobertaConfig)(vocab_size=50265 if family == "roberta" else 250002, max_position_embeddings=514,
                                                                                   type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5, **bert)
        return (tf.RobertaForSequenceClassification if family == "roberta" else tf.XLMRobertaForSequenceClassification)(cfg)
    if family == "electra":
        return tf.ElectraForSequenceClassification(tf.ElectraConfig(vocab_size=30522, embedding_size=hidden, **bert))
    if family == "modernbert":
        return tf.ModernBertForSequenceClassification(tf.ModernBertConfig(vocab_size=50368, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                                                          intermediate_size=hidden * 3 // 2, num_labels=2, attn_implementation="eager"))
    if family == "albert":
        return tf.AlbertForSequenceClassification(tf.AlbertConfig(vocab_size=30000, embedding_size=128, hidden_act="gelu_new", num_hidden_groups=1, inner_group_num=1, **bert))
    return tf.BertForSequenceClassification(tf.BertConfig(vocab_size=30522, max_position_embeddings=512, **bert))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?", choices=sorted(CONFIGS))
    ap.add_argument("--model", help="a model directory: AutoModelForSequenceClassification on it (2 labels, fp32), `bertlab bench --step DIR`'s anchor")
    ap.add_argument("--lora", type=int, default=0, help="with --model: peft's LoRA of this rank (its default targets, alpha 8); the adapters and the classifier train")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--family", default="bert", choices=["bert", "distilbert", "roberta", "xlm-roberta", "electra", "albert", "modernbert"])
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.manual_seed(0)
    if a.model:
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=2, dtype=torch.float32)
        layers, hidden, a.family = model.config.num_hidden_layers, model.config.hidden_size, model.config.model_type
        a.config = a.model + (f", LoRA r {a.lora}" if a.lora else "")
        if a.lora:
            from peft import LoraConfig, TaskType, get_peft_model
            model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=a.lora, lora_alpha=8, lora_dropout=0.0))
        model = model.to(dev).train()
    else:
        layers, hidden, heads = CONFIGS[a.config]
        model = family_model(a.family, layers, hidden, heads).to(dev).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
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
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
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
        "config": a.config, "family": a.family, "params": sum(p.numel() for p in model.parameters()), "layers": layers, "hidden": hidden, "batch": a.batch, "len": a.len,
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
