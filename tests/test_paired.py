"""Image conditions (paired.task), the U-Net / PatchGAN pair, the paired recipe, `gankit translate`, and
the paired metrics against torchmetrics."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from gankit.cli import main
from gankit.config import ModelConfig
from gankit.data import Batches, load
from gankit.config import DataConfig
from gankit.data.paired import PAIR_TASKS, condition_shape, degrade, hole_mask
from gankit.metrics.paired import l1, psnr, ssim
from gankit.nets import build_translator

FAST = ["--set", "train.progress=false", "--set", "train.log_every=5", "--set", "train.sample_every=10",
        "--set", "train.ckpt_every=10"]


def test_degradations_by_hand():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 8, 8) * 2 - 1
    sr = degrade(x, "superres4", g)
    assert sr.shape == (3, 3, 2, 2) and torch.allclose(sr[1, 2, 0, 1], x[1, 2, :4, 4:].mean())
    grey = degrade(x, "colorize", g)
    assert torch.allclose(grey[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])
    a = degrade(x, "inpaint", g)
    m = a[:, 3:]
    assert a.shape == (3, 4, 8, 8) and (m.sum(dim=(1, 2, 3)) == 16).all()          # one 4x4 hole each
    assert torch.equal(a[:, :3] * (1 - m), x * (1 - m)) and (a[:, :3][m.expand(-1, 3, -1, -1) > 0] == 0).all()
    noisy = degrade(x, "denoise", torch.Generator().manual_seed(1))
    assert abs(float((noisy - x).std()) - 0.5) < 0.05
    for task in PAIR_TASKS:
        assert degrade(x, task, torch.Generator().manual_seed(2)).shape[1:] == condition_shape(task, (3, 8, 8))


def test_holes_are_uniform_over_positions():
    m = hole_mask(20000, 8, 8, torch.Generator().manual_seed(0))
    tops = m[:, 0].any(dim=2).float().argmax(dim=1)
    counts = np.bincount(tops.numpy(), minlength=5)
    assert counts.shape == (5,) and counts.min() > 3600 and counts.max() < 4400


def test_paired_batches_are_a_function_of_seed_and_position():
    src = load(DataConfig(name="digits"))
    a = Batches(src, 16, seed=3, pair="inpaint")
    first = [next(a) for _ in range(3)]
    b = Batches(src, 16, seed=3, pair="inpaint")
    b.load_state_dict({"batches": 2})
    assert torch.equal(next(b)["a"], first[2]["a"])
    assert not torch.equal(first[0]["a"][:, 1:], first[1]["a"][:, 1:])


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64, 256])
def test_unet_and_patchgan_shapes(size):
    torch.manual_seed(0)
    G, D = build_translator(ModelConfig(arch="unet", z_dim=3, g_width=4, d_width=4), (2, size, size), (3, size, size))
    a, z = torch.randn(2, 2, size, size), torch.randn(2, 3)
    x = G(a, z)
    assert x.shape == (2, 3, size, size) and x.abs().max() <= 1
    patches = D(torch.cat([a, x], dim=1))
    assert patches.shape[0] == 2 and patches.dim() == 2
    if size == 256:
        assert patches.shape[1] == 30 * 30   # the 70x70 PatchGAN of pix2pix gives 30x30 scores on 256 px


def test_unet_skip_connections_carry_the_input():
    """Change one input pixel: the output changes there (a U-Net without skips could not be that local)."""
    torch.manual_seed(0)
    G, _ = build_translator(ModelConfig(arch="unet", z_dim=0, g_width=8, d_width=8), (1, 16, 16), (1, 16, 16))
    G.eval()
    a = torch.zeros(1, 1, 16, 16)
    b = a.clone()
    b[0, 0, 3, 5] = 1.0
    diff = (G(b) - G(a)).abs()[0, 0]
    assert diff[3, 5] > 0 and diff[3, 5] >= diff.max() * 0.05


@pytest.mark.parametrize("sets", [[], ["paired.adv=0"], ["paired.task=superres2", "model.z_dim=0"],
                                  ["paired.task=denoise", "loss.name=lsgan"], ["paired.task=colorize", "data.channels=3"]])
def test_paired_recipe_trains(tmp_path, sets):
    run = tmp_path / "r"
    argv = ["train", "--preset", "digits-inpaint", "--out", str(run), "--set", "train.steps=10", "--set", "train.grid=8", *FAST]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(v) for r in rows for v in r.values())
    assert ("loss/D" in rows[-1]) == ("paired.adv=0" not in sets) and "loss/L1" in rows[-1]
    w, h = Image.open(run / "samples" / "final.png").size
    assert w > h    # input | output pairs, 4 per row, 2 rows


def test_paired_resume_is_bitwise_exact(tmp_path):
    from safetensors.torch import load_file
    from gankit.training import checkpoint
    straight, split = tmp_path / "a", tmp_path / "b"
    base = ["train", "--preset", "digits-inpaint", "--set", "train.grid=8", *FAST]
    assert main(base + ["--out", str(straight), "--set", "train.steps=20"]) == 0
    assert main(base + ["--out", str(split), "--set", "train.steps=10"]) == 0
    assert main(["train", "--out", str(split), "--resume", "--set", "train.steps=20"]) == 0
    w1 = load_file(str(checkpoint.latest(straight / "checkpoints") / "weights.safetensors"))
    w2 = load_file(str(checkpoint.latest(split / "checkpoints") / "weights.safetensors"))
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_translate_degrade_mask_and_errors(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "--preset", "digits-inpaint", "--out", str(run), "--set", "train.steps=5", "--set", "train.grid=8", *FAST]) == 0
    from sklearn.datasets import load_digits
    imgs = tmp_path / "in"
    (imgs / "sub").mkdir(parents=True)
    for i, img in enumerate(load_digits().images[:6]):
        Image.fromarray((img * 255 / 16).astype(np.uint8), "L").save(imgs / ("sub" if i % 2 else "") / f"{i}.png")
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 255
    Image.fromarray(mask, "L").save(tmp_path / "mask.png")
    assert main(["translate", str(run), str(imgs), "--out", str(tmp_path / "o1"), "--degrade"]) == 0
    assert sorted(p.relative_to(tmp_path / "o1").as_posix() for p in (tmp_path / "o1").rglob("*.png")) == \
        ["0.png", "2.png", "4.png", "grid.png", "sub/1.png", "sub/3.png", "sub/5.png"]
    assert Image.open(tmp_path / "o1" / "sub" / "1.png").size == (8, 8)
    assert main(["translate", str(run), str(imgs / "0.png"), "--out", str(tmp_path / "o2"), "--mask", str(tmp_path / "mask.png")]) == 0
    # gankit eval of a paired run translates the run's own (degraded) data
    assert main(["eval", str(run), "--ref", "digits", "--n", "50", "--metrics", "memorisation", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_samples"] == 50
    capsys.readouterr()
    assert main(["translate", str(run), str(imgs), "--out", str(tmp_path / "o3")]) == 2
    assert "needs --mask" in capsys.readouterr().err
    for argv in (["sample", str(run), "--out", str(tmp_path / "s.png")], ["sample", str(run), "--class", "3", "--out", str(tmp_path / "s.png")]):
        assert main(argv) == 2
        assert "use gankit translate" in capsys.readouterr().err
    assert main(["translate", str(run), str(tmp_path / "nothing"), "--out", str(tmp_path / "o3")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    uncond = tmp_path / "u"
    assert main(["train", "--preset", "ring8", "--out", str(uncond), "--set", "train.steps=2", *FAST]) == 0
    capsys.readouterr()
    assert main(["translate", str(uncond), str(imgs), "--out", str(tmp_path / "o4")]) == 2
    assert "not image-conditioned" in capsys.readouterr().err


@pytest.mark.parametrize("sets, message", [
    (["paired.task=colorize"], "paired.task=colorize: needs RGB images"),
    (["paired.task=blur"], "paired.task: unknown value 'blur'"),
    (["paired.task="], "train.recipe=paired: needs pairs"),
    (["paired.adv=0", "paired.l1=0"], "nothing would be learnt"),
    (["model.arch=dcgan"], "unknown image-to-image architecture 'dcgan'; valid: resnet, unet"),
    (["paired.task=superres4", "data.size=10"], "must be a multiple of 4"),
])
def test_paired_config_errors(tmp_path, capsys, sets, message):
    argv = ["train", "--preset", "digits-inpaint", "--out", str(tmp_path / "r"), *FAST]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


def test_psnr_ssim_l1_against_torchmetrics_and_by_hand():
    torch.manual_seed(0)
    for shape in [(4, 1, 8, 8), (3, 3, 32, 32), (2, 3, 17, 23)]:
        x = torch.rand(shape) * 2 - 1
        y = (x + 0.3 * torch.randn(shape)).clamp(-1, 1)
        ref = torch.stack([peak_signal_noise_ratio(y[i:i + 1].double(), x[i:i + 1].double(), data_range=2.0)
                           for i in range(shape[0])]).mean()
        assert abs(psnr(y, x) - float(ref)) < 1e-5   # torchmetrics converts ln to log10 in float32
        assert abs(ssim(y, x) - float(structural_similarity_index_measure(y.double(), x.double(), data_range=2.0))) < 1e-12
        assert abs(l1(y, x) - float((y - x).abs().mean())) < 1e-7
    a = torch.zeros(1, 1, 8, 8)
    b = a.clone()
    b[0, 0, 0, 0] = 1.0                                  # MSE = 1/64, range 2: PSNR = 10 log10(4 · 64)
    assert abs(psnr(b, a) - 10 * np.log10(256)) < 1e-9
    assert ssim(a + 0.5, a + 0.5) == pytest.approx(1.0)
