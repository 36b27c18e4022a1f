"""Our update against the author's: one update of Dreamer computed by danijar/dreamer.

tests/agents/golden/update_reference.npz holds the author's initial weights (in our variable
names), a batch, the losses, their terms and every gradient, computed by the author's TF2
implementation with sampling and noise fixed (golden/README.md says how and why). Our agent
built from the stored config, with the same weights and the same three alignments, must give
the same numbers within 1e-4 relative: any change to the update's math (a term dropped, a head
evaluated on other features, a return computed differently) moves some of them far more.
"""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from dreamer import config as config_lib
from dreamer.envs import registry
from dreamer.envs.spaces import Box
from dreamer.models import world_model
from dreamer.networks import distributions
from dreamer.scripts import build

REFERENCE = pathlib.Path(__file__).parent / 'golden' / 'update_reference.npz'
TOLERANCE = 1e-4


def _space(spec):
  return Box(spec['low'], spec['high'], tuple(spec['shape']), np.dtype(spec['dtype']))


def _mean_action(self):
  """The tanh of the actor's pre-tanh normal's mean: the author's sample with eps = 0."""
  dist = self._dist.distribution
  return dist.bijector.forward(dist.distribution.loc)


@pytest.fixture(scope='module')
def reference():
  with np.load(REFERENCE) as f:
    return {key: f[key] for key in f.files}


@pytest.fixture(scope='module')
def ours(reference):
  """Our losses, metrics and gradients on the stored weights and batch."""
  patch = pytest.MonkeyPatch()
  try:
    # Preprocessing without dequantisation noise (image / 256 - 0.5), and the actor's
    # sample at its mean; `mean_only` makes the RSSM's latent sample its mean.
    preprocess = world_model.WorldModel.preprocess
    patch.setattr(world_model.WorldModel, 'preprocess',
                  lambda self, data, noise=True: preprocess(self, data, noise=False))
    patch.setattr(distributions.SampleDist, 'sample', _mean_action, raising=False)
    params = dict(json.loads(str(reference['config'])), mean_only=True)
    config = config_lib.build_config(params, registry.state_components_checked)
    spaces = json.loads(str(reference['spaces']))
    agent = build.agent(config, {k: _space(v) for k, v in spaces['obs'].items()},
                        _space(spaces['act']), log=lambda *args: None)
    variables = {v.name: v for v in agent.trainable_variables}
    stored = {k[len('weights/'):] for k in reference if k.startswith('weights/')}
    assert set(variables) == stored
    for name, variable in variables.items():
      variable.assign(reference[f'weights/{name}'])
    data = {key[len('batch/'):]: tf.constant(value)
            for key, value in reference.items() if key.startswith('batch/')}
    losses, metrics, grads = tf.function(agent._replica_gradients, autograph=False)(data)
    names = {loss: [v.name for v in agent._variables[loss]] for loss in grads}
    return losses, metrics, {loss: dict(zip(names[loss], grads[loss])) for loss in grads}
  finally:
    patch.undo()


def _relative(ours, expected):
  scale = np.max(np.abs(expected))
  return np.max(np.abs(np.asarray(ours) - expected)) / scale


@pytest.mark.parametrize('key', ['loss/model', 'loss/action', 'loss/value', 'metrics/image',
                                 'metrics/reward', 'metrics/divergence'])
def test_losses_and_terms_match_the_authors(reference, ours, key):
  losses, metrics, _ = ours
  kind, name = key.split('/')
  value = (losses if kind == 'loss' else metrics)[name].numpy()
  expected = reference[f'expected/{key}']
  assert _relative(value, expected) < TOLERANCE, (key, float(value), float(expected))


@pytest.mark.parametrize('loss', ['model', 'action', 'value'])
def test_every_gradient_matches_the_authors(reference, ours, loss):
  grads = ours[2][loss]
  prefix = f'grad/{loss}/'
  expected = {k[len(prefix):]: v for k, v in reference.items() if k.startswith(prefix)}
  assert set(expected) <= set(grads), sorted(set(expected) - set(grads))
  worst = {}
  for name, want in expected.items():
    got = grads[name].numpy()
    assert got.shape == want.shape, name
    if not np.any(want):
      # The actor's std layer: no gradient reaches it when the sample is the mean.
      assert np.all(np.abs(got) < 1e-12), name
      continue
    worst[name] = _relative(got, want)
  assert max(worst.values()) < TOLERANCE, {k: v for k, v in worst.items() if v >= TOLERANCE}
