"""How the `folder` preset's defaults were chosen: the best samples in a fixed wall-clock budget on this CPU,
measured on proxy data (``proxy_digits.py``: handwriting-like digits from matplotlib's fonts, 8,000 images,
28×28 grey and 32×32 RGB), scored by an independent judge trained on other draws of the same generator.

Every variant is `gankit train --preset folder --set data.path=PROXY --set train.max_seconds=240` plus BASE (the
preset before the study: lr 2e-4, unconditional) and its settings ("shipped": the preset as it is, nothing added) (and train.steps high enough never to stop a run first); 2,000 samples of the EMA generator are then scored (confident share, class entropy, Fréchet
distance in the judge's features). Results accumulate in bench/folder_study.json (one entry per kind,
variant and seed), so the study can be run in parts; ``--report`` prints the table of BENCHMARKS.md.

    python benchmarks/folder_study.py grey [--only base,lr5e-4] [--seeds 0,1] [--seconds 240]
    python benchmarks/folder_study.py rgb
    python benchmarks/folder_study.py --report
    python benchmarks/folder_study.py small     # 10% of the grey proxy: none vs DiffAugment vs ADA at equal steps
    python benchmarks/folder_study.py truncation --run VARIANT   # the truncation trick on a finished run

Never run two of these at once (nor anything else heavy): the budget is wall-clock time.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import proxy_digits as proxy  # noqa: E402

BENCH = ROOT / "bench"
RESULTS = BENCH / "folder_study.json"

# the variants: name -> --set items on top of the preset as it was before the study (BASE: DCGAN, lr 2e-4,
# unconditional); "shipped" is the preset as it is now (presets/folder.toml), nothing added
BASE = ["optim.lr_g=2e-4", "optim.lr_d=2e-4", "gan.condition=none"]
VARIANTS: dict[str, list[str]] = {
    "shipped": [],
    "preset": [],
    "fast": ["train.fast=true"],
    "lr5e-4": ["optim.lr_g=5e-4", "optim.lr_d=5e-4"],
    "lr1e-4": ["optim.lr_g=1e-4", "optim.lr_d=1e-4"],
    "batch32": ["data.batch_size=32"],
    "batch128": ["data.batch_size=128"],
    "ema0": ["train.ema=0"],
    "ema0.99": ["train.ema=0.99"],
    "width32": ["model.g_width=32", "model.d_width=32"],
    "width96": ["model.g_width=96", "model.d_width=96"],
    "hinge-sn": ["loss.name=hinge", "model.spectral_norm=true", "model.d_norm=none"],
    "lsgan": ["loss.name=lsgan"],
    "r1": ["loss.r1=0.1"],
    "diffaugment": ["augment.method=diffaugment"],
    "diffaugment-ct": ["augment.method=diffaugment", "augment.policy=[color,translation]"],
    "ada": ["augment.method=ada"],
    "mbstd": ["model.mbstd=4"],
    "smooth": ["loss.smooth=0.1"],
    "noise": ["augment.noise=0.1", "augment.noise_steps=3000"],
    "fm": ["loss.feature_matching=0.1"],
    "ortho": ["loss.ortho=1e-4"],
    "betas0.99": ["optim.betas_g=[0.5,0.99]", "optim.betas_d=[0.5,0.99]"],
    "d_layer": ["model.d_norm=layer"],
    "z32": ["model.z_dim=32"],
    "z128": ["model.z_dim=128"],
    # the one-factor winners together
    "fast-lr5e-4": ["train.fast=true", "optim.lr_g=5e-4", "optim.lr_d=5e-4"],
    "fast-lr1e-3": ["train.fast=true", "optim.lr_g=1e-3", "optim.lr_d=1e-3"],
    "fast-lr5e-4-width96": ["train.fast=true", "optim.lr_g=5e-4", "optim.lr_d=5e-4", "model.g_width=96",
                            "model.d_width=96"],
    "fast-lr5e-4-cgan": ["train.fast=true", "optim.lr_g=5e-4", "optim.lr_d=5e-4", "train.recipe=cgan"],
    "cgan": ["optim.lr_g=5e-4", "optim.lr_d=5e-4", "train.recipe=cgan"],
}


def proxy_folder(kind: str, n: int = 8000) -> Path:
    folder = BENCH / "proxy" / (kind if n == 8000 else f"{kind}-{n}")
    if not folder.exists():
        tmp = folder.with_name(folder.name + ".tmp")
        proxy.write(kind, tmp, n, 0)
        tmp.rename(folder)
    return folder


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def save_result(key: str, value: dict) -> None:
    results = load_results()
    results[key] = value
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True))


def run(kind: str, name: str, sets: list[str], seed: int, seconds: float, data: Path, judge: proxy.Judge,
        steps: int | None = None) -> dict:
    out = BENCH / "folder" / kind / f"{name}-s{seed}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    argv = [sys.executable, "-m", "gankit", "train", "--preset", "folder", "--out", str(out),
            "--set", f"data.path={data}", "--set", f"train.seed={seed}", "--set", "train.progress=false",
            "--set", f"train.max_seconds={seconds}"]
    argv += ["--set", f"train.steps={steps or 1_000_000}"]   # a budget in seconds: the steps never bind
    for s in sets:
        argv += ["--set", s]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    from gankit.run import draw, open_run

    x = draw(open_run(out), 2000, seed=123)
    score = judge.score(x)
    step = json.loads((out / "checkpoints" / (out / "checkpoints" / "latest").read_text().strip()
                       / "state.json").read_text())["step"]
    result = {"kind": kind, "variant": name, "sets": sets, "seed": seed, "steps": step, "wall_s": round(wall, 1),
              **score}
    if "memorisation" in name or kind.startswith("small"):
        from gankit.metrics.evaluate import load_reference
        from gankit.metrics.memorisation import memorisation

        ref = load_reference(str(data))
        result["memorised"] = round(memorisation(x, ref.x)[0]["memorised_share"], 4)
    print(json.dumps(result), flush=True)
    return result


def study(kind: str, names: list[str], seeds: list[int], seconds: float) -> None:
    data = proxy_folder(kind)
    judge = proxy.Judge(kind, BENCH / "proxy")
    print(f"judge for {kind}: held-out accuracy {judge.accuracy:.3f}", flush=True)
    save_result(f"judge/{kind}", {"accuracy": round(judge.accuracy, 4)})
    for name in names:
        for seed in seeds:
            save_result(f"{kind}/{name}/{seed}", run(kind, name, with_base(name), seed, seconds, data, judge))


def with_base(name: str) -> list[str]:
    """The --set items of variant ``name``: BASE (less gan.* under the conditional recipe), then its own."""
    sets = VARIANTS[name]
    if name == "shipped":
        return sets
    return [b for b in BASE if not (b.startswith("gan.") and "train.recipe=cgan" in sets)] + sets


def small_data(seeds: list[int], steps: int, images: int, names: list[str] | None = None) -> None:
    """A small part of the grey proxy (800 images = 10%, or ``images``): none, DiffAugment and ADA at equal steps."""
    data = proxy_folder("grey", images)
    judge = proxy.Judge("grey", BENCH / "proxy")
    kind = "small" if images == 800 and steps == 3000 else f"small-{images}" if steps == 6000 and images == 200 \
        else f"small-{images}-{steps}"
    for name, sets in (("none", []), ("diffaugment", ["augment.method=diffaugment"]), ("ada", ["augment.method=ada"])):
        if names and name not in names:
            continue
        for seed in seeds:
            result = run(kind, name, sets, seed, 0, data, judge, steps=steps)   # on the preset as shipped
            save_result(f"{kind}-{steps}/{name}/{seed}" if kind == f"small-{images}" else f"{kind}/{name}/{seed}", result)


def truncation(kind: str, variant: str, seed: int, psis: list[float]) -> None:
    """The truncation trick at sampling on a finished run of the study: 2,000 samples at each ψ, scored."""
    from gankit.run import draw, open_run

    judge = proxy.Judge(kind, BENCH / "proxy")
    run = open_run(BENCH / "folder" / kind / f"{variant}-s{seed}")
    for psi in psis:
        x = draw(run, 2000, seed=123, truncation=psi)
        score = judge.score(x)
        result = {"kind": kind, "variant": f"{variant}, truncation {psi:g}", "sets": [f"--truncation {psi:g}"],
                  "seed": seed, "steps": float("nan"), **score}
        print(json.dumps(result), flush=True)
        save_result(f"truncation-{kind}/{variant} psi{psi:g}/{seed}", result)


def report() -> str:
    results = load_results()
    lines = []
    kinds = ["grey", "rgb", "truncation-grey", "small"] + sorted({k.split("/")[0] for k in results
                                                                  if k.startswith("small-")})
    for kind in kinds:
        rows: dict[str, list[dict]] = {}
        for key, r in results.items():
            if key.startswith(f"{kind}/"):
                rows.setdefault(r["variant"], []).append(r)
        if not rows:
            continue
        acc = results.get(f"judge/{'rgb' if kind == 'rgb' else 'grey'}", {}).get("accuracy")
        lines += [f"### {kind} (judge held-out accuracy {acc})", "",
                  "| variant | settings | seeds | steps | confident | entropy | Fréchet | memorised |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, rs in sorted(rows.items(), key=lambda kv: np.mean([r["fd"] for r in kv[1]])):
            mean = lambda k: np.mean([r[k] for r in rs]) if all(k in r for r in rs) else float("nan")  # noqa: E731
            sets = " ".join(f"`{s}`" for s in rs[0]["sets"]) or "(the preset)"
            lines.append(f"| {name} | {sets} | {','.join(str(r['seed']) for r in rs)} | {mean('steps'):.0f} | "
                         f"{mean('confident'):.3f} | {mean('entropy'):.3f} | {mean('fd'):.2f} | "
                         f"{mean('memorised'):.4f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", nargs="?", choices=("grey", "rgb", "small", "truncation"))
    ap.add_argument("--run", help="truncation: the variant whose run (grey, --seeds' first) is sampled")
    ap.add_argument("--psi", default="2,1,0.7,0.5", help="truncation: the ψ values")
    ap.add_argument("--only", help="comma-separated variant names (default: all)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--steps", type=int, default=3000, help="small: the steps of every run")
    ap.add_argument("--images", type=int, default=800, help="small: how many proxy images (800 = 10%%)")
    ap.add_argument("--report", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(2)
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.report:
        print(report())
    elif a.kind == "small":
        small_data(seeds, a.steps, a.images, a.only.split(",") if a.only else None)
    elif a.kind == "truncation":
        truncation("grey", a.run, seeds[0], [float(p) for p in a.psi.split(",")])
    elif a.kind:
        study(a.kind, a.only.split(",") if a.only else list(VARIANTS), seeds, a.seconds)
    else:
        ap.error("give a kind or --report")
