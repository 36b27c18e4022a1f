"""Every task name a user can type, what it is, and how to build its wrapped environment."""

import dataclasses
import difflib
import importlib
import importlib.util
import sys

from dreamer.envs import wrappers


class UnknownTaskError(ValueError):
  pass


class MissingDependencyError(ImportError):
  """A task whose suite is not installed, with how to install it."""


_PINNED = "pip install -r requirements.txt (or 'make setup')"
_DEPENDENCIES = {
    'dmc': [('dm_control', _PINNED), ('mujoco', _PINNED)],
    'atari': [('gymnasium', _PINNED), ('ale_py', _PINNED)],
    'gym': [('gymnasium', _PINNED), ('mujoco', _PINNED)],
    'dmlab': [('deepmind_lab', 'it has no PyPI package: build the wheel from '
               'https://github.com/google-deepmind/lab (bazel build -c opt '
               '//python/pip_package:build_pip_package) and pip install the '
               'deepmind_lab-*.whl it writes')],
}
_TASK_DEPENDENCIES = {
    'gym_racecar': [('Box2D', "'pip install box2d pygame' (not in the pinned stack)"),
                    ('pygame', "'pip install box2d pygame' (not in the pinned stack)")],
}


@dataclasses.dataclass(frozen=True)
class Task:
  """Static facts about a task; nothing here constructs an environment."""
  name: str                      # as typed by users, e.g. walker_run
  family: str                    # dummy, dmc, atari, dmlab, gym
  action_repeat: int             # default when the action_repeat param is null
  state_components: tuple = ()   # observation keys that get state-diagnostic heads
  rendered: bool = False         # renders with OpenGL: must run in a process without TensorFlow
  options: tuple = ()            # family-specific (key, value) pairs

  @property
  def kwargs(self):
    return dict(self.options)


_DMC = [
    # name, domain, task, state components, camera, normalize actions
    ('cartpole_balance', 'cartpole', 'balance', ('position', 'velocity')),
    ('cartpole_swingup', 'cartpole', 'swingup', ('position', 'velocity')),
    ('cartpole_balance_sparse', 'cartpole', 'balance_sparse', ('position', 'velocity')),
    ('cartpole_swingup_sparse', 'cartpole', 'swingup_sparse', ('position', 'velocity')),
    ('finger_spin', 'finger', 'spin', ('position', 'velocity', 'touch')),
    ('finger_turn_easy', 'finger', 'turn_easy', (
        'position', 'velocity', 'touch', 'target_position', 'dist_to_target')),
    ('finger_turn_hard', 'finger', 'turn_hard', (
        'position', 'velocity', 'touch', 'target_position', 'dist_to_target')),
    ('cheetah_run', 'cheetah', 'run', ('position', 'velocity')),
    ('cup_catch', 'ball_in_cup', 'catch', ('position', 'velocity')),
    ('walker_walk', 'walker', 'walk', ('height', 'orientations', 'velocity')),
    ('walker_run', 'walker', 'run', ('height', 'orientations', 'velocity')),
    ('walker_stand', 'walker', 'stand', ('height', 'orientations', 'velocity')),
    ('humanoid_walk', 'humanoid', 'walk', (
        'com_velocity', 'extremities', 'head_height', 'joint_angles', 'torso_vertical',
        'velocity')),
    ('reacher_easy', 'reacher', 'easy', ('position', 'velocity', 'to_target')),
    ('reacher_hard', 'reacher', 'hard', ('position', 'velocity', 'to_target')),
    ('hopper_stand', 'hopper', 'stand', ('position', 'velocity', 'touch')),
    ('hopper_hop', 'hopper', 'hop', ('position', 'velocity', 'touch')),
    ('fish_upright', 'fish', 'upright', ()),
    ('pointmass_easy', 'point_mass', 'easy', ()),
    ('manipulator_bring', 'manipulator', 'bring_ball', ()),
    ('pendulum_swingup', 'pendulum', 'swingup', ('orientation', 'velocity')),
    ('acrobot_swingup', 'acrobot', 'swingup', ('orientations', 'velocity')),
    ('quadruped_walk', 'quadruped', 'walk', (
        'egocentric_state', 'force_torque', 'imu', 'torso_upright', 'torso_velocity')),
    ('quadruped_run', 'quadruped', 'run', ()),
    ('quadruped_escape', 'quadruped', 'escape', ()),
    ('quadruped_fetch', 'quadruped', 'fetch', ()),
]

ATARI_GAMES = [
    'Alien', 'Amidar', 'Assault', 'Asterix', 'Asteroids', 'Atlantis', 'BankHeist',
    'BattleZone', 'BeamRider', 'Berzerk', 'Bowling', 'Boxing', 'Breakout', 'Centipede',
    'ChopperCommand', 'CrazyClimber', 'Defender', 'DemonAttack', 'DoubleDunk', 'Enduro',
    'FishingDerby', 'Freeway', 'Frostbite', 'Gopher', 'Gravitar', 'Hero', 'IceHockey',
    'Jamesbond', 'Kangaroo', 'Krull', 'KungFuMaster', 'MontezumaRevenge', 'MsPacman',
    'NameThisGame', 'Phoenix', 'Pitfall', 'Pong', 'PrivateEye', 'Qbert', 'Riverraid',
    'RoadRunner', 'Robotank', 'Seaquest', 'Skiing', 'Solaris', 'SpaceInvaders', 'StarGunner',
    'Surround', 'Tennis', 'TimePilot', 'Tutankham', 'UpNDown', 'Venture', 'VideoPinball',
    'WizardOfWor', 'YarsRevenge', 'Zaxxon',
]

DMLAB_LEVELS = {
    'dmlab_collect': 'rooms_collect_good_objects_train',
    'dmlab_collect_few': 'explore_object_rewards_few',
    'dmlab_compare': 'psychlab_sequential_comparison',
    'dmlab_doors_large': 'explore_obstructed_goals_large',
    'dmlab_doors_small': 'explore_obstructed_goals_small',
    'dmlab_explore_small': 'explore_object_locations_small',
    'dmlab_find_large': 'explore_goal_locations_large',
    'dmlab_find_small': 'explore_goal_locations_small',
    'dmlab_keys': 'rooms_keys_doors_puzzle',
    'dmlab_lasertag_1': 'lasertag_one_opponent_small',
    'dmlab_lasertag_3': 'lasertag_three_opponents_small',
    'dmlab_recognize': 'psychlab_visual_search',
    'dmlab_watermaze': 'rooms_watermaze',
}


def _snake(name):
  return ''.join('_' + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _build_tasks():
  tasks = [Task('dummy', 'dummy', 1),
           Task('dummy_discrete', 'dummy', 1, options=(('discrete', True),)),
           Task('toy_reach', 'toy', 1, ('position',)),
           Task('toy_reach_right', 'toy', 1, ('position',),
                options=(('start', -1.0), ('goals', (1.0,))))]
  for name, domain, task, components in _DMC:
    quadruped = domain == 'quadruped'
    tasks.append(Task(name, 'dmc', 2, components, rendered=True, options=(
        ('domain', domain), ('suite_task', task), ('camera', 2 if quadruped else 0),
        ('normalize', quadruped))))
  for game in ATARI_GAMES:
    tasks.append(Task(f'atari_{game.lower()}', 'atari', 4, options=(('game', game),)))
  for name, level in DMLAB_LEVELS.items():
    tasks.append(Task(name, 'dmlab', 4, rendered=True, options=(('level', level),)))
  tasks.append(Task('gym_cheetah', 'gym', 1, ('state',), rendered=True, options=(
      ('env_id', 'HalfCheetah-v5'), ('obs_key', 'state'))))
  tasks.append(Task('gym_racecar', 'gym', 1, (), rendered=True, options=(
      ('env_id', 'CarRacing-v3'), ('obs_key', None))))
  return {task.name: task for task in tasks}


TASKS = _build_tasks()


def get_task(name):
  if name not in TASKS:
    close = difflib.get_close_matches(str(name), list(TASKS), n=4, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else ''
    raise UnknownTaskError(
        f"unknown task '{name}'{hint} (see the task list in README.md)")
  return TASKS[name]


def check_dependencies(name):
  """Fails before any work when the suite of task `name` cannot be imported."""
  task = get_task(name)
  for module, hint in _DEPENDENCIES.get(task.family, []) + _TASK_DEPENDENCIES.get(name, []):
    if module in sys.modules:
      continue
    try:
      found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
      found = False
    if not found:
      raise MissingDependencyError(
          f"task '{name}' needs the python module {module}, which is not installed: {hint}")


def state_components(names):
  """State components of the first task (none for multi-task runs, SPEC 7.9)."""
  tasks = [get_task(name) for name in names]
  return tasks[0].state_components if len(tasks) == 1 else ()


def state_components_checked(names):
  """Like state_components, but unknown names give none (the config check reports them)."""
  try:
    return state_components(names)
  except UnknownTaskError:
    return ()


def make_env(name, *, mode='train', action_repeat=None, render_size=64, min_length=None,
             max_length=None, camera_id=None, normalize_actions=None, seed=None,
             atari_grayscale=False, atari_noops=30, atari_lifes=True, atari_sticky=True,
             atari_train_max_length=None, dmlab_runfiles_path=None, pad_spaces=None,
             image_only=False, give_rewards=True):
  """Builds one wrapped environment (SPEC 7.3). Picklable through functools.partial.

  Args:
    mode: 'train' or 'test'; Atari ends training episodes on life loss only.
    min_length: agent steps during which `done` is ignored (whole chunks fit in episodes).
    pad_spaces: action spaces of every task in a multi-task run, to pad actions to.
    image_only: keep only the image observation (multi-task runs).
  """
  task = get_task(name)
  repeat = action_repeat or task.action_repeat
  opts = task.kwargs
  if task.family == 'dummy':
    from dreamer.envs import dummy
    env = dummy.DummyEnv(size=render_size, seed=0 if seed is None else seed)
    env = wrappers.ActionRepeat(env, repeat)
    if opts.get('discrete'):
      env = wrappers.OneHotAction(env)
  else:
    module = importlib.import_module(f'dreamer.envs.{task.family}')
    env = module.make(
        task=task, mode=mode, action_repeat=repeat, render_size=render_size, seed=seed,
        camera_id=camera_id, normalize_actions=normalize_actions,
        atari_grayscale=atari_grayscale, atari_noops=atari_noops, atari_lifes=atari_lifes,
        atari_sticky=atari_sticky, atari_train_max_length=atari_train_max_length,
        dmlab_runfiles_path=dmlab_runfiles_path, **opts)
    env = wrappers.ConvertTo32Bit(env)
  if min_length:
    env = wrappers.MinimumDuration(env, min_length)
  if max_length:
    env = wrappers.MaximumDuration(env, max_length)
  if image_only:
    env = wrappers.SelectObservations(env, ['image'])
  if pad_spaces:
    env = wrappers.PadActions(env, pad_spaces)
  if not give_rewards:
    env = wrappers.NoRewardHint(env)
  return env
