"""What each registered family declares (encoder, conditioning, curves, pretrained networks) is what it
does, and code outside models/ reads the declarations instead of testing a class or an architecture."""

import ast
import contextlib
from pathlib import Path

import pytest
import torch

from facegen.models import ARCHITECTURES, build_model, data_params, model_class
from facegen.models.base import StepContext
from facegen.training.trainer import TrainSettings, make_optimizer

SRC = Path(__file__).resolve().parents[2] / "src" / "facegen"


def one_step(arch):
    torch.manual_seed(0)
    model = build_model(arch, 16 if arch != "fc_hvae" else 32, **data_params(arch, n_cond=2))
    size = model.image_size
    opts = {k: make_optimizer(TrainSettings(lr=1e-4), p) for k, p in model.param_groups().items() if p}
    x = torch.rand(4, 3, size, size)
    y = torch.zeros(4, 2) if model.conditional else None
    logged = model.train_step(x, y, opts, StepContext(0, 1, 0, 10, autocast=contextlib.nullcontext))
    return model, logged


@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if a != "dfc_vae"])  # its VGG16 loss needs the real weights
def test_declared_curves_are_logged_and_generate_makes_images(arch):
    model, logged = one_step(arch)
    assert set(model.curves) <= set(logged), f"{arch} declares curves it does not log"
    model.eval()
    y = torch.zeros(3, 2) if model.conditional else None
    images = model.generate(torch.randn(3, model.latent_dim), y)
    assert images.shape == (3, 3, model.image_size, model.image_size)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_encoder_declaration_matches_the_model(arch):
    model = build_model(arch, 32, **data_params(arch))
    assert model_class(arch).encodes == callable(getattr(model, "encode", None))


def test_latent_density_and_data_params_known_answers():
    """GMM and two-stage samplers, latent experiments and the monitor: unconditional encoders only."""
    dense = {a for a in ARCHITECTURES if model_class(a).latent_density()}
    assert dense == {"fc_hvae", "vae", "beta_vae", "hvae", "dfc_vae", "vaegan"}  # not cvae (conditional), not dcgan
    assert data_params("cvae", n_cond=3) == {"n_cond": 3} and data_params("vae") == {} and data_params("dcgan") == {}


def test_a_family_loads_its_pretrained_network_before_training(monkeypatch):
    import facegen.models.dfc_vae as dfc

    built = []
    monkeypatch.setattr(dfc, "vgg16_features", lambda weights_dir, layers: built.append(layers) or torch.nn.Identity())
    model = build_model("dfc_vae", 32)
    model.load_pretrained()
    assert built == [model.feature_layers]
    build_model("vae", 32).load_pretrained()  # nothing to load: no call, no error


def test_no_caller_outside_models_tests_a_model_class():
    """isinstance(m, VAEModel) or issubclass(cls, DCGAN) outside models/ is a family special-cased by name."""
    from facegen import models

    names = {"GenerativeModel", "VAEModel", *(spec.partition(":")[2] for spec in models.ARCHITECTURES.values())}
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.is_relative_to(SRC / "models"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("isinstance", "issubclass"):
                second = node.args[1] if len(node.args) > 1 else None
                used = {n.id for n in ast.walk(second) if isinstance(n, ast.Name)} if second is not None else set()
                if used & names:
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, offenders
