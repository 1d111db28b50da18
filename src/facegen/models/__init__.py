"""The model zoo. Each family lives in its own module and registers its architectures here by name."""

from __future__ import annotations

import importlib
import inspect

from facegen.models.base import GenerativeModel, StepContext, VAEModel

# architecture name -> "module:Class"; modules are imported on demand so one broken family cannot
# stop the others from loading.
ARCHITECTURES = {
    "fc_hvae": "facegen.models.fc_hvae:FCHVAE",
    "vae": "facegen.models.vae:ConvVAE",
    "beta_vae": "facegen.models.vae:BetaVAE",
    "cvae": "facegen.models.vae:ConditionalVAE",
    "hvae": "facegen.models.hvae:LadderVAE",
    "dfc_vae": "facegen.models.dfc_vae:DFCVAE",
    "dcgan": "facegen.models.gan:DCGAN",
    "vaegan": "facegen.models.vaegan:VAEGAN",
}


class UnknownModelError(ValueError):
    pass


def model_class(arch: str) -> type[GenerativeModel]:
    if arch not in ARCHITECTURES:
        raise UnknownModelError(f"unknown model architecture '{arch}'; known: {', '.join(ARCHITECTURES)}. Fix the 'arch' key of the model in the config.")
    module, _, cls = ARCHITECTURES[arch].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_model(arch: str, image_size: int, **params) -> GenerativeModel:
    """Build a model by architecture name; ``params`` are its hyperparameters from the config."""
    cls = model_class(arch)
    try:
        return cls(image_size=image_size, **params)
    except TypeError as exc:
        raise ValueError(f"bad hyperparameters for model '{arch}': {exc}") from exc


def param_names(arch: str) -> list[str]:
    """The hyperparameters a config may give an architecture: its constructor's keyword arguments
    (image_size and the conditioning width come from the data, private ones are for subclasses)."""
    sig = inspect.signature(model_class(arch).__init__)
    return [n for n, p in sig.parameters.items() if n not in ("self", "image_size", "n_cond") and not n.startswith("_")
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_params(arch: str, image_size: int, params: dict) -> None:
    """Reject an unknown key or a bad value of ``params`` before any job starts: the model is built (and
    dropped), so its constructor's own checks run, and are the only ones. On the CPU, not the meta
    device: these nets build in milliseconds, and the meta device's first use costs over a second."""
    allowed = param_names(arch)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key '{unknown[0]}' for arch '{arch}'; allowed keys: {', '.join(allowed)}")
    build_model(arch, image_size, **data_params(arch), **params)


def data_params(arch: str, n_cond: int = 1) -> dict:
    """The constructor arguments the data gives (the conditioning width of a conditional family), at a
    stand-in value for building a model without data: checks and benchmarks."""
    return {"n_cond": n_cond} if model_class(arch).conditional else {}


__all__ = ["ARCHITECTURES", "GenerativeModel", "StepContext", "UnknownModelError", "VAEModel", "build_model", "check_params", "data_params",
           "model_class", "param_names"]
