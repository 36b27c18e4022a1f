"""Builds the effective config: YAML presets merged in list order, user keys on top, checked
(by dreamer.config_checks), nulls resolved.

Only this module and the entry scripts read config keys; everything below them takes
explicit keyword arguments.
"""

import io
import os
import pathlib

import ruamel.yaml

from dreamer import config_checks as checks

_HERE = pathlib.Path(__file__).resolve().parent
CONFIG_DIRS = [_HERE.parent / 'configs', _HERE / 'configs']

ConfigError = checks.ConfigError  # What every bad param raises, from here or from the checks.


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
        f"unknown preset '{name}'{checks.suggest(str(name), presets())}; "
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
    hints = checks.suggest(unknown[0], list(merged)) or (
        '; every param and its default is in configs/dreamer.yaml')
    raise ConfigError(f"Found unused config overrides: {', '.join(unknown)}{hints}")
  merged.update(params)
  merged['defaults'] = list(names)
  for key in sorted(merged):
    merged[key] = checks.check(key, merged[key], base.get(key, 1.0))
  checks.check_ranges(merged)
  checks.check_unsupported(merged, base)
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
