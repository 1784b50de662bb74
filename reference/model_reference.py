#!/usr/bin/python3
"""Golden fixtures for the whole Tessera transformer (Tessera.Model.Transformer + Tessera.Training.Trainer).

Writes tests/Tessera.Model.Tests/fixtures/model_{moe,dense}.{json,bin} (format tessera-golden-v1,
see reference/README.md):

* model_moe: 2 layers, both MoE (4 experts, top-2), GQA (4 query heads, 2 kv heads), untied
  lm_head. Logits, losses and every gradient at the initial weights; the same forward with
  capacity factor 1.0 (some assignments dropped); and a 10-step training trajectory with
  gradient accumulation (2 micro-batches), AdamW with two parameter groups (no decay on norms
  and the embedding), warmup + cosine learning rate and global-norm clipping, on a fixed token
  stream read in order, exactly as Tessera's BatchReader (shuffle off) cuts it.
* model_dense: 2 dense SwiGLU layers with tied embeddings: logits, loss and every gradient.

Weights are drawn in float32 and all arithmetic is float64 (as in golden_block.py), so the
difference to Tessera is Tessera's own fp32 rounding.

Run with Debian's torch (1.13):  /usr/bin/python3 reference/model_reference.py
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_block import rmsnorm, rope, rope_tables  # noqa: E402  (one RoPE/RMSNorm definition)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "Tessera.Model.Tests", "fixtures")

MOE = dict(
    vocab=64, dim=32, layers=2, heads=4, kv_heads=2, head_dim=8, hidden=32, experts=4, top_k=2, tied=False,
    batch=2, seq=8, rms_eps=1e-5, rope_theta=10000.0, aux_coef=0.01, z_coef=0.001, capacity_factor=1.0,
    steps=10, accum=2, lr=1e-2, min_lr=1e-3, warmup=3, weight_decay=0.1, beta1=0.9, beta2=0.95,
    adam_eps=1e-8, clip=1.0, min_router_margin=2e-3,
)
DENSE = dict(MOE, experts=1, top_k=1, tied=True, hidden=48)


def param_specs(c):
    """(name, shape, std, mean, decays) in HF Llama/Mixtral naming, in Tessera's registration order."""
    D, F, V = c["dim"], c["hidden"], c["vocab"]
    qd, kvd = c["heads"] * c["head_dim"], c["kv_heads"] * c["head_dim"]
    # A tied table is also the output head, so it gets the head's scale; untied, unit scale.
    specs = [("model.embed_tokens.weight", (V, D), D ** -0.5 if c["tied"] else 1.0, 0.0, False)]
    for i in range(c["layers"]):
        L = f"model.layers.{i}."
        specs += [
            (L + "input_layernorm.weight", (D,), 0.1, 1.0, False),
            (L + "self_attn.q_proj.weight", (qd, D), D ** -0.5, 0.0, True),
            (L + "self_attn.k_proj.weight", (kvd, D), D ** -0.5, 0.0, True),
            (L + "self_attn.v_proj.weight", (kvd, D), D ** -0.5, 0.0, True),
            (L + "self_attn.o_proj.weight", (D, qd), qd ** -0.5, 0.0, True),
            (L + "post_attention_layernorm.weight", (D,), 0.1, 1.0, False),
        ]
        if c["experts"] > 1:
            # A wide router init keeps top-k decisions far from ties (see the margin check).
            specs.append((L + "block_sparse_moe.gate.weight", (c["experts"], D), 0.3, 0.0, True))
            for e in range(c["experts"]):
                p = L + f"block_sparse_moe.experts.{e}."
                specs += [(p + "w1.weight", (F, D), D ** -0.5, 0.0, True),
                          (p + "w3.weight", (F, D), D ** -0.5, 0.0, True),
                          (p + "w2.weight", (D, F), F ** -0.5, 0.0, True)]
        else:
            specs += [(L + "mlp.gate_proj.weight", (F, D), D ** -0.5, 0.0, True),
                      (L + "mlp.up_proj.weight", (F, D), D ** -0.5, 0.0, True),
                      (L + "mlp.down_proj.weight", (D, F), F ** -0.5, 0.0, True)]
    specs.append(("model.norm.weight", (D,), 0.1, 1.0, False))
    if not c["tied"]:
        specs.append(("lm_head.weight", (V, D), D ** -0.5, 0.0, True))
    return specs


def attention(P, L, h, c):
    B, T, H, Hkv, hd = c["batch"], c["seq"], c["heads"], c["kv_heads"], c["head_dim"]
    q = (h @ P[L + "self_attn.q_proj.weight"].T).view(B, T, H, hd)
    k = (h @ P[L + "self_attn.k_proj.weight"].T).view(B, T, Hkv, hd)
    v = (h @ P[L + "self_attn.v_proj.weight"].T).view(B, T, Hkv, hd)
    cos, sin = rope_tables(c)
    q, k = rope(q, cos, sin), rope(k, cos, sin)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)         # (B, H, T, hd)
    k = k.repeat_interleave(H // Hkv, dim=1)
    v = v.repeat_interleave(H // Hkv, dim=1)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    o = torch.softmax(s, dim=-1) @ v
    return o.transpose(1, 2).reshape(B, T, H * hd) @ P[L + "self_attn.o_proj.weight"].T


def swiglu(x, w1, w3, w2):
    return (torch.nn.functional.silu(x @ w1.T) * (x @ w3.T)) @ w2.T


def moe(P, L, h, c, capacity_factor, stats):
    N, D, E, K = h.shape[0], h.shape[1], c["experts"], c["top_k"]
    m = L + "block_sparse_moe."
    router_logits = h @ P[m + "gate.weight"].T                                # (N, E)
    probs = torch.softmax(router_logits, dim=-1)
    top_p, top_i = probs.topk(K, dim=-1)
    gates = top_p / top_p.sum(-1, keepdim=True) if K > 1 else top_p
    cap = math.ceil(capacity_factor * N * K / E) if capacity_factor > 0 else N * K
    out = torch.zeros(N, D, dtype=torch.float64)
    assigned, kept = [], []
    for e in range(E):
        tok, slot = (top_i == e).nonzero(as_tuple=True)                       # token order
        assigned.append(tok.numel())
        tok, slot = tok[:cap], slot[:cap]                                     # the first ones win
        kept.append(tok.numel())
        if tok.numel() == 0:
            continue
        p = m + f"experts.{e}."
        ye = swiglu(h[tok], P[p + "w1.weight"], P[p + "w3.weight"], P[p + "w2.weight"])
        out = out.index_add(0, tok, ye * gates[tok, slot][:, None])
    f = torch.nn.functional.one_hot(top_i, E).sum(dim=(0, 1)).double() / N
    aux = E * (f * probs.mean(0)).sum()
    z = (torch.logsumexp(router_logits, dim=-1) ** 2).mean()
    # Robustness is judged on the router logits: a gap of δ between the k-th and (k+1)-th logit
    # survives any perturbation below δ/2, and fp32 logit errors are ~1e-6 of their size.
    sl = router_logits.sort(dim=-1, descending=True).values
    stats["margin"] = min(stats["margin"], (sl[:, K - 1] - sl[:, K]).min().item())
    stats["unused"] += sum(1 for a in assigned if a == 0)
    stats["assigned"].append(assigned)
    stats["kept"].append(kept)
    return out, aux, z


def forward(P, ids, tgt, c, capacity_factor=0.0):
    B, T, D, N = c["batch"], c["seq"], c["dim"], c["batch"] * c["seq"]
    stats = dict(margin=float("inf"), unused=0, assigned=[], kept=[])
    x = P["model.embed_tokens.weight"][ids.reshape(N)]                       # (N, D)
    auxes, zs = [], []
    for i in range(c["layers"]):
        L = f"model.layers.{i}."
        h = rmsnorm(x, P[L + "input_layernorm.weight"], c["rms_eps"])
        x = x + attention(P, L, h.view(B, T, D), c).reshape(N, D)
        h = rmsnorm(x, P[L + "post_attention_layernorm.weight"], c["rms_eps"])
        if c["experts"] > 1:
            y, aux, z = moe(P, L, h, c, capacity_factor, stats)
            auxes.append(aux)
            zs.append(z)
        else:
            y = swiglu(h, P[L + "mlp.gate_proj.weight"], P[L + "mlp.up_proj.weight"], P[L + "mlp.down_proj.weight"])
        x = x + y
    head = P["model.embed_tokens.weight"] if c["tied"] else P["lm_head.weight"]
    logits = rmsnorm(x, P["model.norm.weight"], c["rms_eps"]) @ head.T      # (N, V)
    ce = torch.nn.functional.cross_entropy(logits, tgt.reshape(N))
    out = dict(logits=logits, ce=ce, total=ce, stats=stats)
    if auxes:
        aux, z = sum(auxes) / len(auxes), sum(zs) / len(zs)                  # mean over MoE layers
        out.update(aux=aux, z=z, total=ce + c["aux_coef"] * aux + c["z_coef"] * z)
    return out


def f32(x):
    return float(np.float32(x))


def lr_at(step, c):
    """Linear warmup to lr over `warmup` steps (step 0 gets lr/warmup), then cosine to min_lr."""
    peak, low = f32(c["lr"]), f32(c["min_lr"])   # Tessera holds both as float32
    if step < c["warmup"]:
        return f32(peak * (step + 1) / c["warmup"])
    progress = min(1.0, (step - c["warmup"]) / max(1, c["steps"] - c["warmup"]))
    return f32(low + (peak - low) * 0.5 * (1 + math.cos(math.pi * progress)))


def robust(out, c):
    s = out["stats"]
    return c["experts"] == 1 or (s["margin"] > c["min_router_margin"] and s["unused"] == 0)


def run(seed, c):
    g = torch.Generator().manual_seed(seed)
    init = {n: torch.randn(shape, generator=g, dtype=torch.float32) * std + mean for n, shape, std, mean, _ in param_specs(c)}
    B, T = c["batch"], c["seq"]
    windows = c["steps"] * c["accum"] * B
    stream = torch.randint(0, c["vocab"], (windows * T + 1,), generator=g)

    def batch(i):   # micro-batch i: windows i·B .. i·B + B − 1 of T + 1 tokens, in order
        w = [stream[(i * B + b) * T:(i * B + b) * T + T + 1] for b in range(B)]
        w = torch.stack(w)
        return w[:, :T], w[:, 1:]

    P = {n: t.double().clone().requires_grad_(True) for n, t in init.items()}
    ids, tgt = batch(0)
    first = forward(P, ids, tgt, c)
    if not robust(first, c):
        return None
    first["total"].backward()
    grads = {n: p.grad.detach().clone() for n, p in P.items()}
    result = dict(init=init, stream=stream, ids=ids, tgt=tgt, first=first, grads=grads)
    if c["experts"] == 1:
        return result
    with torch.no_grad():
        capped = forward(P, ids, tgt, c, c["capacity_factor"])
    dropped = sum(a - k for la, lk in zip(capped["stats"]["assigned"], capped["stats"]["kept"]) for a, k in zip(la, lk))
    if not robust(capped, c) or dropped == 0:
        return None
    result["capped"] = capped

    specs = param_specs(c)
    decay = [P[n] for n, *_, d in specs if d]
    no_decay = [P[n] for n, *_, d in specs if not d]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=c["weight_decay"]), dict(params=no_decay, weight_decay=0.0)],
                            lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["adam_eps"])
    losses, ces, norms, lrs, margins = [], [], [], [], []
    for step in range(c["steps"]):
        lr = lr_at(step, c)
        for grp in opt.param_groups:
            grp["lr"] = lr
        opt.zero_grad(set_to_none=False)
        tot, ce = 0.0, 0.0
        for m in range(c["accum"]):
            out = forward(P, *batch(step * c["accum"] + m), c)
            if not robust(out, c):
                return None
            (out["total"] / c["accum"]).backward()
            tot += out["total"].item() / c["accum"]
            ce += out["ce"].item() / c["accum"]
            margins.append(out["stats"]["margin"])
        norms.append(torch.nn.utils.clip_grad_norm_(list(P.values()), c["clip"]).item())
        opt.step()
        losses.append(tot)
        ces.append(ce)
        lrs.append(lr)
    result.update(losses=losses, ces=ces, norms=norms, lrs=lrs, margins=margins,
                  final={n: p.detach().clone() for n, p in P.items()})
    return result


def write(name, c, seed, r):
    entries, blob = {}, bytearray()

    def put(key, arr, dtype):
        a = np.ascontiguousarray(arr.detach().numpy() if torch.is_tensor(arr) else np.asarray(arr)).astype(dtype)
        entries[key] = dict(dtype="f32" if dtype == "<f4" else "i32", shape=list(a.shape), offset=len(blob))
        blob.extend(a.tobytes())

    names = [n for n, *_ in param_specs(c)]
    o = r["first"]
    put("stream", r["stream"], "<i4")
    put("input_ids", r["ids"], "<i4")
    put("targets", r["tgt"], "<i4")
    for n in names:
        put("init/" + n, r["init"][n], "<f4")
    put("logits", o["logits"], "<f4")
    for n in names:
        put("grad/" + n, r["grads"][n], "<f4")
    meta = dict(format="tessera-golden-v1", generator="reference/model_reference.py", torch=torch.__version__, seed=seed,
                config=c, parameters=names, loss_total=o["total"].item(), loss_ce=o["ce"].item())
    if "aux" in o:
        meta.update(loss_aux=o["aux"].item(), loss_z=o["z"].item())
        put("router_assigned", o["stats"]["assigned"], "<i4")
    if "capped" in r:
        cp = r["capped"]
        put("capacity/logits", cp["logits"], "<f4")
        put("capacity/assigned", cp["stats"]["assigned"], "<i4")
        put("capacity/kept", cp["stats"]["kept"], "<i4")
        meta.update(capacity_loss_total=cp["total"].item())
    if "final" in r:
        for n in names:
            put(f"step{c['steps']}/" + n, r["final"][n], "<f4")
        meta.update(losses=r["losses"], ce_losses=r["ces"], grad_norms=r["norms"], lrs=r["lrs"], router_margins=r["margins"])
    meta["tensors"] = entries
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".bin"), "wb") as fh:
        fh.write(bytes(blob))
    with open(os.path.join(OUT, name + ".json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    print(f"{name}: seed {seed}, loss {o['total'].item():.6f}, {len(blob)} bytes"
          + (f", losses {['%.5f' % l for l in r['losses']]}, min margin {min(r['margins']):.3g}" if "losses" in r else ""))


def main():
    torch.set_num_threads(1)
    for name, c in (("model_moe", MOE), ("model_dense", DENSE)):
        for seed in range(2000, 2200):
            r = run(seed, c)
            if r is not None:
                break
            print(f"{name} seed {seed}: router margin, expert coverage or capacity drops insufficient; next", file=sys.stderr)
        else:
            sys.exit(f"{name}: no seed in range gave robust routing")
        write(name, c, seed, r)


if __name__ == "__main__":
    main()
