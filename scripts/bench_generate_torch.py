#!/usr/bin/env python3
"""transformers companion of `bertlab bench --generate`: greedy generation on a randomly initialised
GPT-2 of the same named shape, from the same 5-token prompt, printing the same JSON fields, so that a
ratio comes from one run on one machine.

    python3 scripts/bench_generate_torch.py gpt2-small [--vocab 30000] [--new 64,200] [--device cpu|cuda]
    python3 scripts/bench_generate_torch.py --model DIR [--new 200]   (any causal LM directory, read in
                                                                      fp32: `bertlab bench --generate DIR`'s anchor)

Each run is `model.generate(do_sample=False, max_new_tokens=N, min_new_tokens=N)` with the KV cache
(transformers' default), after one warm-up run; prefill is timed apart as one forward of the prompt
with the cache on. The per-token counters that BERT Lab reports (dispatches, submits, buffers) have no
PyTorch counterpart here and are null. Needs torch and transformers (run by developers, like
tests/fixtures/*.py; CI never needs them). The thread count is torch's default (all cores); say
--threads N to pin it.
"""
import argparse
import json
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

# (name, layers, hidden, heads): the same table as GENERATE_CONFIGS in src/bench.rs
CONFIGS = {"gpt2-tiny": (2, 64, 4), "gpt2-4x256": (4, 256, 4), "gpt2-small": (12, 768, 12)}
PROMPT = [11, 318, 257, 1332, 286]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?", choices=sorted(CONFIGS))
    ap.add_argument("--model", help="a model directory (AutoModelForCausalLM, read in fp32) instead of a named GPT-2 shape")
    ap.add_argument("--vocab", type=int, default=30000)
    ap.add_argument("--new", default="64,200")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.manual_seed(0)
    if a.model:
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).to(dev).eval()
        # no end token: every run makes its N tokens, each the most likely (BERT Lab's benchmark
        # does not stop at one either, and min_new_tokens would otherwise forbid it)
        model.generation_config.eos_token_id = None
        layers, hidden, a.vocab = model.config.num_hidden_layers, model.config.hidden_size, model.config.vocab_size
        a.config = a.model
    else:
        layers, hidden, heads = CONFIGS[a.config]
        cfg = GPT2Config(vocab_size=a.vocab, n_embd=hidden, n_layer=layers, n_head=heads, n_positions=1024,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=a.vocab - 1, eos_token_id=a.vocab - 1)
        model = GPT2LMHeadModel(cfg).to(dev).eval()
    prompt = torch.tensor([[t % a.vocab for t in PROMPT]], device=dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def run(n):
        with torch.no_grad():
            sync()
            t0 = time.perf_counter()
            model(prompt, use_cache=True)
            sync()
            t1 = time.perf_counter()
            out = model.generate(prompt, do_sample=False, max_new_tokens=n, min_new_tokens=n,
                                 pad_token_id=0, attention_mask=torch.ones_like(prompt))
            sync()
            t2 = time.perf_counter()
        assert out.shape[1] == prompt.shape[1] + n
        prefill_ms = (t1 - t0) * 1e3
        total_ms = (t2 - t1) * 1e3
        decode_ms = max(total_ms - prefill_ms, 1e-9)
        return {
            "new_tokens": n,
            "prefill_ms": prefill_ms,
            "decode_ms": decode_ms,
            "tokens_per_s": n / (total_ms / 1e3),
            "decode_tokens_per_s": (n - 1) / (decode_ms / 1e3),
            "dispatches_per_token": None,
            "submits_per_token": None,
            "bytes_read_per_token": None,
            "buffers_created_per_token": None,
            "bind_groups_created_per_token": None,
            "ids": out[0, prompt.shape[1]:].tolist(),
        }

    new = [int(x) for x in a.new.split(",")]
    run(min(8, max(new)))
    runs = [run(n) for n in new]
    device = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(json.dumps({"engine": "transformers", "device": device, "config": a.config, "layers": layers, "hidden": hidden,
                      "vocab": a.vocab, "prompt_tokens": len(PROMPT), "runs": runs, "kernel_ms": []}))


if __name__ == "__main__":
    main()
