"""Samplers usable by any VAE-type model: the N(0, I) prior, a GMM fitted to training latents
(ex-post density estimation, Ghosh et al. 2020) and a two-stage VAE on the latents (Dai & Wipf 2019).
GAN-type models support the prior sampler only (their own noise distribution)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from facegen.models.base import GenerativeModel, VAEModel, gaussian_kl
from facegen.tensors import to_tensor, to_uint8


class SamplerError(ValueError):
    pass


@torch.no_grad()
def encode_posterior(model: VAEModel, images: np.ndarray, batch: int = 256,
                     labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of uint8 images (N, H, W, 3), as float64 (N, latent_dim) each."""
    device = next(model.parameters()).device
    model.eval()
    mus, logvars = [], []
    for i in range(0, len(images), batch):
        x = to_tensor(images[i:i + batch], device)
        y = torch.as_tensor(labels[i:i + batch], dtype=torch.float32, device=device) if labels is not None else None
        mu, logvar = model.encode(x, y)
        mus.append(mu.double().cpu().numpy())
        logvars.append(logvar.double().cpu().numpy())
    return np.concatenate(mus), np.concatenate(logvars)


def encode_images(model: VAEModel, images: np.ndarray, batch: int = 256, labels: np.ndarray | None = None) -> np.ndarray:
    """Posterior means of uint8 images (N, H, W, 3), as float64 (N, latent_dim)."""
    return encode_posterior(model, images, batch, labels)[0]


@torch.no_grad()
def _decode(model: VAEModel, z: np.ndarray, batch: int = 256) -> np.ndarray:
    device = next(model.parameters()).device
    parts = [to_uint8(model.decode(torch.as_tensor(z[i:i + batch], dtype=torch.float32, device=device)))
             for i in range(0, len(z), batch)]
    return np.concatenate(parts)


class PriorSampler:
    name = "prior"

    def fit(self, model: GenerativeModel, images: np.ndarray, seed: int = 0) -> "PriorSampler":
        self.model = model
        return self

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, batch: int = 256, y: np.ndarray | None = None) -> np.ndarray:
        gen = torch.Generator(device=next(self.model.parameters()).device).manual_seed(seed)
        self.model.eval()
        parts = []
        for i in range(0, n, batch):
            yb = torch.as_tensor(y[i:i + batch], dtype=torch.float32) if y is not None else None
            parts.append(to_uint8(self.model.sample(min(batch, n - i), yb, generator=gen)))
        return np.concatenate(parts)


class GMMSampler:
    """A Gaussian mixture on the training posterior means: better samples at no training cost."""

    name = "gmm"

    def __init__(self, n_components: int = 10, covariance_type: str = "full"):
        self.n_components, self.covariance_type = n_components, covariance_type

    def fit(self, model, images, seed: int = 0):
        _require_vae(model, self.name)
        self.model = model
        z = encode_images(model, images)
        k = min(self.n_components, len(z))
        from sklearn.mixture import GaussianMixture  # here: scikit-learn takes 1.4 s to import, and most jobs never fit one

        self.gmm = GaussianMixture(k, covariance_type=self.covariance_type, random_state=seed, reg_covar=1e-5).fit(z)
        return self

    def sample(self, n, seed: int = 0, batch: int = 256, y=None):
        self.gmm.random_state = seed
        z, _ = self.gmm.sample(n)
        z = z[np.random.default_rng(seed).permutation(n)]  # GaussianMixture.sample returns components in blocks
        return _decode(self.model, z, batch)


class _LatentVAE(nn.Module):
    def __init__(self, dim: int, hidden: int = 512):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2 * dim))
        self.dec = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, dim))
        # A learned output scale lets the second stage fit latents of any spread (Dai & Wipf's gamma).
        self.log_gamma = nn.Parameter(torch.zeros(()))

    def loss(self, z):
        mu, logvar = self.enc(z).chunk(2, dim=1)
        u = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = self.dec(u)
        nll = ((z - recon) ** 2 / (2 * torch.exp(2 * self.log_gamma)) + self.log_gamma).sum(1)
        return (nll + gaussian_kl(mu, logvar)).mean()


class TwoStageSampler:
    """Dai & Wipf (2019), "Diagnosing and Enhancing VAE Models": a second VAE models the aggregate
    posterior q(z); sample u ~ N(0, I) -> z -> image. As in their method, the second stage trains on
    samples z ~ q(z|x) of the first stage's encoder (drawn afresh each epoch, seeded), not on posterior
    means, which would fit a narrower distribution than the decoder was trained on."""

    name = "two_stage"

    def __init__(self, epochs: int = 50, hidden: int = 512, lr: float = 1e-3, batch: int = 256):
        self.epochs, self.hidden, self.lr, self.batch = epochs, hidden, lr, batch

    def fit(self, model, images, seed: int = 0):
        _require_vae(model, self.name)
        self.model = model
        mu, logvar = (torch.as_tensor(a, dtype=torch.float32) for a in encode_posterior(model, images))
        std = (0.5 * logvar).exp()
        torch.manual_seed(seed)
        self.stage2 = _LatentVAE(mu.shape[1], self.hidden)
        opt = torch.optim.Adam(self.stage2.parameters(), lr=self.lr)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(self.epochs):
            z = mu + std * torch.randn(mu.shape, generator=gen)
            order = torch.randperm(len(z), generator=gen)
            for i in range(0, len(z), self.batch):
                opt.zero_grad(set_to_none=True)
                self.stage2.loss(z[order[i:i + self.batch]]).backward()
                opt.step()
        self.stage2.eval()
        return self

    @torch.no_grad()
    def sample(self, n, seed: int = 0, batch: int = 256, y=None):
        gen = torch.Generator().manual_seed(seed)
        u = torch.randn(n, self.stage2.dec[0].in_features, generator=gen)
        return _decode(self.model, self.stage2.dec(u).numpy(), batch)


SAMPLERS = {"prior": PriorSampler, "gmm": GMMSampler, "two_stage": TwoStageSampler}


def _require_vae(model, name):
    if not model.encodes:
        raise SamplerError(f"sampler '{name}' needs a VAE-type model with an encoder; {type(model).__name__} has none. Use the 'prior' sampler.")
    if model.conditional:
        raise SamplerError(f"sampler '{name}' models the unconditional latent density; use 'prior' with labels for the conditional {type(model).__name__}")


def make_sampler(name: str, **params):
    if name not in SAMPLERS:
        raise SamplerError(f"unknown sampler '{name}'; known: {', '.join(SAMPLERS)}")
    return SAMPLERS[name](**params)
