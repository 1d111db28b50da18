"""The adversarial models: DCGAN (with and without spectral norm) and the VAE-GAN's three fusions."""

import contextlib
import copy
import math

import pytest
import torch
from torch.nn.utils import parametrize

from facegen.models import StepContext, VAEModel, build_model

SMALL = {"ngf": 8, "ndf": 8}  # narrow nets keep the tests fast; the architecture is the same
VARIANTS = [
    ("dcgan", {}),
    ("dcgan", {"spectral_norm": True}),
    ("vaegan", {"fusion": "early", "nef": 8, "latent_dim": 16}),
    ("vaegan", {"fusion": "late", "nef": 8, "latent_dim": 16}),
    ("vaegan", {"fusion": "progressive", "nef": 8, "latent_dim": 16}),
    ("vaegan", {"fusion": "early", "backbone": "vae", "vae_channels": (8, 16, 32, 64), "latent_dim": 16}),
    ("vaegan", {"fusion": "early", "nef": 8, "latent_dim": 16, "adv_balance": "adaptive", "upsample": "nearest"}),
]
IDS = ["dcgan", "dcgan-sn", "vaegan-early", "vaegan-late", "vaegan-progressive", "vaegan-vae-backbone", "vaegan-adaptive"]
DCGAN_KEYS = {"d_loss", "g_loss", "d_real", "d_fake"}
VAEGAN_KEYS = {"loss_enc", "loss_dec", "d_loss", "kl", "recon", "feat_recon", "adv_weight", "adv_lambda", "d_real", "d_fake",
               "d_updated", "dec_updated"}
GROUPS = {"dcgan": {"generator", "discriminator"}, "vaegan": {"encoder", "decoder", "discriminator"}}


def build(arch, size, **kw):
    return build_model(arch, size, **{**SMALL, **kw})


def ctx_at(progress: float, steps: int = 100) -> StepContext:
    """A context whose ctx.progress is ``progress`` (one epoch of ``steps`` steps)."""
    return StepContext(0, 1, round(progress * steps), steps, autocast=contextlib.nullcontext)


def optimizers(model, lr=1e-3):
    return {k: torch.optim.Adam(p, lr=lr, betas=(0.5, 0.999)) for k, p in model.param_groups().items()}


def batch(size, n=4, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before, module):
    return any(not torch.equal(before[k], v) for k, v in module.named_parameters())


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("arch,kw", VARIANTS, ids=IDS)
def test_shapes_range_groups_and_one_step(arch, kw, size):
    torch.manual_seed(0)
    model = build(arch, size, **kw)
    assert model.image_size == size
    samples = model.eval().sample(5, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (5, 3, size, size)
    assert samples.min() >= 0 and samples.max() <= 1
    model.train()

    x = batch(size)
    logits = model.discriminator(x)
    assert logits.shape == (4,)
    feats = model.discriminator_features(x)
    assert feats.dim() == 4 and feats.shape[0] == 4

    groups = model.param_groups()
    assert set(groups) == GROUPS[arch]
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}

    out = model.train_step(x, None, optimizers(model), ctx_at(0.0))
    assert set(out) == (DCGAN_KEYS if arch == "dcgan" else VAEGAN_KEYS)
    assert all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in out.values())
    assert 0 <= out["d_real"] <= 1 and 0 <= out["d_fake"] <= 1
    copy.deepcopy(model)  # the model card deep-copies trained models


def test_sample_is_reproducible_with_a_generator():
    model = build("dcgan", 32).eval()
    a = model.sample(3, generator=torch.Generator().manual_seed(7))
    b = model.sample(3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_default_sizes_build():
    for arch in ("dcgan", "vaegan"):
        model = build_model(arch, 32)
        assert model.family == "gan"
    dcgan = build_model("dcgan", 32)
    assert dcgan.nz == 100 and dcgan.generator.project.in_features == 100
    assert build_model("vaegan", 32).gamma == 1.5
    # the DCGAN paper's widths at 64x64: 512 -> 256 -> 128 -> 64
    assert build_model("dcgan", 64).generator.c0 == 512


def test_spectral_norm_replaces_batchnorm():
    d = build("dcgan", 32, spectral_norm=True).discriminator
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    assert sum(parametrize.is_parametrized(m, "weight") for m in d.modules()) == len(d.blocks) + 1
    plain = build("dcgan", 32).discriminator
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert not isinstance(plain.blocks[0][1], torch.nn.BatchNorm2d)  # no BN on the first layer


def test_vaegan_is_a_vae_with_deterministic_reconstruction():
    torch.manual_seed(0)
    model = build("vaegan", 32, nef=8, latent_dim=16).eval()
    assert isinstance(model, VAEModel)
    x = batch(32, n=3)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 16)
    assert model.decode(mu).shape == (3, 3, 32, 32)
    r1, r2 = model.reconstruct(x), model.reconstruct(x)
    assert torch.equal(r1, r2) and torch.equal(r1, model.decode(mu))
    parts = model.loss(x, None, ctx_at(0.0))
    assert {"loss", "recon", "kl"} <= set(parts) and torch.isfinite(parts["loss"])


def test_fusion_schedules():
    early = build("vaegan", 32, fusion="early")
    late = build("vaegan", 32, fusion="late", pretrain=0.5)
    prog = build("vaegan", 32, fusion="progressive", ramp=0.5)
    for p in (0.0, 0.3, 0.7, 1.0):
        assert early.adv_weight(p) == 1.0
    assert late.adv_weight(0.0) == late.adv_weight(0.49) == 0.0
    assert late.adv_weight(0.5) == late.adv_weight(0.9) == 1.0
    assert not late.discriminator_active(0.2) and late.discriminator_active(0.6)
    assert prog.adv_weight(0.0) == 0.0
    assert prog.adv_weight(0.25) == pytest.approx(0.5)
    assert prog.adv_weight(0.5) == prog.adv_weight(1.0) == 1.0
    assert prog.discriminator_active(0.0)


@pytest.mark.parametrize("fusion,progress,weight", [
    ("early", 0.0, 1.0), ("late", 0.2, 0.0), ("late", 0.8, 1.0),
    ("progressive", 0.0, 0.0), ("progressive", 0.25, 0.5), ("progressive", 0.6, 1.0),
])
def test_train_step_reports_the_adv_weight(fusion, progress, weight):
    torch.manual_seed(0)
    model = build("vaegan", 32, fusion=fusion, nef=8, latent_dim=16)
    out = model.train_step(batch(32), None, optimizers(model), ctx_at(progress))
    assert out["adv_weight"] == pytest.approx(weight)


@pytest.mark.parametrize("arch,kw,progress,d_trains", [
    ("dcgan", {}, 0.0, True),
    ("dcgan", {"spectral_norm": True}, 0.0, True),
    ("vaegan", {"fusion": "early"}, 0.0, True),
    ("vaegan", {"fusion": "progressive"}, 0.0, True),  # D trains from the start; only G's adversarial weight ramps
    ("vaegan", {"fusion": "late"}, 0.2, False),  # pure VAE before the pretrain point: D is not updated
    ("vaegan", {"fusion": "late", "pretrain_recon": "feature"}, 0.2, False),
    ("vaegan", {"fusion": "late"}, 0.8, True),
])
def test_a_step_updates_the_right_networks(arch, kw, progress, d_trains):
    torch.manual_seed(0)
    if arch == "vaegan":
        kw = {**kw, "nef": 8, "latent_dim": 16}
    model = build(arch, 32, **kw)
    gen = model.generator if arch == "dcgan" else model.decoder
    before_g, before_d = snapshot(gen), snapshot(model.discriminator)
    before_e = snapshot(model.encoder) if arch == "vaegan" else None
    model.train_step(batch(32), None, optimizers(model), ctx_at(progress))
    assert changed(before_g, gen)
    assert changed(before_d, model.discriminator) == d_trains
    if before_e is not None:
        assert changed(before_e, model.encoder)
    # no gradient may leak into D from the encoder / decoder objectives
    if not d_trains:
        assert all(p.grad is None for p in model.discriminator.parameters())


@pytest.mark.parametrize("arch,kw", [("dcgan", {}), ("vaegan", {"fusion": "progressive", "nef": 8, "latent_dim": 16})],
                         ids=["dcgan", "vaegan"])
def test_same_seed_same_parameters_after_three_steps(arch, kw):
    def run(seed):
        torch.manual_seed(seed)
        model = build(arch, 32, **kw)
        opts = optimizers(model)
        for step in range(3):
            model.train_step(batch(32, seed=step), None, opts, StepContext(0, 1, step, 6, autocast=contextlib.nullcontext))
        return snapshot(model)

    a, b, c = run(3), run(3), run(4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_step_noise_can_come_from_a_torch_generator():
    def run(global_seed):
        torch.manual_seed(0)
        model = build("dcgan", 32)
        opts = optimizers(model)
        torch.manual_seed(global_seed)  # the step noise must not depend on it
        ctx = StepContext(0, 1, 0, 1, autocast=contextlib.nullcontext, extra={"generator": torch.Generator().manual_seed(5)})
        model.train_step(batch(32), None, opts, ctx)
        return snapshot(model)

    a, b = run(1), run(2)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_vae_backbone_is_the_zoo_conv_vae():
    """backbone='vae': the encoder and decoder are a ConvVAE's networks, initialised as the plain VAE of
    the same seed is; only the discriminator gets DCGAN's initialisation."""
    from facegen.models.vae import ConvVAE

    torch.manual_seed(0)
    model = build("vaegan", 32, backbone="vae", vae_channels=(8, 16, 32, 64), latent_dim=16).eval()
    torch.manual_seed(0)
    vae = ConvVAE(32, 16, (8, 16, 32, 64)).eval()
    assert all(torch.equal(a, b) for a, b in zip(model.vae.state_dict().values(), vae.state_dict().values()))
    x = batch(32)
    mu, logvar = model.encode(x)
    assert all(torch.equal(a, b) for a, b in zip((mu, logvar), vae.encode(x)))
    assert torch.equal(model.decode(mu), vae.decode(mu))
    groups = model.param_groups()
    assert {id(p) for p in groups["encoder"]} | {id(p) for p in groups["decoder"]} == {id(p) for p in model.vae.parameters()}
    d_conv = model.discriminator.blocks[0][0].weight
    assert abs(float(d_conv.std()) - 0.02) < 0.005  # N(0, 0.02)


@pytest.mark.parametrize("kw", [{"upsample": "nearest"}, {"backbone": "vae", "vae_channels": (8, 16, 32, 64)}],
                         ids=["dcgan-nearest", "vae-backbone"])
def test_adaptive_weight_is_the_gradient_norm_ratio_at_the_last_layer(kw):
    model = build("vaegan", 32, latent_dim=16, adv_balance="adaptive", adv_scale=0.5, **kw)
    w = model._last_decoder_weight()
    assert 3 in w.shape[:2]  # the layer that paints RGB
    lam = model._adv_lambda(3.0 * w.sum(), w.sum())
    n = float(torch.ones_like(w).norm())
    assert math.isclose(float(lam), 0.5 * 3 * n / (n + 1e-4), rel_tol=1e-5)
    with torch.no_grad():  # no graph, as in an evaluation pass: the ratio is taken as 1
        assert float(model._adv_lambda(w.sum(), w.sum())) == 0.5
    fixed = build("vaegan", 32, latent_dim=16, adv_scale=0.25, **kw)
    assert float(fixed._adv_lambda(3.0 * w.sum(), w.sum())) == 0.25


@pytest.mark.parametrize("fusion,progress", [("early", 0.5), ("late", 0.2)], ids=["feature-phase", "pixel-pretraining"])
def test_kl_balance_pixels_weighs_the_kl_as_the_beta_1_pixel_vae(fusion, progress):
    torch.manual_seed(0)
    model = build("vaegan", 32, nef=8, latent_dim=16, fusion=fusion, pixel_weight=10.0, kl_balance="pixels")
    parts = model.loss(batch(32), None, ctx_at(progress))
    n_pixels = 3 * 32 * 32
    if fusion == "early":  # feature term + 10 x pixel MSE + KL x 10 / n_pixels
        expected = parts["feat_recon"] + 10.0 * parts["recon"] + parts["kl"] * 10.0 / n_pixels
    else:  # pixel pretraining: the beta = 1 VAE, per pixel
        expected = parts["recon"] + parts["kl"] / n_pixels
    assert torch.allclose(parts["loss_enc"], expected, rtol=1e-5)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="early.*late.*progressive"):
        build_model("vaegan", 32, fusion="middle")
    with pytest.raises(ValueError):
        build_model("vaegan", 32, pretrain_recon="perceptual")
    with pytest.raises(ValueError):
        build_model("vaegan", 32, ramp=1.5)
    with pytest.raises(ValueError):
        build_model("dcgan", 48)
    with pytest.raises(ValueError, match="transposed.*nearest"):
        build_model("dcgan", 32, upsample="bilinear")
    with pytest.raises(ValueError, match="pixel_weight"):
        build_model("vaegan", 32, pixel_weight=-1)
    with pytest.raises(ValueError, match="equilibrium_margin"):
        build_model("vaegan", 32, equilibrium_margin=0.7)
    with pytest.raises(ValueError, match="kl_balance"):
        build_model("vaegan", 32, kl_balance="latent")
    with pytest.raises(ValueError, match="pixel_weight > 0"):
        build_model("vaegan", 32, kl_balance="pixels")
    with pytest.raises(ValueError, match="adv_balance"):
        build_model("vaegan", 32, adv_balance="auto")
    with pytest.raises(ValueError, match="adv_scale"):
        build_model("vaegan", 32, adv_scale=-1)
    with pytest.raises(ValueError, match="backbone.*dcgan.*vae"):
        build_model("vaegan", 32, backbone="resnet")


def logit_for_bce(err: float, target: float) -> float:
    """The logit whose BCE against ``target`` (1 or 0) is ``err``."""
    p = math.exp(-err)  # D(x) for target 1, 1 - D(x) for target 0
    logit = math.log(p / (1 - p))
    return logit if target == 1.0 else -logit


@pytest.mark.parametrize("err_real,err_fake,expected", [
    (0.69, 0.69, (True, True)),    # undecided: both play
    (0.10, 0.69, (False, True)),   # D far ahead on real images: it sits out
    (0.69, 0.20, (False, True)),   # ... or on generated ones
    (1.50, 0.69, (True, False)),   # D far behind: the decoder sits out
    (0.10, 1.50, (True, True)),    # both rules fire: both update
])
def test_equilibrium_rule_known_answers(err_real, err_fake, expected):
    model = build("vaegan", 32, nef=8, latent_dim=16, equilibrium_margin=0.4)
    real = torch.full((4,), logit_for_bce(err_real, 1.0))
    fake = torch.full((4,), logit_for_bce(err_fake, 0.0))
    assert model._balance(real, fake, active=True) == expected
    assert model._balance(real, fake, active=False) == (False, True)  # late fusion's pretraining wins
    off = build("vaegan", 32, nef=8, latent_dim=16)
    assert off._balance(real, fake, active=True) == (True, True)


@pytest.mark.parametrize("steps", [(False, True), (True, False)])
def test_equilibrium_skip_leaves_that_network_untouched(steps):
    torch.manual_seed(0)
    model = build("vaegan", 32, nef=8, latent_dim=16, equilibrium_margin=0.4)
    model._balance = lambda real, fake, active: steps
    before_d, before_g, before_e = snapshot(model.discriminator), snapshot(model.decoder), snapshot(model.encoder)
    out = model.train_step(batch(32), None, optimizers(model), ctx_at(0.5))
    assert changed(before_d, model.discriminator) == steps[0]
    assert changed(before_g, model.decoder) == steps[1]
    assert changed(before_e, model.encoder)
    assert (out["d_updated"], out["dec_updated"]) == tuple(float(s) for s in steps)


@pytest.mark.parametrize("steps", [(False, True), (True, False)])
def test_counted_flops_are_the_full_step_whatever_the_equilibrium_rule_skips(steps, monkeypatch):
    """The rule decides per batch; a FLOP budget must not hang on the one random batch that is counted."""
    from facegen.training.card import flops_per_image

    torch.manual_seed(0)
    full = flops_per_image(build("vaegan", 32, nef=8, latent_dim=16), 32)
    model = build("vaegan", 32, nef=8, latent_dim=16, equilibrium_margin=0.4)
    monkeypatch.setattr(type(model), "_balance", lambda self, real, fake, active: steps if self.equilibrium_margin > 0 else (True, True))
    assert flops_per_image(model, 32) == full
    assert model.equilibrium_margin == 0.4  # counted on a copy


def test_counted_flops_average_the_fusion_schedule():
    """Late fusion pretrains without a discriminator pass, so its steps cost less for that share of
    training; progressive fusion costs the full step once its weight leaves 0, as early fusion does."""
    from facegen.training.card import flops_per_image

    def counted(fusion, **kw):
        torch.manual_seed(0)
        return flops_per_image(build("vaegan", 32, nef=8, latent_dim=16, fusion=fusion, **kw), 32)["train_flops_per_image"]

    early, pretrain_only = counted("early"), counted("late", pretrain=1.0)
    assert pretrain_only < early and counted("progressive") == early
    assert counted("late", pretrain=0.25) == pytest.approx(0.25 * pretrain_only + 0.75 * early)


def test_pixel_weight_adds_the_pixel_error_to_the_likelihood():
    torch.manual_seed(0)
    x = batch(32)
    plain = build("vaegan", 32, nef=8, latent_dim=16).eval()
    mixed = copy.deepcopy(plain)
    mixed.pixel_weight = 10.0
    a = plain.loss(x, None, ctx_at(0.5))
    b = mixed.loss(x, None, ctx_at(0.5))
    assert b["recon"].item() == pytest.approx(a["recon"].item())
    assert (b["loss_enc"] - a["loss_enc"]).item() == pytest.approx(10.0 * a["recon"].item(), rel=1e-5)


# The paper's recipes (config/config.yaml), at both study resolutions.
RECIPES = {"dcgan": {}, "vaegan": {"nef": 8, "latent_dim": 16, "equilibrium_margin": 0.4, "feature_layer": 2, "pixel_weight": 1.0}}


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("arch", ["dcgan", "vaegan"])
def test_nearest_upsampling_keeps_shapes_and_has_no_transposed_conv(arch, size):
    torch.manual_seed(0)
    model = build(arch, size, upsample="nearest", **RECIPES[arch])
    gen = model.generator if arch == "dcgan" else model.decoder
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in gen.modules())
    x = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, 3, size, size) and 0 <= x.min() and x.max() <= 1
    out = model.train_step(batch(size), None, optimizers(model), ctx_at(0.5))
    assert all(math.isfinite(v) for v in out.values())
