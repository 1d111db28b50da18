"""Samplers: prior determinism, GMM recovering latent clusters, two-stage matching the latent law."""

import numpy as np
import pytest
import torch

from facegen.models.base import VAEModel
from facegen.samplers import SamplerError, make_sampler
from test_trainer import FakeCollapsedGAN, TinyVAE


class PixelLatentVAE(VAEModel):
    """encode: the mean of channels 0 and 1; decode: images filled with those two values. So the
    latent distribution is known exactly from the images, and a sample's latent can be read back."""

    latent_dim = 2

    def __init__(self, image_size=16):
        super().__init__(image_size)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def encode(self, x, y=None):
        mu = x[:, :2].mean(dim=(2, 3))
        return mu, torch.full_like(mu, -10.0)

    def decode(self, z, y=None):
        z = z.clamp(0, 1)
        img = torch.zeros(len(z), 3, self.image_size, self.image_size)
        img[:, :2] = z[:, :, None, None]
        return img


def cluster_images(n=200, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.2, 0.8], [0.8, 0.2]])
    z = centres[rng.integers(0, 2, n)] + rng.normal(0, 0.02, (n, 2))
    img = np.zeros((n, 16, 16, 3), np.uint8)
    img[..., :2] = np.round(np.clip(z, 0, 1) * 255)[:, None, None, :]
    return img, centres


def latents_of(samples):
    return samples[..., :2].reshape(len(samples), -1, 2).mean(1) / 255


def test_prior_sampler_shape_and_seeding():
    torch.manual_seed(0)
    model = TinyVAE()
    s = make_sampler("prior").fit(model, None)
    a, b, c = s.sample(10, seed=1), s.sample(10, seed=1), s.sample(10, seed=2)
    assert a.shape == (10, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_gmm_sampler_recovers_latent_clusters():
    images, centres = cluster_images()
    s = make_sampler("gmm", n_components=2).fit(PixelLatentVAE(), images, seed=0)
    z = latents_of(s.sample(300, seed=3))
    dist = np.min(np.linalg.norm(z[:, None, :] - centres[None], axis=2), axis=1)
    assert (dist < 0.1).mean() > 0.97
    # both modes are represented, roughly equally
    near_first = (np.linalg.norm(z - centres[0], axis=1) < 0.1).mean()
    assert 0.3 < near_first < 0.7
    assert np.array_equal(s.sample(20, seed=5), s.sample(20, seed=5))


def test_two_stage_sampler_matches_latent_distribution():
    rng = np.random.default_rng(0)
    z_true = np.clip(rng.normal([0.7, 0.3], 0.05, (400, 2)), 0, 1)
    images = np.zeros((400, 16, 16, 3), np.uint8)
    images[..., :2] = np.round(z_true * 255)[:, None, None, :]
    s = make_sampler("two_stage", epochs=40, hidden=32, lr=1e-2, batch=100).fit(PixelLatentVAE(), images, seed=0)
    z = latents_of(s.sample(500, seed=1))
    assert np.allclose(z.mean(0), [0.7, 0.3], atol=0.05)
    assert np.all(z.std(0) < 0.15)


class NoisyEncoderVAE(PixelLatentVAE):
    """Every image has posterior N(0.5, 0.1^2)."""

    def encode(self, x, y=None):
        mu = torch.full((len(x), 2), 0.5)
        return mu, torch.full_like(mu, float(np.log(0.01)))


def test_two_stage_sampler_trains_on_posterior_samples_not_the_means(monkeypatch):
    """Dai & Wipf train the second stage on z ~ q(z|x): here every posterior is N(0.5, 0.1^2), so its
    training latents spread by 0.1 (posterior means would all be 0.5), drawn afresh each epoch."""
    from facegen import samplers

    batches = []
    original = samplers._LatentVAE.loss
    monkeypatch.setattr(samplers._LatentVAE, "loss", lambda self, z: (batches.append(z.clone()), original(self, z))[1])
    images = np.zeros((400, 16, 16, 3), np.uint8)
    make_sampler("two_stage", epochs=2, hidden=8, batch=400).fit(NoisyEncoderVAE(), images, seed=0)
    assert len(batches) == 2
    for z in batches:
        assert np.allclose(z.mean(0).numpy(), 0.5, atol=0.02) and np.allclose(z.std(0).numpy(), 0.1, atol=0.015)
    assert not torch.equal(batches[0], batches[1])


def test_fitted_sampler_never_sees_the_fid_reference(monkeypatch):
    import pandas as pd

    from facegen.evaluation import run as evaluation

    seen = {}

    class Recorder:
        def fit(self, model, images, seed=0):
            seen["images"] = images
            return self

        def sample(self, n, seed=0, y=None):
            return np.zeros((n, 16, 16, 3), np.uint8)

    monkeypatch.setattr(evaluation, "make_sampler", lambda name: Recorder())
    images = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 16, 16, 3), np.uint8)
    meta = pd.DataFrame({"split": ["train"] * 8 + ["test"] * 2})
    ev = {"n_generated": 4, "seed": 0, "sampler": "gmm"}
    ckpt = {"condition_encoding": [], "spec": {"model": "m"}}
    evaluation.generate(PixelLatentVAE(), ckpt, images, meta, ev, reference_rows=[0, 1, 2])
    assert sorted(seen["images"][:, 0, 0, 0]) == [3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="lower evaluation.n_real or use the prior sampler"):
        evaluation.generate(PixelLatentVAE(), ckpt, images, meta, ev, reference_rows=range(8))


def test_latent_samplers_reject_gans_and_unknown_names():
    with pytest.raises(SamplerError, match="sampler 'gmm' needs a VAE-type model.*FakeCollapsedGAN"):
        make_sampler("gmm").fit(FakeCollapsedGAN(), np.zeros((4, 16, 16, 3), np.uint8))
    with pytest.raises(SamplerError, match="unknown sampler 'flow'; known: prior, gmm, two_stage"):
        make_sampler("flow")
