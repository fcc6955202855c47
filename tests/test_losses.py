"""The fused cross-entropy against the plain-numpy formula and finite differences."""
import numpy as np
import pytest

from engine import losses


def reference(logits, labels):
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    grad = exp / total
    grad[rows, labels] -= 1
    return float(np.mean(np.log(total[:, 0]) - shifted[rows, labels])), grad / n


@pytest.mark.parametrize("n, classes", [(64, 10), (7, 3), (1, 2), (33, 101)])
def test_cross_entropy_matches_numpy_and_finite_differences(n, classes):
    rng = np.random.default_rng(n)
    logits = rng.standard_normal((n, classes)) * 4
    labels = rng.integers(0, classes, n)
    loss, grad = losses.cross_entropy(logits, labels)
    want_loss, want_grad = reference(logits, labels)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-14)
    i, j, h = n // 2, classes - 1, 1e-6
    bumped = logits.copy()
    bumped[i, j] += h
    assert (losses.cross_entropy(bumped, labels)[0] - loss) / h == pytest.approx(grad[i, j],
                                                                               abs=1e-6)
    single, _ = losses.cross_entropy(logits.astype(np.float32), labels)
    assert single == pytest.approx(want_loss, rel=1e-5)


def test_cross_entropy_nan_bad_labels_and_empty_batch():
    logits = np.zeros((4, 3), np.float32)
    for bad in (np.nan, np.inf):
        logits[2, 1] = bad
        assert np.isnan(losses.cross_entropy(logits, np.array([0, 1, 2, 0]))[0])
    with pytest.raises(IndexError, match="0..2"):
        losses.cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 3]))
    with pytest.raises(ValueError, match="one label per row"):   # never read past the labels
        losses.cross_entropy(np.zeros((4, 3), np.float32), np.array([0, 1]))
    with pytest.raises(ValueError, match="integer class indices"):
        losses.cross_entropy(np.zeros((2, 3), np.float32), np.array([0.0, 1.9]))
    loss, grad = losses.cross_entropy(np.zeros((0, 3), np.float32), np.zeros(0, np.int64))
    assert np.isnan(loss) and grad.shape == (0, 3)
