"""DINOv2 ViT features (Oquab et al. 2023) for FD_DINOv2, the Frechet distance in DINOv2's feature space,
which Stein et al. (2023, "Exposing flaws of generative model evaluation metrics and their unfair
treatment of diffusion models") found to agree with human judgement where Inception's does not. The
features are torch-fidelity's (FeatureExtractorDinoV2: a TF1-style bilinear resize to 224, ImageNet
normalisation, the class token) over the network of facebookresearch/dinov2's torch.hub entry.

No registry package ships these weights. The network loads from torch.hub's cache (the repository at
<hub>/facebookresearch_dinov2_main and its checkpoint under <hub>/checkpoints) without a network, or
else by torch.hub's own download from GitHub and dl.fbaipublicfiles.com, which torch-fidelity makes;
where neither works, :class:`facegen.metrics.errors.FeaturesUnavailable` says why. No digest of the
checkpoints is published, so they cannot be checked by sha256 as the study's other weights are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facegen.metrics.errors import FeaturesUnavailable

# torch-fidelity's names -> (torch.hub entry, ViT layers, width), the entries of its MODEL_METADATA
MODELS = {"dinov2-vit-s-14": ("dinov2_vits14", 12, 384), "dinov2-vit-b-14": ("dinov2_vitb14", 12, 768),
          "dinov2-vit-l-14": ("dinov2_vitl14", 24, 1024), "dinov2-vit-g-14": ("dinov2_vitg14", 40, 1536)}
REPO = "facebookresearch_dinov2_main"


def cached_files(model: str) -> tuple[Path, Path]:
    """Where torch.hub keeps the repository and ``model``'s checkpoint (dinov2's hubconf names it so)."""
    import torch

    hub = Path(torch.hub.get_dir())
    return hub / REPO, hub / "checkpoints" / f"{MODELS[model][0]}_pretrain.pth"


def missing(model: str) -> str | None:
    """Why ``model`` is not in torch.hub's cache, or None when it is."""
    lacking = [p for p in (cached_files(model)[0] / "hubconf.py", cached_files(model)[1]) if not p.is_file()]
    return f"unavailable: DINOv2 weights missing ({', '.join(map(str, lacking))} not found)" if lacking else None


def _cached_extractor(model: str):
    import torch
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

    class Cached(FeatureExtractorDinoV2):
        """torch-fidelity's extractor over the cached repository: its __init__ asks GitHub for the default
        branch first, which fails offline even with the cache in place."""

        def __init__(self, name: str):
            FeatureExtractorBase.__init__(self, name, ["dinov2"])
            self.feature_extractor_internal_dtype = torch.float32
            self.model = torch.hub.load(str(cached_files(name)[0]), MODELS[name][0], source="local")
            self.requires_grad_(False)
            self.eval()

    return Cached(model)


def extractor(model: str, device: str = "cpu"):
    if model not in MODELS:
        raise ValueError(f"unknown DINOv2 model '{model}'; choose from {', '.join(MODELS)}")
    if missing(model) is None:
        net = _cached_extractor(model)
    else:
        from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

        try:
            net = FeatureExtractorDinoV2(model, ["dinov2"])
        except Exception as exc:  # torch.hub raises URLError, HTTPError or RuntimeError offline
            raise FeaturesUnavailable(f"{missing(model)}; the download failed: {type(exc).__name__}: {exc}") from exc
    return net.to(device)


def features(images: np.ndarray, net, batch_size: int = 50, desc: str = "dinov2") -> np.ndarray:
    """(N, width) float32 class-token features of uint8 (N, H, W, 3) images."""
    import torch

    from facegen.metrics.inception import check_images
    from facegen.progress import progress

    images = check_images(images)
    device = next(net.parameters()).device
    parts = []
    with torch.no_grad():
        for i in progress(range(0, len(images), batch_size), desc=desc, unit="batch"):
            x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])).to(device).permute(0, 3, 1, 2)
            parts.append(net(x)[0].float().cpu().numpy())
    return np.concatenate(parts) if parts else np.empty((0, 0), np.float32)
