"""Ways to run the toy MLP's bf16 step that session 11 measured and did not build (docs/BENCHMARKS.md).

    python benchmarks/toy_alternatives.py [--parts onednn bias compile threads]

threads  (last) Two Python threads, each with one OpenMP thread, each running half of a batch of 2,048 through
         three fused bf16 linear + ReLU layers, against the whole batch on OpenMP's two threads. (Python
         threads with a thread count of their own: the batch split inside the fused stack was this.)
onednn   oneDNN's inner-product backward-weights primitive (``aten.mkldnn_linear_backward_weights``, with
         the conversions to its layout) against the product ``g^T h`` the fused backward uses, 2,048 x 256.
bias     The bias gradient as a product ``1^T g`` against ``g.sum(0)``.
compile  A plain bf16-autocast step of the grid25 preset's networks (gankit.nets.build; 3 x 256 hidden, batch
         1,024, non-saturating loss, fused Adam), eager against ``torch.compile`` of G and D.
"""
import argparse
import concurrent.futures
import ctypes
import os
import time

import torch
import torch.nn.functional as F

from gankit import nets
from gankit.config import resolve
from speed_vs_plain import timed

BF16 = torch.bfloat16


def _one_openmp_thread() -> None:
    torch.ones(1 << 16).sum()   # PyTorch sets this thread's OpenMP team at its first parallel operator
    ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp.so.1")).omp_set_num_threads(1)


def threads() -> None:
    ws = [(torch.randn(256, 256).to(BF16), torch.randn(256).to(BF16)) for _ in range(3)]
    x = torch.randn(2048, 256).to(BF16)

    def stack(h: torch.Tensor) -> torch.Tensor:
        for w, b in ws:
            h = torch.ops.mkldnn._linear_pointwise(h, w, b, "relu", [], "")
        return h

    whole = timed(lambda: stack(x), 200)
    pools = [concurrent.futures.ThreadPoolExecutor(1) for _ in range(2)]
    for p in pools:
        p.submit(_one_openmp_thread).result()
    halves = x.chunk(2)
    split = timed(lambda: [f.result() for f in [p.submit(stack, h) for p, h in zip(pools, halves)]], 200)
    print(f"3 fused bf16 layers, batch 2,048: OpenMP's {torch.get_num_threads()} threads {whole:.0f} us; "
          f"two Python threads of one OpenMP thread, a half each {split:.0f} us", flush=True)


def onednn() -> None:
    g, h, w = torch.randn(2048, 256).to(BF16), torch.randn(2048, 256).to(BF16), torch.randn(256, 256)
    ours = timed(lambda: g.t() @ h, 200)
    theirs = timed(lambda: torch.ops.aten.mkldnn_linear_backward_weights(g.to_mkldnn(), h.to_mkldnn(), w, True)[0], 200)
    print(f"weight gradient 256 x 2,048 x 256: g^T h {ours:.0f} us; oneDNN backward-weights {theirs:.0f} us", flush=True)


def bias() -> None:
    g = torch.randn(2048, 256).to(BF16)
    ones = torch.ones(1, 2048, dtype=BF16)
    print(f"bias gradient 2,048 x 256: g.sum(0) {timed(lambda: g.sum(0), 300):.0f} us; "
          f"1^T g {timed(lambda: ones @ g, 300):.0f} us", flush=True)


def _step_ms(mode: str | None, batch: int = 1024) -> tuple[float, float]:
    """(seconds to the end of the third step, median ms per step after it)."""
    torch.manual_seed(0)
    G, D = nets.build(resolve("grid25").model, (2,))
    opt_g, opt_d = (torch.optim.Adam(n.parameters(), 1e-3, fused=True) for n in (G, D))
    g_fwd, d_fwd = (G, D) if mode is None else (torch.compile(G, mode=mode), torch.compile(D, mode=mode))
    data = torch.randn(batch, 2)

    def step() -> None:
        with torch.autocast("cpu", BF16):
            fake = g_fwd(torch.randn(batch, 2))
            logits = d_fwd(torch.cat([data, fake.detach()])).float()
            d_loss = F.softplus(-logits[:batch]).mean() + F.softplus(logits[batch:]).mean()
        D.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        D.requires_grad_(False)
        with torch.autocast("cpu", BF16):
            g_loss = F.softplus(-d_fwd(fake).float()).mean()
        G.zero_grad(set_to_none=True)
        g_loss.backward()
        D.requires_grad_(True)
        opt_g.step()

    t0 = time.perf_counter()
    for _ in range(3):
        step()
    return time.perf_counter() - t0, timed(step, 20) / 1e3


def compile_() -> None:
    for mode in (None, "default", "max-autotune-no-cudagraphs"):
        first, ms = _step_ms(mode)
        print(f"autocast step, batch 1,024, {'eager' if mode is None else 'torch.compile ' + mode}: "
              f"{ms:.1f} ms per step ({first:.0f} s to the third step)", flush=True)


PARTS = {"onednn": onednn, "bias": bias, "compile": compile_, "threads": threads}   # threads last: it changes the
# process's OpenMP state (the main thread's operators ran as if on one thread after it, in session 11)

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    for part in ap.parse_args().parts:
        PARTS[part]()
