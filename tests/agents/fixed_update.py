"""What the data-parallel tests share: a tiny agent config, fixed batches, and a train step
without randomness, so that splitting a batch over replicas cannot change any number.

Importing this switches the randomness off (dequantisation noise, latent and action
samples) in this process; it does not start TensorFlow's runtime, so a worker can still
split its CPU or join a cluster afterwards.
"""

import numpy as np
import tensorflow as tf
from tensorflow_probability.python.internal import samplers

from dreamer.envs.spaces import Box
from dreamer.models import world_model

_preprocess = world_model.preprocess_image
world_model.preprocess_image = lambda image, bits=8, noise=True: _preprocess(image, bits, False)
samplers.normal = lambda shape, mean=0.0, stddev=1.0, dtype=tf.float32, seed=None, name=None: (
    tf.zeros(shape, dtype) + tf.cast(mean, dtype))

B, T = 4, 6
OBS = {'image': Box(0, 255, (64, 64, 3), np.uint8)}
ACT = Box(-1, 1, (2,))
PARAMS = {
    'defaults': ['dreamer', 'debug'], 'tasks': ['dummy'], 'cnn_depth': 4,
    'imagination_horizon': 3, 'batch_shape': [B, T], 'mean_only': True,
    'value_target_head': True, 'num_chunks': 1,
    # Small enough that clipping acts: it must see the norm of the summed gradient.
    'model_gradient_clipping': 1.0, 'action_gradient_clipping': 0.1}


def make_batch(action_size, seed=0):
  """A fixed [B, T] batch; `seed` picks which."""
  rng = np.random.default_rng(seed)
  shape = (B, T)
  return {
      'image': tf.constant(rng.integers(0, 256, shape + (64, 64, 3)), tf.uint8),
      'action': tf.constant(rng.uniform(-1, 1, shape + (action_size,)), tf.float32),
      'reward': tf.constant(rng.normal(size=shape), tf.float32),
      'pcont': tf.fill(shape, 0.99), 'reward_mask': tf.ones(shape + (1,))}
