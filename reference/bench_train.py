#!/usr/bin/python3
"""PyTorch CPU side of `tessera bench train`: ms per full training step of the same model.

The architecture is Tessera's, as pinned down by reference/model_reference.py (the parity
reference behind the golden-file tests): its `param_specs` give the parameter names and shapes
(so both sides count the same parameters), and before timing the fp32 step used here is checked
against `model_reference.forward` in float64 on a small config (same loss to 1e-9), so what is
timed is that architecture and not a cheaper one.

Per step, as Tessera's Trainer does it: forward, loss = CE (+ MoE aux losses), backward,
clip_grad_norm_(1.0), AdamW (two groups: decay on linear maps only) - all float32, with
torch's faster multi-tensor AdamW (foreach=True). Attention is q@kᵀ, causal mask, softmax, @v
(torch 1.13 has no fused attention on CPU); MoE is the Hugging Face Mixtral loop (tokens
gathered per expert, index_add back).

Run with OMP_WAIT_POLICY=passive and tcmalloc preloaded (the C# side sets both); without them
torch 1.13 CPU is several times slower here. Prints ONE JSON line per config on stdout.

    /usr/bin/python3 reference/bench_train.py --configs '[{"name": "tiny", ...}]' --threads 2
"""
import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_reference as ref  # noqa: E402
from golden_block import rmsnorm, rope  # noqa: E402


def rope_tables(c, dtype):
    # Same tables as model_reference (float64 angles rounded to float32), in the compute dtype.
    cos, sin = ref.rope_tables(c)
    return cos.to(dtype), sin.to(dtype)


class Step:
    """One model + optimizer; `forward` mirrors model_reference.forward in any dtype."""

    def __init__(self, c, dtype, seed):
        self.c = c
        g = torch.Generator().manual_seed(seed)
        self.specs = ref.param_specs(c)
        self.P = {n: (torch.randn(shape, generator=g, dtype=torch.float32) * std + mean).to(dtype).requires_grad_(True)
                  for n, shape, std, mean, _ in self.specs}
        self.cos, self.sin = rope_tables(c, dtype)
        T = c["seq"]
        self.mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        self.dtype = dtype

    def attention(self, L, h):
        c, P = self.c, self.P
        B, T, H, Hkv, hd = c["batch"], c["seq"], c["heads"], c["kv_heads"], c["head_dim"]
        q = (h @ P[L + "self_attn.q_proj.weight"].T).view(B, T, H, hd)
        k = (h @ P[L + "self_attn.k_proj.weight"].T).view(B, T, Hkv, hd)
        v = (h @ P[L + "self_attn.v_proj.weight"].T).view(B, T, Hkv, hd)
        q, k = rope(q, self.cos, self.sin), rope(k, self.cos, self.sin)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)     # (B, H, T, hd)
        if H != Hkv:
            k = k.repeat_interleave(H // Hkv, dim=1)
            v = v.repeat_interleave(H // Hkv, dim=1)
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))                 # (B, H, T, T)
        s = s.masked_fill(self.mask, float("-inf"))
        o = torch.softmax(s, dim=-1) @ v                                      # (B, H, T, hd)
        return o.transpose(1, 2).reshape(B * T, H * hd) @ P[L + "self_attn.o_proj.weight"].T

    def moe(self, L, h):
        c, P = self.c, self.P
        N, D, E, K = h.shape[0], h.shape[1], c["experts"], c["top_k"]
        m = L + "block_sparse_moe."
        logits = h @ P[m + "gate.weight"].T                                   # (N, E)
        probs = torch.softmax(logits, dim=-1)
        top_p, top_i = probs.topk(K, dim=-1)
        gates = top_p / top_p.sum(-1, keepdim=True) if K > 1 else top_p
        out = torch.zeros(N, D, dtype=h.dtype)
        for e in range(E):
            tok, slot = (top_i == e).nonzero(as_tuple=True)                   # token order
            if tok.numel() == 0:
                continue
            p = m + f"experts.{e}."
            ye = ref.swiglu(h[tok], P[p + "w1.weight"], P[p + "w3.weight"], P[p + "w2.weight"])
            out = out.index_add(0, tok, ye * gates[tok, slot][:, None])
        f = torch.nn.functional.one_hot(top_i, E).sum(dim=(0, 1)).to(h.dtype) / N
        aux = E * (f * probs.mean(0)).sum()
        z = (torch.logsumexp(logits, dim=-1) ** 2).mean()
        return out, aux, z

    def forward(self, ids, tgt):
        c, P = self.c, self.P
        B, T, D, N = c["batch"], c["seq"], c["dim"], c["batch"] * c["seq"]
        x = P["model.embed_tokens.weight"][ids.reshape(N)]                   # (N, D)
        auxes, zs = [], []
        for i in range(c["layers"]):
            L = f"model.layers.{i}."
            h = rmsnorm(x, P[L + "input_layernorm.weight"], c["rms_eps"])
            x = x + self.attention(L, h.view(B, T, D))
            h = rmsnorm(x, P[L + "post_attention_layernorm.weight"], c["rms_eps"])
            if c["experts"] > 1:
                y, aux, z = self.moe(L, h)
                auxes.append(aux)
                zs.append(z)
            else:
                y = ref.swiglu(h, P[L + "mlp.gate_proj.weight"], P[L + "mlp.up_proj.weight"], P[L + "mlp.down_proj.weight"])
            x = x + y
        head = P["model.embed_tokens.weight"] if c["tied"] else P["lm_head.weight"]
        logits = rmsnorm(x, P["model.norm.weight"], c["rms_eps"]) @ head.T  # (N, V)
        loss = torch.nn.functional.cross_entropy(logits, tgt.reshape(N))
        if auxes:
            loss = loss + c["aux_coef"] * (sum(auxes) / len(auxes)) + c["z_coef"] * (sum(zs) / len(zs))
        return loss


def parity_check():
    """The fp32-capable forward above equals model_reference.forward (float64, small MoE and dense)."""
    for c in (ref.MOE, ref.DENSE):
        s = Step(c, torch.float64, seed=7)
        g = torch.Generator().manual_seed(8)
        ids = torch.randint(0, c["vocab"], (c["batch"], c["seq"]), generator=g)
        tgt = torch.randint(0, c["vocab"], (c["batch"], c["seq"]), generator=g)
        with torch.no_grad():
            ours = s.forward(ids, tgt).item()
            theirs = ref.forward(s.P, ids, tgt, c)["total"].item()
        if abs(ours - theirs) > 1e-9 * max(1.0, abs(theirs)):
            sys.exit(f"bench_train.py: forward differs from model_reference.forward ({ours} vs {theirs})")


def bench(cfg, threads, steps, warmup):
    """Median ms of `steps` timed training steps after `warmup` untimed ones."""
    c = dict(ref.MOE)   # rms_eps, rope_theta, aux/z coefficients as in the reference
    c.update(vocab=cfg["vocab"], dim=cfg["dim"], layers=cfg["layers"], heads=cfg["heads"], kv_heads=cfg["kv_heads"],
             head_dim=cfg["dim"] // cfg["heads"], hidden=cfg["hidden"], experts=cfg["experts"], top_k=cfg["top_k"],
             tied=cfg["tied"], batch=cfg["batch"], seq=cfg["seq"])
    s = Step(c, torch.float32, seed=1)
    decay = [s.P[n] for n, *_, d in s.specs if d]
    no_decay = [s.P[n] for n, *_, d in s.specs if not d]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=0.1), dict(params=no_decay, weight_decay=0.0)],
                            lr=3e-3, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    params = list(s.P.values())
    total = sum(p.numel() for p in params)
    per_expert = 3 * c["dim"] * c["hidden"]
    active = total - c["layers"] * (c["experts"] - c["top_k"]) * per_expert if c["experts"] > 1 else total
    g = torch.Generator().manual_seed(3)
    B, T = c["batch"], c["seq"]

    def step():
        w = torch.randint(0, c["vocab"], (B, T + 1), generator=g)
        opt.zero_grad(set_to_none=False)
        loss = s.forward(w[:, :T], w[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        times.append((time.perf_counter() - t0) * 1e3)
    # The median step: one step slowed by other processes on a shared machine does not move it.
    ms = sorted(times)[len(times) // 2]
    return dict(name=cfg["name"], torch=torch.__version__, threads=threads, params=total, active=active,
                batch=B, seq=T, steps=steps, ms_per_step=ms, mean_ms_per_step=sum(times) / len(times),
                tokens_per_s=B * T / (ms / 1e3), loss=loss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", required=True, help="JSON list of {name, vocab, dim, layers, heads, kv_heads, hidden, experts, top_k, tied, batch, seq}")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    parity_check()
    for cfg in json.loads(a.configs):
        print(json.dumps(bench(cfg, a.threads, a.steps, a.warmup)), flush=True)


if __name__ == "__main__":
    main()
