"""Token sequences from text files (vocabulary, <eos>, held-out split, bad files) and the maximum-likelihood
recipe on them: it learns, samples text, resumes exactly and refuses a changed vocabulary."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gankit.assemble import resolve
from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import load
from gankit.data.text import EOS, PAD, SPECIALS, UNK, TextOptions, build_vocab, decode, encode, lengths
from gankit.errors import DataError
from gankit.training import checkpoint

QUIET = ["train.progress=false", "train.log_every=10", "train.sample_every=20", "train.ckpt_every=20"]


def sets(items):
    return [a for s in items for a in ("--set", s)]


def write_corpus(path, n=300, seed=0):
    """Lines of a tiny grammar: 'the <noun> <verb>s' or 'a <adj> <noun> <verb>s', words from small sets."""
    rng = np.random.default_rng(seed)
    nouns, verbs, adjs = ["cat", "dog", "bird"], ["run", "sing", "sleep"], ["big", "red"]
    lines = []
    for _ in range(n):
        if rng.random() < 0.5:
            lines.append(f"the {rng.choice(nouns)} {rng.choice(verbs)}s")
        else:
            lines.append(f"a {rng.choice(adjs)} {rng.choice(nouns)} {rng.choice(verbs)}s")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def test_vocabulary_is_by_frequency_then_token_and_caps_to_unk():
    seqs = [["b", "a", "c"], ["a", "b"], ["a", "d"]]
    assert build_vocab(seqs, 10) == [*SPECIALS, "a", "b", "c", "d"]
    vocab = build_vocab(seqs, 2)
    assert vocab == [*SPECIALS, "a", "b"]
    x = encode(seqs, vocab, 3, "t")
    assert x.tolist() == [[4, 3, UNK, EOS], [3, 4, EOS, PAD], [3, UNK, EOS, PAD]]
    assert decode(x[0], vocab, "word") == "b a <unk>" and decode(x[1], vocab, "char") == "ab"
    assert lengths(x).tolist() == [3, 2, 2]


def test_text_files_at_word_and_char_level_with_a_held_out_split(tmp_path):
    f = tmp_path / "c.txt"
    lines = write_corpus(f, n=100)
    words = load(DataConfig(name="text", path=str(f)), TextOptions(level="word", test_share=0.2))
    assert words.info.kind == "tokens" and len(words) == 80 and len(words.test) == 20
    longest = max(len(line.split()) for line in lines[:80])
    assert words.info.shape == (longest + 1,)
    assert [decode(r, words.info.vocab, "word") for r in words.x[:3]] == lines[:3]
    assert [decode(r, words.info.vocab, "word") for r in words.test[:2]] == lines[80:82]
    chars = load(DataConfig(name="text", path=str(f)), TextOptions(level="char", test_share=0.0))
    assert len(chars) == 100 and decode(chars.x[5], chars.info.vocab, "char") == lines[5]
    assert set(chars.info.vocab[len(SPECIALS):]) == set("".join(lines))
    other = tmp_path / "held.txt"
    other.write_text("the cat runs\nthe zebra runs\n")
    split = load(DataConfig(name="text", path=str(f)), TextOptions(test_path=str(other)))
    assert len(split) == 100 and decode(split.test[1], split.info.vocab, "word") == "the <unk> runs"


@pytest.mark.parametrize("content, message", [
    (b"", "no lines of text"),
    (b"\n  \n", "no lines of text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "a binary file, not text"),
    (b"caf\xe9 au lait\n", "not UTF-8 text"),
])
def test_bad_text_files_are_one_line_errors(tmp_path, capsys, content, message):
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    out = tmp_path / "run"
    assert main(["train", "--preset", "digits", "--out", str(out), *sets(["train.recipe=mle", "data.name=text",
                                                                         f"data.path={f}"])]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()


def test_lines_longer_than_max_len_and_image_options_are_refused(tmp_path, capsys):
    f = tmp_path / "c.txt"
    write_corpus(f, n=20)
    base = ["train", "--preset", "digits", "--out", str(tmp_path / "r"),
            *sets(["train.recipe=mle", "data.name=text", f"data.path={f}"])]
    assert main(base + sets(["data.max_len=3"])) == 2
    assert "more than data.max_len=3" in capsys.readouterr().err
    assert main(base + sets(["data.size=8"])) == 2
    assert "data.size does not apply to data set 'text' (token sequences)" in capsys.readouterr().err
    assert main(base + sets(["data.level=syllable"])) == 2
    assert "data.level: unknown value 'syllable'; valid: char, word" in capsys.readouterr().err
    cfg = resolve(overrides=["train.recipe=mle", "data.name=text", f"data.path={f}", "data.level=char"])
    assert cfg.table("text").level == "char" and "level" in cfg.to_dict()["data"] and "size" not in cfg.to_dict()["data"]
    assert set(cfg.tables()) == {"data", "model", "optim", "train", "eval", "mle", "lstm", "text"}


def test_mle_learns_samples_text_and_resumes_exactly(tmp_path, capsys):
    f = tmp_path / "c.txt"
    lines = write_corpus(f, n=400)
    common = sets(QUIET + ["train.recipe=mle", "data.name=text", f"data.path={f}", "model.g_width=32",
                           "optim.lr_g=0.01", "data.batch_size=32"])
    straight, split = tmp_path / "a", tmp_path / "b"
    assert main(["train", "--preset", "digits", "--out", str(straight), *common, *sets(["train.steps=120"])]) == 0
    assert main(["train", "--preset", "digits", "--out", str(split), *common, *sets(["train.steps=60"])]) == 0
    assert main(["train", "--out", str(split), "--resume", "--set", "train.steps=120"]) == 0
    for part in ("weights", "state"):
        a = load_file(str(checkpoint.latest(straight / "checkpoints") / f"{part}.safetensors"))
        b = load_file(str(checkpoint.latest(split / "checkpoints") / f"{part}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    rows = [json.loads(r) for r in (straight / "metrics.jsonl").read_text().splitlines()]
    # the grammar's entropy is 3.24 nats a sentence of 4.5 tokens (with <eos>): 0.72 a token; uniform over its
    # vocabulary of 13 would be log 13 = 2.56
    assert rows[-1]["loss/NLL"] < 1.1 < rows[0]["loss/NLL"] < math.log(13) + 0.1
    assert (straight / "samples" / "final.txt").exists()
    out = tmp_path / "s.txt"
    assert main(["sample", str(straight), "--n", "200", "--out", str(out)]) == 0
    samples = out.read_text(encoding="utf-8").splitlines()
    assert len(samples) == 200
    grammatical = [s for s in samples if s in set(lines) or s.split()[:1] in (["the"], ["a"])]
    assert len(grammatical) > 150
    cold = tmp_path / "cold.txt"
    assert main(["sample", str(straight), "--n", "200", "--out", str(cold), "--temperature", "0.3"]) == 0
    assert len(set(cold.read_text().splitlines())) < len(set(samples))   # a lower temperature: less diverse
    assert main(["sample", str(straight), "--n", "5", "--out", str(tmp_path / "ids.npy")]) == 0
    assert np.load(tmp_path / "ids.npy").dtype == np.int64
    capsys.readouterr()
    assert main(["sample", str(straight), "--n", "5", "--out", str(tmp_path / "g.png")]) == 2
    assert "token sequences; valid: a .txt file" in capsys.readouterr().err
    assert main(["eval", str(straight), "--n", "300", "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert values["unique_share"] <= 1 and 0 < values["bleu_2"] <= 1 and 0 < values["self_bleu_2"] <= 1
    assert abs(values["nll_test"] - rows[-1]["loss/NLL"]) < 0.2   # held-out lines of the same grammar
    assert main(["eval", str(out), "--ref", str(f), "--json", "--metrics", "text"]) == 0
    assert json.loads(capsys.readouterr().out)["bleu_2"] > 0.5
    # a different corpus under the same run: a different vocabulary, refused
    f.write_text("completely different words here\n" * 50)
    assert main(["train", "--out", str(split), "--resume", "--set", "train.steps=140"]) == 2
    assert "the vocabulary built from the data" in capsys.readouterr().err


def test_mle_preset_on_the_oracle_and_its_metrics(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "o"
    assert main(["train", "--preset", "mle", "--out", str(run), *sets(QUIET + ["train.steps=6", "train.max_seconds=0"])]) == 0
    assert main(["eval", str(run), "--n", "200", "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    # an untrained model over 5,003 ids: near uniform under the oracle and on the held-out data
    assert 7.0 < values["nll_oracle"] < 12 and 7.0 < values["nll_test"] < 9.5 and values["unique_share"] == 1.0
    samples = tmp_path / "s.txt"
    assert main(["sample", str(run), "--n", "50", "--out", str(samples)]) == 0
    assert all(len(line.split()) <= 20 for line in samples.read_text().splitlines())
    capsys.readouterr()
    assert main(["eval", str(samples), "--ref", "oracle", "--json", "--metrics", "nll_oracle"]) == 0
    assert 7.0 < json.loads(capsys.readouterr().out)["nll_oracle"] < 12


def test_a_text_option_on_an_image_run_is_refused():
    from gankit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown config key 'data.level'"):
        resolve("digits", overrides=["data.level=word"])
