"""Smoke runs of the paper's baselines and variants through dreamer.scripts.train.main."""

import numpy as np
import pytest
import tensorflow as tf

from dreamer.data import episodes
from tests.scripts.test_train import SMOKE, check_run, event_tags, run

# CEM at the planet preset's 1000 beams x 10 iterations is slow on a CPU; the sizes are
# params, so the tests shrink them here and leave the preset as the paper has it.
SMALL_CEM = {'planner_beams': 20, 'planner_iterations': 2, 'planner_topk': 5,
             'planner_horizon': 3}
BEHAVIOUR_TAGS = {'actor/loss', 'actor/grad_norm', 'value/loss', 'value/grad_norm'}


def checkpoint_variables(run_dir):
  """{objective: [shapes]} of the agent's variables in the run's latest checkpoint."""
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir)))
  result = {}
  for name, shape in reader.get_variable_to_shape_map().items():
    if name.startswith('agent/_variables/'):
      result.setdefault(name.split('/')[2], []).append(shape)
  return result


def record_planners(monkeypatch):
  """Records (collection mode, planner name) of every collection run."""
  from dreamer.training import loop
  used = []
  original = loop.Trainer._collect

  def collect(self, collection, phase_step):
    used.append((collection.mode, collection.planner))
    return original(self, collection, phase_step)

  monkeypatch.setattr(loop.Trainer, '_collect', collect)
  return used


@pytest.mark.parametrize('params', [
    dict(SMOKE, defaults=['planet', 'debug'], **SMALL_CEM),
    # The original README's spelling of PlaNet on top of the dreamer preset, with two
    # envs per collection planned for together.
    dict(SMOKE, train_planner='cem', test_planner='cem', planner_objective='reward',
         action_head=False, value_head=False, imagination_horizon=0, num_envs=2,
         **SMALL_CEM),
], ids=['preset', 'readme_params'])
def test_planet(tmp_path, monkeypatch, params):
  used = record_planners(monkeypatch)
  run(tmp_path, params)
  tags = check_run(tmp_path / '00001')
  assert not any(t.startswith(('actor/', 'value/')) for t in tags), sorted(tags)
  assert 'model/imagined_reward' not in tags
  assert sorted(checkpoint_variables(tmp_path / '00001')) == ['model', 'pcont']
  assert {mode for mode, _ in used} == {'train', 'test'}
  assert {planner for _, planner in used} == {'cem_reward_h3'}


def test_reward_value_planning_with_the_value_head(tmp_path, monkeypatch):
  used = record_planners(monkeypatch)
  run(tmp_path, dict(SMOKE, test_planner='cem', planner_objective='reward_value',
                     **SMALL_CEM))
  tags = check_run(tmp_path / '00001')
  assert BEHAVIOUR_TAGS <= tags
  # Training collects with the actor; evaluation plans with CEM on rewards and values.
  assert set(used) == {('train', 'policy_sample'), ('test', 'cem_reward_value_h3')}


def test_pcont(tmp_path):
  run(tmp_path, dict(SMOKE, defaults=['dreamer', 'pcont', 'debug']))
  run_dir = tmp_path / '00001'
  tags = check_run(run_dir)
  # The pcont head trains the model, so it has no optimiser or loss of its own.
  assert 'model/pcont_log_prob' in tags and BEHAVIOUR_TAGS <= tags
  assert not any(t.startswith('heads/pcont') for t in tags), sorted(tags)
  for path in episodes.list_episodes(run_dir / 'train_episodes'):
    pcont = episodes.load_episode(path)['pcont']
    assert pcont.shape == (21,) and set(np.unique(pcont)) <= {0.0, 1.0}


def test_planet_with_latent_overshooting(tmp_path):
  run(tmp_path, dict(SMOKE, imagination_horizon=0, action_head=False, value_head=False,
                     train_planner='cem', test_planner='cem', planner_objective='reward',
                     overshooting_distance=3, overshooting_scale=1.0, **SMALL_CEM))
  tags = check_run(tmp_path / '00001')
  # Outside the pcont preset the pcont head is a diagnostic with its own optimiser.
  assert {'heads/pcont_loss', 'heads/pcont_grad_norm'} <= tags
  assert 'model/overshooting' in tags


def test_discrete_preset(tmp_path):
  run(tmp_path, dict(SMOKE, defaults=['dreamer', 'discrete', 'debug'],
                     tasks=['dummy_discrete']))
  run_dir = tmp_path / '00001'
  tags = check_run(run_dir, action_size=5)
  assert BEHAVIOUR_TAGS <= tags
  for path in episodes.list_episodes(run_dir / 'test_episodes')[1:]:  # [0] is random.
    actions = episodes.load_episode(path)['action'][1:]
    assert set(np.unique(actions)) <= {0.0, 1.0}
    np.testing.assert_array_equal(actions.sum(-1), 1.0)


def test_proprio_encoder_on_vector_observations(tmp_path):
  # toy_reach observes an image and a 'position' vector. Encoding the vector and
  # decoding it (instead of the image) gives a model without any conv network.
  run(tmp_path, dict(SMOKE, tasks=['toy_reach'], action_repeat=1, encoder='proprio',
                     proprio_encoder_keys=['position'], gradient_heads=['position', 'reward']))
  run_dir = tmp_path / '00001'
  assert (run_dir / 'DONE').exists() and not (run_dir / 'FAIL').exists()
  assert tf.train.latest_checkpoint(str(run_dir)).endswith('model.ckpt-40')
  episode = episodes.load_episode(episodes.list_episodes(run_dir / 'train_episodes')[-1])
  assert episode['position'].shape == (21, 2) and episode['action'].shape == (21, 1)
  tags = event_tags(run_dir / 'train')
  assert {'model/position_log_prob', 'model/reward_log_prob', 'train/return'} <= tags
  assert BEHAVIOUR_TAGS <= tags
  assert 'model/image_log_prob' not in tags and 'heads/position_loss' not in tags
  assert 'test/score' in event_tags(run_dir / 'test')
  variables = checkpoint_variables(run_dir)
  assert sorted(variables) == ['action', 'model', 'pcont', 'value']
  # Only dense layers: no conv encoder and no image decoder.
  assert all(len(shape) <= 2 for shapes in variables.values() for shape in shapes)
