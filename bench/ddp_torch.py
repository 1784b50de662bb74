#!/usr/bin/python3
"""PyTorch side of `tessera bench distributed`: DistributedDataParallel on gloo (CPU), same model
and global batch as Tessera's data-parallel trainer, on `--world` local processes.

The model is Tessera's architecture as reference/bench_train.py builds it (the `Step` class,
checked there against reference/model_reference.py); its parameters are wrapped in an
nn.Module so that DDP's bucketed, backward-overlapped all-reduce (25 MiB buckets, gloo ring)
runs on them. Each rank trains on batch/world sequences.

Per rank, the same three timings as the C# side:
  step_ms        median full step (forward, backward with DDP's all-reduce, clip, AdamW)
  compute_ms     median step under ddp.no_sync() (no communication at all)
  comm_ms        median time of all-reducing every gradient alone, in DDP-sized buckets
exposed = step − compute is the communication not hidden behind backward, and
hidden_share = 1 − exposed / comm.  Prints ONE JSON line (rank 0) on stdout.

    /usr/bin/python3 bench/ddp_torch.py --world 2 --config '{"vocab": 4096, ...}' --steps 6
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import bench_train  # noqa: E402
import model_reference as ref  # noqa: E402


class Wrapped(torch.nn.Module):
    """Registers Step's tensors as parameters (names with '.' → '__') and runs Step.forward."""

    def __init__(self, step):
        super().__init__()
        self.step = step
        self.names = [n for n, *_ in step.specs]
        for n in self.names:
            p = torch.nn.Parameter(step.P[n].detach().clone())
            self.register_parameter(n.replace(".", "__"), p)
            step.P[n] = p

    def forward(self, ids, tgt):
        return self.step.forward(ids, tgt)


def median(xs):
    return sorted(xs)[len(xs) // 2]


def worker(rank, a):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(a.port)
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", rank=rank, world_size=a.world)
    cfg = json.loads(a.config)
    c = dict(ref.MOE)
    c.update(vocab=cfg["vocab"], dim=cfg["dim"], layers=cfg["layers"], heads=cfg["heads"], kv_heads=cfg["kv_heads"],
             head_dim=cfg["dim"] // cfg["heads"], hidden=cfg["hidden"], experts=cfg["experts"], top_k=cfg["top_k"],
             tied=cfg["tied"], batch=cfg["batch"] // a.world, seq=cfg["seq"])
    step = bench_train.Step(c, torch.float32, seed=1)
    model = Wrapped(step)
    ddp = torch.nn.parallel.DistributedDataParallel(model)   # broadcasts rank 0's weights; 25 MiB buckets
    decay = {n for n, *_, d in step.specs if d}
    params = dict(model.named_parameters())
    opt = torch.optim.AdamW([dict(params=[params[n.replace(".", "__")] for n in model.names if n in decay], weight_decay=0.1),
                             dict(params=[params[n.replace(".", "__")] for n in model.names if n not in decay], weight_decay=0.0)],
                            lr=3e-3, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    g = torch.Generator().manual_seed(3 + rank)
    B, T = c["batch"], c["seq"]

    def one(sync):
        w = torch.randint(0, c["vocab"], (B, T + 1), generator=g)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        if sync:
            loss = ddp(w[:, :T], w[:, 1:])
            loss.backward()
        else:
            with ddp.no_sync():
                loss = ddp(w[:, :T], w[:, 1:])
                loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return (time.perf_counter() - t0) * 1e3

    grads = [p for p in model.parameters()]
    bucket_floats = 25 * 1024 * 1024 // 4

    def comm_alone():
        # DDP's buckets, in reverse parameter order, all-reduced back to back.
        flat, size, buckets = [], 0, []
        for p in reversed(grads):
            flat.append(p.grad.reshape(-1))
            size += p.numel()
            if size >= bucket_floats:
                buckets.append(torch.cat(flat)); flat, size = [], 0
        if flat:
            buckets.append(torch.cat(flat))
        dist.barrier()
        t0 = time.perf_counter()
        for b in buckets:
            dist.all_reduce(b)
        return (time.perf_counter() - t0) * 1e3

    for _ in range(a.warmup):
        one(True)
    step_ms, compute_ms, comm_ms = [], [], []
    for _ in range(a.steps):
        dist.barrier(); step_ms.append(one(True))
        dist.barrier(); compute_ms.append(one(False))
        comm_ms.append(comm_alone())
    s, cpt, cm = median(step_ms), median(compute_ms), median(comm_ms)
    exposed = max(0.0, s - cpt)
    if rank == 0:
        print(json.dumps(dict(torch=torch.__version__, backend="gloo", world=a.world, threads=a.threads,
                              params=sum(p.numel() for p in grads), batch=cfg["batch"], seq=T, steps=a.steps,
                              step_ms=s, compute_ms=cpt, comm_ms=cm, exposed_ms=exposed,
                              hidden_share=max(0.0, min(1.0, 1 - exposed / cm)) if cm > 0 else None)), flush=True)
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--config", required=True, help="JSON {vocab, dim, layers, heads, kv_heads, hidden, experts, top_k, tied, batch, seq}")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--port", type=int, default=29511)
    a = ap.parse_args()
    mp.spawn(worker, args=(a,), nprocs=a.world, join=True)


if __name__ == "__main__":
    main()
