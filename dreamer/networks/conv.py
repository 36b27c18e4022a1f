"""Convolutional image encoder and decoder for 64x64 frames (SPEC 4.2, 4.4)."""

import tensorflow as tf

from dreamer.networks import distributions
from dreamer.networks import layers


class ConvEncoder(tf.Module):
  """Four 4x4 stride-2 valid ReLU convolutions: [..., 64, 64, C] -> [..., 1024]."""

  def __init__(self, depth=32, dtype=tf.float32, name='encoder'):
    super().__init__(name=name)
    with self.name_scope:
      self._convs = [
          layers.Conv2D(mult * depth, 4, 2, 'relu', dtype, name=f'conv{i + 1}')
          for i, mult in enumerate([1, 2, 4, 8])]

  def __call__(self, image):
    shape = tf.shape(image)
    x = tf.reshape(image, tf.concat([[-1], shape[-3:]], 0))
    for conv in self._convs:
      x = conv(x)
    size = x.shape[1] * x.shape[2] * x.shape[3]
    return tf.reshape(x, tf.concat([shape[:-3], [size]], 0))


class ConvDecoder(tf.Module):
  """Dense to 1x1x1024, then four transposed convolutions to [..., 64, 64, C].

  The output is a Normal with fixed std over the three image dimensions (FixedNormal).
  """

  def __init__(self, channels=3, depth=32, std=1.0, dtype=tf.float32, name='head_image'):
    super().__init__(name=name)
    self._std = std
    with self.name_scope:
      self._dense = layers.Dense(32 * depth, dtype=dtype, name='dense')
      self._deconvs = [
          layers.Conv2DTranspose(4 * depth, 5, 2, 'relu', dtype, name='deconv1'),
          layers.Conv2DTranspose(2 * depth, 5, 2, 'relu', dtype, name='deconv2'),
          layers.Conv2DTranspose(depth, 6, 2, 'relu', dtype, name='deconv3'),
          layers.Conv2DTranspose(channels, 6, 2, None, dtype, name='deconv4')]

  def __call__(self, features):
    shape = tf.shape(features)
    if self._dense.kernel is None:  # The first call builds the layers' variables.
      x = self._dense(features)
      x = self._deconvs[0](tf.reshape(x, [-1, 1, 1, x.shape[-1]]))
    else:
      x = self._project(tf.reshape(features, [-1, features.shape[-1]]))
    for deconv in self._deconvs[1:]:
      x = deconv(x)
    mean = tf.cast(x, tf.float32)
    mean = tf.reshape(mean, tf.concat([shape[:-1], tf.shape(mean)[1:]], 0))
    return distributions.FixedNormal(mean, self._std, 3)

  def _project(self, x):
    """The dense layer and the first transposed convolution (from its 1x1 input a matmul)
    as one matmul: nothing non-linear lies between them, so
    relu((x W1 + b1) W2 + b2) = relu(x (W1 W2) + (b1 W2 + b2)). The product of the two
    kernels costs the same at any batch size; per image this saves the 32 x depth wide
    middle (at the paper's sizes 4x fewer multiply-adds in this part of the decoder)."""
    dense, deconv = self._dense, self._deconvs[0]
    size, filters, units = deconv.size, deconv.filters, dense.units
    second = tf.reshape(deconv.kernel, [size * size * filters, units])  # Rows (i, j, f).
    kernel = tf.matmul(dense.kernel, second, transpose_b=True)
    bias = tf.linalg.matvec(second, dense.bias) + tf.tile(deconv.bias, [size * size])
    x = tf.cast(x, deconv._dtype)  # pylint: disable=protected-access
    y = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, tf.cast(kernel, x.dtype)), tf.cast(bias, x.dtype)))
    return tf.reshape(y, [-1, size, size, filters])
