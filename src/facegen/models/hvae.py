"""A convolutional hierarchical VAE with top-down inference (Ladder VAE / NVAE style).

Layout (default ``image_size=32, channels=(32, 64, 128), n_latent_layers=3, top_resolution=4``)::

    bottom-up (deterministic, x -> features)      top-down (shared by inference and generation)
    x 32x32x3                                      image 32x32x3 = sigmoid(ConvT(h_16))
      stem conv s2 -> 16x16x32  -- ResBlock -- f_16 --> q(z_0 | x, z_1, z_2), p(z_0 | z_1, z_2)   z_0: 16x16x8
      conv s2      ->  8x8x64   -- ResBlock -- f_8  --> q(z_1 | x, z_2),      p(z_1 | z_2)        z_1:  8x8x8
      conv s2      ->  4x4x128  -- ResBlock -- f_4  --> q(z_2 | x),           p(z_2) = N(0, I)    z_2:  4x4x8
                                                   h_4 = learned constant

Latent layers are numbered bottom (finest, index 0) to top (coarsest, index ``L - 1``), as in
p(z_i | z_>i); the loss reports ``kl_0`` (finest) ... ``kl_{L-1}`` (top). Layer ``j`` counted from the
top sits at resolution ``top_resolution * 2**j`` (capped at ``image_size / 2``; extra layers then
share the finest scale as NVAE-style groups). The top latent always has ``top_resolution**2 *
latent_channels`` dimensions, whatever the image size, and a standard-normal prior, so the generic
samplers (prior / GMM on training latents) work on ``encode``'s output.

Top-down step at layer i (resolution r_i), with h the top-down state:

* prior   p(z_i | z_>i) = N(mu_p, exp(logvar_p)) from a head on h (top layer: N(0, I));
* posterior (NVAE residual parameterisation) q(z_i | x, z_>i) = N(mu_p + dmu, exp(logvar_p + dlogvar))
  where (dmu, dlogvar) come from a head on concat(h, f_{r_i}), the bottom-up features at r_i. The
  posterior is therefore a correction relative to the prior, which keeps the two close early in
  training and makes the per-layer KL well conditioned;
* h <- ResBlock(h + conv1x1(z_i)), then upsample (ConvTranspose) and ResBlocks to the next layer's
  resolution; after the finest latent, more up-stages reach image_size / 2 and a final transposed
  conv + sigmoid gives the image.

Residual blocks are pre-activation BN-SiLU-conv3x3-BN-SiLU-conv3x3 with a skip, in both paths.

Objective (per sample, batch mean): ``sum_pixels (x_hat - x)^2 / (2 obs_sigma^2) + beta_t * sum_i KL_i``
(a Gaussian likelihood with fixed ``obs_sigma``, constants dropped; ``obs_sigma=None`` uses the
calibrated "optimal sigma" of Rybkin et al. 2021, sigma^2 = batch MSE, with its log term). KL_i is
the analytic KL(q || p) at layer i given the sampled latents above it, in nats. ``beta_t`` rises
linearly from ``beta * beta_floor`` at progress 0 to ``beta`` at ``progress >= warmup`` (KL warm-up).
Optional ``free_bits`` (nats per layer per sample, on the batch-mean KL of that layer) stop the
optimiser from pushing a layer's KL below that floor; the reported ``kl_i`` are always the true KLs.

``decode(z_top, temperature=0.0)`` runs the top-down path from a top latent, using the prior MEANS
for the lower layers by default (``temperature > 0`` samples them with the prior std scaled by the
temperature). ``sample(n, temperature=1.0)`` samples every layer from its prior.
``reconstruct(x, deterministic=True)`` uses the posterior means at every layer.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from facegen.models.base import StepContext, VAEModel, gaussian_kl, gaussian_kl_two, log2

LOGVAR_LIMIT = 7.0  # log-variances are soft-clamped to (-LOGVAR_LIMIT, LOGVAR_LIMIT) for stability


def _soft_clamp(x: torch.Tensor, limit: float = LOGVAR_LIMIT) -> torch.Tensor:
    return limit * torch.tanh(x / limit)


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv(SiLU(BN(conv(SiLU(BN(x))))))."""

    def __init__(self, c: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.BatchNorm2d(c), nn.SiLU(),
            nn.Conv2d(c, c, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c), nn.SiLU(),
            nn.Conv2d(c, c, 3, 1, 1),
        )
        # Start close to the identity so a deep stack of blocks is stable at initialisation.
        nn.init.zeros_(self.net[-1].bias)
        self.net[-1].weight.data.mul_(0.1)

    def forward(self, x):
        return x + self.net(x)


def _head(c_in: int, c_out: int, scale: float = 1.0) -> nn.Sequential:
    """SiLU -> conv3x3 producing Gaussian parameters (mu, logvar) as 2 * c_out channels."""
    conv = nn.Conv2d(c_in, 2 * c_out, 3, 1, 1)
    conv.weight.data.mul_(scale)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(nn.SiLU(), conv)


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 4, 2, 1))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(c_in), nn.SiLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1))


class LadderVAE(VAEModel):
    """Hierarchical VAE with a bottom-up encoder and a shared top-down path (see module docstring).

    Args:
        image_size: side of the square images (power of two >= 16).
        channels: feature widths, finest to coarsest; the last applies at ``top_resolution`` and
            each earlier one at twice the resolution of the next; resolutions finer than the list
            covers reuse ``channels[0]``. (``self.channels`` stays the image channel count, 3.)
        n_latent_layers: number of stochastic layers L (>= 2).
        latent_channels: channels of every latent map (int, or a sequence of L values, index 0 =
            finest layer).
        top_resolution: spatial side of the top latent (a power of two <= image_size / 2).
        n_res_blocks: residual blocks per resolution in each path.
        beta: final KL weight; ``warmup``: fraction of training over which beta rises linearly;
        beta_floor: beta at progress 0 as a fraction of ``beta``.
        free_bits: per-layer KL floor in nats per sample (0 disables).
        obs_sigma: std of the Gaussian pixel likelihood on [0, 1]; None for calibrated (optimal) sigma.
        grad_clip: max gradient norm in ``train_step`` (0 or None, the default, disables); the norm
            is always logged as ``grad_norm`` (typically 1e3-1e4, as the loss is in nats per image)
            and an update whose gradients are not finite is skipped.
    """

    conditional = False

    def __init__(self, image_size: int = 32, channels=(32, 64, 128), n_latent_layers: int = 3,
                 latent_channels=8, top_resolution: int = 4, n_res_blocks: int = 1,
                 beta: float = 1.0, warmup: float = 0.3, beta_floor: float = 1e-4,
                 free_bits: float = 0.0, obs_sigma: float | None = 0.1, grad_clip: float | None = None):
        super().__init__(image_size, 3)
        channels = tuple(int(c) for c in ([channels] if isinstance(channels, int) else channels))
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be positive widths, got {channels}")
        if n_latent_layers < 2:
            raise ValueError(f"n_latent_layers must be >= 2, got {n_latent_layers}")
        if top_resolution < 1 or top_resolution & (top_resolution - 1) or top_resolution > image_size // 2:
            raise ValueError(f"top_resolution must be a power of two <= image_size / 2, got {top_resolution}")
        if isinstance(latent_channels, int):
            latent_channels = [latent_channels] * n_latent_layers
        latent_channels = [int(c) for c in latent_channels]
        if len(latent_channels) != n_latent_layers or min(latent_channels) < 1:
            raise ValueError(f"latent_channels must be an int or {n_latent_layers} positive ints, got {latent_channels}")
        if not 0.0 <= warmup <= 1.0:
            raise ValueError(f"warmup must be a fraction in [0, 1], got {warmup}")

        self.widths = channels
        self.n_latent_layers = L = n_latent_layers
        self.latent_channels = latent_channels
        self.top_resolution = top_resolution
        self.beta = float(beta)
        self.warmup = float(warmup)
        self.beta_floor = float(beta_floor)
        self.free_bits = float(free_bits)
        self.obs_sigma = None if obs_sigma is None else float(obs_sigma)
        self.grad_clip = float(grad_clip) if grad_clip else 0.0

        # Processed resolutions, finest (image_size / 2) to coarsest (top_resolution).
        self.resolutions = [image_size // 2 ** k for k in range(1, log2(image_size // top_resolution) + 1)]
        n_res = len(self.resolutions)
        # Widths aligned to the coarse end: the top resolution gets channels[-1].
        self.res_width = {r: channels[max(len(channels) - n_res + k, 0)] for k, r in enumerate(self.resolutions)}
        # Resolution of each latent layer, index 0 = finest.
        self.layer_res = [min(top_resolution * 2 ** (L - 1 - i), image_size // 2) for i in range(L)]
        self.latent_shapes = [(latent_channels[i], self.layer_res[i], self.layer_res[i]) for i in range(L)]
        self.latent_dim = latent_channels[-1] * top_resolution ** 2

        w = self.res_width
        # ---- bottom-up path: stem (-> S/2), then ResBlocks at each resolution and stride-2 downs.
        self.stem = nn.Conv2d(3, w[self.resolutions[0]], 4, 2, 1)
        self.enc_blocks = nn.ModuleList(
            nn.Sequential(*[ResBlock(w[r]) for _ in range(n_res_blocks)]) for r in self.resolutions)
        self.enc_downs = nn.ModuleList(_down(w[a], w[b]) for a, b in zip(self.resolutions[:-1], self.resolutions[1:]))

        # ---- top-down path. h starts as a learned constant at the top resolution.
        self.h_top = nn.Parameter(torch.zeros(1, w[top_resolution], top_resolution, top_resolution))
        self.prior_heads = nn.ModuleList()  # index i; Identity placeholder for the top (N(0, I) prior)
        self.post_heads = nn.ModuleList()
        self.z_proj = nn.ModuleList()
        self.dec_blocks = nn.ModuleList()
        for i in range(L):
            c, lc = w[self.layer_res[i]], latent_channels[i]
            self.prior_heads.append(nn.Identity() if i == L - 1 else _head(c, lc, scale=0.1))
            self.post_heads.append(_head(2 * c, lc, scale=0.1))
            self.z_proj.append(nn.Conv2d(lc, c, 1))
            self.dec_blocks.append(nn.Sequential(*[ResBlock(c) for _ in range(n_res_blocks)]))
        # Up-stages between resolutions (coarse -> fine), each followed by ResBlocks; a resolution
        # that hosts a latent layer gets its ResBlocks from dec_blocks after the latent is merged.
        coarse_to_fine = self.resolutions[::-1]
        self.dec_ups = nn.ModuleList(_up(w[a], w[b]) for a, b in zip(coarse_to_fine[:-1], coarse_to_fine[1:]))
        self.dec_plain = nn.ModuleList(
            nn.Identity() if r in self.layer_res else nn.Sequential(*[ResBlock(w[r]) for _ in range(n_res_blocks)])
            for r in coarse_to_fine[1:])
        self.out = nn.Sequential(nn.BatchNorm2d(w[self.resolutions[0]]), nn.SiLU(),
                                 nn.ConvTranspose2d(w[self.resolutions[0]], 3, 4, 2, 1), nn.Sigmoid())

    # ------------------------------------------------------------------ schedules
    def beta_at(self, progress: float) -> float:
        """KL weight at a training progress in [0, 1]: linear warm-up from beta * beta_floor to beta."""
        if self.warmup <= 0:
            return self.beta
        ramp = min(max(progress, 0.0) / self.warmup, 1.0)
        return self.beta * (self.beta_floor + (1.0 - self.beta_floor) * ramp)

    # ------------------------------------------------------------------ paths
    def bottom_up(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Deterministic features at each processed resolution, keyed by resolution."""
        h = self.stem(x * 2.0 - 1.0)
        feats = {}
        for k, r in enumerate(self.resolutions):
            h = self.enc_blocks[k](h)
            feats[r] = h
            if k < len(self.enc_downs):
                h = self.enc_downs[k](h)
        return feats

    @staticmethod
    def _gauss(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = params.float().chunk(2, dim=1)
        return mu, logvar

    def _prior(self, i: int, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if i == self.n_latent_layers - 1:
            shape = (h.shape[0], *self.latent_shapes[i])
            zeros = torch.zeros(shape, device=h.device, dtype=torch.float32)
            return zeros, zeros
        mu, logvar = self._gauss(self.prior_heads[i](h))
        return mu, _soft_clamp(logvar)

    def _posterior(self, i: int, h: torch.Tensor, feat: torch.Tensor, mu_p, logvar_p):
        dmu, dlogvar = self._gauss(self.post_heads[i](torch.cat([h, feat.to(h.dtype)], dim=1)))
        return mu_p + dmu, _soft_clamp(logvar_p + dlogvar)

    def _top_down(self, batch: int, feats: dict | None = None, z_top: torch.Tensor | None = None,
                  mode: str = "sample", temperature: float = 1.0, generator: torch.Generator | None = None):
        """Run the top-down path.

        With ``feats`` (inference), each layer's latent comes from the posterior: drawn when
        ``mode == 'sample'``, its mean when ``mode == 'mean'``. Without ``feats`` (generation), it
        comes from the prior: mean when ``temperature == 0``, else mean + temperature * std * eps.
        ``z_top`` (B, C, t, t), if given, fixes the top latent. Returns (image, list of per-layer
        dicts with mu_p, logvar_p, mu_q, logvar_q (None without feats) and z), index 0 = finest.
        """
        L = self.n_latent_layers
        h = self.h_top.expand(batch, -1, -1, -1)
        infos: list = [None] * L
        coarse_to_fine = self.resolutions[::-1]
        res_idx = 0  # position of h's resolution in coarse_to_fine
        for i in range(L - 1, -1, -1):
            while coarse_to_fine[res_idx] < self.layer_res[i]:
                h = self.dec_ups[res_idx](h)
                h = self.dec_plain[res_idx](h)
                res_idx += 1
            mu_p, logvar_p = self._prior(i, h)
            mu_q = logvar_q = None
            if feats is not None:
                mu_q, logvar_q = self._posterior(i, h, feats[self.layer_res[i]], mu_p, logvar_p)
            if i == L - 1 and z_top is not None:
                z = z_top.float()
            elif feats is not None:
                z = mu_q if mode == "mean" else self.reparameterize(mu_q, logvar_q, generator)
            elif temperature == 0:
                z = mu_p
            else:
                eps = torch.randn(mu_p.shape, generator=generator, device=mu_p.device, dtype=mu_p.dtype)
                z = mu_p + temperature * eps * torch.exp(0.5 * logvar_p)
            infos[i] = {"mu_p": mu_p, "logvar_p": logvar_p, "mu_q": mu_q, "logvar_q": logvar_q, "z": z}
            h = self.dec_blocks[i](h + self.z_proj[i](z.to(h.dtype)))
        while res_idx < len(coarse_to_fine) - 1:
            h = self.dec_ups[res_idx](h)
            h = self.dec_plain[res_idx](h)
            res_idx += 1
        return self.out(h), infos

    def _layer_kls(self, infos) -> list[torch.Tensor]:
        """Per-sample KL(q || p) of each layer, in nats, each (B,), index 0 = finest."""
        kls = []
        for i, d in enumerate(infos):
            if i == self.n_latent_layers - 1:
                kls.append(gaussian_kl(d["mu_q"], d["logvar_q"]))
            else:
                kls.append(gaussian_kl_two(d["mu_q"], d["logvar_q"], d["mu_p"], d["logvar_p"]))
        return kls

    # ------------------------------------------------------------------ VAE contract
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of the TOP latent, flattened to (B, latent_dim).

        The top posterior depends on x only (h at the top is a constant), so this runs just the
        bottom-up path and the top posterior head.
        """
        feats = self.bottom_up(x)
        i = self.n_latent_layers - 1
        h = self.h_top.expand(x.shape[0], -1, -1, -1)
        zeros = torch.zeros((x.shape[0], *self.latent_shapes[i]), device=x.device)
        mu, logvar = self._posterior(i, h, feats[self.layer_res[i]], zeros, zeros)
        return mu.flatten(1), logvar.flatten(1)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None, temperature: float = 0.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Image in [0, 1] from a top latent (B, latent_dim); lower layers use the prior means
        (``temperature=0``, the default) or prior samples with std scaled by ``temperature``."""
        z_top = z.reshape(z.shape[0], *self.latent_shapes[-1])
        img, _ = self._top_down(z.shape[0], z_top=z_top, temperature=temperature, generator=generator)
        return img.float()

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """n images with every layer drawn from its prior (std scaled by ``temperature``)."""
        img, _ = self._top_down(n, temperature=temperature, generator=generator)
        return img.float()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None, deterministic: bool = True,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Full top-down inference: posterior means at every layer when deterministic, else samples."""
        img, _ = self._top_down(x.shape[0], self.bottom_up(x), mode="mean" if deterministic else "sample",
                                generator=generator)
        return img.float()

    @torch.no_grad()
    def encode_all(self, x: torch.Tensor, deterministic: bool = True, generator: torch.Generator | None = None) -> list[dict]:
        """Posterior and prior parameters (and the latent used) at every layer, index 0 = finest."""
        _, infos = self._top_down(x.shape[0], self.bottom_up(x), mode="mean" if deterministic else "sample",
                                  generator=generator)
        return infos

    @torch.no_grad()
    def kl_per_layer(self, x: torch.Tensor, deterministic: bool = False,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-sample KL of each layer in nats, shape (B, L), column 0 = finest layer. The layers
        above are conditioned on posterior samples (the ELBO's estimator) or, when
        ``deterministic``, on posterior means."""
        _, infos = self._top_down(x.shape[0], self.bottom_up(x), mode="mean" if deterministic else "sample",
                                  generator=generator)
        return torch.stack(self._layer_kls(infos), dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        img, _ = self._top_down(x.shape[0], self.bottom_up(x), mode="sample")
        return img

    def loss(self, x: torch.Tensor, y: torch.Tensor | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        recon, infos = self._top_down(x.shape[0], self.bottom_up(x), mode="sample")
        err = (recon.float() - x.float()).pow(2)
        mse = err.mean()
        n_pix = err[0].numel()
        if self.obs_sigma is None:
            var = mse.detach().clamp_min(1e-6)
            rec_nll = err.flatten(1).sum(1).mean() / (2 * var) + 0.5 * n_pix * torch.log(2 * math.pi * var)
        else:
            rec_nll = err.flatten(1).sum(1).mean() / (2 * self.obs_sigma ** 2)
        kls = [k.mean() for k in self._layer_kls(infos)]
        kl = torch.stack(kls).sum()
        kl_obj = torch.stack([k.clamp_min(self.free_bits) for k in kls]).sum() if self.free_bits > 0 else kl
        beta = self.beta_at(ctx.progress)
        out = {"loss": rec_nll + beta * kl_obj, "recon": mse, "kl": kl}
        out.update({f"kl_{i}": k for i, k in enumerate(kls)})
        out["beta"] = torch.tensor(beta)
        return out

    def train_step(self, x, y, optimizers, ctx):
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        autocast = ctx.autocast if ctx.autocast is not None else contextlib.nullcontext
        with autocast():
            parts = self.loss(x, y, ctx)
        parts["loss"].backward()
        logs = {k: float(v.detach()) for k, v in parts.items()}
        # The norm is always logged; grads are clipped only when grad_clip > 0 (inf leaves them as is).
        norm = float(nn.utils.clip_grad_norm_(self.parameters(), self.grad_clip or math.inf))
        logs["grad_norm"] = norm
        if not math.isfinite(norm):  # skip a poisoned update; the logged loss / norm already show it
            opt.zero_grad(set_to_none=True)
            return logs
        opt.step()
        return logs
