import pytest

from gankit import config as C
from gankit.errors import ConfigError


def test_default_preset_is_digits_and_round_trips_through_toml():
    cfg = C.resolve()
    assert cfg.data.name == "digits" and cfg.model.arch == "mlp"
    again = C.from_toml(C.to_toml(cfg), "written")
    assert again == cfg


def test_every_preset_resolves():
    names = C.preset_names()
    for required in ("digits", "ring8", "grid25", "gauss1d", "folder", "mnist", "fashion-mnist", "cifar10"):
        assert required in names
    for name in names:
        cfg = C.resolve(name)
        assert C.preset_summary(name)
        assert cfg.data.name


def test_overrides_are_typed():
    cfg = C.resolve("ring8", overrides=["train.steps=12", "optim.lr_d=3e-4", "model.spectral_norm=true",
                                         "optim.betas_g=0.0,0.9", "loss.name=hinge"], seed=5)
    assert cfg.train.steps == 12 and cfg.optim.lr_d == 3e-4 and cfg.model.spectral_norm is True
    assert cfg.optim.betas_g == [0.0, 0.9] and cfg.loss.name == "hinge" and cfg.train.seed == 5


def test_config_file_then_set(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[data]\nname = "grid25"\n[model]\narch = "mlp"\n[train]\nsteps = 7\n')
    cfg = C.resolve(config_file=str(f), overrides=["train.steps=9"])
    assert (cfg.data.name, cfg.model.arch, cfg.train.steps) == ("grid25", "mlp", 9)
    cfg = C.resolve("digits", config_file=str(f))
    assert cfg.train.grid == 100 and cfg.data.name == "grid25"  # preset first, then the file


@pytest.mark.parametrize("kwargs, message", [
    (dict(preset="digitz"), "unknown preset 'digitz'; valid: celeba, cifar10, digits"),
    (dict(overrides=["train.stepz=3"]), "unknown config key 'train.stepz'; valid: train.recipe, train.steps"),
    (dict(overrides=["trian.steps=3"]), "unknown config table 'trian'; valid: data, model, loss, optim, train"),
    (dict(overrides=["train.steps=abc"]), "train.steps: expected an integer, got 'abc'"),
    (dict(overrides=["model.spectral_norm=maybe"]), "model.spectral_norm: expected true or false"),
    (dict(overrides=["loss.name=wgan"]), "unknown objective 'wgan'; valid: f-hellinger, f-js, f-kl, f-pearson, f-reverse-kl, f-tv, hinge, lsgan, minimax, nonsaturating, wasserstein"),
    (dict(overrides=["model.arch=vgg"]), "unknown architecture 'vgg'; valid: dcgan, mlp, resnet"),
    (dict(overrides=["data.name=imagenet"]), "unknown data set 'imagenet'; valid:"),
    (dict(overrides=["train.steps"]), "expected table.key=value"),
    (dict(overrides=["data.batch_size=0"]), "data.batch_size: must be positive, got 0"),
    (dict(overrides=["train.ema=1.5"]), "train.ema: must be in [0, 1)"),
    (dict(overrides=["optim.betas_d=0.5"]), "optim.betas_d: expected two numbers"),
    (dict(overrides=["model.d_norm=instance"]), "model.d_norm: unknown normalisation 'instance'; valid: batch, layer, none"),
    (dict(overrides=["data.split=val"]), "data.split: unknown split 'val'; valid: train, test"),
    (dict(config_file="/nonexistent/x.toml"), "--config /nonexistent/x.toml: cannot read"),
])
def test_bad_config_names_the_culprit(kwargs, message):
    with pytest.raises(ConfigError) as e:
        C.resolve(**kwargs)
    text = str(e.value)
    assert message in text and "\n" not in text


def test_bad_toml_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[train\nsteps = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        C.resolve(config_file=str(f))
    f.write_text("[train]\nsteps = 'many'\n")
    with pytest.raises(ConfigError, match="train.steps: expected an integer, got 'many'"):
        C.resolve(config_file=str(f))


def test_incompatible_keys_on_resume():
    a = C.resolve("digits")
    b = C.override(a, ["train.steps=99999", "train.max_seconds=5"])
    assert C.incompatible_keys(a, b) == []
    c = C.override(a, ["loss.name=hinge", "model.z_dim=8"])
    assert C.incompatible_keys(a, c) == ["model.z_dim", "loss.name"]
