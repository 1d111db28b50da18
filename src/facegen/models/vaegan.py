"""VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric"),
with the VAE-GAN proposal's early / late / progressive fusion of the adversarial term.

Networks: with ``backbone="dcgan"`` (default) a conv encoder (stride-2 blocks with BN + LeakyReLU
down to 4x4, then linear heads for mu and logvar) and the DCGAN generator as decoder, all DCGAN-
initialised; with ``backbone="vae"`` the encoder and decoder are the zoo's ConvVAE (``vae_channels``),
initialised as the plain VAE is, so the hybrid differs from the baseline VAE only by what D adds.
The discriminator is DCGAN's either way; its ``feature_layer``-th conv block (the 3rd by default)
gives Dis_l, the learned similarity space.

Losses, per Larsen's Algorithm 1, for a batch x, z ~ q(z|x), x~ = Dec(z), x_p = Dec(z_p), z_p ~ N(0, I):

* L_prior = KL(q(z|x) || N(0, I)), summed over latent dimensions ('kl', batch mean).
* L_llike = a Gaussian log-likelihood of Dis_l(x) around Dis_l(x~): the per-element squared error
  of the feature maps ('feat_recon'). x, x~ and x_p go through D as one batch, so BatchNorm
  normalises them with shared statistics and the feature target is comparable.
* L_GAN = BCE(D(x), 1) + BCE(D(x~), 0) + BCE(D(x_p), 0).

Scale: L_llike is averaged over the n feature elements, and the KL is divided by the same n, so the
encoder objective is the negative ELBO of a fixed-variance (obs_var = 1/2) Gaussian in feature space
divided by n -- its encoder trade-off is exactly the summed one -- while the decoder's
gamma * L_llike lands on the scale of the per-image GAN loss, which is what makes the VAE/GAN study's
gamma = 1.5 and 15 meaningful. With ``kl_balance="pixels"`` (and a pixel term) the KL is divided by
n_pixels / pixel_weight instead, so it weighs against the pixel term as in the beta = 1 pixel VAE and
the feature term comes on top; in late fusion's pixel pretraining both settings give that VAE.

Updates (all three gradients at the same parameters, then all three optimisers step, as in
Algorithm 1):

* encoder:       L_prior / n + L_llike                                   ('loss_enc')
* decoder:       gamma * L_llike + w * [BCE(D(x~), 1) + BCE(D(x_p), 1)]   ('loss_dec', non-saturating)
* discriminator: L_GAN                                                   ('d_loss')

w is the adversarial weight ('adv_weight') set by ``fusion``:

* 'early':       w = 1 from the first step (Larsen's joint training).
* 'late':        for progress < ``pretrain`` the model is a pure VAE: w = 0, the discriminator is
  neither stepped nor backpropagated (its loss, d_real and d_fake are still computed, without
  gradients, for the logs; only its BatchNorm running statistics move), and the reconstruction is ``pretrain_recon``: 'pixel' (default; the
  zoo's ConvVAE objective, sum of squared pixel errors + KL, divided by the number of pixel values)
  or 'feature' (L_llike in the untrained discriminator's features). From ``pretrain`` on, w = 1 and
  training is the 'early' scheme.
* 'progressive': w = min(progress / ``ramp``, 1); the discriminator trains from the first step so
  that its features and its verdicts are meaningful by the time they carry weight.

Three departures from Algorithm 1, all off by default:

* ``pixel_weight`` > 0 adds that multiple of the per-pixel squared error to L_llike (encoder and
  decoder alike), the pixel + feature + adversarial mix of Dosovitskiy & Brox (2016, "Generating
  images with perceptual similarity metrics based on deep networks"). A feature space seen through
  stride-2 convs is blind to some high-frequency patterns, and an untrained discriminator's features
  constrain little, so without it a short run can match features with a checkerboard.
* ``equilibrium_margin`` > 0 turns on the balancing rule of Larsen et al.'s released code (see
  ``_balance``): the discriminator sits out a step when it is far ahead, the decoder when it is far
  behind.
* ``adv_scale`` multiplies the decoder's adversarial term, and ``adv_balance="adaptive"`` multiplies it
  further by the ratio of the reconstruction's and the adversarial term's gradient norms at the
  decoder's last layer (Esser et al. 2021; see ``_adv_lambda``), so D's gradient cannot swamp the
  reconstruction's there however far D gets ahead. With ``backbone="vae"``, ``nef``, ``ngf`` and
  ``upsample`` do not apply. 'adv_lambda' logs the factor.

'recon' is always the per-pixel MSE on [0, 1] of Dec(z) against x, for comparison with the VAEs.
"""

from __future__ import annotations

import torch
from torch import nn

from facegen.models.base import VAEModel, gaussian_kl, pixel_mse
from facegen.models.blocks import ConvEncoder
from facegen.models.vae import ConvVAE
from facegen.models.gan import (Discriminator, Generator, autocast_of, bce_logits, dcgan_init, randn,
                                step_generator, _check_size)

FUSIONS = ("early", "late", "progressive")
EQUILIBRIUM = 0.68  # Larsen et al.'s code: about ln 2, the BCE of an undecided discriminator (D = 1/2)
PRETRAIN_RECONS = ("pixel", "feature")
BACKBONES = ("dcgan", "vae")
ADV_BALANCES = ("fixed", "adaptive")
KL_BALANCES = ("features", "pixels")


class VAEGAN(VAEModel):
    """Larsen et al.'s VAE-GAN: a VAE whose reconstruction is measured in the discriminator's features."""

    family = "gan"  # trained against a discriminator, with an encoder too
    curves = ("kl", "d_loss")

    def __init__(self, image_size: int, latent_dim: int = 128, nef: int = 64, ngf: int = 64, ndf: int = 64,
                 gamma: float = 1.5, fusion: str = "early", pretrain: float = 0.5, ramp: float = 0.5,
                 pretrain_recon: str = "pixel", feature_layer: int = 3, spectral_norm: bool = False,
                 kl_weight: float = 1.0, pixel_weight: float = 0.0, equilibrium_margin: float = 0.0,
                 upsample: str = "transposed", backbone: str = "dcgan", vae_channels=(32, 64, 128, 256),
                 adv_balance: str = "fixed", adv_scale: float = 1.0, kl_balance: str = "features"):
        super().__init__(image_size)
        if adv_balance not in ADV_BALANCES:
            raise ValueError(f"adv_balance must be one of {', '.join(repr(b) for b in ADV_BALANCES)}; got {adv_balance!r}")
        if float(adv_scale) < 0:
            raise ValueError(f"adv_scale must be >= 0, got {adv_scale}")
        if kl_balance not in KL_BALANCES:
            raise ValueError(f"kl_balance must be one of {', '.join(repr(b) for b in KL_BALANCES)}; got {kl_balance!r}")
        if kl_balance == "pixels" and float(pixel_weight) <= 0:
            raise ValueError("kl_balance='pixels' weighs the KL against the pixel term: it needs pixel_weight > 0")
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {', '.join(repr(b) for b in BACKBONES)}; got {backbone!r}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(repr(f) for f in FUSIONS)}; got {fusion!r}")
        if pretrain_recon not in PRETRAIN_RECONS:
            raise ValueError(f"pretrain_recon must be one of {', '.join(repr(f) for f in PRETRAIN_RECONS)}; got {pretrain_recon!r}")
        if not 0.0 <= float(pretrain) <= 1.0:
            raise ValueError(f"pretrain must be a fraction of training in [0, 1], got {pretrain}")
        if not 0.0 <= float(ramp) <= 1.0:
            raise ValueError(f"ramp must be a fraction of training in [0, 1], got {ramp}")
        if float(gamma) <= 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        if float(kl_weight) < 0:
            raise ValueError(f"kl_weight must be >= 0, got {kl_weight}")
        if float(pixel_weight) < 0:
            raise ValueError(f"pixel_weight must be >= 0, got {pixel_weight}")
        if not 0.0 <= float(equilibrium_margin) < EQUILIBRIUM:
            raise ValueError(f"equilibrium_margin must be in [0, {EQUILIBRIUM}) (0 turns the balancing off), "
                             f"got {equilibrium_margin}")
        n = _check_size(image_size)
        self.latent_dim = int(latent_dim)
        self.gamma = float(gamma)
        self.fusion = fusion
        self.pretrain = float(pretrain)
        self.ramp = float(ramp)
        self.pretrain_recon = pretrain_recon
        self.kl_weight = float(kl_weight)
        self.kl_balance = kl_balance
        self.pixel_weight = float(pixel_weight)
        self.equilibrium_margin = float(equilibrium_margin)

        self.backbone = backbone
        self.adv_balance = adv_balance
        self.adv_scale = float(adv_scale)
        if backbone == "vae":
            # The zoo's ConvVAE networks with their own (PyTorch default) initialisation.
            self.vae = ConvVAE(image_size, self.latent_dim, vae_channels)
        else:
            self.encoder = ConvEncoder(self.channels, tuple(nef * 2 ** i for i in range(n)))
            flat = self.encoder.out_channels * 16
            self.fc_mu = nn.Linear(flat, self.latent_dim)
            self.fc_logvar = nn.Linear(flat, self.latent_dim)
            self.decoder = Generator(image_size, self.latent_dim, ngf, self.channels, upsample)
        self.discriminator = Discriminator(image_size, ndf, self.channels, spectral_norm, feature_layer)
        dcgan_init(self if backbone == "dcgan" else self.discriminator)

    # --- the fusion schedule -------------------------------------------------------------------

    def adv_weight(self, progress: float) -> float:
        """Weight of the decoder's adversarial term at this fraction of training."""
        if self.fusion == "early":
            return 1.0
        if self.fusion == "late":
            return 0.0 if progress < self.pretrain else 1.0
        return 1.0 if self.ramp <= 0 else min(max(progress, 0.0) / self.ramp, 1.0)

    def discriminator_active(self, progress: float) -> bool:
        """Whether the discriminator trains (and shapes the reconstruction) at this point."""
        return not (self.fusion == "late" and progress < self.pretrain)

    def cost_copy(self) -> VAEGAN:
        """The equilibrium rule skips D's or the decoder's update per batch: count the step that updates
        every network."""
        clone = super().cost_copy()
        clone.equilibrium_margin = 0.0
        return clone

    def cost_phases(self) -> list[tuple[float, float]]:
        """Late fusion's pretraining runs no discriminator backward pass; any adversarial weight above 0
        (early, and progressive after its first step) costs the full step."""
        if self.fusion == "late" and self.pretrain > 0:
            return [(self.pretrain, 0.0), (1.0 - self.pretrain, 1.0)]
        return [(1.0, 1.0)]

    # --- VAE interface -------------------------------------------------------------------------

    def param_groups(self):
        if self.backbone == "vae":
            enc = [*self.vae.encoder.parameters(), *self.vae.fc_mu.parameters(), *self.vae.fc_logvar.parameters()]
            dec = [*self.vae.fc_dec.parameters(), *self.vae.decoder.parameters()]
        else:
            enc = [*self.encoder.parameters(), *self.fc_mu.parameters(), *self.fc_logvar.parameters()]
            dec = list(self.decoder.parameters())
        return {"encoder": enc, "decoder": dec, "discriminator": list(self.discriminator.parameters())}

    def encode(self, x, y=None):
        if self.backbone == "vae":
            return self.vae.encode(x)
        h = self.encoder(x).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z, y=None):
        return self.vae.decode(z) if self.backbone == "vae" else self.decoder(z)

    def discriminator_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator.features(x)

    @torch.no_grad()
    def sample(self, n, y=None, generator=None):
        """Dec(z), z ~ N(0, I); as VAEModel.sample, but a CPU generator also serves a model on the GPU."""
        device = next(self.parameters()).device
        return self.decode(randn((n, self.latent_dim), device, generator))

    def _forward(self, x, progress: float, generator=None) -> dict[str, torch.Tensor]:
        """Every loss term of one step, as tensors with their graphs (call under autocast)."""
        b = x.shape[0]
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        z_p = randn((b, self.latent_dim), x.device, generator)
        fakes = self.decode(torch.cat([z, z_p.to(z.dtype)]))  # one decoder pass for x~ and x_p
        x_rec = fakes[:b]
        kl = gaussian_kl(mu.float(), logvar.float()).mean()

        active = self.discriminator_active(progress)
        feature_recon = active or self.pretrain_recon == "feature"
        with torch.set_grad_enabled(torch.is_grad_enabled() and feature_recon):
            # no D graph at all in pixel-space VAE pretraining
            logits, feats = self.discriminator.forward_features(torch.cat([x.to(fakes.dtype), fakes]))
        logits = logits.float()
        f_x, f_rec = feats[:b].detach().float(), feats[b:2 * b].float()
        feat_recon = (f_rec - f_x).pow(2).mean()
        recon = pixel_mse(x_rec, x)
        real_l, rec_l, prior_l = logits[:b], logits[b:2 * b], logits[2 * b:]
        d_loss = bce_logits(real_l, 1.0) + bce_logits(rec_l, 0.0) + bce_logits(prior_l, 0.0)
        g_adv = bce_logits(rec_l, 1.0) + bce_logits(prior_l, 1.0)

        if feature_recon:
            llike, n_elem = feat_recon, feats[0].numel()
            if self.pixel_weight > 0:
                llike = llike + self.pixel_weight * recon
            if self.kl_balance == "pixels":  # the KL against the pixel term alone, as in the beta = 1 pixel VAE
                n_elem = x[0].numel() / self.pixel_weight
        else:
            llike, n_elem = recon, x[0].numel()
        w = self.adv_weight(progress)
        train_d, train_dec = self._balance(real_l, logits[b:], active)
        loss_enc = llike + self.kl_weight * kl / n_elem
        lam = self._adv_lambda(self.gamma * llike, g_adv) if w > 0 else torch.tensor(self.adv_scale)
        loss_dec = self.gamma * llike + (w * lam * g_adv if w > 0 else 0.0)
        with torch.no_grad():
            d_real = torch.sigmoid(real_l).mean()
            d_fake = torch.sigmoid(logits[b:]).mean()
        return {"loss_enc": loss_enc, "loss_dec": loss_dec, "d_loss": d_loss, "kl": kl, "recon": recon,
                "feat_recon": feat_recon, "adv_weight": torch.tensor(w), "adv_lambda": lam, "d_real": d_real, "d_fake": d_fake,
                "d_updated": torch.tensor(float(train_d)), "dec_updated": torch.tensor(float(train_dec)),
                "_steps": (train_d, train_dec)}

    def _last_decoder_weight(self) -> torch.Tensor:
        last = self.vae.decoder.net[-2] if self.backbone == "vae" else self.decoder.out[0]
        return (last[-1] if isinstance(last, nn.Sequential) else last).weight  # nearest: upsample, then the conv

    def _adv_lambda(self, rec_term: torch.Tensor, adv_term: torch.Tensor) -> torch.Tensor:
        """The factor on the decoder's adversarial term: ``adv_scale``, times, with adv_balance='adaptive',
        the ratio of the gradient norms of the reconstruction and adversarial terms at the decoder's last
        layer (Esser et al. 2021, "Taming Transformers for High-Resolution Image Synthesis", eq. 7,
        clamped to [0, 1e4] as in their code). Then, at that layer, the adversarial gradient's norm is
        ``adv_scale`` times the reconstruction's, however strong D has become. Without a graph (an
        evaluation pass) the ratio is taken as 1."""
        scale = torch.tensor(self.adv_scale)
        if self.adv_balance == "fixed" or not (torch.is_grad_enabled() and adv_term.requires_grad):
            return scale
        w_last = self._last_decoder_weight()
        g_rec = torch.autograd.grad(rec_term, w_last, retain_graph=True)[0]
        g_adv = torch.autograd.grad(adv_term, w_last, retain_graph=True)[0]
        return scale * (g_rec.float().norm() / (g_adv.float().norm() + 1e-4)).clamp(0.0, 1e4).detach()

    @torch.no_grad()
    def _balance(self, real_logits, fake_logits, active: bool) -> tuple[bool, bool]:
        """(step the discriminator, step the decoder) under the equilibrium rule.

        As in Larsen et al.'s released code (autoencoding_beyond_pixels, model/aegan.py, whose
        defaults are equilibrium 0.68 and margin 0.4): the discriminator's BCE on real images,
        -log D(x), and on generated ones (reconstructions and prior samples), -log(1 - D(.)), are
        compared with 0.68: if either is below 0.68 - margin, D is far ahead and skips its step; if
        either is above 0.68 + margin, D is far behind and the decoder skips its step; if both would
        skip, both step. The encoder always steps. margin 0 turns the rule off.
        """
        if not active or self.equilibrium_margin <= 0:
            return active, True
        err_real, err_fake = float(bce_logits(real_logits, 1.0)), float(bce_logits(fake_logits, 0.0))
        train_d = min(err_real, err_fake) >= EQUILIBRIUM - self.equilibrium_margin
        train_dec = max(err_real, err_fake) <= EQUILIBRIUM + self.equilibrium_margin
        if not (train_d or train_dec):
            return True, True
        return train_d, train_dec

    def compile_parts(self):
        # Each network apart: the three backward passes each take their own network's gradient (inputs=...).
        return [(self, "encode"), (self, "decode"), (self.discriminator, "forward_features")]

    def loss(self, x, y, ctx):
        """The encoder's objective and its parts at this point of training (for evaluation)."""
        parts = self._forward(x, ctx.progress)
        parts.pop("_steps")
        parts["loss"] = parts["loss_enc"]
        return parts

    def train_step(self, x, y, optimizers, ctx):
        opt_e, opt_g, opt_d = optimizers["encoder"], optimizers["decoder"], optimizers["discriminator"]
        for opt in (opt_e, opt_g, opt_d):
            opt.zero_grad(set_to_none=True)
        with autocast_of(ctx)():
            parts = self._forward(x, ctx.progress, step_generator(ctx))
        train_d, train_dec = parts.pop("_steps")
        groups = self.param_groups()
        # Each network takes the gradient of its own loss only (inputs=...), all at the same parameters.
        parts["loss_enc"].backward(inputs=groups["encoder"], retain_graph=train_dec or train_d)
        if train_dec:
            parts["loss_dec"].backward(inputs=groups["decoder"], retain_graph=train_d)
        if train_d:
            parts["d_loss"].backward(inputs=groups["discriminator"])
        opt_e.step()
        if train_dec:
            opt_g.step()
        if train_d:
            opt_d.step()
        return {k: float(v.detach()) for k, v in parts.items()}
