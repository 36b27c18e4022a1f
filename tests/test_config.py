"""Presets, merge order and the one-line errors of bad params."""

import numpy as np
import pytest
import ruamel.yaml
import tensorflow as tf

from dreamer import config as config_lib
from dreamer import config_checks
from dreamer.envs import registry
from dreamer.envs.spaces import Box
from dreamer.scripts import build as build_lib
from dreamer.scripts import train


def build(params):
  return config_lib.build_config(params, registry.state_components_checked)


def test_every_preset_key_has_a_default():
  base = config_lib.load_preset('dreamer')
  for name in config_lib.presets():
    for key in config_lib.load_preset(name):
      assert key in base, f'{name}.yaml sets {key}, which dreamer.yaml lacks'


def test_presets_apply_in_order_and_later_presets_win():
  config = build({'defaults': ['dreamer', 'pcont', 'discrete', 'atari'], 'tasks': ['dummy']})
  assert config.train_action_noise == 0.4  # discrete after dreamer: the original kept 0.3
  assert config.action_noise_type == 'epsilon_greedy'
  assert config.gradient_heads == ['image', 'reward', 'pcont']
  assert config.max_length == 27000
  swapped = build({'defaults': ['discrete', 'dreamer'], 'tasks': ['dummy']})
  assert swapped.train_action_noise == 0.3


def test_user_keys_win_over_presets():
  config = build({'defaults': ['dreamer', 'debug'], 'tasks': ['dummy'], 'model_size': 7})
  assert config.model_size == 7
  assert config.state_size == 5  # from debug


def test_derived_defaults_are_resolved():
  config = build({'tasks': ['dummy'], 'batch_shape': [4, 8]})
  assert config.test_steps == 4
  assert config.checkpoint_every == 40
  assert config.train_log_every == config.train_steps
  assert config.collect_episodes == config.num_envs
  assert config.train_planner_objective == 'reward_value'
  assert isinstance(config.seed, int)


def test_unknown_keys_fail_naming_every_one():
  with pytest.raises(config_lib.ConfigError) as error:
    build({'tasks': ['dummy'], 'modelsize': 3, 'zzz_key': 1})
  message = str(error.value)
  assert message.startswith('Found unused config overrides: modelsize, zzz_key')
  assert 'model_size' in message and '\n' not in message


def test_an_unknown_key_without_a_near_name_points_to_the_defaults():
  with pytest.raises(config_lib.ConfigError) as error:
    build({'tasks': ['dummy'], 'zzz_key': 1})
  assert str(error.value) == ('Found unused config overrides: zzz_key; every param and its '
                              'default is in configs/dreamer.yaml')


def test_state_component_keys_are_known_for_their_task():
  config = build({'tasks': ['cheetah_run'], 'position_loss_scale': 0.5, 'velocity_layers': 2})
  assert config['position_loss_scale'] == 0.5
  with pytest.raises(config_lib.ConfigError, match='position_loss_scale'):
    build({'tasks': ['dummy'], 'position_loss_scale': 0.5})


@pytest.mark.parametrize('params, message', [
    ({'model_size': 'big'}, 'model_size must be an integer'),
    ({'model_size': 2.5}, 'model_size must be an integer'),
    ({'value_head': 'yes'}, 'value_head must be True or False'),
    ({'model_lr': 'fast'}, 'model_lr must be a number'),
    ({'batch_shape': [5]}, 'batch_shape must be two integers'),
    ({'batch_shape': [0, 10]}, 'batch_shape must be positive'),
    ({'train_steps': -5}, 'train_steps must be positive'),
    ({'loader': 'magic'}, 'loader must be one of'),
    ({'tasks': 'nope'}, None),
    ({'defaults': ['dreamer', 'nosuch']}, "unknown preset 'nosuch'"),
    ({'cpc_head': True}, 'not supported'),
    ({'action_source': 'dataset'}, 'action_source: \'dataset\' is a research option'),
    ({'value_target_period': 0}, 'value_target_period must be positive'),
    ({'render_size': -1}, 'render_size must not be negative'),
    ({'action_beta': -0.1}, 'action_beta must not be negative'),
    ({'train_collects': [{'bogus': 1}]}, 'Invalid key bogus'),
    ({'save_videos': 'avi'}, 'save_videos must be one of False, True, gif, mp4'),
    ({'save_videos': 1}, 'save_videos must be one of'),
    ({'loader_cache_size': -1}, "loader_cache_size must be a number of episodes"),
    ({'loader_cache_size': 'lots'}, "or a size such as '2GB'"),
    ({'loader_cache_size': '2 TB'}, 'loader_cache_size must be'),
    ({'imagination_horizon': 0}, 'imagination_horizon: 0 turns off imagination, which is all '
     'that trains action_head and value_head; set action_head: False, value_head: False'),
    ({'imagination_horizon': 0, 'value_head': False}, 'all that trains action_head; set '
     'action_head: False (as the planet preset does) or a horizon of at least 1'),
    ({'imagination_horizon': 1}, 'imagination_horizon must be 0 or at least 2'),
    ({'train_chunks': 0}, 'train_chunks must be positive'),
    ({'train_chunks': 51}, 'train_chunks must be at most batch_shape[0] = 50 (one sequence per part)'),
])
def test_bad_values_fail_with_one_line(params, message):
  params = dict({'tasks': ['dummy']}, **params)
  if message is None:
    config = build(params)  # A single string is accepted as a one-task list.
    assert config.tasks == ['nope']
    return
  with pytest.raises(config_lib.ConfigError) as error:
    build(params)
  assert message in str(error.value)
  assert '\n' not in str(error.value)


def test_every_unsupported_research_option_fails_naming_itself():
  base = config_lib.load_preset('dreamer')
  for key in config_checks.UNSUPPORTED:
    default = base[key]
    if isinstance(default, bool):
      value = not default
    elif isinstance(default, (int, float)) or default is None:
      value = (default or 0) + 1.0
    else:
      value = [c for c in config_checks._CHOICES.get(key, [default + '_other']) if c != default][0]
    with pytest.raises(config_lib.ConfigError) as error:
      build({'tasks': ['dummy'], key: value})
    assert str(error.value).startswith(f'{key}: ') and 'not supported' in str(error.value)
    build({'tasks': ['dummy'], key: default})  # The default itself is fine.


@pytest.mark.parametrize('text, value, kind', [
    ('false', False, None), ('true', True, 'gif'), ('gif', 'gif', 'gif'), ('mp4', 'mp4', 'mp4')])
def test_save_videos_names_the_video_format(text, value, kind):
  config = build(config_lib.parse_params(f'{{tasks: [dummy], save_videos: {text}}}'))
  assert config.save_videos == value and type(config.save_videos) is type(value)
  assert train.video_format(config) == kind


# The target heads' keys are built into an agent and checked at work in
# tests/agents/test_dreamer.py::test_target_heads_lag_and_move_at_their_period.


def test_entropy_bonus_keys_change_the_objectives_of_the_agent_they_build():
  """action_beta reaches the actor's objective, and value_maxent the value's loss, of the
  agent that build.agent makes from the config (the terms: tests/agents/test_actor_critic.py)."""
  base = {'defaults': ['dreamer', 'debug'], 'tasks': ['dummy'], 'cnn_depth': 4}
  obs, act = {'image': Box(0, 255, (64, 64, 3), np.uint8)}, Box(-1, 1, (2,))
  agents = {}
  for name, extra in [('plain', {}), ('bonus', {'action_beta': 0.3, 'value_maxent': True})]:
    agents[name] = build_lib.agent(build(dict(base, **extra)), obs, act)
    for target, source in zip(agents[name].variables, agents['plain'].variables):
      target.assign(source)  # The same weights: only the keys differ.
  rssm = agents['plain'].world_model.rssm
  size = int(rssm.features(rssm.initial(1)).shape[-1])
  feat = tf.constant(np.random.default_rng(0).normal(size=(4, 3, size)), tf.float32)

  def objectives(agent):
    tf.random.set_seed(0)  # The bonus estimates the tanh-normal's entropy from samples.
    heads = agent.world_model.heads
    ac = agent.actor_critic
    return (float(ac.actor_objective(feat, heads['reward'], heads.get('pcont'))),
            float(ac.value_loss(feat, heads['reward'], heads.get('pcont'))))

  plain, bonus = objectives(agents['plain']), objectives(agents['bonus'])
  assert objectives(agents['plain']) == plain  # Without the bonus nothing is sampled.
  assert abs(bonus[0] - plain[0]) > 1e-3 and abs(bonus[1] - plain[1]) > 1e-3


def test_numbers_in_exponent_notation_are_accepted():
  config = build(config_lib.parse_params('{tasks: [dummy], max_steps: 5e7, model_lr: 1e-3}'))
  assert config.max_steps == 50_000_000 and config.model_lr == 0.001


def test_yaml_1_2_reads_exponents_as_floats_without_coercion():
  params = config_lib.parse_params('{model_lr: 1e-4, value_lr: 8E-05, free_nats: 3e0}')
  assert params == {'model_lr': 1e-4, 'value_lr': 8e-5, 'free_nats': 3.0}
  assert all(type(v) is float for v in params.values())
  # A quoted number is a string, and strings are no longer turned into numbers.
  with pytest.raises(config_lib.ConfigError, match="model_lr must be a number, got '1e-4'"):
    build({'tasks': ['dummy'], 'model_lr': '1e-4'})


@pytest.mark.parametrize('word', ['yes', 'no', 'on', 'off', 'Yes', 'NO'])
def test_yaml_1_1_booleans_are_strings_and_fail_a_boolean_key(word):
  params = config_lib.parse_params(f'{{tasks: [dummy], value_head: {word}}}')
  assert params['value_head'] == word
  with pytest.raises(config_lib.ConfigError) as error:
    build(params)
  assert str(error.value) == f"value_head must be True or False, got '{word}'"
  assert build(config_lib.parse_params(f'{{tasks: [dummy], action_repeat: 2, seed: 3}}'))


@pytest.mark.parametrize('text', ['True', 'true', 'TRUE', 'False', 'false'])
def test_yaml_1_2_booleans(text):
  config = build(config_lib.parse_params(f'{{tasks: [dummy], value_head: {text}}}'))
  assert config.value_head is (text.lower() == 'true')


def test_hash_stands_for_comma_in_params():
  params = config_lib.parse_params(
      '{defaults: [dreamer# debug]# tasks: [dummy]# batch_shape: [5# 5]#model_size: 7}')
  assert params == {'defaults': ['dreamer', 'debug'], 'tasks': ['dummy'],
                    'batch_shape': [5, 5], 'model_size': 7}
  config = build(params)
  assert config.batch_shape == [5, 5] and config.model_size == 7 and config.state_size == 5


def test_duplicate_keys_in_params_fail_with_one_line():
  with pytest.raises(config_lib.ConfigError) as error:
    config_lib.parse_params('{model_size: 3, model_size: 4}')
  assert 'not valid YAML' in str(error.value) and 'duplicate key' in str(error.value)
  assert '\n' not in str(error.value)


@pytest.mark.parametrize('text, message', [
    ('[1, 2]', 'must be a YAML mapping'),
    ('{tasks: [dummy', 'not valid YAML'),
    ('just words', 'must be a YAML mapping'),
])
def test_params_that_are_not_a_mapping(text, message):
  with pytest.raises(config_lib.ConfigError, match=message) as error:
    config_lib.parse_params(text)
  assert '\n' not in str(error.value)


def test_original_readme_commands_parse():
  for text in [
      '{defaults: [dreamer, debug], tasks: [dummy]}',
      '{defaults: [dreamer], tasks: [walker_run]}',
      '{defaults: [dreamer, pcont, discrete, atari], tasks: [atari_boxing]}',
      '{defaults: [dreamer, discrete], tasks: [dmlab_collect]}',
      '{train_planner: cem# test_planner: cem# planner_objective: reward# action_head: False# '
      'value_head: False# imagination_horizon: 0}',
  ]:
    train.build_config(config_lib.parse_params(text))


def test_unknown_task_lists_closest_names():
  with pytest.raises(registry.UnknownTaskError, match='closest: walker_run'):
    train.build_config({'tasks': ['walker_runn']})


def test_config_is_written_once_and_preferred_on_resume(tmp_path):
  first = train.build_config({'tasks': ['dummy'], 'model_size': 11}, tmp_path)
  stored = ruamel.yaml.YAML(typ='safe', pure=True).load((tmp_path / 'config.yaml').read_text())
  assert stored['model_size'] == 11 and stored['seed'] == first.seed
  assert stored == dict(first)
  again = train.build_config({'tasks': ['dummy'], 'model_size': 99}, tmp_path)
  assert again.model_size == 11 and again.seed == first.seed


def test_config_yaml_round_trips_values_yaml_1_1_would_change():
  values = {'a_word': 'yes', 'off': 'off', 'tiny': 1e-10, 'big': 5e7, 'none': None,
            'nested': [{'steps_after': 10}, 'no'], 'flag': True, 'number_text': '1e-4'}
  text = config_lib.to_yaml(values)
  assert config_lib.from_yaml(text) == values
  assert list(ruamel.yaml.YAML(typ='safe', pure=True).load(text)) == sorted(values)


@pytest.mark.parametrize('text, line', [
    # An unclosed bracket is noticed on the next line; the message names both.
    ('model_size: 10\nbatch_shape: [5, 5\nseed: 3\n', '3, column 5 (while parsing a flow '
     'sequence from line 2'),
    ('model_size: 10\nseed: 3\n  tasks: [dummy]\n', 3),
    ("model_size: 10\ntasks: ['dummy]\n", 3),
])
def test_invalid_config_yaml_fails_naming_the_file_and_line(tmp_path, text, line):
  path = tmp_path / '00001' / 'config.yaml'
  with pytest.raises(config_lib.ConfigError) as error:
    config_lib.from_yaml(text, path)
  message = str(error.value)
  assert message.startswith(f'{path} is not valid YAML: ') and '\n' not in message
  assert f' at line {line}' in message
  assert message.endswith('fix that line or move it aside to start the run afresh')


@pytest.mark.parametrize('value, bound', [
    (0, (0, 0)), (500, (500, 0)), ('2GB', (0, 2 * 10 ** 9)), ('1.5 GiB', (0, 3 * 2 ** 29)),
    ('500mb', (0, 5 * 10 ** 8))])
def test_loader_cache_size_counts_episodes_or_bytes(value, bound):
  config = build({'tasks': ['dummy'], 'loader_cache_size': value})
  assert config_checks.cache_size(config.loader_cache_size) == bound
