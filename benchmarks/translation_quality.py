"""CycleGAN / StarGAN runs scored on their data's held-out split (what `gankit eval RUN` prints).

    python benchmarks/translation_quality.py RUN_DIR [RUN_DIR ...]

For each run and each target domain t, the held-out images of the other domains are translated into t
by the EMA generator(s) and back (gankit.metrics.translation): the share an independent domain
classifier (scikit-learn SVC on pixels, fitted to the training split) files under t; when the domains
share labels, the share whose digit an independent SVC trained on real images of t reads as the source
image's digit (content preservation); the L1 cycle error; FID against the held-out real images of t in
the domain classifier's feature space (Inception when its weights are installed). Prints one markdown
row per run and target.
"""
import argparse

from gankit.evaluation import evaluate_translation_run
from gankit.run import open_run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    print("| run | target domain | domain reached | content kept | cycle L1 | FID |")
    print("|---|---|---|---|---|---|")
    for run in a.runs:
        values, notes = evaluate_translation_run(run)
        for t in list(open_run(run).recipe.domains) + ["mean"]:
            key = (lambda m: m if t == "mean" else f"{m}/{t}")
            content = f"{100 * values[key('content_acc')]:.1f}%" if key("content_acc") in values else "–"
            print(f"| {run} | {t} | {100 * values[key('domain_acc')]:.1f}% | {content} | "
                  f"{values[key('cycle_l1')]:.3f} | {values[key('fid')]:.2f} |", flush=True)
        for n in notes:
            print(f"<!-- {n} -->")


if __name__ == "__main__":
    main()
