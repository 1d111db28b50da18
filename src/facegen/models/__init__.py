"""The model zoo. Each family lives in its own module and registers its architectures here by name."""

from __future__ import annotations

import importlib

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


__all__ = ["ARCHITECTURES", "GenerativeModel", "StepContext", "UnknownModelError", "VAEModel", "build_model", "model_class"]
