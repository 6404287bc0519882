#!/usr/bin/env python3
"""Writes a randomly initialised Llama-shaped model of a real model's shape, as the hub stores it
(bf16 safetensors, sharded when asked), for the real-size benchmarks of #30 (README, "Benchmarks"):

    python3 scripts/make_random_decoder.py smollm2-135m /tmp/smollm2-shape [--shard-mb 200]

smollm2-135m is HuggingFaceTB/SmolLM2-135M's shape: 30 layers, 576 wide, 9 query and 3 key/value
heads, SwiGLU 1536, vocabulary 49,152, tied, rope_theta 100,000. Initialised as transformers does
(normal 0.02) with the norms drawn around 1, so that greedy ids depend on every layer, and the
padding id's embedding row drawn too (transformers zeroes it). The weights
are rounded to bf16 as stored: BERT Lab and transformers both read them back into f32 and compute
from the same numbers. Needs torch and transformers (run by developers, like tests/fixtures/*.py).
"""
import argparse, json, os
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

SHAPES = {
    "smollm2-135m": (LlamaConfig, LlamaForCausalLM, dict(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                     intermediate_size=1536, vocab_size=49152, max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=True,
                     rope_parameters={"rope_type": "default", "rope_theta": 100000.0}, bos_token_id=0, eos_token_id=0, pad_token_id=0)),
    "qwen2.5-0.5b": (Qwen2Config, Qwen2ForCausalLM, dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                     intermediate_size=4864, vocab_size=151936, max_position_embeddings=32768, rms_norm_eps=1e-6, tie_word_embeddings=True,
                     rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, bos_token_id=151643, eos_token_id=151643, pad_token_id=151643)),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("out")
    ap.add_argument("--shard-mb", type=int, default=0, help="split the weights into shards of about this size, with model.safetensors.index.json")
    a = ap.parse_args()
    cfg_cls, lm_cls, kw = SHAPES[a.shape]
    torch.manual_seed(0)
    m = lm_cls(cfg_cls(**kw))
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
        # transformers zeroes the padding id's embedding row at init; a trained model's is not zero,
        # and a tokenizer whose BOS is that id (this one's may be) puts it in every text: a zero row
        # through RMSNorm multiplies its gradient by 1/sqrt(eps) at every norm, and 30 layers of
        # that overflow f32 (in PyTorch as in BERT Lab)
        emb = m.get_input_embeddings().weight
        emb[m.config.pad_token_id].normal_(0.0, 0.02)
    m = m.to(torch.bfloat16)
    m.save_pretrained(a.out, safe_serialization=True, max_shard_size=f"{a.shard_mb}MB" if a.shard_mb else "50GB")
    print(json.dumps({"out": a.out, "files": sorted(os.listdir(a.out)), "params": sum(p.numel() for p in m.parameters())}))


if __name__ == "__main__":
    main()
