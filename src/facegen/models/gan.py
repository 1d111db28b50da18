"""DCGAN (Radford et al. 2015) with the non-saturating GAN loss, and the generator / discriminator
networks the VAE-GAN reuses.

Generator: z (B, nz) -> linear projection, reshaped to (B, 4*... , 4, 4), BatchNorm + ReLU -> 4x4
stride-2 transposed convs with BatchNorm + ReLU, halving the width each time -> a last transposed
conv to 3 channels and a sigmoid, so images are in [0, 1] like everywhere else in the zoo. With
``upsample="nearest"`` each transposed conv becomes nearest-neighbour upsampling + a 3x3 conv (see
``blocks.upsample_conv``).

Discriminator: 4x4 stride-2 convs with LeakyReLU(0.2), BatchNorm on every layer but the first,
doubling the width each time, down to 4x4; then a 4x4 valid conv to one logit. With
``spectral_norm=True`` every conv (the head included) is spectrally normalised and BatchNorm is
dropped. The output of an intermediate conv block (the 3rd by default) is exposed as a feature map:
the VAE-GAN's learned similarity metric, and a cheap learned embedding for anything else.

Losses (BCE with logits): D minimises -log D(x) - log(1 - D(G(z))); G minimises -log D(G(z)).
A train step is one D step on a fresh noise batch, then one G step on the same fakes against the
updated D. The noise comes from ``ctx.extra["generator"]`` when the trainer supplies a
torch.Generator there, else from the global torch RNG, so the trainer's seeding fixes a run.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from facegen.models.base import GenerativeModel, StepContext, log2
from facegen.models.blocks import conv_down, conv_up, upsample_conv


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.'s initialisation: conv / linear weights ~ N(0, 0.02), BN scale ~ N(1, 0.02).

    Spectrally normalised layers are skipped: they are initialised before the parametrisation is
    registered (see ``sn_conv``), so that its power-iteration vectors match the weight.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if parametrize.is_parametrized(m, "weight"):
                continue
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def sn_conv(c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> nn.Module:
    """A DCGAN-initialised conv under torch.nn.utils.parametrizations.spectral_norm.

    (blocks.conv_down(spectral=True) uses the older nn.utils.spectral_norm, whose module cannot be
    deep-copied after a forward pass -- the model card deep-copies a trained model.)
    """
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding)
    nn.init.normal_(conv.weight, 0.0, 0.02)
    nn.init.zeros_(conv.bias)
    return nn.utils.parametrizations.spectral_norm(conv)


def randn(shape, device, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise from ``generator`` (on its own device, then moved) or the global RNG."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def autocast_of(ctx: StepContext):
    """The context-manager factory of a step context (a no-op when none was given)."""
    return ctx.autocast if ctx.autocast is not None else contextlib.nullcontext


def step_generator(ctx: StepContext) -> torch.Generator | None:
    extra = ctx.extra or {}
    return extra.get("generator")


def _check_size(image_size: int) -> int:
    if image_size < 16 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
    return log2(image_size) - 2  # stride-2 layers between 4x4 and image_size


class Generator(nn.Module):
    """z (B, nz) -> image (B, channels, S, S) in [0, 1]; the DCGAN generator, also the VAE-GAN decoder.

    Widths: ``ngf * 2**(n-1)`` at 4x4 down to ``ngf`` at S/2, where n = log2(S) - 2 (so 512, 256,
    128, 64 at 64x64 with ngf = 64, the DCGAN paper's net; 256, 128, 64 at 32x32).
    """

    def __init__(self, image_size: int, nz: int = 100, ngf: int = 64, channels: int = 3, upsample: str = "transposed"):
        super().__init__()
        n = _check_size(image_size)
        self.nz = int(nz)
        widths = [ngf * 2 ** (n - 1 - i) for i in range(n)]
        self.project = nn.Linear(self.nz, widths[0] * 16, bias=False)
        self.project_bn = nn.Sequential(nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        self.c0 = widths[0]
        self.body = nn.Sequential(*[conv_up(a, b, upsample=upsample) for a, b in zip(widths[:-1], widths[1:])])
        self.out = nn.Sequential(upsample_conv(widths[-1], channels, upsample), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z.flatten(1)).reshape(z.shape[0], self.c0, 4, 4)
        return self.out(self.body(self.project_bn(h)))


class Discriminator(nn.Module):
    """image (B, channels, S, S) -> one logit per image (B,), plus an intermediate feature map.

    Widths ``ndf, 2 ndf, 4 ndf, ...`` over n = log2(S) - 2 stride-2 blocks (64x64 -> 4x4), then a 4x4
    valid conv to the logit. ``feature_layer`` (1-based) picks the block whose output is the feature
    map; it is capped at n, so at 16x16 (two blocks) the 3rd-layer default means the 2nd.
    """

    def __init__(self, image_size: int, ndf: int = 64, channels: int = 3, spectral_norm: bool = False,
                 feature_layer: int = 3):
        super().__init__()
        n = _check_size(image_size)
        if int(feature_layer) < 1:
            raise ValueError(f"feature_layer must be >= 1, got {feature_layer}")
        self.feature_layer = min(int(feature_layer), n)
        self.spectral_norm = bool(spectral_norm)
        blocks, c = [], channels
        for i in range(n):
            c_out = ndf * 2 ** i
            if spectral_norm:  # spectral norm replaces BatchNorm everywhere
                blocks.append(nn.Sequential(sn_conv(c, c_out, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)))
            else:  # BN on all but the first layer
                blocks.append(conv_down(c, c_out, norm=i > 0))
            c = c_out
        self.blocks = nn.ModuleList(blocks)
        self.head = sn_conv(c, 1, 4, 1, 0) if spectral_norm else nn.Conv2d(c, 1, 4, 1, 0)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B,), feature map of block ``feature_layer``)."""
        feat = None
        h = x
        for i, block in enumerate(self.blocks, start=1):
            h = block(h)
            if i == self.feature_layer:
                feat = h
        return self.head(h).flatten(), feat

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map of block ``feature_layer`` only (the later blocks are not run)."""
        h = x
        for block in self.blocks[:self.feature_layer]:
            h = block(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


def bce_logits(logits: torch.Tensor, target: float, ctx: StepContext | None = None) -> torch.Tensor:
    """Mean BCE against a constant target; with ``ctx`` the mean is weighted by its per-image weights."""
    logits = logits.float()
    if ctx is None or ctx.sample_weights is None:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))
    per_image = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none")
    return ctx.mean(per_image.reshape(len(per_image), -1).mean(1))


class DCGAN(GenerativeModel):
    """DCGAN with the non-saturating loss; ``spectral_norm=True`` swaps D's BatchNorm for spectral norm."""

    family = "gan"
    sample_weighting = True
    curves = ("d_loss",)

    def __init__(self, image_size: int, nz: int = 100, ngf: int = 64, ndf: int = 64, spectral_norm: bool = False,
                 feature_layer: int = 3, upsample: str = "transposed"):
        super().__init__(image_size)
        self.nz = int(nz)
        self.latent_dim = self.nz  # so latent-space tools (interpolation) can treat G like a decoder
        self.generator = Generator(image_size, self.nz, ngf, self.channels, upsample)
        self.discriminator = Discriminator(image_size, ndf, self.channels, spectral_norm, feature_layer)
        dcgan_init(self)

    def param_groups(self):
        return {"generator": list(self.generator.parameters()), "discriminator": list(self.discriminator.parameters())}

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z)

    def discriminator_features(self, x: torch.Tensor) -> torch.Tensor:
        """D's intermediate feature map (B, C, h, w) for images in [0, 1]."""
        return self.discriminator.features(x)

    def compile_parts(self):
        # Apart: the D step backpropagates D alone (through detached fakes), the G step both.
        return [(self.generator, "forward"), (self.discriminator, "forward")]

    def train_step(self, x, y, optimizers, ctx):
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        autocast = autocast_of(ctx)
        z = randn((x.shape[0], self.nz), x.device, step_generator(ctx))

        # D step: real -> 1, fake -> 0 (separate real and fake batches, as in DCGAN)
        opt_d.zero_grad(set_to_none=True)
        with autocast():
            fake = self.generator(z)
            real_logits = self.discriminator(x)
            fake_logits = self.discriminator(fake.detach())
            # group reweighting acts on the real images only: generated ones have no group
            d_loss = bce_logits(real_logits, 1.0, ctx) + bce_logits(fake_logits, 0.0)
        d_loss.backward()
        opt_d.step()

        # G step on the same fakes against the updated D: maximise log D(G(z))
        opt_g.zero_grad(set_to_none=True)
        with autocast():
            g_loss = bce_logits(self.discriminator(fake), 1.0)
        g_params = [p for p in self.generator.parameters() if p.requires_grad]
        g_loss.backward(inputs=g_params)  # no gradients for D's weights
        opt_g.step()

        return {"d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach()),
                "d_real": float(torch.sigmoid(real_logits.detach().float()).mean()),
                "d_fake": float(torch.sigmoid(fake_logits.detach().float()).mean())}

    @torch.no_grad()
    def sample(self, n, y=None, generator=None):
        device = next(self.parameters()).device
        return self.generator(randn((n, self.nz), device, generator))
