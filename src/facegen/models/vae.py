"""Convolutional VAEs: the plain VAE, the beta-VAE of the conv-VAE report's latent x beta grid, and a
conditional VAE that generates faces for a chosen group.

Objective (all three): a per-image negative ELBO, averaged over the batch,

    loss = E_q[-log p(x|z)] + beta * KL(q(z|x) || N(0, I))

with the KL summed over latent dimensions and the likelihood summed over all 3*S*S pixel values:

* recon_loss="mse": a Gaussian decoder with fixed variance obs_var, giving sum((x_hat - x)^2) /
  (2 * obs_var) (its constant log-normaliser is dropped). The default obs_var = 0.5 makes it the
  plain sum of squared errors, the usual "MSE" VAE.
* recon_loss="bce": the Bernoulli cross-entropy summed over pixels (the [0, 1] targets read as
  probabilities), the other textbook choice; it is taken from the decoder's logits so it stays
  stable under bf16 autocast.

Summing both terms per image (rather than averaging the reconstruction over pixels) is what makes
beta mean what the papers mean: beta = 1 is the true ELBO and its trade-off does not drift with the
image size. Whatever the likelihood, 'recon' is logged as the per-pixel MSE on [0, 1] so every model
in the zoo is compared on one scale; 'recon_nll' is the optimised reconstruction term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facegen.models.base import VAEModel, gaussian_kl, pixel_mse
from facegen.models.blocks import ConvDecoder, ConvEncoder

RECON_LOSSES = ("mse", "bce")


class ConvVAE(VAEModel):
    """Conv encoder (stride-2, BN, LeakyReLU) -> Gaussian latent -> linear + transposed-conv decoder."""

    sample_weighting = True

    def __init__(self, image_size: int, latent_dim: int = 128, channels=(32, 64, 128, 256), beta: float = 1.0,
                 recon_loss: str = "mse", obs_var: float = 0.5, *, _n_cond: int = 0):
        # _n_cond is for ConditionalVAE only: the condition widens the two layers y is fed to.
        super().__init__(image_size)
        channels = tuple(int(c) for c in channels)
        if not channels:
            raise ValueError("channels must list at least one conv layer")
        if image_size < 2 ** len(channels):
            raise ValueError(f"image_size {image_size} is too small for {len(channels)} stride-2 layers")
        if recon_loss not in RECON_LOSSES:
            raise ValueError(f"recon_loss must be one of {RECON_LOSSES}, got '{recon_loss}'")
        if obs_var <= 0 or beta < 0 or latent_dim < 1:
            raise ValueError(f"need obs_var > 0, beta >= 0 and latent_dim >= 1, got {obs_var}, {beta}, {latent_dim}")
        if _n_cond and not self.conditional:
            raise ValueError(f"{type(self).__name__} is unconditional")
        self.latent_dim = int(latent_dim)
        self.beta = float(beta)
        self.recon_loss = recon_loss
        self.obs_var = float(obs_var)
        self.n_cond = int(_n_cond)

        s = image_size // 2 ** len(channels)
        self.encoder = nn.Sequential(ConvEncoder(self.channels, channels), nn.Flatten())
        feat = channels[-1] * s * s
        self.fc_mu = nn.Linear(feat + self.n_cond, self.latent_dim)
        self.fc_logvar = nn.Linear(feat + self.n_cond, self.latent_dim)
        self.fc_dec = nn.Sequential(nn.Linear(self.latent_dim + self.n_cond, feat), nn.Unflatten(1, (channels[-1], s, s)),
                                    nn.ReLU())
        self.decoder = ConvDecoder(tuple(reversed(channels)), out_channels=self.channels, output="sigmoid")
        # The BCE loss needs logits, so the sigmoid is applied here rather than inside the decoder.
        if not isinstance(self.decoder.net[-1], nn.Sigmoid):
            raise RuntimeError("ConvDecoder no longer ends in a Sigmoid; update ConvVAE.logits")

    def _cat(self, h, y):
        return torch.cat([h, y.to(h.dtype)], dim=1) if self.n_cond else h

    def encode(self, x, y=None):
        h = self._cat(self.encoder(x), y)
        return self.fc_mu(h), self.fc_logvar(h)

    def logits(self, z, y=None):
        # Sliced per call, not stored, so the state dict holds each decoder weight once.
        return self.decoder.net[:-1](self.fc_dec(self._cat(z, y)))

    def decode(self, z, y=None):
        return torch.sigmoid(self.logits(z, y))

    def loss(self, x, y, ctx):
        mu, logvar = self.encode(x, y)
        logits = self.logits(self.reparameterize(mu, logvar), y).float()
        x_hat = torch.sigmoid(logits)
        x32 = x.float()
        if self.recon_loss == "mse":
            nll = (x_hat - x32).pow(2).flatten(1).sum(1) / (2 * self.obs_var)
        else:
            nll = F.binary_cross_entropy_with_logits(logits, x32, reduction="none").flatten(1).sum(1)
        nll = ctx.mean(nll)
        kl = ctx.mean(gaussian_kl(mu.float(), logvar.float()))
        return {"loss": nll + self.beta * kl, "recon": pixel_mse(x_hat, x32), "kl": kl, "recon_nll": nll}


class BetaVAE(ConvVAE):
    """The beta-weighted VAE. The conv-VAE report's grid passes latent_dim in {4, 256} and beta in
    {1, 0.01} explicitly; the defaults are Higgins et al.'s beta = 4 with the 32-d latent of the
    variations report's beta-VAE."""

    def __init__(self, image_size: int, latent_dim: int = 32, channels=(32, 64, 128, 256), beta: float = 4.0,
                 recon_loss: str = "mse", obs_var: float = 0.5):
        super().__init__(image_size, latent_dim, channels, beta, recon_loss, obs_var)


class ConditionalVAE(ConvVAE):
    """A VAE conditioned on y (B, n_cond): y joins the encoder features before the posterior layers
    and the latent before the decoder, so sampling with a chosen y draws faces of that group."""

    conditional = True

    def __init__(self, image_size: int, n_cond: int, latent_dim: int = 128, channels=(32, 64, 128, 256),
                 beta: float = 1.0, recon_loss: str = "mse", obs_var: float = 0.5):
        if int(n_cond) < 1:
            raise ValueError(f"n_cond must be a positive number of condition features, got {n_cond}")
        super().__init__(image_size, latent_dim, channels, beta, recon_loss, obs_var, _n_cond=int(n_cond))

    def _check_y(self, y, n: int | None = None, device=None) -> torch.Tensor:
        if y is None:
            raise ValueError(f"ConditionalVAE needs the condition y, a (batch, {self.n_cond}) float tensor, but y is None")
        y = torch.as_tensor(y, dtype=torch.float32, device=device)
        if n is not None and y.dim() == 1:
            y = y.unsqueeze(0)
        if n is not None and y.shape[0] == 1:
            y = y.expand(n, -1)  # one condition for the whole batch: "n faces of this group"
        if y.dim() != 2 or y.shape[1] != self.n_cond or (n is not None and y.shape[0] != n):
            raise ValueError(f"y must have shape ({n if n is not None else 'batch'}, {self.n_cond}), got {tuple(y.shape)}")
        return y

    def encode(self, x, y=None):
        return super().encode(x, self._check_y(y, x.shape[0], x.device))

    def logits(self, z, y=None):
        return super().logits(z, self._check_y(y, z.shape[0], z.device))

    @torch.no_grad()
    def sample(self, n, y=None, generator=None):
        """n faces for condition y: (n, n_cond), or one condition (n_cond,) / (1, n_cond) shared by all."""
        device = next(self.parameters()).device
        y = self._check_y(y, n, device)
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.decode(z, y)
