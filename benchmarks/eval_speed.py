"""How long the evaluation takes: FID statistics of 10,000 samples, and the metrics after the features.

    python benchmarks/eval_speed.py [--n 10000] [--batch 100]

* Inception features: the FID Inception-v3 (gankit's pytorch-fid-compatible network, ``build_fid_inception``)
  on n 32x32x3 images (resized to 299x299 as for FID), batched, under ``torch.inference_mode``, with
  channels-last memory — the path of ``gankit eval --features inception``. This machine has no copy of
  the Inception weights, so the network keeps its random initial weights: the work is the same, the
  features are meaningless (the weights do not change the time).
* gankit's classifier feature space (the offline default for digits) on the same n images.
* The Gaussian statistics of n 2048-d features (mean, covariance) and the Fréchet distance of two.
PRDC on 10,000 x 10,000 features is timed by ``benchmarks/prdc_speed.py``.
"""
import argparse
import time

import numpy as np
import torch

from gankit.metrics.features.inception import build_fid_inception, pool3, preprocess
from gankit.metrics.fid import frechet_distance, gaussian_stats


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


@torch.inference_mode()
def inception_features(images: torch.Tensor, batch: int) -> np.ndarray:
    net = build_fid_inception().eval().to(memory_format=torch.channels_last)
    out = []
    for i in range(0, len(images), batch):
        x = preprocess(images[i:i + batch]).contiguous(memory_format=torch.channels_last)
        out.append(pool3(net, x).double())
    return torch.cat(out).numpy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=100)
    a = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    images = torch.rand(a.n, 3, 32, 32, generator=g) * 2 - 1
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; n = {a.n}")
    print("| step | time | rate |")
    print("|---|---|---|")
    feats, t = timed(lambda: inception_features(images, a.batch))
    print(f"| Inception-v3 pool3 features, {a.n} images 32→299 px, batch {a.batch} | {t:.1f} s | {a.n / t:.0f} img/s |", flush=True)
    from gankit.nets.classifier import SmallCNN

    net = SmallCNN(3, 10).eval()
    with torch.inference_mode():
        _, t = timed(lambda: torch.cat([net.features(images[i:i + 500]) for i in range(0, a.n, 500)]))
    print(f"| gankit classifier features (128-d), {a.n} images | {t:.2f} s | {a.n / t:.0f} img/s |", flush=True)
    (mu1, s1), t = timed(lambda: gaussian_stats(feats))
    print(f"| mean + covariance of {a.n} × 2048 features (float64) | {t:.2f} s | |")
    other = feats[::-1] + 0.01 * np.random.default_rng(0).standard_normal(feats.shape)
    mu2, s2 = gaussian_stats(other)
    _, t = timed(lambda: frechet_distance(mu1, s1, mu2, s2))
    print(f"| Fréchet distance of two 2048-d Gaussians (eigh) | {t:.2f} s | |")


if __name__ == "__main__":
    main()
