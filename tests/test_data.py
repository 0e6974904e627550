"""gankit.data: toy distributions, loaders on real local files, and the exactly-resumable batch stream."""
from __future__ import annotations

import json
import math
import os
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data import DATASETS, Batches, StreamSource, TensorSource, ToySource, load
from gankit.data.folder import build_folder
from gankit.data.toy import grid25, gauss1d, ring8, swissroll
from gankit.data.vision import data_root
from gankit.errors import ConfigError, DataError


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------------------------ helpers

def draw(b: Batches, n: int) -> list[dict[str, torch.Tensor]]:
    return [next(b) for _ in range(n)]


def assert_same(a: list[dict[str, torch.Tensor]], b: list[dict[str, torch.Tensor]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            assert x[k].dtype == y[k].dtype
            assert torch.equal(x[k], y[k]), k


def check_resume(source, batch_size: int, n: int, seed: int = 3) -> list[dict[str, torch.Tensor]]:
    """2n batches in one go == n batches, save, new Batches, load, n batches (bitwise)."""
    whole = Batches(source, batch_size, seed)
    full = draw(whole, 2 * n)
    whole.close()
    first = Batches(source, batch_size, seed)
    head = draw(first, n)
    state = json.loads(json.dumps(first.state_dict()))
    first.close()
    assert state == {"batches": n}
    second = Batches(source, batch_size, seed)
    second.load_state_dict(state)
    tail = draw(second, n)
    second.close()
    assert_same(full, head + tail)
    return full


def save_png(path, array: np.ndarray, mode: str | None = None) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


def gray(h: int, w: int, value: int = 0) -> np.ndarray:
    a = np.full((h, w), value, dtype=np.uint8)
    a[0, 0] = 255 - value
    return a


def rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------ toy

@pytest.mark.parametrize("name, dim, k", [("gauss1d", 1, 2), ("ring8", 2, 8), ("grid25", 2, 25), ("swissroll", 2, 0)])
def test_toy_shapes_and_source(name, dim, k):
    source = load(DataConfig(name=name))
    assert isinstance(source, ToySource)
    info = source.info
    assert (info.name, info.kind, info.shape, info.size) == (name, "points", (dim,), None)
    assert info.classes == [str(i) for i in range(k)]
    x, comp = source.distribution.sample(100, torch.Generator().manual_seed(0))
    assert x.shape == (100, dim) and x.dtype == torch.float32
    assert comp.shape == (100,) and comp.dtype == torch.int64
    batch = next(Batches(source, 32, seed=0))
    assert batch["x"].shape == (32, dim) and batch["x"].dtype == torch.float32
    if k:
        assert batch["y"].shape == (32,) and batch["y"].dtype == torch.int64
        assert 0 <= int(batch["y"].min()) and int(batch["y"].max()) < k
    else:
        assert "y" not in batch


def test_ring8_and_grid25_means_match_spec():
    s = math.sqrt(0.5)
    ring = torch.tensor([[1, 0], [s, s], [0, 1], [-s, s], [-1, 0], [-s, -s], [0, -1], [s, -s]], dtype=torch.float32)
    assert torch.allclose(ring8().means, ring, atol=1e-7)
    assert ring8().std == 0.01
    grid = torch.tensor([[a, b] for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)], dtype=torch.float32)
    assert torch.equal(grid25().means, grid)
    assert grid25().std == 0.05
    assert torch.equal(gauss1d().means, torch.tensor([[-2.0], [2.0]])) and gauss1d().std == 0.5


@pytest.mark.parametrize("make", [gauss1d, ring8, grid25])
def test_mixture_empirical_spread(make):
    dist = make()
    x, comp = dist.sample(20_000, torch.Generator().manual_seed(1))
    nearest = dist.nearest(x)
    assert torch.equal(nearest, comp)  # modes are far apart relative to std
    resid = x - dist.means[nearest]
    assert abs(resid.std().item() / dist.std - 1) < 0.05
    counts = torch.bincount(comp, minlength=len(dist.means)).float()
    expected = 20_000 / len(dist.means)
    assert ((counts - expected).abs() < 5 * math.sqrt(expected)).all()  # equal weights


def test_gauss1d_log_prob_matches_scipy_and_integrates():
    from scipy.stats import norm

    dist = gauss1d()
    xs = np.linspace(-8, 8, 20_001)
    ours = dist.log_prob(torch.tensor(xs).unsqueeze(1)).numpy()
    ref = np.log(0.5 * norm.pdf(xs, -2, 0.5) + 0.5 * norm.pdf(xs, 2, 0.5))
    assert np.allclose(ours, ref, atol=1e-9)
    assert abs(np.trapezoid(np.exp(ours), xs) - 1) < 1e-6
    assert dist.log_prob(torch.zeros(3, 1)).dtype == torch.float32


def test_ring8_log_prob_is_a_density():
    dist = ring8()
    x = dist.means[:1] + torch.tensor([[0.003, -0.004]], dtype=torch.float64)
    var = 0.01 ** 2
    expected = math.log(1 / 8) - math.log(2 * math.pi * var) - 0.5 * (0.003 ** 2 + 0.004 ** 2) / var
    assert abs(dist.log_prob(x).item() - expected) < 1e-9


def test_swissroll_shape():
    dist = swissroll()
    assert dist.means is None
    x, _ = dist.sample(5000, torch.Generator().manual_seed(0))
    r = x.norm(dim=1)
    assert r.min() > 1.5 * math.pi / 5 - 0.3 and r.max() < 4.5 * math.pi / 5 + 0.3


# ------------------------------------------------------------------------------------ digits

def test_digits():
    source = load(DataConfig(name="digits"))
    assert isinstance(source, TensorSource)
    info = source.info
    assert (info.size, info.shape, info.kind) == (1797, (1, 8, 8), "images")
    assert info.classes == [str(i) for i in range(10)]
    data = source.all()
    assert data["x"].dtype == torch.float32 and data["x"].shape == (1797, 1, 8, 8)
    assert data["x"].min() == -1 and data["x"].max() == 1
    assert sorted(data["y"].unique().tolist()) == list(range(10))
    big = load(DataConfig(name="digits", size=16, channels=3))
    assert big.info.shape == (3, 16, 16)
    x = big.all()["x"]
    assert x.min() >= -1 and x.max() <= 1
    assert torch.equal(x[:, 0], x[:, 2])


def test_unknown_data_set_lists_valid_names():
    with pytest.raises(ConfigError) as e:
        load(DataConfig(name="minst"))
    msg = one_line_error(e)
    assert "'minst'" in msg and "mnist" in msg and "folder" in msg


# ------------------------------------------------------------------------------------ folder

@pytest.fixture
def image_tree(tmp_path):
    root = tmp_path / "pics"
    save_png(str(root / "cat" / "a.png"), rgb(20, 20, 0))
    os.makedirs(root / "cat", exist_ok=True)
    Image.fromarray(rgb(16, 24, 1)).save(root / "cat" / "b.jpg", quality=95)
    save_png(str(root / "dog" / "c.png"), gray(12, 12))
    rgba = np.concatenate([rgb(20, 20, 2), np.full((20, 20, 1), 128, np.uint8)], axis=2)
    save_png(str(root / "dog" / "sub" / "d.png"), rgba, "RGBA")
    Image.fromarray(gray(10, 10, 40)).convert("P").save(root / "dog" / "e.PNG")
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


def test_folder_labels_channels_and_mixed_sizes(image_tree):
    with pytest.raises(DataError) as e:
        load(DataConfig(name="folder", path=str(image_tree)))
    assert "data.size" in one_line_error(e)

    source = load(DataConfig(name="folder", path=str(image_tree), size=8))
    assert isinstance(source, TensorSource) and source.x.dtype == torch.uint8
    info = source.info
    assert (info.kind, info.shape, info.size, info.classes) == ("images", (3, 8, 8), 5, ["cat", "dog"])
    assert source.y.tolist() == [0, 0, 1, 1, 1]  # cat/a, cat/b, dog/c, dog/e, dog/sub/d
    x = source.all()["x"]
    assert x.min() >= -1 and x.max() <= 1
    # the gray image becomes three equal channels
    assert torch.equal(x[2, 0], x[2, 1]) and torch.equal(x[2, 1], x[2, 2])
    batch = next(Batches(source, 4, seed=0))
    assert batch["x"].shape == (4, 3, 8, 8) and batch["y"].dtype == torch.int64

    one = load(DataConfig(name="folder", path=str(image_tree), size=8, channels=1))
    assert one.info.shape == (1, 8, 8)


def test_folder_gray_native_size_exact_pixels(tmp_path):
    root = tmp_path / "g"
    for i in range(3):
        save_png(str(root / f"{i}.png"), gray(10, 10, value=0))
    a16 = np.full((10, 10), 65535, dtype=np.uint16)
    a16[0, 0] = 0
    Image.fromarray(a16).save(root / "3.png")  # 16-bit grey
    source = load(DataConfig(name="folder", path=str(root)))
    info = source.info
    assert info.shape == (1, 10, 10) and info.classes == [] and info.size == 4
    x = source.all()["x"]
    assert x[0, 0, 0, 0] == 1.0 and x[0, 0, 5, 5] == -1.0
    assert x[3, 0, 0, 0] == -1.0 and x[3, 0, 5, 5] == 1.0
    assert "y" not in next(Batches(source, 2, seed=0))


def test_folder_root_level_image_makes_it_unlabelled(image_tree):
    save_png(str(image_tree / "top.png"), rgb(20, 20, 5))
    source = load(DataConfig(name="folder", path=str(image_tree), size=8))
    assert source.info.classes == [] and source.y is None and source.info.size == 6


def test_folder_errors_name_the_path(tmp_path):
    with pytest.raises(DataError) as e:
        load(DataConfig(name="folder", path=""))
    assert one_line_error(e) == "data.path is empty: the 'folder' data set needs --set data.path=DIR"

    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as e:
        load(DataConfig(name="folder", path=str(missing)))
    assert one_line_error(e) == f"data.path: folder '{missing}' does not exist"

    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("hi")
    with pytest.raises(DataError) as e:
        load(DataConfig(name="folder", path=str(empty)))
    assert one_line_error(e) == f"data.path: no images (png, jpg, jpeg, webp, bmp) under '{empty}'"

    bad = tmp_path / "bad"
    save_png(str(bad / "ok.png"), gray(8, 8))
    (bad / "x.png").write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    for max_bytes in (2 ** 31, 0):  # in memory and streamed: both check every file at load time
        with pytest.raises(DataError) as e:
            build_folder(str(bad), max_bytes=max_bytes)
        assert one_line_error(e).startswith(f"cannot read image '{bad / 'x.png'}': ")


def test_folder_truncated_image_is_reported(tmp_path):
    root = tmp_path / "t"
    save_png(str(root / "a.png"), rgb(32, 32, 0))
    data = (root / "a.png").read_bytes()
    (root / "b.png").write_bytes(data[: len(data) // 2])  # header fine, pixels cut off
    with pytest.raises(DataError) as e:
        load(DataConfig(name="folder", path=str(root)))
    assert f"'{root / 'b.png'}'" in one_line_error(e)


def test_folder_streamed_equals_in_memory(image_tree):
    memory = build_folder(str(image_tree), size=8)
    stream = build_folder(str(image_tree), size=8, max_bytes=0)
    assert isinstance(stream, StreamSource)
    assert stream.info == memory.info
    assert_same(draw(Batches(memory, 3, seed=5), 4), draw(Batches(stream, 3, seed=5), 4))


# ------------------------------------------------------------------------------------ mnist family

def write_idx(path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack(">i", 2051 if array.ndim == 3 else 2049))
        f.write(struct.pack(f">{array.ndim}i", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def write_mnist(root, folder: str, n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    write_idx(raw / "train-images-idx3-ubyte", images)
    write_idx(raw / "train-labels-idx1-ubyte", labels)
    write_idx(raw / "t10k-images-idx3-ubyte", images[:5])
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[:5])
    return images, labels


@pytest.mark.parametrize("name, folder, first_class", [("mnist", "MNIST", "0 - zero"),
                                                        ("fashion-mnist", "FashionMNIST", "T-shirt/top")])
def test_mnist_family_round_trip(tmp_path, name, folder, first_class):
    images, labels = write_mnist(tmp_path, folder)
    source = load(DataConfig(name=name, path=str(tmp_path)))
    assert isinstance(source, TensorSource)
    assert source.info.shape == (1, 28, 28) and source.info.size == 30
    assert source.info.classes[0] == first_class and len(source.info.classes) == 10
    assert torch.equal(source.x[:, 0], torch.from_numpy(images))
    assert source.y.tolist() == labels.tolist()
    x = source.all()["x"]
    assert torch.allclose(x[:, 0], torch.from_numpy(images).float() / 127.5 - 1)
    small = load(DataConfig(name=name, path=str(tmp_path), size=14, channels=3))
    assert small.info.shape == (3, 14, 14) and small.x.dtype == torch.uint8


def test_mnist_absent_names_download_option(tmp_path):
    with pytest.raises(DataError) as e:
        load(DataConfig(name="mnist", path=str(tmp_path)))
    msg = one_line_error(e)
    assert msg.startswith(f"mnist: data not found under '{tmp_path}'")
    assert "data.download=true" in msg and "MNIST/raw/" in msg


def test_data_root_default_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "store"))
    assert data_root(DataConfig()) == str(tmp_path / "store")
    assert data_root(DataConfig(path=str(tmp_path / "here"))) == str(tmp_path / "here")
    monkeypatch.delenv("GANKIT_DATA")
    assert data_root(DataConfig()) == os.path.expanduser(os.path.join("~", ".cache", "gankit", "data"))


# ------------------------------------------------------------------------------------ cifar10

def test_cifar10_binary(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    records = []
    for i in range(1, 6):
        rec = rng.integers(0, 256, (3, 3073), dtype=np.uint8)
        rec[:, 0] = rng.integers(0, 10, 3)
        records.append(rec)
        rec.tofile(folder / f"data_batch_{i}.bin")
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    source = load(DataConfig(name="cifar10", path=str(tmp_path)))
    assert source.info.shape == (3, 32, 32) and source.info.size == 15 and source.info.classes == names
    # record 1 of batch 2 is sample 4; green plane starts at byte 1 + 1024; pixel (row 5, col 7)
    rec = records[1][1]
    assert source.y[4].item() == rec[0]
    assert source.x[4, 1, 5, 7].item() == rec[1 + 1024 + 5 * 32 + 7]
    assert source.x[4, 2, 31, 31].item() == rec[3072]
    assert torch.equal(source.y, torch.from_numpy(np.concatenate([r[:, 0] for r in records]).astype(np.int64)))

    (folder / "data_batch_3.bin").write_bytes(b"\0" * 100)
    with pytest.raises(DataError) as e:
        load(DataConfig(name="cifar10", path=str(tmp_path)))
    assert "data_batch_3.bin" in one_line_error(e)


def test_cifar10_absent(tmp_path):
    with pytest.raises(DataError) as e:
        load(DataConfig(name="cifar10", path=str(tmp_path)))
    msg = one_line_error(e)
    assert str(tmp_path) in msg and "data.download=true" in msg


# ------------------------------------------------------------------------------------ celeba

def test_celeba_folder(tmp_path):
    base = tmp_path / "celeba"
    images = base / "img_align_celeba"
    images.mkdir(parents=True)
    names = [f"Attr_{i}" for i in range(40)]
    rows, colours = [], [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    for i, colour in enumerate(colours):
        Image.new("RGB", (18, 22), colour).save(images / f"{i + 1:06d}.jpg", quality=95)
        rows.append(f"{i + 1:06d}.jpg " + " ".join("1" if (i + j) % 3 == 0 else "-1" for j in range(40)))
    (base / "list_attr_celeba.txt").write_text("3\n" + " ".join(names) + " \n" + "\n".join(rows) + "\n")
    source = load(DataConfig(name="celeba", path=str(tmp_path), size=8))
    assert isinstance(source, StreamSource)
    assert source.info.shape == (3, 8, 8) and source.info.size == 3 and source.info.classes == []
    ds = source.dataset
    assert ds.attribute_names == names and ds.attributes.dtype == torch.int8 and ds.attributes.shape == (3, 40)
    assert ds.attributes[1, 2].item() == 1 and ds.attributes[1, 0].item() == -1
    batch = next(Batches(source, 3, seed=0))
    assert batch["x"].shape == (3, 3, 8, 8) and "y" not in batch
    got = batch["x"].mean(dim=(2, 3))
    want = torch.tensor(colours, dtype=torch.float32) / 127.5 - 1
    dist = torch.cdist(got, want)                  # batch order is a permutation of the 3 faces
    assert sorted(dist.argmin(1).tolist()) == [0, 1, 2] and dist.min(1).values.max() < 0.05
    assert load(DataConfig(name="celeba", path=str(tmp_path))).info.shape == (3, 64, 64)


# ------------------------------------------------------------------------------------ batches

def test_epoch_permutation_scheme():
    x = torch.arange(10, dtype=torch.float32).unsqueeze(1)
    b = Batches(TensorSource(x), 4, seed=7)
    seen = torch.cat([next(b)["x"][:, 0] for _ in range(5)]).long()
    p0 = torch.randperm(10, generator=torch.Generator().manual_seed(7 * 1_000_003 + 0))
    p1 = torch.randperm(10, generator=torch.Generator().manual_seed(7 * 1_000_003 + 1))
    assert torch.equal(seen, torch.cat([p0, p1]))  # the third batch wraps into epoch 1
    assert b.epoch == 2.0


def test_resume_tensor_source():
    source = load(DataConfig(name="digits"))
    check_resume(source, batch_size=64, n=20)  # crosses the epoch boundary at batch 28
    small = TensorSource(torch.randn(13, 2), torch.arange(13) % 3, classes=["a", "b", "c"], name="small")
    check_resume(small, batch_size=5, n=7)
    full = check_resume(small, batch_size=32, n=2)  # batches bigger than the set
    assert full[0]["x"].shape == (32, 2)


@pytest.mark.parametrize("name", ["gauss1d", "ring8", "grid25", "swissroll"])
def test_resume_toy_source(name):
    full = check_resume(load(DataConfig(name=name)), batch_size=16, n=5)
    assert not torch.equal(full[0]["x"], full[1]["x"])
    other = next(Batches(load(DataConfig(name=name)), 16, seed=4))
    assert not torch.equal(full[0]["x"], other["x"])


def test_resume_stream_source(image_tree):
    source = build_folder(str(image_tree), size=8, max_bytes=0)
    check_resume(source, batch_size=2, n=4)


def test_stream_with_workers_matches_no_workers(tmp_path):
    root = tmp_path / "w"
    for i in range(12):
        save_png(str(root / f"c{i % 2}" / f"{i:02d}.png"), gray(8, 8, value=i * 20))
    zero = build_folder(str(root), max_bytes=0, workers=0)
    two = build_folder(str(root), max_bytes=0, workers=2)
    expected = draw(Batches(zero, 5, seed=1), 6)
    check_resume(two, batch_size=5, n=3, seed=1)
    b = Batches(two, 5, seed=1)
    try:
        assert_same(expected, draw(b, 6))
    finally:
        b.close()


def test_batches_leave_global_rng_alone(image_tree):
    sources = [load(DataConfig(name="digits")), load(DataConfig(name="ring8")),
               build_folder(str(image_tree), size=8, max_bytes=0)]
    torch.manual_seed(123)
    before = torch.get_rng_state()
    for source in sources:
        b = Batches(source, 4, seed=0)
        draw(b, 3)
        b.load_state_dict({"batches": 10})
        draw(b, 2)
        b.close()
    assert torch.equal(torch.get_rng_state(), before)


def test_batches_bad_arguments():
    source = load(DataConfig(name="ring8"))
    with pytest.raises(ConfigError) as e:
        Batches(source, 0, seed=0)
    assert "data.batch_size" in one_line_error(e)
    with pytest.raises(DataError):
        Batches(source, 4, seed=0).load_state_dict({"batches": -1})


def test_registry_lists_all_loaders():
    assert {"gauss1d", "ring8", "grid25", "swissroll", "digits", "folder", "mnist", "fashion-mnist",
            "cifar10", "celeba"} <= set(DATASETS.names())


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_decode_error_is_one_line(tmp_path, workers):
    root = tmp_path / "s"
    save_png(str(root / "a.png"), rgb(32, 32, 0))
    data = (root / "a.png").read_bytes()
    (root / "b.png").write_bytes(data[: len(data) // 2])  # the header check passes, decoding fails
    source = build_folder(str(root), max_bytes=0, workers=workers)
    b = Batches(source, 2, seed=0)
    with pytest.raises(DataError) as e:
        next(b)
    b.close()
    assert one_line_error(e).startswith(f"cannot read image '{root / 'b.png'}': ")


def test_folder_keeps_native_non_square_size_and_dcgan_asks_for_a_square(tmp_path):
    from gankit.assemble import resolve
    from gankit.nets import build

    for i in range(4):
        Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8), "RGB").save(tmp_path / f"{i}.png")
    src = build_folder(str(tmp_path))
    assert src.info.shape == (3, 20, 30) and src.all()["x"].shape == (4, 3, 20, 30)
    with pytest.raises(ConfigError, match="architecture 'dcgan' needs square images.*set data.size"):
        build(resolve("folder").model, src.info.shape)
    assert build_folder(str(tmp_path), size=16).info.shape == (3, 16, 16)
