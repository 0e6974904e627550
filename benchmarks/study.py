"""Lucic et al. (2018), "Are GANs Created Equal?", at laptop scale: seven GAN objectives and three generators
without an adversary, one architecture, one budget, a random search, then the best setting rerun over seeds.

    python benchmarks/study.py [--trials 6] [--seeds 5] [--steps 2500] [--out docs] [--work bench/study]
    python benchmarks/study.py --quick      # 2 trials, 2 seeds, 300 steps: checks the script end to end
    python benchmarks/study.py --report     # the table and the plot again from docs/study.json

Models: the objectives minimax, non-saturating, LSGAN, hinge, WGAN (weight clipping), WGAN-GP and
f-GAN JS (``train.recipe=gan``), and the recipes vae, glo and gon. Every one uses the same generator — an MLP
of 2 hidden layers of 256 units, 16 latent dimensions — and, for the GANs, the same MLP discriminator (the
VAE's encoder is that discriminator without its logit); batches of 64; ``--steps`` generator steps.

Protocol, after Lucic et al.'s wide search: ``--trials`` settings per model drawn at random — Adam's
learning rate log-uniform in [1e-5, 1e-2] (G and D alike), β₁ uniform in [0, 1), discriminator steps per
generator step in {1, 5} (GANs), the penalty weight λ log-uniform in [0.1, 100] (WGAN-GP), the clipping
bound log-uniform in [0.001, 1] (WGAN) — the ranges of the authors' compare_gan code — each trained
once (seed 0); the setting with the lowest FID is then trained again with ``--seeds`` new seeds. FID is
computed in the features of gankit's digits classifier (``eval.features=classifier``), 2,000 samples
against the 1,797 real digits. A run whose loss turns NaN counts as diverged (FID = inf).

Writes ``study.md`` (the protocol, the table — minimum, median and interquartile range of the reruns'
FIDs per model —, the verdict), ``study_fid.png`` (box plots of the same reruns, every trial as a dot) and
``study.json`` (every run) under ``--out``; then the held-out reconstruction table (``--no-reconstruction``
skips it): GLO (latents fitted), GON, the VAE and a plain auto-encoder trained on 80% of the digits and
scored on the other 20%. MNIST joins, with the same protocol and its own table, when its files are on disk
under the data root (``gankit.data.vision``; nothing is downloaded): budget an hour more for it.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gankit import api
from gankit.errors import GankitError

ARCH = ["model.arch=mlp", "mlp.depth=2", "model.g_width=256", "model.d_width=256", "model.z_dim=16",
        "data.batch_size=64", "train.progress=false", "train.log_every=100", "train.keep=1", "train.grid=64"]
GANS = {   # name -> settings
    "minimax": ["loss.name=minimax"],
    "NS GAN": ["loss.name=nonsaturating"],
    "LSGAN": ["loss.name=lsgan"],
    "hinge": ["loss.name=hinge"],
    "WGAN": ["loss.name=wasserstein"],
    "WGAN-GP": ["loss.name=wasserstein"],
    "f-GAN JS": ["loss.name=f-js"],
}
LATENT = {"VAE": "vae", "GLO": "glo", "GON": "gon"}
SAMPLES = 2000


def draw_setting(model: str, rng: np.random.Generator) -> dict:
    """One setting of Lucic et al.'s wide range for ``model``."""
    s = {"lr": float(10 ** rng.uniform(-5, -2)), "beta1": float(rng.uniform(0, 1))}
    if model in GANS:
        s["d_steps"] = int(rng.choice([1, 5]))
    if model == "WGAN-GP":
        s["gp"] = float(10 ** rng.uniform(-1, 2))
    if model == "WGAN":
        s["clip"] = float(10 ** rng.uniform(-3, 0))
    return s


def overrides(model: str, setting: dict, steps: int, data: list[str]) -> tuple[str, list[str]]:
    """(preset, --set items) of one run."""
    lr, b1 = setting["lr"], setting["beta1"]
    common = ARCH + data + [f"train.steps={steps}", f"train.sample_every={steps}", f"train.ckpt_every={steps}",
                            f"optim.lr_g={lr}", f"optim.lr_d={lr}", f"optim.betas_g=[{b1}, 0.999]",
                            f"optim.betas_d=[{b1}, 0.999]"]
    if model in GANS:
        extra = GANS[model] + [f"train.d_steps={setting['d_steps']}"]
        if "gp" in setting:
            extra.append(f"loss.gp={setting['gp']}")
        if "clip" in setting:
            extra.append(f"loss.clip={setting['clip']}")
        return "digits", common + extra
    return LATENT[model], common


def fid_of(run_dir: Path, ref: str, seed: int) -> float:
    samples = api.sample(run_dir, SAMPLES, seed=seed)
    if not torch.isfinite(samples).all():
        return math.inf
    return float(api.evaluate(samples, ref, metrics=["fid"], features="classifier", n=SAMPLES)["fid"])


def run_one(model: str, setting: dict, seed: int, steps: int, work: Path, data: list[str], ref: str) -> dict:
    preset, sets = overrides(model, setting, steps, data)
    out = work / f"{model.replace(' ', '_')}-{abs(hash(json.dumps(setting, sort_keys=True))) % 10**8}-s{seed}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    try:
        api.train(api.load_config(preset, set=sets + [f"train.seed={seed}"]), out)
        fid = fid_of(out, ref, seed)
    except GankitError as e:   # a NaN loss or gradient: the run diverged
        print(f"  {model} seed {seed}: {str(e).splitlines()[0][:120]}", file=sys.stderr)
        fid = math.inf
    seconds = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return {"model": model, "setting": setting, "seed": seed, "fid": fid, "seconds": round(seconds, 1)}


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile) of the finite values (all inf: inf)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.inf, math.inf, math.inf
    q1, med, q3 = np.percentile(finite, [25, 50, 75])
    return float(q1), float(med), float(q3)


def study(data_name: str, data: list[str], ref: str, args, work: Path) -> dict:
    rng = np.random.default_rng(args.search_seed)
    models = list(GANS) + list(LATENT)
    results = {"trials": [], "reruns": [], "best": {}}
    for model in models:
        trials = [run_one(model, draw_setting(model, rng), 0, args.steps, work, data, ref) for _ in range(args.trials)]
        results["trials"] += trials
        best = min(trials, key=lambda r: r["fid"])
        results["best"][model] = best["setting"]
        reruns = [run_one(model, best["setting"], seed, args.steps, work, data, ref)
                  for seed in range(1, args.seeds + 1)]
        results["reruns"] += reruns
        q1, med, q3 = quartiles([r["fid"] for r in reruns])
        print(f"{data_name} {model:9s} best trial {best['fid']:.2f}  reruns median {med:.2f} IQR {q3 - q1:.2f}  "
              f"({sum(r['seconds'] for r in trials + reruns):.0f} s)", flush=True)
    return results


def summary_rows(results: dict) -> list[dict]:
    """Per model: min, median, quartiles of the finite reruns' FIDs (what the box plot draws), and how many
    reruns and trials diverged."""
    rows = []
    for model in list(GANS) + list(LATENT):
        fids = [r["fid"] for r in results["reruns"] if r["model"] == model]
        trials = [r["fid"] for r in results["trials"] if r["model"] == model]
        q1, med, q3 = quartiles(fids)
        finite = [f for f in fids if math.isfinite(f)]
        rows.append({"model": model, "min": min(finite, default=math.inf), "median": med, "iqr": q3 - q1,
                     "q1": q1, "q3": q3, "runs": len(fids), "diverged": len(fids) - len(finite),
                     "trials": len(trials), "trials_diverged": sum(not math.isfinite(f) for f in trials),
                     "trial_range": (min((f for f in trials if math.isfinite(f)), default=math.inf),
                                     max((f for f in trials if math.isfinite(f)), default=math.inf)),
                     "setting": results["best"][model]})
    return rows


def box_plot(results: dict, rows: list[dict], path: Path, title: str) -> None:
    """Box plots of the finite reruns (whiskers: min and max), every trial as a grey dot beside them;
    diverged runs as red crosses along the top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [r["model"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 4.8))
    data = [[f for f in (r["fid"] for r in results["reruns"] if r["model"] == m) if math.isfinite(f)] for m in models]
    ax.boxplot([d if d else [np.nan] for d in data], whis=(0, 100), widths=0.55)
    finite = [r["fid"] for r in results["trials"] + results["reruns"] if math.isfinite(r["fid"])]
    top = max(finite, default=1.0) * 2
    for i, m in enumerate(models, start=1):
        t = [r["fid"] for r in results["trials"] if r["model"] == m]
        ax.scatter(np.full(sum(map(math.isfinite, t)), i + 0.32), [f for f in t if math.isfinite(f)], s=12, c="0.6",
                   zorder=3)
        lost = sum(not math.isfinite(f) for f in t) + sum(not math.isfinite(r["fid"]) for r in results["reruns"]
                                                          if r["model"] == m)
        if lost:
            ax.scatter([i], [top], marker="x", c="tab:red", s=30, zorder=3)
            ax.annotate(f"{lost} diverged", (i, top), textcoords="offset points", xytext=(0, 6), ha="center",
                        fontsize=7, color="tab:red")
    ax.set_xticks(range(1, len(models) + 1), models)
    ax.set_yscale("log")
    ax.set_ylim(top=top * 2.5)
    ax.set_ylabel("FID (digits-classifier features, log scale)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(x: float) -> str:
    return "diverged" if not math.isfinite(x) else f"{x:.2f}"


def verdict(rows: list[dict]) -> list[str]:
    finite = [r for r in rows if math.isfinite(r["median"])]
    ranked = sorted(finite, key=lambda r: r["median"])
    gans = [r for r in ranked if r["model"] in GANS]
    best, best_gan = ranked[0], gans[0]
    lines = [f"- **Lowest median FID here: {best['model']}** ({fmt(best['median'])}"
             + (")." if best is best_gan else f"; best GAN objective: {best_gan['model']}, {fmt(best_gan['median'])}).")]
    spread = sorted(rows, key=lambda r: -r["iqr"] if math.isfinite(r["iqr"]) else -1e12)
    widest, narrowest = spread[0], spread[-1]
    lines.append(f"- Seed spread (interquartile range of the reruns of one setting): from {fmt(narrowest['iqr'])} "
                 f"({narrowest['model']}) to {fmt(widest['iqr'])} ({widest['model']}).")
    overlap = [r["model"] for r in gans if r["q1"] <= best_gan["q3"] and r is not best_gan]
    if overlap:
        lines.append(f"- The interquartile ranges of {', '.join(overlap)} overlap {best_gan['model']}'s: with "
                     f"{len(gans)} objectives and these seeds, no GAN objective is clearly better than those.")
    else:
        lines.append(f"- No other GAN objective's interquartile range reaches {best_gan['model']}'s.")
    lo = min(r["trial_range"][0] for r in gans)
    hi = max(r["trial_range"][1] for r in gans if math.isfinite(r["trial_range"][1]))
    lines.append(f"- The search matters as much as the objective: the GAN trials' FIDs span {fmt(lo)} to {fmt(hi)}, and "
                 f"an objective whose {rows[0]['trials']} random settings missed a good learning "
                 f"rate ranks low however good it can be.")
    latent = {r["model"]: r for r in rows if r["model"] in LATENT}
    lines.append("- Without an adversary: " + ", ".join(f"{m} {fmt(r['median'])}" for m, r in latent.items())
                 + f" against the best GAN's {fmt(best_gan['median'])}.")
    return lines


def write_report(results: dict, recon: list[dict] | None, args, out: Path, minutes: float) -> None:
    rows = summary_rows(results["digits"])
    box_plot(results["digits"], rows, out / "study_fid.png",
             f"digits: FID of {args.seeds} reruns of each model's best setting (dots: the {args.trials} trials)")
    lines = ["# Are GANs created equal? At laptop scale, on the 8×8 digits", "",
             "Written by `python benchmarks/study.py" + (" --quick" if args.quick else "") + "` "
             f"({minutes:.0f} minutes on this machine's 2 CPU cores; raw runs in `study.json`).", "",
             "Protocol after Lucic et al. (2018): every model has the same generator (an MLP of 2 × 256 hidden "
             "units, 16 latent dimensions), the GANs the same MLP discriminator, the VAE an encoder made of it; "
             f"batches of 64, {args.steps} generator steps. {args.trials} settings per model drawn from the "
             "paper's wide range — Adam's learning rate log-uniform in [1e-5, 1e-2], β₁ uniform in [0, 1), "
             "D steps in {1, 5}, the WGAN-GP penalty λ log-uniform in [0.1, 100], the WGAN clipping bound "
             "log-uniform in [0.001, 1] — each trained once; "
             f"the best then trained with {args.seeds} new seeds. FID: 2,000 samples against the 1,797 real "
             "digits in the features of gankit's digits classifier (`eval.features=classifier`) — not "
             "Inception features, so the values are not comparable with the paper's, only their ordering is.", "",
             "![FID box plots](study_fid.png)", "",
             "Statistics over the reruns that finished (a run whose loss turned NaN or infinite is counted as "
             "diverged instead); the box plot draws the same reruns.", "",
             "| model | min | median | IQR | diverged reruns | diverged trials | best setting |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        s = r["setting"]
        setting = f"lr {s['lr']:.2g}, β₁ {s['beta1']:.2f}" + (f", D steps {s['d_steps']}" if "d_steps" in s else "") \
            + (f", λ {s['gp']:.2g}" if "gp" in s else "") + (f", clip {s['clip']:.2g}" if "clip" in s else "")
        lines.append(f"| {r['model']} | {fmt(r['min'])} | {fmt(r['median'])} | {fmt(r['iqr'])} | {r['diverged']} / "
                     f"{r['runs']} | {r['trials_diverged']} / {r['trials']} | {setting} |")
    lines += ["", "## What it says", ""] + verdict(rows)
    lines += ["", "Lucic et al.'s MNIST finding (the best FID of each model after a 100-setting wide search, in "
              "Inception features, as their table is reproduced by later papers): WGAN 6.7 ± 0.4, NS GAN "
              "6.8 ± 0.5, LSGAN 7.8 ± 0.6, minimax 9.8 ± 0.9, WGAN-GP 20.3 ± 5.0. Their conclusion: most "
              "models reach similar scores with enough search and random restarts, and none consistently "
              "beats the non-saturating GAN. (The VAE value often quoted beside these, 23.8, we could not find "
              "in a copy of their table, so it is not used here.) Compare the ordering above with theirs, "
              "not the values: the feature spaces differ."]
    if "mnist" in results:
        lines += ["", "## MNIST", ""] + [f"- {r['model']}: median {fmt(r['median'])}, IQR {fmt(r['iqr'])}"
                                         for r in summary_rows(results["mnist"])]
    else:
        lines += ["", "MNIST was not run: its files are not on the machine that wrote this (the same command "
                      "runs it where they are, e.g. after `gankit train --preset mnist --set data.download=true`)."]
    if recon:
        lines += ["", "## Held-out reconstruction", "",
                  "Trained on 80% of the digits (`digits.hold_out=true`) with the architecture above, Adam at 2e-4 "
                  "(β₁ 0.5) and the presets' own options (`glo.lr_z=3`, `gon.beta=0.5`), scored on the other 360 images: mean squared and absolute error per pixel, "
                  "pixels in [0, 1]. GLO's latents of the held-out images are fitted with G fixed "
                  "(`glo.fit_steps` Adam steps from the nearest training latent); GON's are its gradients at "
                  "the origin; the VAE decodes the mean of q(z|x); the auto-encoder is `vae.variational=false`.",
                  "", "| model | MSE | MAE | train steps |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {r['model']} | {r['mse']:.4f} | {r['mae']:.4f} | {r['steps']} |" for r in recon]
    (out / "study.md").write_text("\n".join(lines) + "\n")


def reconstruction(args, work: Path) -> list[dict]:
    """Held-out reconstruction error of GLO, GON, the VAE and a plain auto-encoder."""
    from gankit.data import load
    from gankit.run import open_run

    models = {"GLO (latents fitted)": ("glo", []), "GON": ("gon", []), "VAE": ("vae", []),
              "auto-encoder": ("vae", ["vae.variational=false"])}
    steps = args.steps * 2
    rows = []
    for name, (preset, extra) in models.items():
        out = work / f"recon-{preset}-{len(extra)}"
        shutil.rmtree(out, ignore_errors=True)
        sets = ARCH + extra + ["digits.hold_out=true", f"train.steps={steps}", f"train.sample_every={steps}",
                               f"train.ckpt_every={steps}", "optim.lr_g=2e-4", "optim.lr_d=2e-4",
                               "optim.betas_g=[0.5, 0.999]", "optim.betas_d=[0.5, 0.999]"]
        cfg = api.load_config(preset, set=sets)
        api.train(cfg, out)
        run = open_run(out)
        test = load(cfg.data.__class__(**{**cfg.data.__dict__, "split": "test"}), cfg.owned.get("digits")).all()["x"]
        with torch.no_grad():
            x_hat = run.recipe.reconstruct(test)
        a, b = (x_hat.cpu() + 1) / 2, (test + 1) / 2
        rows.append({"model": name, "mse": float(((a - b) ** 2).mean()), "mae": float((a - b).abs().mean()),
                     "steps": steps})
        print(f"reconstruction {name}: MSE {rows[-1]['mse']:.4f}", flush=True)
        shutil.rmtree(out, ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=6, help="random settings per model")
    ap.add_argument("--seeds", type=int, default=5, help="reruns of each model's best setting")
    ap.add_argument("--steps", type=int, default=2500, help="generator steps per run")
    ap.add_argument("--search-seed", type=int, default=0, help="seed of the random search")
    ap.add_argument("--out", type=Path, default=Path("docs"), help="where study.md, study_fid.png, study.json go")
    ap.add_argument("--work", type=Path, default=Path("bench/study"), help="scratch run directories")
    ap.add_argument("--no-mnist", action="store_true", help="skip MNIST even when its files are on disk")
    ap.add_argument("--no-reconstruction", action="store_true")
    ap.add_argument("--quick", action="store_true", help="2 trials, 2 seeds, 300 steps")
    ap.add_argument("--report", action="store_true", help="only rewrite study.md and study_fid.png from "
                                                            "the study.json under --out")
    args = ap.parse_args()
    if args.report:
        saved = json.loads((args.out / "study.json").read_text())
        for key in ("trials", "seeds", "steps"):
            setattr(args, key, int(saved["args"][key]))
        args.quick = saved["args"]["quick"] == "True"
        write_report(saved["results"], saved["reconstruction"], args, args.out, saved["minutes"])
        print(f"wrote {args.out / 'study.md'} from {args.out / 'study.json'}")
        return
    if args.quick:
        args.trials, args.seeds, args.steps = 2, 2, 300
    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = {"digits": study("digits", ["data.name=digits"], "digits", args, args.work)}
    if not args.no_mnist:   # MNIST joins when its files are on disk (nothing is downloaded)
        try:
            from gankit.data import load

            load(api.load_config("mnist").data)
        except GankitError as e:
            print(f"MNIST skipped: {str(e).splitlines()[0]}", file=sys.stderr)
        else:
            results["mnist"] = study("mnist", ["data.name=mnist"], "mnist", args, args.work)
    recon = None if args.no_reconstruction else reconstruction(args, args.work)
    minutes = (time.perf_counter() - t0) / 60
    (args.out / "study.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                     "minutes": round(minutes, 1), "results": results,
                                                     "reconstruction": recon}, indent=1, default=str))
    write_report(results, recon, args, args.out, minutes)
    print(f"wrote {args.out / 'study.md'} ({minutes:.1f} min)")


if __name__ == "__main__":
    main()
