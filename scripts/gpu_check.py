"""The prepared GPU check: the figures a GPU user waits for, in one JSON file.

    make gpu-check                                    # on a GPU machine, set-up included
    python scripts/gpu_check.py --out gpu_check.json  # the same, with the venv ready
    python scripts/gpu_check.py --quick --out q.json  # tiny shapes on the CPU (the test's)

Three parts, each run as its own process so that one failing does not hide the others:

1. `updates`: seconds per update at batch 50x50 (the paper's shape) in float32,
   `precision: 16` and `precision: bfloat16`, each with and without `jit`, plus the policy
   step, from scripts/benchmark.py on synthetic batches.
2. `collection`: env steps per second of `walker_walk` rendered with `MUJOCO_GL=egl` for 1,
   4 and 8 process workers (scripts/benchmark.py --env_sweep).
3. `training`: a `cartpole_balance` run of the paper's config ({defaults: [dreamer]}),
   stopped with Ctrl-C after --train_seconds; its env frames per minute and test returns.

The JSON file is written after every part, so a check cut short keeps what it measured.
The exit status is 0 when every part ran and 1 otherwise; each part's error is in the file.
"""

import argparse
import json
import os
import pathlib
import platform
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCHMARK = ROOT / 'scripts' / 'benchmark.py'

FULL = dict(
    update_params={}, batch=(50, 50), updates=20, warmup=2, policy_steps=50,
    collect_steps=100,
    combos=[(p, j) for p in (32, 16, 'bfloat16') for j in (False, True)],
    sweep_task='walker_walk', sweep_envs=(1, 4, 8), sweep_steps=200,
    train_params={'defaults': ['dreamer'], 'tasks': ['cartpole_balance']})
QUICK = dict(
    update_params={'defaults': ['dreamer', 'debug'], 'cnn_depth': 4, 'imagination_horizon': 2},
    batch=(2, 4), updates=2, warmup=1, policy_steps=2, collect_steps=4,
    # One combination: XLA compiles take long on a CPU, and test_benchmark.py already runs
    # benchmark.py in float32; the loop over combinations is the same for one.
    combos=[('bfloat16', False)],
    sweep_task='dummy', sweep_envs=(1, 2), sweep_steps=5,
    train_params={'defaults': ['dreamer', 'debug'], 'tasks': ['dummy'], 'max_steps': 40,
                  'imagination_horizon': 3, 'batch_shape': [5, 5], 'cnn_depth': 4})


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default='gpu_check.json', help='the JSON file to write')
  parser.add_argument('--quick', action='store_true',
                      help='tiny shapes and the dummy task, to run on a CPU in seconds')
  parser.add_argument('--train_seconds', type=float, default=None,
                      help='wall time of the training part (default 300; 120 with --quick, '
                      'where the run ends on its own long before)')
  parser.add_argument('--train_params', default=None,
                      help='YAML params of the training part instead of its default, e.g. '
                      "'{defaults: [dreamer], tasks: [walker_walk]}'")
  parser.add_argument('--parts', nargs='+', default=['updates', 'collection', 'training'],
                      choices=['updates', 'collection', 'training'])
  args = parser.parse_args(argv)
  if args.train_seconds is None:
    args.train_seconds = 120.0 if args.quick else 300.0
  if args.train_seconds <= 0:
    parser.error('--train_seconds must be positive')
  return args


def environment():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1')
  env.setdefault('MUJOCO_GL', 'egl')
  env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(ROOT), env.get('PYTHONPATH')]))
  return env


def json_lines(text):
  records = []
  for line in text.splitlines():
    line = line.strip()
    if line.startswith('{'):
      try:
        records.append(json.loads(line))
      except json.JSONDecodeError:
        pass
  return records


def run_json(command, timeout):
  """Runs a command that prints JSON lines; returns (records, error or None)."""
  try:
    process = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                             env=environment(), cwd=ROOT)
  except subprocess.TimeoutExpired as e:
    return json_lines(e.stdout or ''), f'timed out after {timeout:.0f} s'
  records = json_lines(process.stdout)
  if process.returncode:
    tail = (process.stderr or '').strip().splitlines()[-1:] or ['no output']
    return records, f'exit code {process.returncode}: {tail[0]}'
  return records, None


def updates_part(sizes, timeout):
  results, errors = [], []
  for precision, jit in sizes['combos']:
    # JSON is a YAML flow mapping, which --params reads.
    params = json.dumps(dict(sizes['update_params'], precision=precision, jit=jit))
    records, error = run_json(
        [sys.executable, str(BENCHMARK), '--params', params,
         '--batch', *map(str, sizes['batch']), '--updates', str(sizes['updates']),
         '--warmup', str(sizes['warmup']), '--policy_steps', str(sizes['policy_steps']),
         '--collect_steps', str(sizes['collect_steps'])], timeout)
    values = {r['metric']: r['value'] for r in records}
    results.append(dict(
        precision=precision, jit=jit, batch=list(sizes['batch']),
        update_seconds=values.get('update_seconds'),
        trace_seconds=values.get('trace_seconds'),
        policy_step_seconds=values.get('policy_step_seconds'),
        peak_memory_mib=values.get('peak_memory'),
        device=records[0].get('device') if records else None, error=error))
    if error:
      errors.append(f'precision {precision}, jit {jit}: {error}')
  return results, errors


def collection_part(sizes, timeout):
  records, error = run_json(
      [sys.executable, str(BENCHMARK), '--env_sweep', sizes['sweep_task'],
       '--sweep_envs', *map(str, sizes['sweep_envs']), '--sweep_isolation', 'process',
       '--sweep_steps', str(sizes['sweep_steps'])], timeout)
  results = [dict(task=r['task'], envs=r['envs'], isolation=r['isolation'],
                  env_steps_per_second=r['value']) for r in records]
  return results, [error] if error else []


def training_part(params, seconds, logdir):
  """Trains until it finishes or `seconds` pass, then interrupts it like Ctrl-C."""
  command = [sys.executable, '-m', 'dreamer.scripts.train', '--logdir', str(logdir),
             '--params', params]
  start = time.perf_counter()
  # SIGINT must reach it even when this check runs where SIGINT is ignored (a job sent to
  # the background by a shell without job control, nohup): children inherit that.
  process = subprocess.Popen(command, env=environment(), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
  interrupted = False
  try:
    output, _ = process.communicate(timeout=seconds)
  except subprocess.TimeoutExpired:
    interrupted = True
    process.send_signal(signal.SIGINT)
    try:
      output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
      process.kill()
      output, _ = process.communicate()
  wall = time.perf_counter() - start
  errors = []
  if process.returncode not in (0, 130) or (process.returncode == 130 and not interrupted):
    tail = output.strip().splitlines()[-1:] or ['no output']
    errors.append(f'exit code {process.returncode}: {tail[0]}')
  records = []
  for path in sorted(pathlib.Path(logdir).glob('*/metrics.jsonl')):
    records += json_lines(path.read_text())
  frames = max((r.get('env_frames', 0) for r in records), default=0)
  updates = max((r.get('updates', 0) for r in records), default=0)
  tests = [[r['env_frames'], round(r['test/return'], 2)] for r in records if 'test/return' in r]
  if not records and not errors:
    errors.append('the run wrote no metrics')
  result = dict(
      params=params, wall_seconds=round(wall, 1), interrupted=interrupted,
      env_frames=frames, updates=updates,
      frames_per_minute=round(60 * frames / wall, 1),  # Over the process, start-up included.
      test_returns=tests)
  return result, errors


def device_summary():
  summary = dict(host=platform.node(), python=platform.python_version())
  try:
    summary['nvidia_smi'] = subprocess.run(
        ['nvidia-smi', '--query-gpu=name,memory.total,driver_version', '--format=csv,noheader'],
        capture_output=True, text=True, timeout=30).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    summary['nvidia_smi'] = None
  try:
    text = pathlib.Path('/proc/cpuinfo').read_text()
    summary['cpu_flags'] = sorted({f for f in ('avx2', 'avx512f') if f' {f} ' in text})
  except OSError:
    summary['cpu_flags'] = []
  return summary


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  sizes = QUICK if args.quick else FULL
  out = pathlib.Path(args.out)
  report = dict(quick=args.quick, started=time.strftime('%Y-%m-%dT%H:%M:%S'),
                **device_summary(), parts={}, errors=[])

  def write():
    tmp = out.with_name(out.name + '.tmp')
    tmp.write_text(json.dumps(report, indent=1) + '\n')
    os.replace(tmp, out)

  start = time.perf_counter()
  for part in args.parts:
    part_start = time.perf_counter()
    print(f'gpu_check: {part} ...', flush=True)
    if part == 'updates':
      result, errors = updates_part(sizes, timeout=300)
    elif part == 'collection':
      result, errors = collection_part(sizes, timeout=300)
    else:
      with tempfile.TemporaryDirectory() as logdir:
        params = args.train_params or json.dumps(sizes['train_params'])
        result, errors = training_part(params, args.train_seconds, logdir)
    seconds = round(time.perf_counter() - part_start, 1)
    report['parts'][part] = dict(seconds=seconds, result=result)
    report['errors'] += [f'{part}: {e}' for e in errors]
    report['seconds'] = round(time.perf_counter() - start, 1)
    write()
    print(f'gpu_check: {part} took {seconds} s' + (f'; {errors}' if errors else ''),
          flush=True)
  print(f'gpu_check: wrote {out}', flush=True)
  return 1 if report['errors'] else 0


if __name__ == '__main__':
  sys.exit(main())
