"""``gankit report RUN``: one self-contained HTML file of a run (``RUN/report.html``) — images and plots
embedded, no network needed to open it.

What it holds, from what is on disk (a run still training is read as far as it got):
- the resolved config;
- the curves of ``metrics.jsonl``: losses, D's outputs, penalties, the Wasserstein estimate
  (E D(real) − E D(fake)) of a critic, ADA's p, evaluation metrics over time; each drawn raw and smoothed
  (TensorBoard's debiased exponential moving average), with the best checkpoint marked;
- the fixed-z sample grids over training (``samples/``) as a strip and a scrubber — for points the scatter
  with the mixture's modes marked, for class-conditional runs one class a row (named), for translation
  runs input | output | reconstruction, for token runs the sentences;
- from the newest checkpoint, for image runs whose data can be read: samples beside their nearest
  training images (pixel space, flips included), the ones most like a copy first.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import GankitError

SMOOTHING = 0.9   # weight of the moving average drawn over each curve (TensorBoard's slider, 0..1)
MAX_FRAMES = 60   # sample grids embedded at most (evenly spaced over training, the last always kept)
NEAREST = 8       # samples shown beside their nearest training images
NOT_CURVES = {"eval/n_samples"}   # logged, but not worth a plot


def smooth(values: np.ndarray, weight: float = SMOOTHING) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average debiased like Adam's moments,
    s_i = (w·m_{i-1} + (1 − w)·v_i) / (1 − w^(i+1)); non-finite values are carried over, not averaged."""
    out = np.empty(len(values), dtype=np.float64)
    m, n = 0.0, 0
    for i, v in enumerate(np.asarray(values, dtype=np.float64)):
        if not math.isfinite(v):
            out[i] = v
            continue
        m = weight * m + (1 - weight) * v
        n += 1
        out[i] = m / (1 - weight ** n) if weight < 1 else v
    return out


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl; a line being written (a run still training) or damaged is skipped."""
    rows = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), (int, float)):
                rows.append(row)
    return rows


def series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    return np.array([p[0] for p in pts], dtype=np.float64), np.array([p[1] for p in pts], dtype=np.float64)


def curve_groups(rows: list[dict], loss_name: str) -> list[tuple[str, list[str]]]:
    """(title, keys) of each plot: the keys of ``rows`` by their prefix."""
    keys = sorted({k for r in rows for k in r if k != "step"})
    prefixes = [("Losses", ("loss/",)), ("Discriminator outputs", ("D/", "D_")), ("Penalties", ("penalty/",)),
                ("Augmentation", ("augment/",)), ("Evaluation", ("eval/",)), ("Sequence training", ("reward", "beta")),
                ("Learning rates", ("lr/",)), ("Speed", ("time/it_per_s",))]
    groups = []
    for title, starts in prefixes:
        found = [k for k in keys if k.startswith(starts) and k not in NOT_CURVES]
        if title == "Evaluation":   # one plot per metric: their scales differ
            groups += [(f"Evaluation: {k[5:]}", [k]) for k in found]
        elif found:
            groups.append((title, found))
    if loss_name == "wasserstein" and "D/real" in keys and "D/fake" in keys:
        groups.insert(1, ("Wasserstein estimate E D(real) − E D(fake)", ["D/real - D/fake"]))
    return groups


def _values(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    if key == "D/real - D/fake":
        s1, real = series(rows, "D/real")
        s2, fake = series(rows, "D/fake")
        common, i1, i2 = np.intersect1d(s1, s2, return_indices=True)
        return common, real[i1] - fake[i2]
    return series(rows, key)


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def curve_svg(title: str, rows: list[dict], keys: list[str], best_step: float | None = None) -> str:
    """One plot: each key raw (faint) and smoothed, an inline SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    for i, key in enumerate(keys):
        steps, vals = _values(rows, key)
        if not len(steps):
            continue
        colour = f"C{i % 10}"
        ax.plot(steps, vals, color=colour, alpha=0.25, linewidth=1)
        ax.plot(steps, smooth(vals), color=colour, linewidth=1.6, label=key)
    if best_step is not None:
        ax.axvline(best_step, color="black", linestyle=":", linewidth=1, label=f"best checkpoint (step {best_step:g})")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    svg = _svg(fig)
    plt.close(fig)
    return svg


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def png_uri(image) -> str:
    """A PIL image as a data: URI."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return data_uri(buf.getvalue())


@dataclass
class Frame:
    label: str            # "step 500", "final"
    src: str = ""         # a data: URI (image runs)
    lines: list[str] = field(default_factory=list)   # token runs: the sentences


def _step_of(path: Path) -> int | None:
    m = re.fullmatch(r"step_(\d+)", path.stem)
    return int(m.group(1)) if m else None


def sample_frames(run: Path, limit: int = MAX_FRAMES) -> list[Frame]:
    """The fixed-z grids (or sentence files) in ``run/samples``, in step order, then ``final``; at most
    ``limit``, evenly spaced, the first and last kept."""
    folder = run / "samples"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.suffix in (".png", ".txt") and _step_of(p) is not None]
    found.sort(key=_step_of)
    if len(found) > limit:
        keep = np.unique(np.linspace(0, len(found) - 1, limit).round().astype(int))
        found = [found[i] for i in keep]
    found += [p for p in (folder / "final.png", folder / "final.txt") if p.exists()]
    frames = []
    for p in found:
        label = "final" if p.stem == "final" else f"step {_step_of(p)}"
        try:
            if p.suffix == ".png":
                frames.append(Frame(label, src=data_uri(p.read_bytes())))
            else:
                frames.append(Frame(label, lines=p.read_text(errors="replace").splitlines()[:16]))
        except OSError:   # being replaced by the run: skipped
            continue
    return frames


def nearest_panel(loaded, n: int = NEAREST, seed: int = 0) -> tuple[str | None, str]:
    """(a PNG data URI of samples each beside its nearest training image, a note); None when the data
    cannot be read where the run found it."""
    from .data import load
    from .images import grid_image, default_scale
    from .metrics.evaluate import reference_from_source, reference_ident
    from .metrics.memorisation import memorisation, nearest_pairs
    from .run import draw

    cfg = loaded.cfg
    try:
        source = load(cfg.data, cfg.owned.get(cfg.data.name))
    except GankitError as e:
        return None, f"the training data could not be read ({e}), so no nearest images"
    train = reference_from_source(source, cfg.data.name, reference_ident(cfg.data), 10_000, cfg.data).x
    x = draw(loaded, 256, seed=seed)
    values, idx, ratio = memorisation(x, train)
    image = grid_image(nearest_pairs(x, train, idx, ratio, n), nrow=2, scale=default_scale(x.shape[-1]))
    note = (f"{n} of 256 samples, the most copy-like first, each beside its nearest of {len(train):,} training images "
            f"(Euclidean, pixel space, flips included); {values['memorised_share']:.1%} of the 256 are nearer their "
            f"neighbour than a third of the mean distance to the next 50 (Carlini et al. 2023)")
    return png_uri(image), note


def class_grid_panel(loaded, per_class: int = 8, seed: int = 0, max_classes: int = 40) -> tuple[str, str]:
    """(a PNG data URI: a row of samples per class, named, a note) for a class-conditional image run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from .images import grid_image
    from .run import draw

    classes = list(loaded.recipe.classes)[:max_classes]
    labels = torch.arange(len(classes)).repeat_interleave(per_class)
    x = draw(loaded, len(labels), seed=seed, labels=labels)
    rows = [np.asarray(grid_image(x[k * per_class:(k + 1) * per_class], nrow=per_class)) for k in range(len(classes))]
    fig, axes = plt.subplots(len(classes), 1, figsize=(per_class * 0.75 + 1.2, 0.75 * len(classes) + 0.2), dpi=100,
                             squeeze=False)
    for ax, row, name in zip(axes[:, 0], rows, classes):
        ax.imshow(row, cmap="gray" if row.ndim == 2 else None, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(left=0.15, right=0.99, top=0.99, bottom=0.01, hspace=0.08)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    more = f" (the first {max_classes} of {len(loaded.recipe.classes)})" if len(loaded.recipe.classes) > max_classes else ""
    return data_uri(buf.getvalue()), f"{per_class} samples of each class{more}, from the newest checkpoint's generator"


def write_report(run: str | Path, out: str | Path | None = None, nearest: bool = True) -> Path:
    """Write ``run/report.html`` (or ``out``) and return its path."""
    from .config import to_toml
    from .run import open_run, run_checkpoint

    run = Path(run)
    if not (run / "config.toml").is_file():
        raise GankitError(f"report: '{run}' is not a gankit run directory (no config.toml)")
    out = Path(out) if out is not None else run / "report.html"
    from .assemble import from_toml

    cfg = from_toml((run / "config.toml").read_text(), str(run / "config.toml"))
    info = json.loads((run / "data.json").read_text()) if (run / "data.json").exists() else {}
    rows = read_metrics(run / "metrics.jsonl")
    loaded, notes = None, []
    latest = run_checkpoint(run)
    if latest is not None:
        loaded = open_run(latest)
    else:
        notes.append("no checkpoint yet: the panels drawn from the generator are missing")
    best = None
    best_state = run / "checkpoints" / "best" / "state.json"
    if best_state.exists():
        meta = json.loads(best_state.read_text())
        best = {"step": meta.get("step"), "key": cfg.eval.best, "value": meta.get("best")}
    loss_name = cfg.loss.name if "loss" in cfg.shared else ""
    plots = [(title, curve_svg(title, rows, keys, best["step"] if best and title.startswith("Evaluation") else None))
             for title, keys in curve_groups(rows, loss_name)]
    frames = sample_frames(run)
    kind = info.get("kind", "")
    conditioning = loaded.recipe.conditioning if loaded is not None else ""
    what = {"class": "one class a row", "image": "condition | output (| target)",
            "domains": "input | output | reconstruction", "sentences": "input → output"}.get(conditioning, "")
    grid, grid_note = class_grid_panel(loaded) if conditioning == "class" and kind == "images" else (None, "")
    near, near_note = (None, "")
    if nearest and loaded is not None and kind == "images" and conditioning in ("none", "class", "vector"):
        near, near_note = nearest_panel(loaded)
    last = rows[-1]["step"] if rows else 0
    page = _render(
        title=f"gankit report: {run.name}",
        run=str(run), recipe=cfg.train.recipe, data=_data_line(info), steps=cfg.train.steps, last_step=last,
        checkpoint=latest.name if latest is not None else "none yet", notes=notes, config=to_toml(cfg),
        plots=plots, frames=frames, frames_json=json.dumps([f.__dict__ for f in frames]), what=what,
        class_grid=grid, class_note=grid_note, best=best, nearest=near, nearest_note=near_note, kind=kind,
        final_metrics=last_evaluation(rows))
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


def _data_line(info: dict) -> str:
    from .data import DataInfo

    return f"{info['name']}: {DataInfo.from_dict(info).summary()}" if info else "unknown (no data.json)"


def last_evaluation(rows: list[dict]) -> dict[str, float]:
    """The newest ``eval/`` metrics of metrics.jsonl's rows, with their step; ``{}`` when the run never evaluated."""
    for r in reversed(rows):
        found = {k[5:]: v for k, v in r.items() if k.startswith("eval/")}
        if found:
            return {"step": r["step"], **found}
    return {}


def _render(**context) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("gankit", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["fmt"] = lambda v: f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))
    return env.get_template("report.html").render(**context)
