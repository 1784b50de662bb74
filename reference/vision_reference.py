#!/usr/bin/python3
"""Golden fixture for the vision path: patchify → Fuyu-style patch embedder → image vectors in the
token stream of a small llama → prefix-LM attention → logits, loss and every gradient.

Writes tests/Tessera.Vision.Tests/fixtures/vision/:

* config.json, model.safetensors  the decoder (llama, as reference/arch_reference.py writes it);
* golden.json/.bin                format tessera-golden-v1 (see reference/README.md): the images
  (N, S, S, 3) as normalised floats, input ids (-1 where an image patch stands), targets (-100 on
  the prefix), per-row prefix lengths, the vision weights ("vision/<name>"), logits, the mean
  cross-entropy, and the gradient of that loss for every decoder and vision parameter.

Batch row 0 is image + prompt as a bidirectional prefix (PaliGemma); row 1 has an image in the
middle of text with prefix 0 (plain causal), so the mask is selectable per example. The script
refuses to write a fixture where the prefix mask or the row/column embeddings move the logits by
less than 1% of their scale (a Tessera that ignored either would fail far beyond the tolerance).

Patches: patch (r, c) in raster order holds pixels [rP, rP+P) x [cP, cP+P), values (py, px, ch).
Vector = W·patch + b + row_embed[r] + col_embed[c]. Weights float32, arithmetic float64.

Run with Debian's torch (1.13):  OMP_WAIT_POLICY=passive /usr/bin/python3 reference/vision_reference.py
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import arch_reference as ar  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "Tessera.Vision.Tests", "fixtures", "vision")
IMAGE, PATCH, CH = 12, 4, 3
GRID = IMAGE // PATCH
TOKENS = GRID * GRID
PV = PATCH * PATCH * CH
SEQ = 18
SEED = 11
CFG = ar.LLAMA


def patchify(img):
    """(N, S, S, C) → (N·GRID², P·P·C) in raster order, values (py, px, ch)."""
    n = img.shape[0]
    x = img.reshape(n, GRID, PATCH, GRID, PATCH, CH).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n * TOKENS, PV)


def embed_patches(V, img, use_pos=True):
    p = patchify(img)
    v = p @ V["vision_embed_tokens.weight"].T + V["vision_embed_tokens.bias"]
    if use_pos:
        k = torch.arange(p.shape[0]) % TOKENS
        v = v + V["vision_row_embed.weight"][k // GRID] + V["vision_col_embed.weight"][k % GRID]
    return v


def attention(P, L, h, a, layer, prefix):
    B, T, _ = h.shape
    H, KV, hd = a["H"], a["KV"], a["hd"]
    q = ar.linear(P, L + "self_attn.q_proj", h, False).view(B, T, H, hd)
    k = ar.linear(P, L + "self_attn.k_proj", h, False).view(B, T, KV, hd)
    v = ar.linear(P, L + "self_attn.v_proj", h, False).view(B, T, KV, hd)
    q, k = ar.rope(q, layer["inv_freq"]), ar.rope(k, layer["inv_freq"])
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    k, v = k.repeat_interleave(H // KV, dim=1), v.repeat_interleave(H // KV, dim=1)
    s = (q @ k.transpose(-1, -2)) * a["scale"]                                        # (B, H, T, T)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    # Prefix-LM: key j is visible to query i when j <= i, or when j lies in the row's prefix.
    visible = (j <= i)[None, :, :] | (j[None, :, :] < prefix[:, None, None])          # (B, T, T)
    s = s.masked_fill(~visible[:, None], float("-inf"))
    o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, H * hd)
    return ar.linear(P, L + "self_attn.o_proj", o, False)


def forward(P, V, ids, img, prefix, a, use_pos=True):
    B, T = ids.shape
    x = P["model.embed_tokens.weight"][ids.clamp(min=0)].clone()                      # (B, T, D)
    vec = embed_patches(V, img, use_pos)
    mask = (ids < 0).reshape(-1)
    flat = x.reshape(B * T, -1)
    flat = torch.where(mask[:, None], torch.zeros_like(flat), flat)
    flat = flat.index_put((mask.nonzero(as_tuple=True)[0],), vec)                     # image rows, in order
    x = flat.view(B, T, -1)
    for li, layer in enumerate(a["layers"]):
        L = f"model.layers.{li}."
        x = x + attention(P, L, ar.rmsnorm(x, P[L + "input_layernorm.weight"], a), a, layer, prefix)
        h = ar.rmsnorm(x, P[L + "post_attention_layernorm.weight"], a)
        x = x + ar.glu(h, P[L + "mlp.gate_proj.weight"], P[L + "mlp.up_proj.weight"], P[L + "mlp.down_proj.weight"], a["act"])
    logits = ar.rmsnorm(x, P["model.norm.weight"], a) @ P["lm_head.weight"].T
    return logits.reshape(B * T, -1)


def main():
    torch.set_num_threads(1)
    a = ar.arch(CFG)
    D, Vocab = a["D"], a["V"]
    specs = ar.param_specs(CFG)
    g = torch.Generator().manual_seed(SEED)
    init = {n: torch.randn(shape, generator=g, dtype=torch.float32) * std + mean for n, shape, std, mean in specs}
    vision = {
        "vision_embed_tokens.weight": torch.randn(D, PV, generator=g, dtype=torch.float32) * 0.1,
        "vision_embed_tokens.bias": torch.randn(D, generator=g, dtype=torch.float32) * 0.1,
        "vision_row_embed.weight": torch.randn(GRID, D, generator=g, dtype=torch.float32) * 0.5,
        "vision_col_embed.weight": torch.randn(GRID, D, generator=g, dtype=torch.float32) * 0.5,
    }
    img = (torch.randint(0, 256, (2, IMAGE, IMAGE, CH), generator=g).float() / 127.5 - 1).float()
    text = torch.randint(3, Vocab, (2, SEQ + 1), generator=g)
    ids = text[:, :SEQ].clone()
    tgt = text[:, 1:].clone()
    ids[0, 1:1 + TOKENS] = -1            # row 0: bos, image, prompt ... ; prefix = bos + image + 3 prompt tokens
    ids[1, 3:3 + TOKENS] = -1            # row 1: text, image, text; causal
    prefix = torch.tensor([1 + TOKENS + 3, 0])
    tgt[0, :prefix[0] - 1] = -100        # no loss inside the prefix (the answer starts at the prefix's last position)
    tgt[1, 2:2 + TOKENS] = -100          # no loss on predicting image rows
    P = {n: t.double().requires_grad_(True) for n, t in init.items()}
    VV = {n: t.double().requires_grad_(True) for n, t in vision.items()}
    imgd = img.double()
    logits = forward(P, VV, ids, imgd, prefix, a)
    loss = ar.loss_of(logits, tgt)
    loss.backward()
    with torch.no_grad():
        scale = logits.abs().max()
        causal = forward(P, VV, ids, imgd, torch.tensor([0, 0]), a)
        no_pos = forward(P, VV, ids, imgd, prefix, a, use_pos=False)
        abl = dict(prefix_mask=((causal - logits).abs().max() / scale).item(),
                   row_col_embeddings=((no_pos - logits).abs().max() / scale).item())
        for k, v in abl.items():
            if v < 1e-2:
                sys.exit(f"switching off {k} changes the logits by only {v:.2e} of their scale")

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2, sort_keys=True)
        f.write("\n")
    names = [n for n, *_ in specs]
    ar.write_safetensors(os.path.join(OUT, "model.safetensors"), {n: init[n] for n in names})
    entries, blob = {}, bytearray()

    def put(key, arr, dtype):
        x = np.ascontiguousarray(arr.detach().numpy() if torch.is_tensor(arr) else np.asarray(arr)).astype(dtype)
        entries[key] = dict(dtype="f32" if dtype == "<f4" else "i32", shape=list(x.shape), offset=len(blob))
        blob.extend(x.tobytes())

    put("images", img, "<f4")
    put("input_ids", ids, "<i4")
    put("targets", tgt, "<i4")
    put("prefix", prefix, "<i4")
    put("logits", logits, "<f4")
    for n, t in vision.items():
        put("vision/" + n, t, "<f4")
        put("grad/" + n, VV[n].grad, "<f4")
    for n in names:
        put("grad/" + n, P[n].grad, "<f4")
    meta = dict(format="tessera-golden-v1", generator="reference/vision_reference.py", torch=torch.__version__, seed=SEED,
                config=dict(batch=2, seq=SEQ, image_size=IMAGE, patch_size=PATCH, channels=CH, tokens_per_image=TOKENS),
                parameters=names, vision_parameters=list(vision), loss=loss.item(), ablations=abl, tensors=entries)
    with open(os.path.join(OUT, "golden.bin"), "wb") as f:
        f.write(bytes(blob))
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"vision: loss {loss.item():.6f}; ablations: " + ", ".join(f"{k} {v:.3g}" for k, v in abl.items()))


if __name__ == "__main__":
    main()
