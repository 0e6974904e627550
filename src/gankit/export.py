"""``gankit export RUN DIR``: a trained generator as a Hugging Face Hub model folder.

    DIR/config.json        library_name "gankit", the run's config (TOML text), its data's description
                           (shape, classes, vocabulary), the nets kept, the step, the last evaluation
    DIR/model.safetensors  the nets sampling reads (``Recipe.sampling_nets``): each generator as its
                           moving average where the run kept one (what ``gankit sample`` draws from), no
                           discriminator (unless samples are drawn by rejection), no optimiser state
    DIR/samples.png        the run's final sample grid
    DIR/README.md          the model card: what it is, the metrics, the samples, how to load it

The folder is what ``hf upload OWNER/NAME DIR`` publishes; ``gankit.load`` / ``gankit sample``
take the folder or, where the Hub is reachable, ``OWNER/NAME`` (``run.open_run``).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import save_file

from .config import to_toml
from .errors import GankitError
from .report import last_evaluation, read_metrics
from .run import MODEL_CONFIG, MODEL_WEIGHTS, is_model_folder, open_run
from .training import checkpoint
from .version import __version__

PIPELINES = {("images", "none"): "unconditional-image-generation", ("images", "class"): "image-generation",
             ("images", "vector"): "image-generation", ("images", "image"): "image-to-image",
             ("images", "domains"): "image-to-image", ("tokens", "none"): "text-generation",
             ("tokens", "sentences"): "translation"}


def model_card(name: str, meta: dict, has_samples: bool) -> str:
    """README.md of the model folder: Hub metadata (YAML front matter), then the card."""
    recipe, info = meta["recipe"], meta["data_info"]
    tags = ["gankit", "gan" if recipe not in ("vae", "glo", "gon", "mle") else recipe, recipe]
    pipeline = PIPELINES.get((info["kind"], meta["conditioning"]))
    front = ["---", "library_name: gankit", "tags:"] + [f"- {t}" for t in dict.fromkeys(tags)]
    if pipeline:
        front.append(f"pipeline_tag: {pipeline}")
    front.append("---")
    shape = "×".join(map(str, info["shape"]))
    classes = f", {len(info['classes'])} classes ({', '.join(info['classes'][:12])}{', …' if len(info['classes']) > 12 else ''})" \
        if info.get("classes") else ""
    size = f"{info['size']:,} " if info.get("size") else ""
    lines = front + [
        f"# {name}", "",
        f"A `{recipe}` model trained with gankit {meta['gankit_version']} for "
        f"{meta['step']:,} steps on `{info['name']}` ({size}{info['kind']} of {shape}{classes}). "
        f"The weights are {'the moving average of ' if meta['ema'] else ''}the generator"
        f"{'s' if len(meta['nets']) > 1 else ''} ({', '.join(meta['nets'])}); the discriminator is not included.", ""]
    if has_samples:
        lines += ["## Samples", "", "![samples from the final generator](samples.png)", ""]
    ev = meta.get("evaluation") or {}
    lines += ["## Metrics", ""]
    if ev:
        lines += [f"Evaluated during training at step {ev['step']:,}, against the training data:", "",
                  "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4g} |" for k, v in ev.items() if k != "step"]
    else:
        lines += ["Not evaluated during training. Score it with `gankit eval THIS_FOLDER --ref REFERENCE` "
                  "(a preset's data, an image folder or a .npy array)."]
    lines += ["", "## Use", "", "```sh", "pip install gankit",
              "gankit sample OWNER/NAME --n 64 --out grid.png     # or the folder's path", "```", "",
              "```python", "import gankit", "", 'model = gankit.load("OWNER/NAME")   # or the folder\'s path']
    if meta["conditioning"] in ("image", "domains"):
        lines.append("outputs = gankit.translate(model, images)   # images (N, C, H, W) in [-1, 1]")
    elif meta["conditioning"] == "sentences":
        lines.append('outputs = gankit.translate(model, ["a sentence"])')
    else:
        lines.append("x = gankit.sample(model, 16)   # (16, *shape); images in [-1, 1]")
    lines += ["```", "", "## Training configuration", "", "```toml", meta["config_toml"].rstrip(), "```", ""]
    return "\n".join(lines)


def export_run(run: str | Path, out: str | Path) -> str:
    """Write the model folder of ``run`` (its newest checkpoint, or the checkpoint directory given) to
    ``out``; returns a one-line description. ``out`` must not exist, or be empty."""
    run, out = Path(run), Path(out)
    if run.is_dir() and is_model_folder(run):
        raise GankitError(f"export: '{run}' is already a model folder; give the run directory it came from")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GankitError(f"export: '{out}' exists and is not an empty folder; choose a new one")
    loaded = open_run(run)
    recipe = loaded.recipe
    names = recipe.sampling_nets()
    nets = {n: recipe.nets.get(f"{n}_ema", recipe.nets[n]) for n in names}
    root = run if (run / "config.toml").is_file() and (run / "checkpoints").is_dir() else loaded.checkpoint.parent.parent
    meta = {"library_name": "gankit", "gankit_version": __version__, "recipe": loaded.cfg.train.recipe,
            "conditioning": recipe.conditioning, "nets": names,
            "ema": any(f"{n}_ema" in recipe.nets for n in names),
            "step": checkpoint.read_meta(loaded.checkpoint)["step"], "config_toml": to_toml(loaded.cfg),
            "data_info": asdict(loaded.info), "evaluation": last_evaluation(read_metrics(root / "metrics.jsonl"))}
    final = root / "samples" / "final.png"
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_file(checkpoint.weights_of(nets), str(tmp / MODEL_WEIGHTS), metadata={"format": "pt"})
        (tmp / MODEL_WEIGHTS).chmod(0o644)
        (tmp / MODEL_CONFIG).write_text(json.dumps(meta, indent=1))
        if final.exists():
            shutil.copyfile(final, tmp / "samples.png")
        (tmp / "README.md").write_text(model_card(root.name, meta, final.exists()))
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = (out / MODEL_WEIGHTS).stat().st_size
    return (f"wrote {out}/ ({MODEL_CONFIG}, {MODEL_WEIGHTS} {size / 2**20:.1f} MiB of {', '.join(names)}, README.md"
            f"{', samples.png' if final.exists() else ''}); load it with gankit.load('{out}') or gankit sample {out}")
