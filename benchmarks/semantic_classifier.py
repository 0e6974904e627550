"""How well CycleGAN's semantic-term classifier F_A reads domain B, with and without information maximisation.

    python benchmarks/semantic_classifier.py [--steps 3000] [--seeds 0 1 2] [--im 0 1]

F_A is trained exactly as in a ``digits-cyclegan`` run — the recipe's own F phases on the preset's
class-balanced batches (32 handwritten + 32 printed digits), no generators — with
``cyclegan.semantic_im`` = each value of ``--im``. Prints F_A's accuracy on the held-out handwritten
digits (domain A, whose labels it learns) and on the held-out printed digits (domain B, whose labels it
never sees), per seed and as the median. The printed labels are used only to score.
"""
import argparse
import statistics

import torch

from gankit.assemble import resolve
from gankit.data import Batches, load
from gankit.recipes.cyclegan import CycleGAN


def accuracies(im: float, steps: int, seed: int) -> tuple[float, float]:
    cfg = resolve("digits-cyclegan", overrides=[f"cyclegan.semantic_im={im}", f"train.seed={seed}"])
    train, test = load(cfg.data), load(resolve("digits-cyclegan", overrides=["data.split=test"]).data)
    torch.manual_seed(seed)
    recipe = CycleGAN(cfg, train.info, torch.device("cpu"))
    batches = Batches(train, cfg.data.batch_size, seed=seed, by_class=True)
    f_phases = [p for p in recipe.phases if p.name.startswith("F")]   # F (A's labels), F_B (cyclegan.semantic_im)
    for step in range(steps):
        batch = next(batches)
        for phase in f_phases:
            if step >= phase.start:
                phase.fn(batch)
    recipe.F_A.eval()
    with torch.no_grad():
        read = recipe.F_A(test.x).argmax(1)
    return tuple(float((read[test.y == k] == test.content[test.y == k]).float().mean()) for k in (0, 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--im", type=float, nargs="+", default=[0.0, 1.0])
    a = ap.parse_args()
    print("| cyclegan.semantic_im | F_A on handwritten (A) | F_A on printed (B) | per seed (printed) |")
    print("|---|---|---|---|")
    for im in a.im:
        res = [accuracies(im, a.steps, s) for s in a.seeds]
        print(f"| {im:g} | {100 * statistics.median(r[0] for r in res):.1f}% | "
              f"{100 * statistics.median(r[1] for r in res):.1f}% | "
              f"{', '.join(f'{100 * r[1]:.1f}%' for r in res)} |", flush=True)


if __name__ == "__main__":
    main()
