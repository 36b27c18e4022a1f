"""Dense and convolution layers as tf.Modules that build their variables on first call.

Variables are float32; `dtype` is the compute dtype (float16 under mixed precision).
"""

import numpy as np
import tensorflow as tf

ACTIVATIONS = {
    'relu': tf.nn.relu, 'elu': tf.nn.elu, 'tanh': tf.tanh, 'swish': tf.nn.swish,
    'softplus': tf.nn.softplus, 'none': None, None: None,
}


def activation(name):
  if callable(name):
    return name
  return ACTIVATIONS[name]


def glorot_uniform(shape, fan_in, fan_out, seed=None):
  limit = np.sqrt(6.0 / (fan_in + fan_out))
  return tf.random.uniform(shape, -limit, limit, seed=seed)


class Dense(tf.Module):
  """y = act(x W + b)."""

  def __init__(self, units, act=None, dtype=tf.float32, bias_init=0.0, name=None):
    super().__init__(name=name)
    self.units = units
    self._act = activation(act)
    self._dtype = dtype
    self._bias_init = bias_init
    self.kernel = None

  def __call__(self, x):
    if self.kernel is None:
      with self.name_scope:
        size = int(x.shape[-1])
        self.kernel = tf.Variable(glorot_uniform([size, self.units], size, self.units),
                                  name='kernel')
        self.bias = tf.Variable(tf.fill([self.units], float(self._bias_init)), name='bias')
    x = tf.cast(x, self._dtype)
    kernel = tf.cast(self.kernel, self._dtype)
    # BiasAdd (not a broadcasting add) lets TensorFlow fuse matmul, bias and activation
    # into one kernel, and its gradient is one BiasAddGrad instead of a reduction with
    # shape ops.
    if x.shape.rank == 2:  # As in every recurrent step: no reshapes to trace and run.
      y = tf.nn.bias_add(tf.matmul(x, kernel), tf.cast(self.bias, self._dtype))
      return self._act(y) if self._act else y
    y = tf.nn.bias_add(tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), kernel),
                       tf.cast(self.bias, self._dtype))
    y = self._act(y) if self._act else y
    return tf.reshape(y, tf.concat([tf.shape(x)[:-1], [self.units]], 0))


class Conv2D(tf.Module):
  """Valid-padding 2-D convolution on [N, H, W, C]."""

  def __init__(self, filters, kernel, stride, act=None, dtype=tf.float32, name=None):
    super().__init__(name=name)
    self.filters, self.size, self.stride = filters, kernel, stride
    self._act = activation(act)
    self._dtype = dtype
    self.kernel = None

  def __call__(self, x):
    if self.kernel is None:
      with self.name_scope:
        cin = int(x.shape[-1])
        shape = [self.size, self.size, cin, self.filters]
        self.kernel = tf.Variable(glorot_uniform(
            shape, self.size * self.size * cin, self.size * self.size * self.filters),
            name='kernel')
        self.bias = tf.Variable(tf.zeros([self.filters]), name='bias')
    x = tf.cast(x, self._dtype)
    y = tf.nn.conv2d(x, tf.cast(self.kernel, self._dtype), self.stride, 'VALID')
    y = tf.nn.bias_add(y, tf.cast(self.bias, self._dtype))
    return self._act(y) if self._act else y


class Conv2DTranspose(tf.Module):
  """Valid-padding transposed convolution; output size (in - 1) * stride + kernel."""

  def __init__(self, filters, kernel, stride, act=None, dtype=tf.float32, name=None):
    super().__init__(name=name)
    self.filters, self.size, self.stride = filters, kernel, stride
    self._act = activation(act)
    self._dtype = dtype
    self.kernel = None

  def __call__(self, x):
    if self.kernel is None:
      with self.name_scope:
        cin = int(x.shape[-1])
        shape = [self.size, self.size, self.filters, cin]
        self.kernel = tf.Variable(glorot_uniform(
            shape, self.size * self.size * cin, self.size * self.size * self.filters),
            name='kernel')
        self.bias = tf.Variable(tf.zeros([self.filters]), name='bias')
    x = tf.cast(x, self._dtype)
    kernel = tf.cast(self.kernel, self._dtype)
    height = (int(x.shape[1]) - 1) * self.stride + self.size
    width = (int(x.shape[2]) - 1) * self.stride + self.size
    if x.shape[1] == 1 and x.shape[2] == 1:
      # From a single pixel (the decoder's first layer) the transposed convolution places
      # x K[i, j] at every output pixel (i, j): one matmul, which runs 3-5x faster than
      # the convolution kernels and their gradients on a CPU (docs/benchmarks.md).
      y = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]),
                    tf.reshape(kernel, [-1, x.shape[-1]]), transpose_b=True)
    elif self.stride == 2 and self.filters <= 4:
      y = _subpixel_transpose(x, kernel, tf.cast(self.bias, self._dtype), height, width)
      return self._act(y) if self._act else y
    else:
      out_shape = tf.stack([tf.shape(x)[0], height, width, self.filters])
      y = tf.nn.conv2d_transpose(x, kernel, out_shape, self.stride, 'VALID')
    y = tf.reshape(y, [-1, height, width, self.filters])
    y = tf.nn.bias_add(y, tf.cast(self.bias, self._dtype))
    return self._act(y) if self._act else y


def _subpixel_transpose(x, kernel, bias, height, width):
  """A stride-2 transposed convolution (plus bias) as a stride-1 convolution to 4 x the
  channels, whose channels are then moved into pixels: the same sums of products.

  Output pixel (2i + r, 2j + s) gets x[i - p, j - q] K[2p + r, 2q + s] over p, q < m
  (m = ceil(k / 2), the kernel zero-padded to 2m); on the input padded by m - 1 that is a
  VALID m x m convolution whose channel (r, s, c) holds the pixels of phase (r, s). oneDNN's
  transposed-convolution kernel is slow when it writes few channels (the decoder's RGB
  output: 3-5x its gradients' time on a CPU); the convolution is not. The pixels are moved
  by reshape and transpose, whose gradient runs 2-3x faster than depth_to_space's.
  """
  size, _, filters, channels = kernel.shape
  m = (size + 1) // 2
  kernel = tf.pad(kernel, [[0, 2 * m - size], [0, 2 * m - size], [0, 0], [0, 0]])
  kernel = tf.reverse(tf.reshape(kernel, [m, 2, m, 2, filters, channels]), [0, 2])
  kernel = tf.reshape(tf.transpose(kernel, [0, 2, 5, 1, 3, 4]), [m, m, channels, 4 * filters])
  y = tf.nn.bias_add(_padded_conv(x, kernel, m - 1), tf.tile(bias, [4]))
  grid = y.shape[1]
  y = tf.reshape(y, [-1, grid, grid, 2, 2, filters])
  y = tf.reshape(tf.transpose(y, [0, 1, 3, 2, 4, 5]), [-1, 2 * grid, 2 * grid, filters])
  if 2 * grid != height:
    y = y[:, :height, :width]
  return y


def _padded_conv(x, kernel, pad):
  """A stride-1 VALID convolution of x zero-padded by `pad` = kernel size - 1 on each side.

  Its gradient needs no padded tensor: with TensorFlow's own gradients the padded copy
  and the padded gradient raised a 50 x 50 update's peak resident memory by 0.8 GB.
  """
  paddings = [[0, 0], [pad, pad], [pad, pad], [0, 0]]

  @tf.custom_gradient
  def conv(x, kernel):
    def grad(dy):
      # With the padding full (kernel size - 1) both gradients are VALID correlations of
      # x and dy with no padded tensor: x's is dy convolved with the kernel flipped in
      # space (channels swapped); the kernel's, flipped, is dy's filter gradient against x.
      flip = lambda k: tf.transpose(tf.reverse(k, [0, 1]), [0, 1, 3, 2])
      dx = tf.nn.conv2d(dy, flip(kernel), 1, 'VALID')
      size = kernel.shape[:2] + [kernel.shape[3], kernel.shape[2]]
      dkernel = flip(tf.compat.v1.nn.conv2d_backprop_filter(dy, size, x, [1, 1, 1, 1], 'VALID'))
      return dx, dkernel

    return tf.nn.conv2d(tf.pad(x, paddings), kernel, 1, 'VALID'), grad

  return conv(x, kernel)


class GRUCell(tf.Module):
  """The block GRU of TF1 (SPEC 4.3): reset gate applied before the candidate's matmul.

  [r, u] = sigmoid(W_ru [x, h] + b_ru), c = tanh(W_c [x, r * h] + b_c),
  h' = u * h + (1 - u) * c, with b_ru initialised to 1 and b_c to 0.
  """

  def __init__(self, units, dtype=tf.float32, name=None):
    super().__init__(name=name)
    self.units = units
    with self.name_scope:
      self._gates = Dense(2 * units, dtype=dtype, bias_init=1.0, name='gates')
      self._candidate = Dense(units, dtype=dtype, name='candidate')

  def __call__(self, x, h):
    h = tf.cast(h, x.dtype)
    r, u = tf.split(tf.sigmoid(self._gates(tf.concat([x, h], -1))), 2, -1)
    c = tf.tanh(self._candidate(tf.concat([x, r * h], -1)))
    return u * h + (1 - u) * c
