"""SeqGAN: rollouts batched over every completion equal one completion at a time, the policy-gradient loss by
hand, and a run that crosses its stages (MLE, D pre-training, adversarial) resumes exactly."""
from __future__ import annotations

import torch
from safetensors.torch import load_file

from gankit.cli import main
from gankit.config import ModelConfig
from gankit.data.text import EOS, PAD
from gankit.nets.sequence import RNNOptions, SEQUENCE_NETS, sequence_cnn
from gankit.recipes.seqgan import _continue, pad_after_eos, policy_gradient_loss, rollout_rewards
from gankit.training import checkpoint

from test_text import QUIET, sets, write_corpus


def small_nets(vocab=9, length=6, cell="lstm"):
    torch.manual_seed(0)
    G = SEQUENCE_NETS.get(cell)(ModelConfig(g_width=8), vocab, length, EOS, PAD, RNNOptions(embed=4))
    D = sequence_cnn(vocab, 4, 0.05, 0.0, length).eval()
    return G, D


def test_batched_rollouts_equal_one_completion_at_a_time():
    for cell in ("lstm", "gru"):
        G, D = small_nets(cell=cell)
        y = torch.randint(3, 9, (3, 6))
        n = 4
        torch.manual_seed(5)
        got = rollout_rewards(G, D, y, n)
        torch.manual_seed(5)   # the same uniforms, in the same order: one (3 n, L - t) draw per prefix length t
        want = torch.empty(3, 6)
        with torch.no_grad():
            for t in range(1, 6):
                u = torch.rand(3 * n, 6 - t)
                scores = []
                for r in range(3 * n):
                    row = y[r // n]
                    logits, state = G.step(torch.tensor([G.start]), None, 0)
                    for k in range(t):
                        logits, state = G.step(row[k:k + 1], state, k + 1)
                    tail = _continue(G, logits, state, u[r:r + 1], t)
                    full = pad_after_eos(torch.cat([row[None, :t], tail], dim=1))
                    assert torch.equal(full[0, :t], pad_after_eos(row[None, :t])[0])   # completions keep the prefix
                    scores.append(torch.sigmoid(D(full))[0])
                want[:, t - 1] = torch.stack(scores).view(3, n).mean(dim=1)
            want[:, 5] = torch.sigmoid(D(y))
        assert torch.allclose(got, want, atol=1e-6), cell


def test_policy_gradient_loss_by_hand():
    G, _ = small_nets()
    y = torch.tensor([[4, 5, EOS, PAD, PAD, PAD], [6, 7, 8, 3, EOS, PAD]])
    rewards = torch.rand(2, 6)
    loss = policy_gradient_loss(G, y, rewards)
    logp = torch.log_softmax(G(G.shifted(y)), dim=2).gather(2, y[:, :, None])[:, :, 0]
    adv = rewards - rewards.mean(0)
    mask = y != PAD
    assert torch.allclose(loss, -(logp * adv)[mask].sum() / 8)
    same = policy_gradient_loss(G, y, torch.ones(2, 6))   # every sequence rewarded alike: no signal
    same.backward()
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in G.parameters())


def test_seqgan_trains_across_its_stages_and_resumes_exactly(tmp_path, capsys):
    f = tmp_path / "c.txt"
    write_corpus(f, n=200)
    common = sets(QUIET + ["train.recipe=seqgan", "data.name=text", f"data.path={f}", "data.batch_size=16",
                           "seqgan.pretrain=4", "seqgan.d_pretrain=3", "seqgan.rollouts=3", "train.d_steps=2",
                           "train.max_seconds=0", "train.ckpt_every=5", "seqgan.d_scale=0.05"])
    straight, split = tmp_path / "a", tmp_path / "b"
    assert main(["train", "--preset", "seqgan", "--out", str(straight), *common, *sets(["train.steps=11"])]) == 0
    assert main(["train", "--preset", "seqgan", "--out", str(split), *common, *sets(["train.steps=5"])]) == 0   # in D_pre
    assert main(["train", "--out", str(split), "--resume", "--set", "train.steps=11"]) == 0
    for part in ("weights", "state"):
        a = load_file(str(checkpoint.latest(straight / "checkpoints") / f"{part}.safetensors"))
        b = load_file(str(checkpoint.latest(split / "checkpoints") / f"{part}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    import json
    rows = [json.loads(r) for r in (straight / "metrics.jsonl").read_text().splitlines()]
    assert "loss/G_pg" in rows[-1] and "reward" in rows[-1]
    out = tmp_path / "s.txt"
    assert main(["sample", str(straight), "--n", "20", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 20
