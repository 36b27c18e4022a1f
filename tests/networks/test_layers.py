"""The layers compute what their docstrings say, whatever the input's rank."""

import numpy as np
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
