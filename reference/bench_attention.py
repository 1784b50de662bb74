#!/usr/bin/env python3
"""PyTorch CPU side of `tessera bench attention`: causal attention fwd/bwd timings.

Same shapes and thread count as the C# run; prints ONE JSON line on stdout, which the C#
command parses. Two implementations, whichever this torch has:
  naive - q@kᵀ·scale, causal mask, softmax, @v; backward through autograd (materialises
          the (B, H, T, T) scores, like our NaiveAttention);
  sdpa  - torch.nn.functional.scaled_dot_product_attention(is_causal=True) (torch >= 2.0).
Run with OMP_WAIT_POLICY=passive and tcmalloc preloaded (the C# side sets both); without
them torch 1.13 CPU is several times slower here.
"""
import argparse
import json
import math
import time

import torch


def timed(fn, min_seconds, max_reps):
    """Median milliseconds of fn() after one warm-up; stops early once min_seconds are spent."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < max_reps:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() - start >= min_seconds and len(times) >= 1:
            break
    times.sort()
    return times[len(times) // 2]


def measure(attend, q, k, v, d_out, min_seconds, max_reps):
    leaves = [t.detach().requires_grad_(True) for t in (q, k, v)]

    def fwd():
        with torch.no_grad():
            attend(*leaves)

    state = {}

    def fwd_graph():
        for t in leaves:
            t.grad = None
        state["o"] = attend(*leaves)

    def bwd():
        state["o"].backward(d_out)

    def fwd_bwd():
        fwd_graph()
        bwd()

    fwd_ms = timed(fwd_graph, min_seconds, max_reps)
    fwd_bwd_ms = timed(fwd_bwd, min_seconds, max_reps)
    return {
        "fwd_ms": fwd_ms,
        "fwd_nograd_ms": timed(fwd, min_seconds, max_reps),
        "bwd_ms": max(fwd_bwd_ms - fwd_ms, 0.0),
        "fwdbwd_ms": fwd_bwd_ms,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=0)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--max-reps", type=int, default=10)
    a = ap.parse_args()
    kv = a.kv_heads or a.heads
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    B, H, T, D = a.batch, a.heads, a.seq, a.dim
    scale = 1.0 / math.sqrt(D)
    q = torch.randn(B, H, T, D)
    k = torch.randn(B, kv, T, D)
    v = torch.randn(B, kv, T, D)
    d_out = torch.randn(B, H, T, D)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    group = H // kv

    def expand(t):  # grouped-query: each kv head serves `group` query heads
        return t if group == 1 else t.repeat_interleave(group, dim=1)

    def naive(q, k, v):
        s = (q @ expand(k).transpose(-2, -1)) * scale
        s = s.masked_fill(mask, float("-inf"))
        return torch.softmax(s, dim=-1) @ expand(v)

    result = {"torch": torch.__version__, "threads": torch.get_num_threads(),
              "naive": measure(naive, q, k, v, d_out, a.min_seconds, a.max_reps), "sdpa": None}
    sdpa = getattr(torch.nn.functional, "scaled_dot_product_attention", None)
    if sdpa is not None:
        result["sdpa"] = measure(lambda q, k, v: sdpa(q, expand(k), expand(v), is_causal=True),
                                 q, k, v, d_out, a.min_seconds, a.max_reps)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
