"""Score 2-D samples with the PacGAN protocol (Lin et al. 2018, Table 1).

    python benchmarks/toy_modes.py samples.npy --preset ring8|grid25

A sample is high quality when its distance to the nearest mode is below 3 standard deviations; a
mode is captured when at least one high-quality sample is nearest to it; the reverse KL is
KL(histogram of high-quality samples over modes ‖ uniform).
"""
import argparse
import json
import math

import numpy as np
import torch

from gankit.data.toy import grid25, ring8


def pacgan_scores(x: np.ndarray, means: np.ndarray, std: float) -> dict:
    d = np.linalg.norm(x[:, None, :] - means[None], axis=2)
    nearest, dist = d.argmin(1), d.min(1)
    hq = dist < 3 * std
    counts = np.bincount(nearest[hq], minlength=len(means))
    p = counts / max(counts.sum(), 1)
    k = len(means)
    rkl = float(sum(pi * math.log(pi * k) for pi in p if pi > 0))
    return {"modes": int((counts > 0).sum()), "high_quality": float(hq.mean()), "reverse_kl": rkl}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("samples")
    ap.add_argument("--preset", choices=["ring8", "grid25"], required=True)
    a = ap.parse_args()
    dist = {"ring8": ring8, "grid25": grid25}[a.preset]()
    print(json.dumps(pacgan_scores(np.load(a.samples), dist.means.numpy(), dist.std)))
