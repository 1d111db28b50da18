import numpy as np
import pytest

from facegen.metrics.pixel_fid import approx_fid, reference_scores


def test_known_answer_against_explicit_covariances():
    rng = np.random.default_rng(0)
    r, g = rng.random((50, 4, 4, 3)), rng.random((40, 4, 4, 3)) * 0.5
    rf, gf = r.reshape(50, -1), g.reshape(40, -1)
    expected = np.sum((rf.mean(0) - gf.mean(0)) ** 2) + np.trace(np.cov(rf, rowvar=False) + np.cov(gf, rowvar=False))
    assert approx_fid(r, g) == pytest.approx(expected, rel=1e-12)


def test_uint8_is_scaled_to_unit_range():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    assert approx_fid(a, b) == pytest.approx(approx_fid(a / 255.0, b / 255.0))


def test_identical_constant_sets_score_zero():
    x = np.full((10, 4, 4, 3), 0.3)
    assert approx_fid(x, x) == pytest.approx(0.0, abs=1e-20)


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in size"):
        approx_fid(np.zeros((5, 4, 4, 3)), np.zeros((5, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        approx_fid(np.full((5, 4), 2.0), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        approx_fid(np.zeros((1, 4)), np.zeros((5, 4)))


def test_mean_face_scores_below_a_perfect_generator():
    """The formula is not a distance: the mean face alone beats a generator of real images."""
    rng = np.random.default_rng(2)
    real, other = rng.random((4000, 4, 4, 3)), rng.random((4000, 4, 4, 3))
    ref = reference_scores(real)
    mean_face = np.repeat(real.mean(0, keepdims=True), 5, axis=0)
    assert approx_fid(real, mean_face) == pytest.approx(ref["approx_fid_pixel_mean_face"], rel=1e-12)
    assert approx_fid(real, other) == pytest.approx(ref["approx_fid_pixel_perfect"], rel=0.02)
    assert ref["approx_fid_pixel_perfect"] == 2 * ref["approx_fid_pixel_mean_face"]
    with pytest.raises(ValueError, match="at least 2"):
        reference_scores(real[:1])
