"""Text style transfer (train.recipe=textcycle): the noise, the decoder's two modes agreeing, the gradient
through the discrete step, exact resume across the stages, and the commands."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from gankit.cli import main
from gankit.config import ModelConfig
from gankit.data.text import EOS, PAD, restore_unknown
from gankit.nets.seq2seq import AttentionGRU, AttentionGRUOptions, Seq2Seq
from gankit.recipes.textcycle import decode_tokens, noised, sequence_log_prob

from test_text import sets
from test_transfer_metrics import write_pairs

SMALL = ["train.recipe=textcycle", "data.name=text-pairs", "model.g_width=16", "gru-attention.embed=8",
         "textcycle.d_scale=0.02", "textcycle.d_embed=8", "data.batch_size=8", "train.progress=false",
         "train.log_every=1", "train.sample_every=1000", "train.ckpt_every=4", "train.max_seconds=0"]


def sentences(rows: list[list[int]], length: int) -> torch.Tensor:
    x = torch.full((len(rows), length), PAD)
    for i, r in enumerate(rows):
        x[i, :len(r) + 1] = torch.tensor(r + [EOS])
    return x


def test_noise_drops_and_moves_words_within_bounds():
    torch.manual_seed(0)
    rows = [list(range(3, 3 + n)) for n in (1, 4, 9, 12)] * 50
    x = sentences(rows, 14)
    assert torch.equal(noised(x, 0.0, 0.0), x)                      # no noise: the sentence itself
    y = noised(x, 0.3, 3.0)
    for src, out, words in zip(x, y, rows):
        n = (out == EOS).nonzero()[0, 0].item()
        assert 1 <= n <= len(words) and (out[n + 1:] == PAD).all()   # a word at least, <eos>, then padding
        kept = out[:n].tolist()
        assert len(set(kept)) == n and set(kept) <= set(words)     # words of the sentence, each once
        order = [words.index(w) for w in kept]
        # a word's rank among the kept ones moves by at most the shuffle (3) from its rank among them before
        ranks = sorted(order)
        assert all(abs(ranks.index(o) - i) <= 3 for i, o in enumerate(order))
    lengths = (y == EOS).float().argmax(dim=1)
    assert 0.6 < lengths.sum().item() / sum(map(len, rows)) < 0.8    # about 30 % of the words dropped


def small_g(vocab=11):
    torch.manual_seed(0)
    m, o = ModelConfig(g_width=12), AttentionGRUOptions(embed=6)
    return Seq2Seq(AttentionGRU.encoder(m, vocab, PAD, o), AttentionGRU.decoder(m, vocab, EOS, PAD, o))


def test_the_copying_decoder_mixes_writing_with_the_attention_on_the_source_words():
    G = small_g()
    G.encoder.eval(), G.decoder.eval()
    src = sentences([[3, 4, 3, 5], [6, 7]], 6)
    memory = G.encode(src)
    inputs = sentences([[3, 5], [7, 8]], 3)
    dec = G.decoder
    logp = G(memory, inputs)
    assert torch.allclose(logp.exp().sum(dim=2), torch.ones(2, 3), atol=1e-5)   # a distribution at every step
    assert torch.isinf(logp[..., PAD]).all()                                     # <pad> is never written

    # by hand: the decoder states, the attention over the source, the switch and the two distributions
    h, _ = dec.rnn(dec.embed(inputs), memory.initial)
    scores = (h @ memory.keys.transpose(1, 2)).masked_fill(src[:, None, :] == PAD, float("-inf"))
    att = torch.softmax(scores, dim=2)
    both = torch.cat([h, att @ memory.states], dim=2)
    write = torch.sigmoid(dec.switch(both))
    written = torch.softmax(dec.head(torch.tanh(dec.combine(both))) + dec.never, dim=2)
    copied = torch.zeros_like(written)
    for n in range(2):
        for s_, w in enumerate(src[n].tolist()):
            copied[n, :, w] += att[n, :, s_]                 # a word twice in the source (3) gets both shares
    assert torch.allclose(logp.exp(), write * written + (1 - write) * copied, atol=1e-6)
    with torch.no_grad():                                    # a switch shut: only the source's words
        dec.switch.bias.fill_(-60.0)
    p = G(memory, inputs).exp()
    assert torch.allclose(p[0, :, [1, 3, 4, 5]].sum(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(p[1, :, [1, 6, 7]].sum(dim=1), torch.ones(3), atol=1e-5)


def test_unknown_words_are_given_back_in_order():
    vocab = ["<pad>", "<eos>", "<unk>", "the", "film", "is"]
    outputs = [["the", "<unk>", "film", "is", "<unk>", "<unk>"], ["<unk>", "is"]]
    sources = [["the", "zany", "film", "is", "so", "bonkers"], ["film", "is"]]
    assert restore_unknown(outputs, sources, vocab) == [["the", "zany", "film", "is", "so", "bonkers"],
                                                        ["<unk>", "is"]]   # the second source has no such word


def test_decoding_step_by_step_equals_teacher_forcing_and_relaxed_tokens_are_one_hots():
    G = small_g()
    G.encoder.eval(), G.decoder.eval()
    src = sentences([[3, 4, 5], [6, 7, 8, 9, 10], [4]], 7)
    memory = G.encode(src)
    y, _ = decode_tokens(G, memory, 7, "greedy")
    logits = G(memory, G.shifted(y))
    chosen = (y != PAD)[:, :-1]     # the last position's <eos> may be forced
    # every greedy token is the argmax of the teacher-forced logits after its own prefix
    assert chosen.sum() > 3 and torch.equal(logits.argmax(dim=2)[:, :-1][chosen], y[:, :-1][chosen])
    # the sequences' log-probability is the sum of the step-by-step log-softmaxes
    state, ids, total = None, torch.full((3,), EOS), torch.zeros(3)
    for t in range(7):
        step_logits, state = G.step(memory, ids, state)
        lp = torch.log_softmax(step_logits, dim=1).gather(1, y[:, t:t + 1])[:, 0]
        total += torch.where(y[:, t] != PAD, lp, torch.zeros_like(lp))
        ids = y[:, t]
    assert torch.allclose(sequence_log_prob(G, src, y), total, atol=1e-5)

    torch.manual_seed(1)
    G.encoder.train(), G.decoder.train()
    ids, hot = decode_tokens(G, G.encode(src), 7, "relaxed", tau=0.5)
    assert torch.equal(hot.detach(), F.one_hot(ids, 11).float())       # forward: the hard draws themselves
    assert (ids[:, -1] == EOS).logical_or(ids[:, -1] == PAD).all()       # every sentence ends
    (hot * torch.randn_like(hot)).sum().backward()                        # backward: the relaxation's gradient
    assert G.decoder.head.weight.grad.abs().sum() > 0 and G.encoder.embed.weight.grad.abs().sum() > 0


def test_textcycle_trains_resumes_exactly_across_its_stages_and_translates(tmp_path, capsys):
    data = write_pairs(tmp_path / "d")
    common = sets(SMALL + [f"data.path={data}", "textcycle.pretrain=3", "textcycle.d_pretrain=2"])
    straight, split = tmp_path / "a", tmp_path / "b"
    assert main(["train", "--preset", "mle", "--out", str(straight), *common, "--set", "train.steps=8"]) == 0
    assert main(["train", "--preset", "mle", "--out", str(split), *common, "--set", "train.steps=4"]) == 0
    assert main(["train", "--out", str(split), "--resume", "--set", "train.steps=8"]) == 0
    for part in ("weights", "state"):
        a = load_file(str(straight / "checkpoints" / "step_0000008" / f"{part}.safetensors"))
        b = load_file(str(split / "checkpoints" / "step_0000008" / f"{part}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    logged = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert "loss/DAE" in logged[0] and "loss/D_A" in logged[1] and "loss/G_adv" not in logged[2]
    assert {"loss/G_adv", "loss/cycle", "loss/D_B"} <= logged[3].keys()
    grid = (straight / "samples" / "final.txt").read_text().splitlines()
    assert grid[0].startswith("A -> B: the ") and " => " in grid[0]

    inputs = tmp_path / "in.txt"
    inputs.write_text("the film is dull and bad\n\nthe plot is awful and a word never seen\n")
    out = tmp_path / "out" / "o.txt"
    capsys.readouterr()
    assert main(["translate", str(straight), str(inputs), "--out", str(out), "--direction", "BtoA", "--show"]) == 0
    said = capsys.readouterr().out.splitlines()
    lines = out.read_text().split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""   # one line per input line, the blank one kept
    assert "from 'B' to 'A'" in said[0] and said[1].startswith("the film is dull and bad  →  ") and len(said) == 3

    assert main(["eval", str(straight), "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    for key in ("transfer_acc/AtoB", "content_bleu/BtoA", "fluency_ppl", "g2", "classifier_acc", "copy_g2",
                "retrieval_transfer_acc/AtoB"):
        assert key in values, key
    assert values["copy_content_bleu"] == pytest.approx(100) and values["classifier_acc"] == 100


def test_periodic_evaluation_keeps_the_best_transfer(tmp_path):
    data = write_pairs(tmp_path / "d")
    run = tmp_path / "r"
    assert main(["train", "--preset", "mle", "--out", str(run), *sets(SMALL + [
        f"data.path={data}", "textcycle.pretrain=2", "textcycle.d_pretrain=1", "train.steps=4", "eval.every=2",
        "eval.best=g2"])]) == 0
    evaluated = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "eval/g2" in line]
    assert len(evaluated) == 2 and (run / "checkpoints" / "best").is_dir()


@pytest.mark.parametrize("args, message", [
    (["--direction", "sideways"], "valid: AtoB, BtoA"),
    (["--mask", "m.png"], "--mask is for image runs"),
    (["--to", "C"], "not a domain of this run"),
])
def test_bad_text_translations_are_one_line_errors(tmp_path, capsys, args, message):
    data = write_pairs(tmp_path / "d")
    run = tmp_path / "r"
    assert main(["train", "--preset", "mle", "--out", str(run), *sets(SMALL + [f"data.path={data}", "train.steps=1"])]) == 0
    inputs = tmp_path / "in.txt"
    inputs.write_text("the film is fun\n")
    capsys.readouterr()
    out = tmp_path / "o.txt"
    assert main(["translate", str(run), str(inputs), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


def test_textcycle_needs_two_styles(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("a b c\n" * 40)
    assert main(["train", "--preset", "mle", "--out", str(tmp_path / "r"), *sets(
        ["train.recipe=textcycle", "data.name=text", f"data.path={tmp_path / 't.txt'}", "train.steps=1"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs sentences of two styles" in err[0]
