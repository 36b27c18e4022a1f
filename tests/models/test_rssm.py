"""RSSM and world model shapes, and the posterior/prior relationship."""

import numpy as np
import tensorflow as tf

from dreamer.models import rssm as rssm_lib
from dreamer.models import world_model


def test_observe_and_imagine_shapes():
  rssm = rssm_lib.RSSM(stoch=4, deter=6, hidden=6)
  embed = tf.random.normal([3, 5, 7])
  action = tf.random.normal([3, 5, 2])
  post, prior = rssm.observe(embed, action)
  for state in (post, prior):
    assert state['mean'].shape == (3, 5, 4) and state['stddev'].shape == (3, 5, 4)
    assert state['sample'].shape == (3, 5, 4) and state['belief'].shape == (3, 5, 6)
    assert np.all(state['stddev'].numpy() >= 0.1)
  np.testing.assert_allclose(post['belief'].numpy(), prior['belief'].numpy())
  assert rssm.features(post).shape == (3, 5, 10)
  last = {k: v[:, -1] for k, v in post.items()}
  imagined = rssm.imagine(tf.random.normal([3, 8, 2]), last)
  assert imagined['sample'].shape == (3, 8, 4)
  assert rssm.kl(post, prior).shape == (3, 5)


def test_gru_bias_initialisation():
  rssm = rssm_lib.RSSM(stoch=2, deter=3, hidden=3)
  rssm.img_step(rssm.initial(1), tf.zeros([1, 1]))
  gates = [v for v in rssm.variables if 'gates' in v.name and 'bias' in v.name][0]
  candidate = [v for v in rssm.variables if 'candidate' in v.name and 'bias' in v.name][0]
  np.testing.assert_allclose(gates.numpy(), 1.0)
  np.testing.assert_allclose(candidate.numpy(), 0.0)


def test_world_model_losses_and_image_processing():
  model = world_model.WorldModel(
      action_size=2, obs_shapes={'image': (64, 64, 3), 'position': (3,)}, state_components={'position': ((3,), 1)}, stoch=4, deter=8,
      num_units=8, reward_layers=1, pcont_layers=1, cnn_depth=4)
  data = {
      'image': tf.random.uniform([2, 4, 64, 64, 3], 0, 255, tf.int32),
      'action': tf.random.normal([2, 4, 2]), 'reward': tf.random.normal([2, 4]),
      'pcont': tf.ones([2, 4]) * 0.99, 'reward_mask': tf.ones([2, 4, 1]),
      'position': tf.random.normal([2, 4, 3])}
  data['image'] = tf.cast(data['image'], tf.uint8)
  processed = model.preprocess(data)
  image = processed['image'].numpy()
  assert image.min() >= -0.5 and image.max() < 0.5
  losses, post, metrics = model.loss(processed)
  assert set(losses) == {'model', 'pcont', 'position'}
  assert post['sample'].shape == (2, 4, 4)
  for key in ('image', 'reward', 'pcont', 'position', 'divergence', 'kl'):
    assert np.isfinite(metrics[key].numpy())
  exact = world_model.preprocess_image(data['image'], noise=False)
  restored = world_model.postprocess_image(exact)
  np.testing.assert_allclose(restored.numpy() * 256, data['image'].numpy(), atol=1e-3)
  noisy = world_model.postprocess_image(processed['image']).numpy() * 256
  assert np.abs(noisy - data['image'].numpy()).max() <= 1  # Noise stays within one bin.
