"""The `gankit` command: argument parsing only; the work is done by the library functions it calls."""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .errors import GankitError
from .version import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit status 2
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gankit", description="Train, sample and inspect generative adversarial networks.")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    p.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a GAN from a preset and/or a TOML config")
    t.add_argument("--preset", help="preset name (default: digits); see `gankit presets`")
    t.add_argument("--config", help="TOML file of tables ([data] [model] [train] ..., the recipe's own); applied over "
                                    "the preset (default: digits)")
    t.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="override one config value, e.g. --set train.steps=500 (repeatable)")
    t.add_argument("--out", help="run directory (default: runs/<preset>, numbered if taken)")
    t.add_argument("--seed", type=int, help="random seed (same as --set train.seed=N)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--dry-run", action="store_true",
                   help="print the resolved config, then every other option table with its defaults, and exit")

    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run", help="run directory")
    s.add_argument("--n", type=int, help="number of samples (default 64; class-conditional runs: 10 per class)")
    s.add_argument("--class", dest="label", metavar="CLASS",
                   help="class-conditional runs: draw only this class (name or index); default: a class x sample grid")
    s.add_argument("--condition", metavar="FILE.npy",
                   help="runs conditioned on attribute/embedding vectors: one row per sample (cycled to --n)")
    s.add_argument("--out", required=True, help="grid.png | folder/ (one PNG each) | samples.npy | samples.txt (token runs)")
    s.add_argument("--temperature", type=float, help="token runs: sample from softmax(logits / T) (default: the run's)")
    s.add_argument("--truncation", type=float, metavar="PSI",
                   help="the truncation trick: latents from N(0, I) truncated to [-PSI, PSI] (fewer, more typical "
                        "samples as PSI falls); default: none")
    s.add_argument("--seed", type=int, default=0, help="latent seed (default 0)")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its moving average")
    s.add_argument("--sampler", choices=("direct", "drs"),
                   help="direct: G(z); drs: discriminator rejection sampling (default: the run's sample.method; auto = drs "
                        "with the logistic objectives)")

    i = sub.add_parser("interpolate", help="latent interpolation strip from a trained run")
    i.add_argument("run", help="run directory")
    i.add_argument("--out", required=True, help="image file, e.g. strip.png")
    i.add_argument("--rows", type=int, default=8, help="number of latent pairs (default 8)")
    i.add_argument("--steps", type=int, default=10, help="images per row (default 10)")
    i.add_argument("--mode", default="slerp", help="slerp (default) or lerp")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--no-ema", action="store_true")

    tr = sub.add_parser("translate", help="run a translation run on inputs: images (pix2pix and image conditions, "
                                          "CycleGAN, StarGAN) or sentences (text style transfer)")
    tr.add_argument("run", help="run directory")
    tr.add_argument("input", help="an image or a folder of images: the conditions (see --degrade); text style "
                                  "transfer runs: a UTF-8 file of sentences, one a line")
    tr.add_argument("--out", required=True, help="folder for one output PNG per input and grid.png; text runs: the "
                                                 "file of translations, one line per input line")
    tr.add_argument("--show", action="store_true", help="text runs: also print the first lines as input → output → "
                                                        "reconstruction")
    tr.add_argument("--degrade", action="store_true",
                    help="INPUT holds clean images: degrade them as in training first (grid: input | output | original)")
    tr.add_argument("--mask", help="inpainting: a mask image, white = the hole to fill")
    tr.add_argument("--seed", type=int, default=0, help="seed of the latents and of --degrade (default 0)")
    tr.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its moving average")
    tr.add_argument("--to", help="CycleGAN / StarGAN: the target domain (name or index)")
    tr.add_argument("--direction", help="CycleGAN and text style transfer: AtoB (default) or BtoA")
    tr.add_argument("--from", dest="source", help="CycleGAN / StarGAN: the inputs' domain (default: the other "
                                                  "domain / D's guess), used for the reconstruction column")

    e = sub.add_parser("eval", help="score samples against a reference data set")
    e.add_argument("samples", help="run directory | image folder | samples.npy")
    e.add_argument("--ref", help="preset name (its data set) or an image folder (not for CycleGAN / StarGAN runs, "
                                 "which are scored on their own data's test split)")
    from .metrics.registry import metrics_help   # imports no torch: building the parser stays quick
    e.add_argument("--metrics", help=metrics_help())
    e.add_argument("--features", help="inception | inception:WEIGHTS.pth | classifier | torchvision:MODEL "
                                      "(default: inception when its weights are present, else the reference's "
                                      "own classifier)")
    e.add_argument("--n", "--n-samples", dest="n", type=int, default=10000,
                   help="samples drawn from a run, and reference images used (default 10000; under torchrun write "
                        "--n-samples: torchrun reads --n as one of its own options)")
    e.add_argument("--seed", type=int, default=0, help="latent seed when SAMPLES is a run")
    e.add_argument("--sampler", choices=("direct", "drs"), help="when SAMPLES is a run: direct or drs (default: the run's)")
    e.add_argument("--picture", help="write samples beside their nearest training images to this PNG")
    e.add_argument("--trust-features", action="store_true",
                   help="report the metrics computed in the feature space even when its check says it cannot judge "
                        "these images (weak classifier, blurred images not told from real ones)")
    e.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    e.add_argument("--temperatures", help="token runs: sweep SAMPLES (an MLE run) over these sampling temperatures, "
                                          "e.g. 0.7,0.8,0.9,1.0,1.1,1.2 (the quality-diversity curve)")
    e.add_argument("--points", nargs="+", default=[], metavar="RUN",
                   help="with --temperatures: other token runs (or checkpoints) scored on the same axes")
    e.add_argument("--curve", help="with --temperatures: write the curve and the points to this .png")

    lb = sub.add_parser("lab", help="run an experiment on the theory (no NAME: list them)")
    lb.add_argument("name", nargs="?", help="experiment name; `gankit lab` lists them")
    lb.add_argument("--out", help="folder for its plots and summary.md (default: lab/NAME)")
    lb.add_argument("--quick", action="store_true", help="fewer training steps")

    sub.add_parser("presets", help="list presets with one line each")

    r = sub.add_parser("report", help="write RUN/report.html: curves, samples over training, nearest training "
                                      "images, the config — one self-contained file (works while the run trains)")
    r.add_argument("run", help="run directory")
    r.add_argument("--out", help="the HTML file to write (default: RUN/report.html)")
    r.add_argument("--no-nearest", action="store_true", help="skip the nearest-training-image panel (it reads the data)")

    v = sub.add_parser("serve", help="a local web page (and JSON API) to draw samples, pick a class, slide between "
                                     "two latents, translate an uploaded image or a sentence")
    v.add_argument("run", help="run directory, checkpoint directory or model folder")
    v.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    v.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes it to the network)")

    d = sub.add_parser("data", help="write images of a preset's data set (inputs for translate, or a look at the data)")
    d.add_argument("preset", help="preset whose [data] is read, e.g. digits-stargan, folder")
    d.add_argument("--n", type=int, default=16, help="how many images (default 16), drawn at random")
    d.add_argument("--out", required=True, help="a folder/ (one PNG each), a .png grid or a .npy array")
    d.add_argument("--class", dest="label", help="only images of this class (or domain)")
    d.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="a data option, e.g. --set data.split=test or --set data.path=DIR (repeatable)")
    d.add_argument("--seed", type=int, default=0, help="which images are drawn")

    x = sub.add_parser("export", help="write a Hugging Face Hub model folder of a run's generator: config.json, "
                                      "model.safetensors, a model card README.md, samples.png")
    x.add_argument("run", help="run directory (its newest checkpoint) or a checkpoint directory")
    x.add_argument("out", help="the folder to write (new, or empty)")
    return p


def _default_out(name: str) -> Path:
    out = Path("runs") / name
    k = 2
    while out.exists():
        out = Path("runs") / f"{name}-{k}"
        k += 1
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from . import config as C
    from .assemble import describe, for_data, from_toml, override, resolve
    from .data import DataInfo
    from .training import distributed
    from .training.loop import Trainer

    if args.resume:
        if not args.out:
            raise GankitError("--resume needs --out RUN_DIR (the run to continue)")
        out = Path(args.out)
        saved_path = out / "config.toml"
        if saved_path.exists():
            saved = from_toml(saved_path.read_text(), str(saved_path))
        elif args.preset or args.config:   # killed before it wrote anything: Trainer.run starts it from step 0
            saved = None
        else:
            raise GankitError(f"--resume: '{saved_path}' not found; is '{out}' a gankit run directory?")
        if args.preset or args.config:
            cfg = resolve(args.preset, args.config, args.set, args.seed)
        else:
            cfg = override(saved, args.set, args.seed)
        bad = []
        if saved is not None:
            data_json = out / "data.json"   # gan.condition=auto in cfg: what the run's data made of it
            if data_json.exists():
                cfg = for_data(cfg, DataInfo.from_dict(json.loads(data_json.read_text())))
            bad = C.incompatible_keys(saved, cfg)
        if bad:
            raise GankitError(f"--resume: the config differs from the run's in {', '.join(bad)}; only "
                              f"{', '.join(sorted(C.RESUMABLE_CHANGES))} may change on resume")
    else:
        cfg = resolve(args.preset, args.config, args.set, args.seed)
        out = Path(args.out) if args.out else _default_out(args.preset or
                                                           (Path(args.config).stem if args.config else C.DEFAULT_PRESET))
        from .training import checkpoint

        if checkpoint.has_any(out / "checkpoints"):
            raise GankitError(f"--out {out}: already holds a run; add --resume to continue it or choose another --out")
    if args.dry_run:
        print(describe(cfg), end="")
        return 0
    try:   # one process, or one of those torchrun started (training/distributed.py)
        Trainer(cfg).run(out, resume=args.resume)
    finally:
        distributed.shutdown()
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .run import open_run
    from .sampling import write_samples

    print(write_samples(open_run(args.run, sampler=args.sampler), args.n, args.out, seed=args.seed,
                        ema=not args.no_ema, label=args.label, condition=args.condition,
                        temperature=args.temperature, truncation=args.truncation))
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from .run import open_run
    from .sampling import write_interpolation

    print(write_interpolation(open_run(args.run), args.out, rows=args.rows, steps=args.steps,
                              seed=args.seed, mode=args.mode, ema=not args.no_ema))
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from .run import open_run
    from .translation import translate

    loaded = open_run(args.run)
    if loaded.recipe.conditioning == "sentences":
        from .text_transfer import translate_text

        for flag, given in (("--degrade", args.degrade), ("--mask", args.mask), ("--from", args.source)):
            if given:
                raise GankitError(f"translate: {flag} is for image runs; a text style transfer run takes --direction "
                                  f"or --to")
        print(translate_text(loaded, args.input, args.out, direction=args.direction, to=args.to, show=args.show,
                             ema=not args.no_ema))
        return 0
    if args.show:
        raise GankitError("translate: --show is for text style transfer runs; image runs write grid.png")
    print(translate(loaded, args.input, args.out, degrade_first=args.degrade, mask=args.mask,
                    seed=args.seed, ema=not args.no_ema, to=args.to, direction=args.direction, source=args.source))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_spec
    from .metrics.evaluate import format_table

    if args.n <= 1:
        raise GankitError(f"--n must be at least 2, got {args.n}")
    if args.points or args.curve:
        if not args.temperatures:
            raise GankitError("--points and --curve go with --temperatures (the MLE run's temperature sweep)")
    if args.temperatures:
        from .quality_diversity import format_rows, parse_temperatures, quality_diversity

        result = quality_diversity(args.samples, parse_temperatures(args.temperatures), args.points, args.curve,
                                   n=args.n, seed=args.seed)
        print(json.dumps(result) if args.json else format_rows(result))
        if args.curve and not args.json:
            print(f"wrote {args.curve}")
        return 0
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    from .training.distributed import shared_evaluation

    with shared_evaluation() as reports:   # torchrun: samples and features shared out over the processes
        values, notes = evaluate_spec(args.samples, args.ref, metrics, features=args.features, n=args.n,
                                      seed=args.seed, sampler=args.sampler,
                                      picture=Path(args.picture) if args.picture and reports else None,
                                      trust_features=args.trust_features)
    if not reports:
        return 0
    if args.json:
        print(json.dumps({**values, "notes": notes}))
    else:
        print(format_table(values, notes))
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    from .lab import LABS

    if not args.name:
        width = max(map(len, LABS.names()))
        for name in LABS.names():
            print(f"{name:<{width}}  {LABS.get(name).summary}")
        return 0
    experiment = LABS.get(args.name)
    out = Path(args.out or Path("lab") / args.name)
    out.mkdir(parents=True, exist_ok=True)
    values = experiment.run(out, args.quick)
    for k, v in values.items():
        print(f"{k}: {v:.6g}")
    print(f"wrote {out}/summary.md and its plots")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from .config import preset_names, preset_summary

    names = preset_names()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {preset_summary(name)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(write_report(args.run, args.out, nearest=not args.no_nearest))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    if not 0 <= args.port <= 65535:
        raise GankitError(f"--port {args.port}: must be in 0..65535")
    serve(args.run, args.host, args.port)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from .sampling import write_data_images

    print(write_data_images(args.preset, args.out, args.n, args.label, args.set, args.seed))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_run

    print(export_run(args.run, args.out))
    return 0


COMMANDS = {"report": cmd_report, "serve": cmd_serve, "export": cmd_export, "data": cmd_data, "train": cmd_train, "sample": cmd_sample, "interpolate": cmd_interpolate, "translate": cmd_translate, "eval": cmd_eval,
            "lab": cmd_lab, "presets": cmd_presets}


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except GankitError as e:
        if args.debug:
            raise
        print(f"gankit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:   # 128 + the signal: 130 for Ctrl-C, 143 for SIGTERM (training.loop.Interrupted)
        print("gankit: interrupted", file=sys.stderr)
        return 128 + getattr(e, "signum", signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
