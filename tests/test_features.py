"""Feature extractors: the FID Inception against pytorch-fid, torchvision models against torchvision.

Real networks with seeded random weights written to files in tmp dirs; nothing is downloaded (any
attempt fails the test: ``torch.hub.download_url_to_file`` is replaced by a function that raises).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from gankit.errors import GankitError
from gankit.metrics.features import FEATURES, get_extractor
from gankit.metrics.features import inception as gk_inception
from gankit.metrics.features import torchvision_models as gk_tv  # noqa: F401  (registers "torchvision")

pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")

FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
RESNET18_FILE = "resnet18-f37072fd.pth"


def _no_download(*args, **kwargs):
    raise AssertionError(f"a test tried to download {args[:1]}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    monkeypatch.delenv(gk_inception.WEIGHTS_ENV, raising=False)


def _pytorch_fid_network() -> nn.Module:
    """pytorch-fid's FID Inception built from its own block classes, as its ``fid_inception_v3()`` does
    but without the weight download; seeded weights with unit-scale activations."""
    P = pytorch_fid_inception
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    for name, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        setattr(net, name, P.FIDInceptionA(cin, pool_features=pool))
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        setattr(net, name, P.FIDInceptionC(768, channels_7x7=c7))
    net.Mixed_7b = P.FIDInceptionE_1(1280)
    net.Mixed_7c = P.FIDInceptionE_2(2048)
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / m.weight[0].numel()) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):  # non-trivial statistics, so that BN is really tested
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.02)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
    return net.eval()


def _images():
    g = torch.Generator().manual_seed(7)
    gray = torch.rand(3, 1, 28, 28, generator=g) * 2 - 1  # ours: [-1, 1]
    rgb = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    big = torch.rand(1, 3, 400, 360, generator=g) * 2 - 1  # downsampling: antialiasing would show
    return {"gray28": gray, "rgb64": rgb, "rgb400x360": big}


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def fid_setup(tmp_path_factory):
    """A weight file (pytorch-fid's network, random weights) and pytorch-fid's own pool3 features of
    the test images, from ``InceptionV3([3], resize_input=True, normalize_input=True)``, which finds the
    file in a torch hub cache (its ordinary loading path: ``load_state_dict_from_url`` reads the cache)."""
    home = tmp_path_factory.mktemp("torch_home")
    ckpt = home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    net = _pytorch_fid_network()
    sd = net.state_dict()
    torch.save(sd, ckpt / FID_FILE)
    ref_feats = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.hub, "download_url_to_file", _no_download)
        mp.setenv("TORCH_HOME", str(home))
        ref = pytorch_fid_inception.InceptionV3([3], resize_input=True, normalize_input=True).eval()
        with torch.no_grad():
            for k, x in _images().items():
                x01 = (x + 1) / 2  # pytorch-fid's convention: [0, 1], three channels
                if x01.shape[1] == 1:
                    x01 = x01.repeat(1, 3, 1, 1)
                ref_feats[k] = ref(x01)[0].flatten(1).double().numpy()
    return {"file": ckpt / FID_FILE, "home": home, "state_dict": sd, "ref": ref_feats}


def test_state_dict_keys_match_pytorch_fid(fid_setup):
    ours = gk_inception.build_fid_inception().state_dict()
    theirs = fid_setup["state_dict"]
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    assert not any(k.startswith("AuxLogits") for k in ours) and ours["fc.weight"].shape == (1008, 2048)


def test_inception_matches_pytorch_fid_explicit_weights(fid_setup):
    ext = get_extractor("inception", weights=str(fid_setup["file"]), batch_size=2)  # 3 images: batches 2 + 1
    assert (ext.name, ext.dim, len(ext.classes)) == ("inception", 2048, 1008)
    assert ext.weights_file == fid_setup["file"]
    w = fid_setup["state_dict"]["fc.weight"].double().numpy()
    for k, x in _images().items():
        out = ext(x)
        assert out["features"].dtype == np.float64 and out["features"].shape == (len(x), 2048)
        assert out["logits"].dtype == np.float64 and out["logits"].shape == (len(x), 1008)
        d = rel_diff(out["features"], fid_setup["ref"][k])
        print(f"{k}: max |gankit - pytorch-fid| / max |pytorch-fid| = {d:.2e}")
        assert d < 1e-5, (k, d)
        assert np.abs(out["features"]).max() > 1.0  # the random net is not degenerate
        # logits: pool3 @ fc.weight.T without bias (the Inception Score convention)
        assert rel_diff(out["logits"], fid_setup["ref"][k] @ w.T) < 1e-5
    empty = ext(torch.zeros(0, 3, 32, 32))
    assert empty["features"].shape == (0, 2048) and empty["logits"].shape == (0, 1008)


def test_inception_weights_from_env_var(fid_setup, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache: only the env var can supply them
    monkeypatch.setenv(gk_inception.WEIGHTS_ENV, str(fid_setup["file"]))
    assert gk_inception.weights_path() == fid_setup["file"]
    ext = get_extractor("inception")
    assert ext.weights_file == fid_setup["file"]
    x = _images()["rgb64"][:1]
    assert rel_diff(ext(x)["features"], fid_setup["ref"]["rgb64"][:1]) < 1e-5


def test_inception_weights_from_hub_cache(fid_setup, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(fid_setup["home"]))
    expected = fid_setup["home"] / "hub" / "checkpoints" / FID_FILE
    assert gk_inception.weights_path() == expected
    ext = get_extractor("inception")
    assert ext.weights_file == expected
    x = _images()["gray28"][:1]
    assert rel_diff(ext(x)["features"], fid_setup["ref"]["gray28"][:1]) < 1e-5


def test_hub_cache_accepts_torch_fidelity_name(fid_setup, monkeypatch, tmp_path):
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / gk_inception.WEIGHTS_FILE_FIDELITY).symlink_to(fid_setup["file"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert gk_inception.weights_path() == ckpt / gk_inception.WEIGHTS_FILE_FIDELITY
    net, path = gk_inception.load_fid_inception()
    assert path == ckpt / gk_inception.WEIGHTS_FILE_FIDELITY
    assert torch.equal(net.fc.weight, fid_setup["state_dict"]["fc.weight"])


def test_missing_weights_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert gk_inception.weights_path() is None
    with pytest.raises(GankitError) as e:
        get_extractor("inception")
    msg = str(e.value)
    assert "\n" not in msg
    assert str(tmp_path / "hub" / "checkpoints" / FID_FILE) in msg
    assert "GANKIT_INCEPTION_WEIGHTS" in msg and gk_inception.WEIGHTS_URL in msg
    # a source that names a missing file is reported as such, not silently skipped
    monkeypatch.setenv(gk_inception.WEIGHTS_ENV, str(tmp_path / "nope.pth"))
    assert gk_inception.weights_path() is None
    with pytest.raises(GankitError, match="GANKIT_INCEPTION_WEIGHTS=.*nope.pth"):
        get_extractor("inception")
    with pytest.raises(GankitError, match="weights=.*other.pth"):
        get_extractor("inception", weights=str(tmp_path / "other.pth"))


def test_corrupt_or_wrong_weights_file(tmp_path):
    bad = tmp_path / FID_FILE
    bad.write_bytes(b"this is not a torch file" * 100)
    with pytest.raises(GankitError) as e:
        get_extractor("inception", weights=str(bad))
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    wrong = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), wrong)
    with pytest.raises(GankitError) as e:
        get_extractor("inception", weights=str(wrong))
    assert str(wrong) in str(e.value) and "\n" not in str(e.value)


def test_bad_images_and_options(fid_setup):
    ext = get_extractor("inception", weights=str(fid_setup["file"]))
    with pytest.raises(GankitError, match="shape"):
        ext(torch.zeros(2, 4, 8, 8))
    with pytest.raises(GankitError, match="float"):
        ext(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(GankitError, match="batch_size"):
        get_extractor("inception", weights=str(fid_setup["file"]), batch_size=0)


# ------------------------------------------------------------------------------------ torchvision
@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(3)
    net = torchvision.models.resnet18(weights=None)
    with torch.no_grad():  # non-trivial BN statistics
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    path = tmp_path_factory.mktemp("tv") / "my_resnet18.pth"
    torch.save(net.state_dict(), path)
    return path


def _resnet18_by_hand(path, x):
    net = torchvision.models.resnet18(weights=None)
    net.load_state_dict(torch.load(path, weights_only=True))
    net.eval()
    from torchvision.transforms.v2 import functional as F
    x01 = (x + 1) / 2
    if x01.shape[1] == 1:
        x01 = x01.repeat(1, 3, 1, 1)
    x01 = F.resize(x01, [224, 224], interpolation=torchvision.transforms.InterpolationMode.BILINEAR, antialias=True)
    y = F.normalize(x01, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    with torch.no_grad():
        h = net.maxpool(net.relu(net.bn1(net.conv1(y))))
        h = net.layer4(net.layer3(net.layer2(net.layer1(h))))
        feats = torch.flatten(net.avgpool(h), 1)
        logits = net(y)
    return feats.double().numpy(), logits.double().numpy()


def test_torchvision_resnet18_matches_by_hand(resnet18_file):
    ext = get_extractor("torchvision", model="resnet18", weights=str(resnet18_file), batch_size=3)
    assert ext.dim == 512 and len(ext.classes) == 1000 and ext.classes[0] == "tench"
    assert ext.name == "torchvision-resnet18@my_resnet18"  # not the official weights: a distinct cache key
    g = torch.Generator().manual_seed(11)
    for x in (torch.rand(5, 3, 32, 32, generator=g) * 2 - 1, torch.rand(4, 1, 28, 28, generator=g) * 2 - 1):
        out = ext(x)
        feats, logits = _resnet18_by_hand(resnet18_file, x)
        assert out["features"].shape == (len(x), 512) and out["logits"].shape == (len(x), 1000)
        assert out["features"].dtype == np.float64
        assert rel_diff(out["features"], feats) < 1e-5
        assert rel_diff(out["logits"], logits) < 1e-5
    # another layer: layer4 maps averaged over space are the penultimate features of a ResNet
    ext4 = get_extractor("torchvision", model="resnet18", weights=str(resnet18_file), layer="layer4")
    assert ext4.dim == 512 and ext4.name == "torchvision-resnet18-layer4@my_resnet18"
    x = torch.rand(2, 3, 40, 40, generator=g) * 2 - 1
    a, b = ext4(x), ext(x)
    assert rel_diff(a["features"], b["features"]) < 1e-5 and rel_diff(a["logits"], b["logits"]) < 1e-5


def test_torchvision_weights_from_hub_cache(resnet18_file, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(GankitError) as e:
        get_extractor("torchvision", model="resnet18")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "hub" / "checkpoints" / RESNET18_FILE) in msg
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / RESNET18_FILE).symlink_to(resnet18_file)
    ext = get_extractor("torchvision", model="resnet18")
    assert ext.name == "torchvision-resnet18" and ext.weights_file == ckpt / RESNET18_FILE
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert rel_diff(ext(x)["features"], _resnet18_by_hand(resnet18_file, x)[0]) < 1e-5


def test_torchvision_errors(resnet18_file, tmp_path):
    with pytest.raises(GankitError, match="unknown torchvision model 'resnet19'.*resnet18"):
        get_extractor("torchvision", model="resnet19")
    with pytest.raises(GankitError, match="neither an existing file"):
        get_extractor("torchvision", model="resnet18", weights=str(tmp_path / "missing.pth"))
    with pytest.raises(GankitError, match=r"do not fit torchvision model 'resnet34'"):
        get_extractor("torchvision", model="resnet34", weights=str(resnet18_file))
    with pytest.raises(GankitError, match="no module 'layer9'"):
        get_extractor("torchvision", model="resnet18", weights=str(resnet18_file), layer="layer9")


def test_registered_names():
    assert "inception" in FEATURES and "torchvision" in FEATURES


def test_gankit_eval_fid_equals_pytorch_fid_on_the_same_folders(fid_setup, monkeypatch, tmp_path, capsys):
    """End to end, the same weight file: `gankit eval A --ref B --metrics fid` vs pytorch-fid's
    `calculate_fid_given_paths([A, B])` on two folders of non-square RGB PNGs."""
    import json

    from PIL import Image
    from pytorch_fid.fid_score import calculate_fid_given_paths

    from gankit.cli import main

    rng = np.random.default_rng(0)
    for folder, n, shift in (("a", 24, 0), ("b", 30, 60)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            img = np.clip(rng.normal(128 + shift, 50, size=(40, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img, "RGB").save(tmp_path / folder / f"{i:03d}.png")
    monkeypatch.setenv("TORCH_HOME", str(fid_setup["home"]))
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    expected = calculate_fid_given_paths([str(tmp_path / "a"), str(tmp_path / "b")], batch_size=8,
                                         device="cpu", dims=2048, num_workers=0)
    assert main(["eval", str(tmp_path / "a"), "--ref", str(tmp_path / "b"), "--metrics", "fid",
                 "--features", "inception", "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)["fid"]
    assert ours == pytest.approx(expected, rel=1e-6)
    # the same through an explicit weight path on the command line, with an empty hub cache
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_home"))
    assert main(["eval", str(tmp_path / "a"), "--ref", str(tmp_path / "b"), "--metrics", "fid",
                 "--features", f"inception:{fid_setup['file']}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fid"] == pytest.approx(expected, rel=1e-6)
