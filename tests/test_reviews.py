"""The movie-review corpus: read out of a source distribution laid out as vaderSentiment's (built here, never
downloaded), fetched by a real pip from a local package folder, normalised, split by a seed, cached; and
without it, one line saying what to run."""
from __future__ import annotations

import io
import os
import tarfile

import pytest

from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import load
from gankit.data.reviews import INNER, MEMBER, SENTENCES, ReviewsOptions, normalise
from gankit.data.text import decode_all


def ground_truth() -> bytes:
    """SENTENCES lines "id<TAB>rating<TAB>sentence", CRLF-separated like the real file, the last without one."""
    words = ["good", "bad", "film", "plot", "actors", "slow", "funny", "dull"]
    lines = []
    for i in range(SENTENCES):
        n = 3 + i % 30   # 3..32 words: some longer than max_len
        sentence = " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(n))
        if i == 0:
            sentence = "The Rock is ''Conan'', isn't he?"
        if i == 1:
            sentence = "Two\u2028lines in one."
        lines.append(f"{i + 1}\t{(i % 9) - 4:.5f}\t{sentence}")
    return "\r\n".join(lines).encode("utf-8")


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_sdist(folder, version="9.9"):
    """vaderSentiment-<version>.tar.gz: a setup.py and additional_resources/hutto_ICWSM_2014.tar.gz."""
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        _add(tar, f"hutto_ICWSM_2014/{MEMBER}", ground_truth())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"vaderSentiment-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, f"vaderSentiment-{version}/setup.py",
             f'from setuptools import setup\nsetup(name="vaderSentiment", version="{version}")\n'.encode())
        _add(tar, f"vaderSentiment-{version}/{INNER}", inner.getvalue())
    return path


def test_normalise():
    assert normalise("The Rock is ''Conan'', isn't he?") == 'the rock is " conan " , isn\'t he ?'
    assert normalise("Two\u2028lines") == "two lines"


def test_corpus_from_a_local_source_distribution(tmp_path):
    sdist = write_sdist(tmp_path / "reviews")
    cfg = DataConfig(name="reviews", path=str(tmp_path))
    source = load(cfg, ReviewsOptions(max_len=20))
    kept = sum(1 for i in range(SENTENCES) if 3 + i % 30 <= 20)   # the two hand-written sentences are short too
    assert len(source.x) + len(source.test) == kept
    assert len(source.test) == int(kept * 0.1)
    cached = tmp_path / "reviews" / "sentences.tsv"
    lines = cached.read_text(encoding="utf-8").split("\n")
    assert len(lines) == SENTENCES + 1 and lines[0] == '-4\tthe rock is " conan " , isn\'t he ?'
    assert lines[1] == "-3\ttwo lines in one ."
    sdist.unlink()                                   # the cache alone serves from now on
    again = load(cfg, ReviewsOptions(max_len=20))
    assert decode_all(again.x[:50], again.info) == decode_all(source.x[:50], source.info)
    other = load(cfg, ReviewsOptions(max_len=20, test_share=0.2))
    assert len(other.test) == int(kept * 0.2)


def test_download_runs_pip_and_offline_says_what_to_do(tmp_path, monkeypatch, capsys):
    pytest.importorskip("setuptools")                # pip reads the sdist's metadata with the venv's setuptools
    index = tmp_path / "index"
    write_sdist(index)
    monkeypatch.setenv("PIP_NO_INDEX", "1")          # a real pip, a local package folder, no network
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")
    run = tmp_path / "run"
    common = ["--set", "data.name=reviews", "--set", "train.steps=2", "--set", "train.progress=false"]
    assert main(["train", "--preset", "mle", *common, "--set", f"data.path={tmp_path / 'a'}",
                 "--set", "data.download=true", "--out", str(run)]) == 0
    assert (tmp_path / "a" / "reviews" / "sentences.tsv").exists()

    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty"))   # offline: pip finds nothing
    capsys.readouterr()
    assert main(["train", "--preset", "mle", *common, "--set", f"data.path={tmp_path / 'b'}",
                 "--set", "data.download=true", "--out", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip download vaderSentiment --no-deps --no-binary :all:" in err
    assert not (tmp_path / "b").exists() and not (tmp_path / "run2").exists()

    assert main(["train", "--preset", "mle", *common, "--set", f"data.path={tmp_path / 'c'}",
                 "--out", str(tmp_path / "run3")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--set data.download=true" in err and not os.path.exists(tmp_path / "run3")
