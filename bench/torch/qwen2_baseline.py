#!/usr/bin/env python3
"""PyTorch baseline for bench/native/qwen2_bench.cpp: the same cases, names, thread count and JSON lines.

    python3 bench/torch/qwen2_baseline.py [--threads N] [--json] [--prefill 128,512] [--prompt 16] [--decode 32]
                                          [--iters 2] [--layers 28]

transformers' Qwen2ForCausalLM with the Qwen2.5-1.5B shape (28 layers, hidden 1536, 12/2 heads, MLP 8960, vocab
151669, tied embeddings), random weights, in bf16 (the checkpoint dtype; torch runs bf16 matmuls on CPU through
oneDNN), sdpa attention, under torch.inference_mode:
  qwen2_prefill_<L>  model(ids[1, L], use_cache=True, logits_to_keep=1), one warm-up of the shortest case, then
                     --iters timed calls (median);
  qwen2_decode       after a --prompt token prefill, --decode greedy steps model(token, past_key_values=...)
                     + argmax (median step; one warm-up step first).
The weights are random (the speed does not depend on them); initialisation takes a few seconds.
"""
import argparse
import os
import statistics
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM


def report(as_json, name, ms, tokens_per_s):
    if as_json:
        import json
        print(json.dumps({"case": name, "ms": round(ms, 4), "tokens_per_s": round(tokens_per_s, 3)}), flush=True)
    else:
        print(f"{name:<32} {ms:12.3f} ms {tokens_per_s:12.2f} tokens/s (torch, {torch.get_num_threads()} threads)",
              flush=True)


def prompt_ids(length, vocab):
    # The same ids as the native bench: (i * 7919 + 13) % vocab.
    return torch.tensor([[(i * 7919 + 13) % vocab for i in range(length)]], dtype=torch.long)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per case")
    parser.add_argument("--prefill", default="128,512")
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--decode", type=int, default=32)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--layers", type=int, default=28)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prefill = [int(x) for x in args.prefill.split(",") if x]

    config = Qwen2Config(vocab_size=151669, hidden_size=1536, intermediate_size=8960, num_hidden_layers=args.layers,
                         num_attention_heads=12, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1e6,
                         max_position_embeddings=32768, tie_word_embeddings=True, hidden_act="silu")
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    t0 = time.perf_counter()
    torch.set_default_dtype(torch.bfloat16)
    model = Qwen2ForCausalLM(config).eval()
    torch.set_default_dtype(torch.float32)
    if not args.json:
        print(f"# model built in {time.perf_counter() - t0:.1f} s", flush=True)
    vocab = config.vocab_size

    with torch.inference_mode():
        def prefill_once(length):
            return model(prompt_ids(length, vocab), use_cache=True, logits_to_keep=1)

        if prefill:
            prefill_once(min(prefill))
        for length in prefill:
            times = []
            for _ in range(args.iters):
                t = time.perf_counter()
                prefill_once(length)
                times.append((time.perf_counter() - t) * 1e3)
            ms = statistics.median(times)
            report(args.json, f"qwen2_prefill_{length}", ms, length / (ms * 1e-3))

        out = prefill_once(args.prompt)
        past, logits = out.past_key_values, out.logits[:, -1]
        times = []
        for step in range(args.decode + 1):  # step 0 is a warm-up
            t = time.perf_counter()
            token = torch.argmax(logits, dim=-1, keepdim=True)  # [1, 1]
            out = model(token, past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1]
            if step > 0:
                times.append((time.perf_counter() - t) * 1e3)
        ms = statistics.median(times)
        report(args.json, "qwen2_decode", ms, 1e3 / ms)


if __name__ == "__main__":
    main()
