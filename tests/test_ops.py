"""Tensor math against plain Python references."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from dreamer import ops


def reference_lambda_return(r, v, g, b, lam):
  out = np.zeros_like(r)
  for n in range(r.shape[0]):
    ret = b[n]
    for k in reversed(range(r.shape[1])):
      nxt = v[n, k + 1] if k < r.shape[1] - 1 else b[n]
      ret = r[n, k] + g[n, k] * ((1 - lam) * nxt + lam * ret)
      out[n, k] = ret
  return out


@pytest.mark.parametrize('lam', [0.0, 0.5, 0.95, 1.0])
def test_lambda_return_matches_loop(lam):
  rng = np.random.default_rng(0)
  r, v = rng.normal(size=(4, 7)), rng.normal(size=(4, 7))
  g, b = rng.uniform(0.3, 1.0, size=(4, 7)), rng.normal(size=4)
  got = ops.lambda_return(*(tf.constant(x, tf.float32) for x in (r, v, g, b)), lam, axis=1)
  np.testing.assert_allclose(got.numpy(), reference_lambda_return(r, v, g, b, lam), atol=1e-5)


def test_lambda_return_time_major_and_without_bootstrap():
  rng = np.random.default_rng(1)
  r, v, g = (rng.normal(size=(5, 3)).astype(np.float32) for _ in range(3))
  got = ops.lambda_return(r, v, g, None, 0.8, axis=0).numpy()
  ref = reference_lambda_return(r.T, v.T, g.T, np.zeros(3), 0.8).T
  np.testing.assert_allclose(got, ref, atol=1e-5)


def test_discounted_return():
  r = tf.constant([[1.0, 2.0, 3.0]])
  g = tf.constant([[0.5, 0.5, 0.5]])
  np.testing.assert_allclose(ops.discounted_return(r, g, axis=1).numpy(),
                             [[1 + 0.5 * (2 + 0.5 * 3), 2 + 0.5 * 3, 3]], atol=1e-6)


def test_free_nats_clip_per_element_before_the_mean():
  kl = tf.constant([[1.0, 5.0], [2.0, 7.0]])
  assert ops.free_nats_kl(kl, 3.0).numpy() == pytest.approx((0 + 2 + 0 + 4) / 4)
  assert ops.free_nats_kl(kl, None).numpy() == pytest.approx(15 / 4)


def test_free_nats_give_no_gradient_below_the_threshold():
  kl = tf.Variable([1.0, 4.0])
  with tf.GradientTape() as tape:
    loss = ops.free_nats_kl(kl, 3.0)
  np.testing.assert_allclose(tape.gradient(loss, kl).numpy(), [0.0, 0.5])


def test_gaussian_kl_matches_tfp():
  rng = np.random.default_rng(2)
  m1, m2 = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
  s1, s2 = rng.uniform(0.1, 2, size=(3, 5)), rng.uniform(0.1, 2, size=(3, 5))
  tfd = tfp.distributions
  expected = tfd.MultivariateNormalDiag(m1, s1).kl_divergence(tfd.MultivariateNormalDiag(m2, s2))
  np.testing.assert_allclose(ops.gaussian_kl(m1, s1, m2, s2).numpy(), expected.numpy(),
                             rtol=1e-5)


def test_static_scan_matches_loop():
  xs = tf.constant(np.arange(6, dtype=np.float32).reshape(3, 2))
  out = ops.static_scan(lambda acc, x: acc * 2 + x, xs, tf.zeros(2))
  np.testing.assert_allclose(out.numpy(), [[0, 1], [2, 5], [8, 15]])
  back = ops.static_scan(lambda acc, x: acc + x, xs, tf.zeros(2), reverse=True)
  np.testing.assert_allclose(back.numpy(), [[6, 9], [6, 8], [4, 5]])


@pytest.mark.parametrize('ramp, minimum, step, expected', [
    (0, 0.0, 123, 1.0), (100, 0.0, 25, 0.25), (100, 0.0, 500, 1.0),
    (-1e7, 0.25, 0, 1.0), (-1e7, 0.25, 5e6, 0.5), (-1e7, 0.25, 9e6, 0.25)])
def test_linear_schedule(ramp, minimum, step, expected):
  assert float(ops.linear_schedule(step, ramp, minimum)) == pytest.approx(expected)


def test_cumulative_discount():
  g = tf.constant([[0.5, 0.5, 0.0, 1.0]])
  np.testing.assert_allclose(ops.cumulative_discount(g).numpy(), [[1, 0.5, 0.25, 0.0]])
