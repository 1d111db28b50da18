"""KL per image and an importance-weighted (IWAE, Burda et al. 2016) bound on the NLL in bits/dim,
under a post-hoc Gaussian decoder.

The study's VAEs are trained with a pixel MSE, i.e. a Gaussian decoder whose variance the loss never
fixes. For a likelihood we use p(x|z) = N(decoder(z), sigma^2 I) with one sigma^2 per model, the
maximum-likelihood value: the mean squared error of deterministic reconstructions of held-out images
(evaluation.decoder_variance_split, never the scored ones).

The 8-bit image is discrete: pixel value k/255 stands for the bin [k - 1/2, k + 1/2) / 255, and the
model's probability of it is the density integrated over the bin, P(x) = (1/255)^D E_u[p(x + u)], u
uniform on the bin. Scoring x + u for one uniform draw u (dequantisation, Theis et al. 2016, sec. 3.1)
and applying Jensen's inequality twice (over u, and over the K importance samples of the IWAE bound)

    bits/dim = (-ln p_IWAE(x + u) + D ln 255) / (D ln 2) >= -log2 P(x) / D   in expectation,

an upper bound on the discrete NLL that tightens with K. Without u, the density at the bin's centre
is no bound on the bin's probability. Because the decoder variance is chosen after training and the
model never saw a discrete likelihood, the number is not comparable with published bits/dim of
likelihood models; it ranks this study's VAEs under one protocol.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from facegen.models.base import VAEModel, gaussian_kl


def _normal_logpdf(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    lp = -0.5 * (math.log(2 * math.pi) + logvar + (x - mu).pow(2) / logvar.exp())
    return lp.flatten(1).sum(1)


def _standard_logpdf(z: torch.Tensor) -> torch.Tensor:
    return (-0.5 * (math.log(2 * math.pi) + z.pow(2))).flatten(1).sum(1)


def is_hierarchical(model: VAEModel) -> bool:
    return hasattr(model, "kl_per_layer")


@torch.no_grad()
def kl_per_image(model: VAEModel, x: torch.Tensor, y: torch.Tensor | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """The ELBO's KL term per image in nats. For hierarchical models it is the sum over layers of
    KL(q(z_i | z_>i, x) || p(z_i | z_>i)) with the layers above drawn from the posterior (one seeded
    sample: the estimator the ELBO uses), and 'kl_<layer>' (0 = finest) holds each layer's share.
    Conditioning on posterior means instead would give a different, smaller quantity."""
    if is_hierarchical(model):
        gen = torch.Generator().manual_seed(seed)
        layers = model.kl_per_layer(x, deterministic=False, generator=gen).double().cpu().numpy()
        out = {"kl": layers.sum(1)}
        out.update({f"kl_{i}": layers[:, i] for i in range(layers.shape[1])})
        return out
    mu, logvar = model.encode(x, y)
    return {"kl": gaussian_kl(mu.double(), logvar.double()).cpu().numpy()}


@torch.no_grad()
def log_weights(model: VAEModel, x: torch.Tensor, y: torch.Tensor | None, sigma2: float, generator: torch.Generator) -> torch.Tensor:
    """One importance sample per image: ln p(x|z) + ln p(z) - ln q(z|x), shape (B,)."""
    x = x.double()
    if is_hierarchical(model):
        recon, infos = model._top_down(x.shape[0], model.bottom_up(x.float()), mode="sample", generator=generator)
        log_pz = log_qz = 0
        top = len(infos) - 1
        for i, d in enumerate(infos):
            z = d["z"].double()
            log_qz = log_qz + _normal_logpdf(z, d["mu_q"].double(), d["logvar_q"].double())
            log_pz = log_pz + (_standard_logpdf(z) if i == top else _normal_logpdf(z, d["mu_p"].double(), d["logvar_p"].double()))
    else:
        mu, logvar = (t.double() for t in model.encode(x.float(), y))
        z = mu + torch.randn(mu.shape, generator=generator, dtype=mu.dtype) * (0.5 * logvar).exp()
        recon = model.decode(z.float(), y)
        log_qz, log_pz = _normal_logpdf(z, mu, logvar), _standard_logpdf(z)
    log_px_z = _normal_logpdf(x, recon.double(), torch.full_like(x, math.log(sigma2)))
    return log_px_z + log_pz - log_qz


def iwae_bits_per_dim(model: VAEModel, x: torch.Tensor, y: torch.Tensor | None, sigma2: float, k: int = 16,
                      seed: int = 0) -> np.ndarray:
    """Per-image IWAE bound on -log2 P(8-bit x) / D with K importance samples, ``x`` (values k/255)
    dequantised by one uniform draw over its bins of width 1/255."""
    if sigma2 <= 0:
        raise ValueError(f"decoder variance must be positive, got {sigma2}")
    gen = torch.Generator().manual_seed(seed)
    x = x + (torch.rand(x.shape, generator=gen, dtype=x.dtype) - 0.5) / 255
    logw = torch.stack([log_weights(model, x, y, sigma2, gen) for _ in range(k)])
    log_px = torch.logsumexp(logw, 0) - math.log(k)
    d = x[0].numel()
    return ((-log_px + d * math.log(255)) / (d * math.log(2))).cpu().numpy()
