"""What value each param may take: types, choices and ranges, and the one-line error that
names the problem and the fix for any other. dreamer.config applies these checks."""

import difflib
import math
import re


class ConfigError(ValueError):
  """A problem with the user's params, explained in one line."""


# Keys whose default is null, with the type a given value must have.
_NULLABLE = {
    'seed': int, 'num_chunks': int, 'proprio_encoder_keys': list, 'pcont_layers': int,
    'action_repeat': int, 'camera_id': int, 'normalize_actions': bool, 'max_length': int,
    'atari_train_max_length': int, 'dmlab_runfiles_path': str, 'imagination_skip_last': int,
    'action_model_horizon': int, 'value_model_horizon': int, 'action_beta_dims_value': float,
    'pcont_label_weight': float, 'test_steps': int, 'train_log_every': int,
    'checkpoint_every': int, 'collect_episodes': int, 'train_planner_objective': str,
    'test_planner_objective': str, 'objective_entropy_scale': float, 'free_nats': float,
    'distribute': str,
}
_CHOICES = {
    'clip_rewards': [False, 'sign', 'tanh'],
    'loader': ['cache', 'recent', 'window', 'reload', 'dummy'],
    'activation': ['relu', 'elu', 'tanh', 'swish', 'softplus', 'none'],
    'encoder': ['conv', 'proprio'],
    'action_head_dist': ['tanh_normal_tanh', 'tanh_normal', 'onehot_score', 'onehot_straight',
                         'onehot_dice'],
    'action_mean_activation': ['none', 'tanh'],
    'value_dist': ['normal'],
    'image_head': ['conv'],
    'model': ['rssm'],
    'isolate_envs': ['auto', 'none', 'thread', 'process'],
    'action_noise_type': ['additive_normal', 'epsilon_greedy'],
    'train_planner': ['policy_sample', 'policy_mode', 'cem'],
    'test_planner': ['policy_sample', 'policy_mode', 'cem'],
    'planner_objective': ['reward', 'reward_value'],
    'train_planner_objective': [None, 'reward', 'reward_value'],
    'test_planner_objective': [None, 'reward', 'reward_value'],
    'action_source': ['model', 'dataset'],
    'value_source': ['model', 'dataset'],
    'precision': [16, 32, 'bfloat16'],
    'distribute': [None, 'mirrored', 'multi_worker'],
    'save_videos': [False, True, 'gif', 'mp4'],
}
# Keys that must be positive (or, for lists, hold positive numbers).
_POSITIVE = [
    'batch_shape', 'model_size', 'state_size', 'num_units', 'num_layers', 'train_steps',
    'train_chunks', 'test_steps', 'max_steps', 'train_log_every', 'checkpoint_every', 'num_envs',
    'collect_every', 'loader_every', 'loader_window', 'action_repeat',
    'image_bits', 'planner_beams', 'planner_iterations', 'planner_topk', 'planner_horizon',
    'proprio_encoder_units', 'cnn_depth', 'model_lr', 'value_lr', 'action_lr', 'default_lr',
    'optimizer_epsilon', 'max_length', 'action_layers', 'value_layers', 'reward_layers',
    'value_target_period', 'action_target_period',
]
_NON_NEGATIVE = [
    'num_seed_episodes', 'num_seed_steps', 'collect_steps', 'imagination_horizon',
    'collect_episodes', 'free_nats', 'model_layers', 'atari_noops',
    'overshooting_distance', 'imagination_skip_last', 'progress_every', 'render_size',
    'batch_prefetch', 'action_beta',
]
# Research options of the original that this implementation does not provide. Setting one
# to anything but its default (in dreamer.yaml) is an error rather than a silent no-op.
UNSUPPORTED = [
    'cpc_head', 'cpc_head_dist', 'cpc_head_std', 'cpc_head_layers', 'cpc_contrast',
    'cpc_batch_amount', 'cpc_time_amount', 'return_head', 'action_beta_dims_value',
    'state_beta', 'global_div_scale', 'action_model_horizon', 'value_model_horizon',
    'objective_value_ramp', 'action_source', 'value_source', 'seed_episode_rewards',
]
# Keys of one collection spec (train_collects / test_collects).
COLLECT_KEYS = [
    'name', 'prefix', 'mode', 'give_rewards', 'horizon', 'objective', 'planner', 'num_envs',
    'num_episodes', 'num_steps', 'steps_after', 'steps_every', 'steps_until',
    'action_noise_type', 'action_noise_scale', 'action_noise_ramp', 'action_noise_min',
    'action_noise_factors',
]


def suggest(word, options):
  close = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
  return f" (did you mean {', '.join(close)}?)" if close else ''


def _type_name(kind):
  return {int: 'an integer', float: 'a number', bool: 'True or False', str: 'a string',
          list: 'a list', dict: 'a mapping'}[kind]


_BYTE_UNITS = {'kb': 1e3, 'mb': 1e6, 'gb': 1e9, 'kib': 2 ** 10, 'mib': 2 ** 20, 'gib': 2 ** 30}


def cache_size(value):
  """loader_cache_size -> (most episodes, most bytes) the replay keeps; 0 means no bound.

  An integer counts episodes; a string such as '2GB', '1.5 GiB' or '500MB' bounds the
  bytes of the episodes kept in memory.
  """
  if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
    return value, 0
  match = re.fullmatch(r'\s*([0-9]*\.?[0-9]+)\s*([kmg]i?b)\s*', str(value), re.IGNORECASE)
  if isinstance(value, str) and match:
    return 0, int(float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()])
  raise ConfigError(f'loader_cache_size must be a number of episodes (0: no bound) or a '
                    f"size such as '2GB' or '500MB', got {value!r}")


def check(key, value, default):
  if key == 'loader_cache_size':
    cache_size(value)
    return value
  if key in _CHOICES:
    choices = _CHOICES[key]
    if isinstance(value, str) and value not in choices and value.lower() in ('false', 'none'):
      value = False if False in choices else None
    if value is None and key in _NULLABLE:
      return value
    if value not in choices or isinstance(value, bool) != any(
        isinstance(c, bool) and c == value for c in choices):
      shown = ', '.join(str(c) for c in choices if c is not None)
      raise ConfigError(f'{key} must be one of {shown}, got {value!r}')
    return value
  kind = _NULLABLE.get(key)
  if kind is None:
    kind = type(default) if default is not None else str
  if value is None:
    if key in _NULLABLE:
      return None
    raise ConfigError(f'{key} must be {_type_name(kind)}, got null')
  if kind is bool:
    if isinstance(value, bool):
      return value
    raise ConfigError(f'{key} must be True or False, got {value!r}')
  if kind in (int, float):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise ConfigError(f'{key} must be {_type_name(kind)}, got {value!r}')
    if not math.isfinite(value):
      raise ConfigError(f'{key} must be finite, got {value!r}')
    if kind is int:
      if float(value) != int(value):
        raise ConfigError(f'{key} must be an integer, got {value!r}')
      return int(value)
    return float(value)
  if kind is list:
    if isinstance(value, tuple):
      value = list(value)
    if not isinstance(value, list):
      raise ConfigError(f'{key} must be a list, got {value!r}')
    return value
  if not isinstance(value, kind):
    raise ConfigError(f'{key} must be {_type_name(kind)}, got {value!r}')
  return value


def check_ranges(c):
  shape = c['batch_shape']
  if len(shape) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in shape):
    raise ConfigError(f'batch_shape must be two integers [B, T], got {shape!r}')
  for key in _POSITIVE:
    values = c[key] if isinstance(c[key], list) else [c[key]]
    if any(v is not None and v <= 0 for v in values):
      raise ConfigError(f'{key} must be positive, got {c[key]!r}')
  for key in _NON_NEGATIVE:
    if c[key] is not None and c[key] < 0:
      raise ConfigError(f'{key} must not be negative, got {c[key]!r}')
  if not c['tasks'] or not all(isinstance(t, str) for t in c['tasks']):
    raise ConfigError(f"tasks must be a non-empty list of task names, got {c['tasks']!r}")
  if c['planner_topk'] > c['planner_beams']:
    raise ConfigError('planner_topk must not exceed planner_beams')
  if not isinstance(c['gradient_heads'], list):
    raise ConfigError('gradient_heads must be a list of head names')
  for key in ('train_collects', 'test_collects'):
    for spec in c[key]:
      if not isinstance(spec, dict):
        raise ConfigError(f'{key} must be a list of mappings, got {c[key]!r}')
      for name in spec:
        if name not in COLLECT_KEYS:
          raise ConfigError(f'Invalid key {name} in {key}; valid keys: {", ".join(COLLECT_KEYS)}')
  for key in ('value_target_update', 'action_target_update'):
    if not (0 < c[key] <= 0.5 or c[key] == 1):
      raise ConfigError(f'{key} must be in (0, 0.5] or exactly 1, got {c[key]}')
  heads = [key for key in ('action_head', 'value_head') if c[key]]
  if c['imagination_horizon'] == 0 and heads:
    raise ConfigError(
        f"imagination_horizon: 0 turns off imagination, which is all that trains "
        f"{' and '.join(heads)}; set {', '.join(f'{k}: False' for k in heads)} (as the planet "
        f"preset does) or a horizon of at least {2 if c['value_head'] else 1}")
  if isinstance(c['batch_shape'], list) and c['train_chunks'] > c['batch_shape'][0]:
    raise ConfigError(f"train_chunks must be at most batch_shape[0] = {c['batch_shape'][0]} "
                      f"(one sequence per part), got {c['train_chunks']}")
  if c['imagination_horizon'] == 1 and c['value_head']:
    raise ConfigError('imagination_horizon must be 0 or at least 2 when value_head is on')
  uses_policy = {c['train_planner'], c['test_planner']} & {'policy_sample', 'policy_mode'}
  if uses_policy and not c['action_head']:
    raise ConfigError('policy planners need action_head: True (or use train_planner: cem)')


def check_unsupported(c, defaults):
  for key in UNSUPPORTED:
    default = defaults[key]
    if c[key] != default:
      raise ConfigError(
          f'{key}: {c[key]!r} is a research option of the original that is not supported here; '
          f'remove it or set it to {default!r}')
