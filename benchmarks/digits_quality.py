"""Score digit images with an independent classifier (scikit-learn SVC trained on the real 8×8 digits).

    python benchmarks/digits_quality.py RUN_DIR [--n 2000]     # samples drawn from a gankit run
    python benchmarks/digits_quality.py FOLDER/                # PNGs of any size (e.g. `gankit sample --out FOLDER/`)

Images are reduced to 8×8 (box filter) and scaled to the digits' 0..16 range. Prints the number of
samples per predicted class, the mean max-probability (confidence) and the share classified with
probability > 0.9, for the samples and for the real digits.
"""
import argparse
import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.svm import SVC


def classifier(images: np.ndarray | None = None, labels: np.ndarray | None = None) -> SVC:
    """SVC on (N, 8, 8) images in [0, 16]; by default the real 8×8 digits."""
    if images is None:
        d = load_digits()
        images, labels = d.images, d.target
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SVC(gamma=0.001, C=10, probability=True, random_state=0).fit(images.reshape(len(images), -1), labels)


def score(images: np.ndarray, clf: SVC) -> dict:
    """images: (N, 8, 8) in [0, 16]."""
    p = clf.predict_proba(images.reshape(len(images), -1))
    pred = p.argmax(1)
    return {"n": len(images), "counts": np.bincount(pred, minlength=10).tolist(),
            "confidence": round(float(p.max(1).mean()), 3),
            "confident_share": round(float((p.max(1) > 0.9).mean()), 3)}


def folder_images(folder: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 8, 8) in [0, 16] from every PNG under folder; labels from sub-folder names if they are digits."""
    files = sorted(folder.rglob("*.png"))
    imgs = np.stack([np.asarray(Image.open(f).convert("L").resize((8, 8), Image.BOX), np.float64) * 16 / 255
                     for f in files])
    labels = [f.parent.name for f in files]
    return imgs, (np.array(labels, int) if all(s.isdigit() for s in labels) and folder not in [f.parent for f in files] else None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source", help="a gankit run directory or a folder of PNGs")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--train-on", help="a labelled PNG folder (class sub-folders 0..9) to train the classifier "
                                       "on instead of the 8×8 digits; its held-out accuracy is printed")
    args = ap.parse_args()
    if args.train_on:
        ref, ref_labels = folder_images(Path(args.train_on))
        idx = np.random.default_rng(0).permutation(len(ref))
        half = len(ref) // 2
        held_out = classifier(ref[idx[:half]], ref_labels[idx[:half]])
        acc = (held_out.predict(ref[idx[half:]].reshape(half + len(ref) % 2, -1)) == ref_labels[idx[half:]]).mean()
        print(f"classifier trained on half of {args.train_on}: held-out accuracy {acc:.3f}")
        clf = classifier(ref, ref_labels)
    else:
        clf = classifier()
    src = Path(args.source)
    if (src / "checkpoints").exists():
        from gankit.run import draw, open_run

        x = draw(open_run(src), args.n, seed=123)
        if x.shape[-1] != 8:
            import torch.nn.functional as F

            x = F.adaptive_avg_pool2d(x, 8)
        imgs, labels = (x[:, 0].numpy() + 1) * 8, None
    else:
        imgs, labels = folder_images(src)
    s = score(imgs, clf)
    if labels is not None:
        s["accuracy_vs_folder_labels"] = round(float((clf.predict(imgs.reshape(len(imgs), -1)) == labels).mean()), 3)
    print("samples", s)
    if not args.train_on:
        print("real   ", score(load_digits().images, clf))


if __name__ == "__main__":
    main()
