"""The layers compute what their docstrings say, whatever the input's rank."""

import numpy as np
import pytest
import tensorflow as tf

from dreamer.networks import layers


def test_dense_is_x_w_plus_b_on_any_leading_axes():
  dense = layers.Dense(3, act='relu', bias_init=0.5)
  x = np.random.default_rng(0).normal(size=(2, 4, 5)).astype(np.float32)
  y3 = dense(x).numpy()  # Builds the variables from the last axis.
  want = np.maximum(x @ dense.kernel.numpy() + 0.5, 0)
  np.testing.assert_allclose(y3, want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(dense(x.reshape(8, 5)).numpy(), want.reshape(8, 3), rtol=1e-5,
                             atol=1e-6)


def test_dense_on_a_matrix_traces_no_reshape():
  # Recurrent steps call Dense on [batch, features] hundreds of times per train step.
  dense = layers.Dense(3)
  graph = tf.function(dense).get_concrete_function(tf.TensorSpec([None, 5])).graph
  assert not [op for op in graph.get_operations() if op.type == 'Reshape']
  graph = tf.function(dense).get_concrete_function(tf.TensorSpec([None, 4, 5])).graph
  assert [op for op in graph.get_operations() if op.type == 'Reshape']


@pytest.mark.parametrize('size, filters, kernel', [
    (1, 8, 5), (3, 8, 5), (3, 3, 6), (5, 3, 5), (4, 2, 4)])
def test_transposed_convolution_equals_tensorflows_with_its_gradients(size, filters, kernel):
  """From a 1x1 input the layer computes one matmul (the decoder's first layer), with few
  output channels a convolution and depth_to_space (its last): the same outputs and
  gradients as tf.nn.conv2d_transpose."""
  layer = layers.Conv2DTranspose(filters, kernel, 2, act=None)
  x = tf.Variable(np.random.default_rng(0).normal(size=(4, size, size, 6)).astype(np.float32))
  layer(x)
  height = (size - 1) * 2 + kernel
  weights = tf.constant(np.random.default_rng(1).normal(size=(4, height, height, filters)),
                        tf.float32)
  with tf.GradientTape(persistent=True) as tape:
    got = layer(x)
    want = tf.nn.conv2d_transpose(x, layer.kernel, [4, height, height, filters], 2, 'VALID')
    want += layer.bias
    got_loss, want_loss = (tf.reduce_sum(weights * y) for y in (got, want))
  np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
  for a, b in zip(tape.gradient(got_loss, [x, layer.kernel, layer.bias]),
                  tape.gradient(want_loss, [x, layer.kernel, layer.bias])):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-4)


def test_fixed_normal_is_tfps_independent_normal():
  from dreamer.networks import distributions
  import tensorflow_probability as tfp
  rng = np.random.default_rng(2)
  mean = tf.Variable(rng.normal(size=(2, 3, 4, 4, 3)).astype(np.float32))
  x = tf.constant(rng.normal(size=(2, 3, 4, 4, 3)).astype(np.float32))
  for std in (1.0, 0.5):
    with tf.GradientTape(persistent=True) as tape:
      got = distributions.FixedNormal(mean, std, 3).log_prob(x)
      want = tfp.distributions.Independent(tfp.distributions.Normal(mean, std), 3).log_prob(x)
    assert got.shape == want.shape == (2, 3)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(got, mean).numpy(),
                               tape.gradient(want, mean).numpy(), rtol=1e-5, atol=1e-6)
  assert distributions.FixedNormal(mean, 0.5, 3).mode() is mean


def test_decoder_computes_its_dense_and_first_layer_as_one_matmul():
  """The decoder folds its dense layer into its first transposed convolution: the same
  image means and gradients as the two layers applied one after the other."""
  from dreamer.networks import conv
  decoder = conv.ConvDecoder(3, depth=4)
  features = tf.Variable(np.random.default_rng(3).normal(size=(2, 3, 20)).astype(np.float32))
  decoder(features)  # Builds the variables.
  weights = tf.constant(np.random.default_rng(4).normal(size=(2, 3, 64, 64, 3)), tf.float32)
  for layer in [decoder._dense, decoder._deconvs[0]]:  # Non-zero biases, as after training.
    layer.bias.assign(tf.random.normal(layer.bias.shape, seed=1))
  with tf.GradientTape(persistent=True) as tape:
    got = decoder(features).mode()
    x = decoder._dense(tf.reshape(features, [-1, 20]))
    x = decoder._deconvs[0](tf.reshape(x, [-1, 1, 1, x.shape[-1]]))
    for deconv in decoder._deconvs[1:]:
      x = deconv(x)
    want = tf.reshape(x, got.shape)
    got_loss, want_loss = (tf.reduce_sum(weights * y) for y in (got, want))
  np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)
  sources = [features] + list(decoder.trainable_variables)
  for a, b in zip(tape.gradient(got_loss, sources), tape.gradient(want_loss, sources)):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)
