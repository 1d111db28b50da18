"""Building blocks shared by the model families: stride-2 conv stacks and their mirrors."""

from __future__ import annotations

from torch import nn


def conv_down(c_in: int, c_out: int, norm: bool = True, spectral: bool = False) -> nn.Sequential:
    """4x4 stride-2 conv (halves H and W), optional BatchNorm, LeakyReLU(0.2)."""
    conv = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not norm)
    if spectral:
        # The parametrization API: modules built with the older nn.utils.spectral_norm cannot be
        # deep-copied after a forward pass, which FLOP counting and checkpoint tools need.
        conv = nn.utils.parametrizations.spectral_norm(conv)
    layers = [conv]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


UPSAMPLES = ("transposed", "nearest")


def upsample_conv(c_in: int, c_out: int, upsample: str = "transposed", bias: bool = True) -> nn.Module:
    """A layer that doubles H and W: a 4x4 stride-2 transposed conv, or ``upsample="nearest"``: nearest-
    neighbour upsampling then a 3x3 conv, which cannot make the transposed conv's checkerboard, whose
    uneven kernel overlap paints a period-2 pattern (Odena et al. 2016, "Deconvolution and
    checkerboard artifacts"). The conv costs 9/4 of the transposed conv's multiply-adds."""
    if upsample == "transposed":
        return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)
    if upsample == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias))
    raise ValueError(f"upsample must be one of {', '.join(repr(u) for u in UPSAMPLES)}; got {upsample!r}")


def conv_up(c_in: int, c_out: int, norm: bool = True, upsample: str = "transposed") -> nn.Sequential:
    """A layer that doubles H and W (see ``upsample_conv``), optional BatchNorm, ReLU."""
    layers = [upsample_conv(c_in, c_out, upsample, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """x (B, 3, S, S) -> features (B, channels[-1], S / 2**len(channels), same)."""

    def __init__(self, in_channels: int = 3, channels=(32, 64, 128, 256), first_norm: bool = True, spectral: bool = False):
        super().__init__()
        layers, c = [], in_channels
        for i, c_out in enumerate(channels):
            layers.append(conv_down(c, c_out, norm=(first_norm or i > 0), spectral=spectral))
            c = c_out
        self.net = nn.Sequential(*layers)
        self.out_channels = c

    def forward(self, x):
        return self.net(x)


class ConvDecoder(nn.Module):
    """features (B, channels[0], s, s) -> image (B, out_channels, s * 2**len(channels), same) in [0, 1]."""

    def __init__(self, channels=(256, 128, 64, 32), out_channels: int = 3, output: str = "sigmoid"):
        super().__init__()
        layers = [conv_up(c_in, c_out) for c_in, c_out in zip(channels[:-1], channels[1:])]
        layers.append(nn.ConvTranspose2d(channels[-1], out_channels, 4, 2, 1))
        layers.append(nn.Sigmoid() if output == "sigmoid" else nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, h):
        return self.net(h)
