import pytest

from gankit import config as C
from gankit.assemble import describe, from_toml, override, resolve
from gankit.errors import ConfigError


def test_default_preset_is_digits_and_round_trips_through_toml():
    cfg = resolve()
    assert cfg.data.name == "digits" and cfg.model.arch == "mlp"
    again = from_toml(C.to_toml(cfg), "written")
    assert again == cfg


def test_every_preset_resolves_and_writes_only_its_own_tables():
    names = C.preset_names()
    for required in ("digits", "ring8", "grid25", "gauss1d", "folder", "mnist", "fashion-mnist", "cifar10"):
        assert required in names
    for name in names:
        cfg = resolve(name)
        assert C.preset_summary(name)
        assert cfg.data.name
        written = C.read_toml(C.to_toml(cfg), "x")
        assert set(written) == set(cfg.to_dict()) <= set(cfg.tables())   # a data set's options join [data]
    assert set(resolve("digits-cyclegan").tables()) == {"data", "model", "loss", "optim", "train", "eval", "augment",
                                                        "cyclegan"}
    assert set(resolve("digits-cond").tables()) == {"data", "model", "loss", "optim", "train", "eval", "augment", "cgan",
                                                    "mlp", "digits"}
    assert set(resolve("digits").tables()) == {"data", "model", "loss", "optim", "train", "eval", "sample", "augment",
                                               "gan", "mlp", "digits"}
    assert "augment" not in resolve("vae").tables() and "augment" not in resolve("seqgan").tables()


def test_overrides_are_typed():
    cfg = resolve("ring8", overrides=["train.steps=12", "optim.lr_d=3e-4", "model.spectral_norm=true",
                                      "optim.betas_g=0.0,0.9", "loss.name=hinge", "mlp.depth=2"], seed=5)
    assert cfg.train.steps == 12 and cfg.optim.lr_d == 3e-4 and cfg.model.spectral_norm is True
    assert cfg.optim.betas_g == [0.0, 0.9] and cfg.loss.name == "hinge" and cfg.train.seed == 5
    assert cfg.table("mlp").depth == 2


def test_recipe_options_live_in_their_own_table():
    cfg = resolve("digits-cyclegan", overrides=["cyclegan.pool=0", "cyclegan.cycle=5"])
    opts = cfg.table("cyclegan")
    assert (opts.pool, opts.cycle, opts.semantic) == (0, 5.0, 20.0)
    s = resolve("digits-stargan", overrides=["stargan.cls=2"])
    assert (s.table("stargan").cls, s.table("stargan").rec) == (2.0, 10.0)
    p = resolve("digits-inpaint")
    assert (p.table("paired").task, p.table("paired").l1, p.table("paired").adv) == ("inpaint", 100.0, 1.0)


def test_config_file_alone_starts_from_the_default_preset(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[data]\nname = "ring8"\n')
    cfg = resolve(config_file=str(f))
    assert (cfg.data.name, cfg.model.arch, cfg.train.grid) == ("ring8", "mlp", 100)   # digits' MLP, on points
    f.write_text('[data]\nname = "grid25"\n[train]\nsteps = 7\n')
    cfg = resolve(config_file=str(f), overrides=["train.steps=9"])
    assert (cfg.data.name, cfg.train.steps) == ("grid25", 9)
    cfg = resolve("ring8", config_file=str(f))
    assert cfg.train.grid == 2500 and cfg.data.name == "grid25"  # preset first, then the file


def test_a_presets_tables_for_a_replaced_choice_are_dropped():
    cfg = resolve("digits-cond", overrides=["model.arch=dcgan"])   # the preset's [mlp] no longer applies
    assert "mlp" not in cfg.tables()
    cfg = resolve("ring8", overrides=["train.recipe=cgan", "data.name=digits"])   # nor its [gan] and [sample]
    assert "gan" not in cfg.tables() and "sample" not in cfg.tables() and "cgan" in cfg.tables()


@pytest.mark.parametrize("kwargs, message", [
    (dict(preset="digitz"), "unknown preset 'digitz'; valid: celeba, cifar10, digits"),
    (dict(overrides=["train.stepz=3"]), "unknown config key 'train.stepz'; valid: train.recipe, train.steps"),
    (dict(overrides=["trian.steps=3"]), "unknown config table [trian]; this run's tables: data, model, loss, optim, "
                                        "train, eval, sample, augment, gan, mlp"),
    (dict(overrides=["train.steps=abc"]), "train.steps: expected an integer, got 'abc'"),
    (dict(overrides=["model.spectral_norm=maybe"]), "model.spectral_norm: expected true or false"),
    (dict(overrides=["loss.name=wgan"]), "loss.name: unknown objective 'wgan'; valid: f-hellinger, f-js, f-kl, "
                                         "f-pearson, f-reverse-kl, f-tv, hinge, lsgan, minimax, nonsaturating, rasgan, rsgan, wasserstein"),
    (dict(overrides=["model.arch=vgg"]), "model.arch: unknown architecture 'vgg'; valid: dcgan, mlp, resnet"),
    (dict(overrides=["data.name=imagenet"]), "data.name: unknown data set 'imagenet'; valid:"),
    (dict(overrides=["train.recipe=wgan"]), "train.recipe: unknown recipe 'wgan'; valid: cgan, cyclegan, gan, glo, gon, gumbel, mle, paired, seqgan, stargan"),
    (dict(overrides=["train.steps"]), "expected table.key=value"),
    (dict(overrides=["data.batch_size=0"]), "data.batch_size: must be positive, got 0"),
    (dict(overrides=["train.ema=1.5"]), "train.ema: must be in [0, 1), got 1.5"),
    (dict(overrides=["train.max_seconds=nan"]), "train.max_seconds: expected a finite number, got 'nan'"),
    (dict(overrides=["loss.gp=inf"]), "loss.gp: expected a finite number, got 'inf'"),
    (dict(overrides=["optim.lr_g=-1"]), "optim.lr_g: must be positive, got -1.0"),
    (dict(overrides=["optim.betas_d=0.5"]), "optim.betas_d: expected two numbers"),
    (dict(overrides=["model.d_norm=instance"]), "model.d_norm: unknown value 'instance'; valid: batch, layer, none"),
    (dict(overrides=["data.split=val"]), "data.split: unknown value 'val'; valid: train, test"),
    (dict(overrides=["gan.pack=3"]), "gan.pack=3: must divide data.batch_size=64"),
    (dict(overrides=["mlp.depth=0"]), "mlp.depth: must be positive, got 0"),
    (dict(config_file="/nonexistent/x.toml"), "--config /nonexistent/x.toml: cannot read"),
    # the options of one recipe given to another
    (dict(preset="digits-cyclegan", overrides=["cgan.aux=1"]),
     "--set cgan.aux=1: [cgan] holds the options of recipe 'cgan', which this run does not use (train.recipe=cyclegan); "
     "its tables: data, model, loss, optim, train, eval, augment, cyclegan"),
    (dict(preset="digits-cyclegan", overrides=["sample.method=drs"]),
     "--set sample.method=drs: [sample] does not apply to train.recipe=cyclegan"),
    (dict(preset="digits-cyclegan", overrides=["cyclegan.poool=3"]),
     "unknown config key 'cyclegan.poool'; valid: cyclegan.cycle, cyclegan.identity"),
    (dict(preset="digits-cyclegan", overrides=["cyclegan.pool=abc"]), "cyclegan.pool: expected an integer, got 'abc'"),
    (dict(preset="digits-cyclegan", overrides=["cyclegan.pool=-1"]), "cyclegan.pool: must be zero or positive, got -1"),
    (dict(preset="digits-cond", overrides=["cgan.mismatch=2"]), "cgan.mismatch: must be in [0, 1], got 2.0"),
    (dict(preset="digits-cond", overrides=["cgan.cond_d=late"]),
     "cgan.cond_d: unknown value 'late'; valid: concat, projection, none"),
    (dict(preset="digits-stargan", overrides=["stargan.cls=0"]), "stargan.cls: must be positive, got 0.0"),
    (dict(preset="digits-inpaint", overrides=["paired.adv=0", "paired.l1=0"]), "paired.adv and paired.l1 are both 0"),
    (dict(preset="digits-inpaint", overrides=["paired.task=deblur"]), "paired.task: unknown value 'deblur'"),
    (dict(overrides=["sample.method=drs", "loss.name=hinge"]), "sample.method=drs: needs a discriminator"),
    (dict(overrides=["eval.best=fidd"]), "eval.best: unknown value 'fidd'; valid: fid, kid"),
    (dict(overrides=["eval.metrics=fid,fdi"]), "eval.metrics: unknown metric 'fdi'; valid:"),
    (dict(overrides=["mlp.width=3"]), "unknown config key 'mlp.width'; valid: mlp.depth"),
    (dict(overrides=["model.arch=dcgan", "mlp.depth=3"]),
     "[mlp] holds the options of architecture 'mlp', which this run does not use"),
    # old names on the command line say where they went
    (dict(preset="digits-cyclegan", overrides=["loss.cycle=5"]), "--set loss.cycle=5: 'loss.cycle' is now 'cyclegan.cycle'"),
    (dict(preset="digits-stargan", overrides=["loss.aux=2"]), "'loss.aux' is now 'stargan.cls'"),
    (dict(overrides=["train.pool=3"]), "'train.pool' is now an option of cyclegan (not of this run: train.recipe=gan)"),
])
def test_bad_config_names_the_culprit(kwargs, message):
    with pytest.raises(ConfigError) as e:
        resolve(**kwargs)
    text = str(e.value)
    assert message in text and "\n" not in text


def test_bad_toml_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[train\nsteps = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve(config_file=str(f))
    f.write_text("[train]\nsteps = 'many'\n")
    with pytest.raises(ConfigError, match=f"{f}: train.steps: expected an integer, got 'many'"):
        resolve(config_file=str(f))
    f.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ConfigError, match="not a text file|not valid TOML"):
        resolve(config_file=str(f))


def test_old_layout_config_files_are_migrated(tmp_path):
    """A config in the layout where every option sat in the shared tables: the keys move to their owners'
    tables, and the keys of recipes the run does not use (that layout wrote them all) are dropped."""
    f = tmp_path / "old.toml"
    f.write_text('[data]\nname = "digits-printed"\npair = ""\ndirection = "AtoB"\n'
                 '[model]\narch = "unet"\nz_dim = 0\ng_width = 8\nd_width = 8\ndepth = 3\npack = 1\n'
                 'cond_g = "concat"\ncond_d = "projection"\n'
                 '[loss]\nname = "lsgan"\naux = 0.0\nmismatch = 0.0\nadv = 1.0\nl1 = 0.0\ncycle = 7.0\n'
                 'identity = 0.25\nself_reg = 0.0\nsemantic = 3.0\nsemantic_im = 0.5\n'
                 '[train]\nrecipe = "cyclegan"\npool = 9\nreuse_fake = true\n'
                 '[sample]\nmethod = "direct"\n')
    cfg = resolve(config_file=str(f))
    o = cfg.table("cyclegan")
    assert (o.cycle, o.identity, o.semantic, o.semantic_im, o.pool) == (7.0, 0.25, 3.0, 0.5, 9)
    assert set(cfg.tables()) == {"data", "model", "loss", "optim", "train", "eval", "augment", "cyclegan"}
    f.write_text('[data]\nname = "digits-printed"\n[model]\narch = "resnet"\nz_dim = 0\ndepth = 2\n'
                 '[loss]\nname = "lsgan"\ncycle = 10.0\n[train]\nrecipe = "cyclegan"\npool = 50\n')
    assert resolve(config_file=str(f)).table("resnet").blocks == 2   # the ResNet generator's blocks
    f.write_text('[data]\nname = "digits"\n[model]\narch = "mlp"\ndepth = 1\ncond_g = "cbn"\ncond_d = "concat"\n'
                 '[loss]\naux = 0.5\nmismatch = 0.25\ncycle = 10.0\n[train]\nrecipe = "cgan"\nreuse_fake = false\npool = 50\n')
    cfg = resolve(config_file=str(f))
    c = cfg.table("cgan")
    assert (c.aux, c.mismatch, c.cond_g, c.cond_d, c.reuse_fake, cfg.table("mlp").depth) == (0.5, 0.25, "cbn", "concat",
                                                                                             False, 1)


def test_dry_run_shows_every_table_with_its_defaults():
    text = describe(resolve("digits-cyclegan"))
    assert "[cyclegan]\ncycle = 10.0" in text
    for other in ("# [cgan]", "# [stargan]", "# [paired]", "# [gan]", "# [mlp]", "# [pairs]", "# [sample]"):
        assert other in text
    assert "# aux = 0.0    # ACGAN auxiliary-classifier loss weight; 0 disables" in text
    C.read_toml(text, "dry run")   # the commented tables leave valid TOML


def test_incompatible_keys_on_resume():
    a = resolve("digits")
    b = override(a, ["train.steps=99999", "train.max_seconds=5"])
    assert C.incompatible_keys(a, b) == []
    c = override(a, ["loss.name=hinge", "model.z_dim=8", "gan.reuse_fake=false"])
    assert C.incompatible_keys(a, c) == ["model.z_dim", "loss.name", "gan.reuse_fake"]
