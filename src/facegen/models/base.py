"""The contract every model in the zoo keeps, so one trainer and one set of samplers serve them all.

Images are float tensors in [0, 1], shape (B, 3, H, W). Optional conditions ``y`` are float tensors
(B, n_cond) and are ignored by unconditional models.

A model owns its losses and, through ``train_step``, how its optimisers step (a VAE has one, a GAN
two, the VAE-GAN three); the trainer owns everything else: data order, epochs, schedules, autocast,
checkpoints, history and divergence checks.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class StepContext:
    """What a train step may need to know about where training is."""

    epoch: int  # 0-based
    epochs: int
    step: int  # global optimisation step, 0-based
    steps_per_epoch: int
    autocast: object = None  # a context-manager factory; the trainer passes bf16 autocast or a no-op
    extra: dict = field(default_factory=dict)
    sample_weights: torch.Tensor | None = None  # per-image loss weights (group reweighting), mean 1 over the data

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Batch mean of per-image values, weighted by ``sample_weights`` when the trainer sets them."""
        if self.sample_weights is None:
            return values.mean()
        w = self.sample_weights.to(values.dtype)
        return (values * w).sum() / w.sum()

    @property
    def progress(self) -> float:
        """Fraction of training done, in [0, 1]; drives warm-ups and ramps."""
        total = max(self.epochs * self.steps_per_epoch, 1)
        return min(self.step / total, 1.0)


class GenerativeModel(nn.Module):
    """Base of every model: a name, an image size, parameter groups and a train step.

    What the study does with a family outside ``models/`` follows from what its class declares here,
    never from its class or architecture name: its sampler, its reconstruction and likelihood metrics,
    its training monitor, its plotted curves, its gates, its sampling cost and its pretrained weights."""

    family: str = "base"  # "vae", or "gan" for a family trained against a discriminator (its gates compare it with the VAE)
    conditional: bool = False  # samples need condition labels (the model has ``n_cond``)
    sample_weighting: bool = False  # whether the losses honour StepContext.sample_weights
    encodes: bool = False  # has an amortised posterior q(z|x): reconstruction, KL and IWAE metrics, latent experiments
    curves: tuple[str, ...] = ()  # history.csv columns worth plotting per epoch (DVC plots)

    def __init__(self, image_size: int, channels: int = 3):
        super().__init__()
        if image_size < 16 or image_size & (image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
        self.image_size = image_size
        self.channels = channels

    def cost_copy(self) -> GenerativeModel:
        """A copy in train mode to count a step's FLOPs on, set so that the count is the model's and not
        the one counted batch's."""
        return copy.deepcopy(self).train()

    def cost_phases(self) -> list[tuple[float, float]]:
        """(share of training, a progress in that phase) pairs whose train step costs what every step of
        the phase costs; the counted FLOPs per image are their weighted mean. One phase unless a
        schedule switches networks on or off."""
        return [(1.0, 0.0)]

    def load_pretrained(self) -> None:
        """Fetch, verify and load any pretrained network the losses use, so that missing weights stop a run
        before its first step (facegen.nets.weights caches them under a lock)."""

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups, one optimiser each."""
        return {"model": list(self.parameters())}

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None, optimizers: dict, ctx: StepContext) -> dict[str, float]:
        """One optimisation step; returns the scalar values to log (all finite when healthy)."""
        raise NotImplementedError

    @classmethod
    def latent_density(cls) -> bool:
        """Whether a density fitted to its posterior latents can replace the prior (the GMM and two-stage
        samplers), and latent-space experiments and the prior's approximate-FID monitor apply: an
        unconditional model with an encoder."""
        return cls.encodes and not cls.conditional

    def compile_parts(self) -> list[tuple[object, str]]:
        """The functions of ``train_step`` that training.compile hands to torch.compile, as (owner, method
        name) pairs. A compiled function is one autograd node, whose backward frees the whole function's
        graph and computes the gradient of everything it was given: a part that spanned two networks which
        separate backward passes step (a GAN's generator and discriminator) would fail in the second pass,
        and one that several passes with ``inputs=`` go through does the work of all of them in each."""
        raise NotImplementedError(f"{type(self).__name__} names no compile_parts(), so training.compile cannot compile it")

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images from latents ``z`` (B, latent_dim) drawn from the model's own prior."""
        raise NotImplementedError


class VAEModel(GenerativeModel):
    """A VAE-type model: encode to a Gaussian posterior, decode a latent to an image."""

    family = "vae"
    encodes = True
    curves = ("loss", "kl")
    latent_dim: int

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of the (top) latent, each (B, latent_dim)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def generate(self, z, y=None):
        return self.decode(z, y)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Dict with the scalar to minimise under 'loss' plus its parts ('recon', 'kl', ...)."""
        raise NotImplementedError

    def compile_parts(self):
        return [(self, "loss")]  # the forward pass and every loss term: the one graph the step backpropagates

    def train_step(self, x, y, optimizers, ctx):
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        with ctx.autocast():
            parts = self.loss(x, y, ctx)
        parts["loss"].backward()
        opt.step()
        return {k: float(v.detach()) for k, v in parts.items()}

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None, deterministic: bool = True,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Deterministic mode decodes z = mu; otherwise z is drawn from q(z|x)."""
        mu, logvar = self.encode(x, y)
        z = mu if deterministic else self.reparameterize(mu, logvar, generator)
        return self.decode(z, y)

    @torch.no_grad()
    def sample(self, n, y=None, generator=None):
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.decode(z, y)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over latent dimensions, per sample."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=tuple(range(1, mu.dim())))


def gaussian_kl_two(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(q || p) between diagonal Gaussians, summed over non-batch dimensions, per sample."""
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1)
    return kl.sum(dim=tuple(range(1, kl.dim())))


def pixel_mse(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-pixel mean squared error on the [0, 1] scale, averaged over the batch."""
    return (recon.float() - x.float()).pow(2).mean()


def log2(n: int) -> int:
    return int(math.log2(n))
