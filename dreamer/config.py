"""Builds the effective config: YAML presets merged in list order, user keys on top, checked.

Only this module and the entry scripts read config keys; everything below them takes
explicit keyword arguments.
"""

import difflib
import io
import math
import os
import pathlib
import re

import ruamel.yaml

_HERE = pathlib.Path(__file__).resolve().parent
CONFIG_DIRS = [_HERE.parent / 'configs', _HERE / 'configs']

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


class ConfigError(ValueError):
  """A problem with the user's params, explained in one line."""


class Config(dict):
  """Read-only mapping with attribute access."""

  def __getattr__(self, name):
    try:
      return self[name]
    except KeyError:
      raise AttributeError(f"config has no key '{name}'") from None

  def __setitem__(self, key, value):
    raise TypeError('Config is read-only; build a new one with build_config().')

  def __reduce__(self):
    return (Config, (dict(self),))


def config_dir():
  for path in CONFIG_DIRS:
    if (path / 'dreamer.yaml').exists():
      return path
  raise ConfigError('cannot find configs/dreamer.yaml; reinstall the package (pip install -e .)')


def presets():
  """Names of the available presets."""
  return sorted(p.stem for p in config_dir().glob('*.yaml'))


def _yaml():
  """A safe YAML 1.2 parser and writer, as the original used (ruamel.yaml).

  YAML 1.2 reads 1e-4 as a number and only true/false as booleans (yes, no, on, off are
  strings). The pure-Python parser needs no compiled extension; the files are tiny.
  """
  yaml = ruamel.yaml.YAML(typ='safe', pure=True)
  yaml.default_flow_style = False
  return yaml


def _where(error):
  """Where and what a YAML error is, on one line: "<problem> at line L, column C"."""
  problem = getattr(error, 'problem', None) or str(error).strip().splitlines()[0]
  mark = getattr(error, 'problem_mark', None)
  if mark is None:
    return problem
  text = f'{problem} at line {mark.line + 1}, column {mark.column + 1}'
  # An unclosed bracket or quote is noticed far from where it was opened: name both.
  start, context = getattr(error, 'context_mark', None), getattr(error, 'context', None)
  if start is not None and context and (start.line, start.column) != (mark.line, mark.column):
    text += f' ({context} from line {start.line + 1}, column {start.column + 1})'
  return text


def load_preset(name):
  path = config_dir() / f'{name}.yaml'
  if not isinstance(name, str) or not path.exists():
    raise ConfigError(
        f"unknown preset '{name}'{_suggest(str(name), presets())}; "
        f"available presets: {', '.join(presets())}")
  try:
    values = _yaml().load(path.read_text()) or {}
  except ruamel.yaml.YAMLError as e:
    raise ConfigError(f'preset file {path} is not valid YAML: {_where(e)}') from None
  if not isinstance(values, dict):
    raise ConfigError(f'preset file {path} must hold a mapping')
  return values


def parse_params(text):
  """Parses the --params string: a YAML flow mapping. '#' stands for ',' as in the original."""
  if isinstance(text, dict):
    return dict(text)
  # Before parsing: to YAML a '#' after a space would start a comment.
  text = (text or '{}').replace('#', ',').replace('\\', '')
  try:
    values = _yaml().load(text)
  except ruamel.yaml.YAMLError as e:
    raise ConfigError(f'--params is not valid YAML ({_where(e)}); '
                      "write it like '{defaults: [dreamer, debug], tasks: [dummy]}'") from None
  if values is None:
    return {}
  if not isinstance(values, dict):
    raise ConfigError(f'--params must be a YAML mapping like \'{{tasks: [dummy]}}\', '
                      f'got a {type(values).__name__}: {text!r}')
  return values


def build_config(params, state_components=None):
  """Merges presets and params into a checked, resolved Config.

  Args:
    params: mapping of user overrides, optionally with `defaults: [preset, ...]`.
    state_components: function from a task list to that task's state component names;
      these make `<component>_loss_scale` and `<component>_layers` valid keys.
  """
  params = dict(params)
  base = load_preset('dreamer')
  names = params.pop('defaults', None)
  if names is None:
    names = base['defaults']
  if isinstance(names, str):
    names = [names]
  if not isinstance(names, list):
    raise ConfigError(f'defaults must be a list of preset names, got {names!r}')
  merged = dict(base)
  for name in names:
    merged.update(load_preset(name))  # Later presets win.
  tasks = params.get('tasks', merged['tasks'])
  if isinstance(tasks, str):
    tasks = [tasks]
    params['tasks'] = tasks
  dynamic = set()
  if state_components and isinstance(tasks, list):
    for component in state_components(tasks):
      dynamic.add(f'{component}_loss_scale')
      dynamic.add(f'{component}_layers')
  unknown = sorted(key for key in params if key not in merged and key not in dynamic)
  if unknown:
    hints = _suggest(unknown[0], list(merged)) or (
        '; every param and its default is in configs/dreamer.yaml')
    raise ConfigError(f"Found unused config overrides: {', '.join(unknown)}{hints}")
  merged.update(params)
  merged['defaults'] = list(names)
  for key in sorted(merged):
    merged[key] = _check(key, merged[key], base.get(key, 1.0))
  _check_ranges(merged)
  _check_unsupported(merged, base)
  _resolve(merged)
  return Config(merged)


def collect_specs(config, mode):
  """Resolved collection specs for 'train' or 'test' (SPEC 3.10)."""
  train = mode == 'train'
  prefix = 'train' if train else 'test'
  defaults = dict(
      name='main', prefix=prefix, mode=prefix, give_rewards=True,
      horizon=config.planner_horizon,
      objective=config[f'{prefix}_planner_objective'],
      planner=config[f'{prefix}_planner'], num_envs=config.num_envs,
      num_episodes=config.collect_episodes, num_steps=config.collect_steps,
      steps_after=config.collect_every, steps_every=config.collect_every, steps_until=-1,
      action_noise_type=config.action_noise_type,
      action_noise_scale=config.train_action_noise if train else config.test_action_noise,
      action_noise_ramp=config.train_action_noise_ramp if train else 0,
      action_noise_min=config.train_action_noise_min if train else 0.0,
      # The original gave test collections the train factors too; tests use none.
      action_noise_factors=list(config.train_action_noise_factors) if train else [])
  specs = []
  for spec in config[f'{prefix}_collects']:
    resolved = dict(defaults, **spec)
    specs.append(resolved)
  return specs


def to_yaml(config):
  """The text of a run's config.yaml: block style, keys sorted."""
  stream = io.StringIO()
  _yaml().dump({key: config[key] for key in sorted(config)}, stream)
  return stream.getvalue()


def from_yaml(text, path='config.yaml'):
  """Reads a run's config.yaml; a file edited into invalid YAML fails naming the line."""
  afresh = 'or move it aside to start the run afresh'
  try:
    values = _yaml().load(text)
  except ruamel.yaml.YAMLError as e:
    raise ConfigError(f'{path} is not valid YAML: {_where(e)}; fix that line {afresh}') from None
  if not isinstance(values, dict):
    raise ConfigError(f'{path} does not hold a mapping; restore it {afresh}')
  return Config(values)


def _suggest(word, options):
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


def _check(key, value, default):
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


def _check_ranges(c):
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


def _check_unsupported(c, defaults):
  for key in UNSUPPORTED:
    default = defaults[key]
    if c[key] != default:
      raise ConfigError(
          f'{key}: {c[key]!r} is a research option of the original that is not supported here; '
          f'remove it or set it to {default!r}')


def _resolve(c):
  batch = c['batch_shape'][0]
  if c['test_steps'] is None:
    c['test_steps'] = batch
  if c['train_log_every'] is None:
    c['train_log_every'] = c['train_steps']
  if c['checkpoint_every'] is None:
    c['checkpoint_every'] = 10 * c['test_steps']
  if c['collect_episodes'] is None:
    c['collect_episodes'] = c['num_envs']
  for prefix in ('train', 'test'):
    if c[f'{prefix}_planner_objective'] is None:
      c[f'{prefix}_planner_objective'] = c['planner_objective']
  if c['pcont_layers'] is None:
    c['pcont_layers'] = c['num_layers']
  if c['seed'] is None:
    c['seed'] = int.from_bytes(os.urandom(4), 'little') % (2 ** 31)
