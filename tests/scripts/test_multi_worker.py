"""Training runs of distribute: multi_worker with 2 worker processes on 127.0.0.1."""

import importlib.util
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from dreamer import config as config_lib
from dreamer.data import episodes
from tests.scripts import test_resume
from tests.scripts.test_failures import TF_NOISE
from tests.scripts.test_train import SMOKE

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / 'scripts' / 'launch_workers.py'
PROBE = ROOT / 'tests' / 'scripts' / 'resume_probe.py'
# B = 4 splits over the two workers' CPUs; one epoch is 20 trainer steps (3 updates).
PARAMS = dict(SMOKE, batch_shape=[4, 5], distribute='multi_worker', max_steps=20)
FRAMES_PER_EPISODE = 1000  # The debug preset's dummy episodes: 20 steps at action repeat 50.


def load_launcher():
  spec = importlib.util.spec_from_file_location('launch_workers', LAUNCHER)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def train_command(logdir, params):
  return [sys.executable, '-m', 'dreamer.scripts.train', '--logdir', str(logdir),
          '--params', json.dumps(params)]


def worker_env(tmp_path, **extra):
  scratch = tmp_path / 'scratch'  # Where the other workers' checkpoints are written and deleted.
  scratch.mkdir(exist_ok=True)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONUNBUFFERED='1', TMPDIR=str(scratch))
  env.pop('TF_CONFIG', None)
  env.update(extra)
  return env


def launch(tmp_path, logdir, params, workers=2, probe=None):
  """Runs the train command on `workers` workers; with probe=DIR, under resume_probe.py,
  which writes the state each worker's training loop starts from to DIR/rank<k>."""
  command = train_command(logdir, params)
  env = worker_env(tmp_path)
  if probe:
    command = [sys.executable, str(PROBE), str(probe), '--'] + command[3:]
    env['PYTHONPATH'] = os.pathsep.join([str(ROOT), env.get('PYTHONPATH', '')])
  command = [sys.executable, str(LAUNCHER), '--workers', str(workers), '--'] + command
  result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=400)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return result.stdout


def errors(stderr):
  """The lines of stderr that are not TensorFlow's logging (with or without the launcher's
  prefix)."""
  return [line for line in stderr.strip().splitlines()
          if not TF_NOISE.match(re.sub(r'^\[worker \d+\] ', '', line))]


def files_below(directory):
  return sorted(str(p.relative_to(directory)) for p in directory.rglob('*') if p.is_file())


def restored_number(stdout, worker):
  match = re.search(rf'\[worker {worker}\] Restored \S+model\.ckpt-(\d+) ', stdout)
  assert match, stdout[-3000:]
  return int(match.group(1))


def end_at(run_dir, max_steps):
  """Sets a stopped run's stored schedule to end at `max_steps`, to keep its resume short
  (the command must then give no larger max_steps: a larger one extends the run to it)."""
  (run_dir / 'DONE').unlink(missing_ok=True)
  config = dict(config_lib.from_yaml((run_dir / 'config.yaml').read_text()), max_steps=max_steps)
  (run_dir / 'config.yaml').write_text(config_lib.to_yaml(config))


def checkpoint_frames(run_dir):
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir)))
  return int(reader.get_tensor('env_frames/.ATTRIBUTES/VARIABLE_VALUE'))


def train_episodes(run_dir):
  return (episodes.list_episodes(run_dir / 'train_episodes')
          + episodes.list_episodes(run_dir / 'worker1' / 'train_episodes'))


@pytest.mark.timeout(600)
def test_two_workers_write_one_run_a_killed_worker_stops_the_other_and_the_run_resumes(
    tmp_path):
  # One run serves the whole life of a multi-worker run (its two worker processes are the
  # slowest part of the suite): two workers train and checkpoint, one is killed, the other
  # stops with one line, and the launcher's second invocation resumes and finishes it.
  logdir = tmp_path / 'logdir'
  run_dir = logdir / '00001'
  scratch = tmp_path / 'scratch'
  addresses = [f'127.0.0.1:{port}' for port in load_launcher().free_ports(2)]
  params = dict(PARAMS, max_steps=400, checkpoint_every=10)
  logs = [(open(tmp_path / f'worker{i}.out', 'w'), open(tmp_path / f'worker{i}.err', 'w'))
          for i in range(2)]
  processes = [subprocess.Popen(
      train_command(logdir, params), stdout=out, stderr=err,
      env=worker_env(tmp_path, TF_CONFIG=load_launcher().tf_config(addresses, i)))
      for i, (out, err) in enumerate(logs)]
  try:
    deadline = time.time() + 300
    while not list(run_dir.glob('model.ckpt-*.index')):
      assert all(p.poll() is None for p in processes), (tmp_path / 'worker0.err').read_text()
      assert time.time() < deadline, 'no checkpoint in time'
      time.sleep(0.1)
    os.kill(processes[1].pid, signal.SIGKILL)
    killed = time.time()
    # TF's coordination service misses the worker's heartbeats after about 10 seconds.
    processes[0].wait(timeout=120)
    stopped_after = time.time() - killed
  finally:
    for process in processes:
      process.kill()
      process.wait()
    for out, err in logs:
      out.close()
      err.close()
  first = [(tmp_path / f'worker{i}.out').read_text() for i in range(2)]
  assert f'Worker 1 ({addresses[1]}) of 2 joins run ' in first[1], first[1][-3000:]
  assert 'Data-parallel training over 2 replicas on 2 workers.' in first[0], first[0][-3000:]
  assert processes[0].returncode == 1 and stopped_after < 120
  lines = errors((tmp_path / 'worker0.err').read_text())
  assert len(lines) == 1, lines
  assert lines[0].startswith(f'error: worker 0 ({addresses[0]}) lost worker 1 ({addresses[1]}): ')
  assert ('; the last checkpoint is ' in lines[0] and lines[0].endswith(
      'run the same command on every worker again to resume')), lines[0]
  # Like a killed single process: no markers, and the checkpoint reads.
  assert not (run_dir / 'DONE').exists() and not (run_dir / 'FAIL').exists()
  latest = tf.train.latest_checkpoint(str(run_dir))
  assert latest in lines[0]
  reader = tf.train.load_checkpoint(latest)
  for name in reader.get_variable_to_shape_map():
    reader.get_tensor(name)
  saved = int(re.search(r'model\.ckpt-(\d+)$', latest).group(1))
  values = test_resume.read(latest)
  frames_saved = checkpoint_frames(run_dir)
  episodes_before = set(train_episodes(run_dir))
  leftovers = set(scratch.glob('dreamer-worker-checkpoint-*'))  # The killed worker's.

  end_at(run_dir, saved + 20)  # One more epoch, to keep the test short.
  out = launch(tmp_path, logdir, dict(params, max_steps=saved + 20), probe=tmp_path / 'probe')
  assert '[worker 1] Worker 1 (127.0.0.1:' in out and ' of 2 joins run ' in out
  assert '[worker 0] Data-parallel training over 2 replicas on 2 workers.' in out
  assert restored_number(out, 0) == restored_number(out, 1) == saved
  # Both workers start training from every value of the chief's checkpoint, as it is on disk.
  for rank in (0, 1):
    test_resume.assert_restored(test_resume.read(tmp_path / 'probe' / f'rank{rank}'), values)
  assert 'Collecting initial' not in out  # Both workers' seed episodes are on disk already.
  assert tf.train.latest_checkpoint(str(run_dir)).endswith(f'model.ckpt-{saved + 20}')
  assert (run_dir / 'DONE').exists() and not (run_dir / 'FAIL').exists()
  # The chief's files are those of a single-process run; worker 1 adds only its episodes.
  files = files_below(run_dir)
  worker_files = [f for f in files if f.startswith('worker1/')]
  assert worker_files and all(re.fullmatch(r'worker1/(train|test)_episodes/[^/]+\.npz', f)
                              for f in worker_files), worker_files
  tops = {f.split('/')[0] for f in files} - {'worker1'}
  assert sorted(f for f in tops if 'ckpt' not in f) == [
      'DONE', 'PING', 'checkpoint', 'config.yaml', 'metrics.jsonl', 'test', 'test_episodes',
      'train', 'train_episodes']
  assert {f'model.ckpt-{saved + 20}.index', f'model.ckpt-{saved}.index'} <= tops
  assert all(p.parent.parent == run_dir for p in run_dir.rglob('events.out.tfevents.*'))
  # One event file per directory and invocation, all the chief's.
  assert len(list((run_dir / 'train').iterdir())) == len(list((run_dir / 'test').iterdir())) == 2
  assert episodes.list_episodes(run_dir / 'worker1' / 'train_episodes')
  # Env frames count the new train episodes of both workers.
  new = set(train_episodes(run_dir)) - episodes_before
  assert new and any('worker1' in str(path) for path in new)
  assert checkpoint_frames(run_dir) - frames_saved == FRAMES_PER_EPISODE * len(new)
  assert set(scratch.glob('dreamer-worker-checkpoint-*')) <= leftovers  # Deleted.


@pytest.mark.timeout(300)
def test_bad_clusters_fail_with_one_line_and_write_nothing(tmp_path):
  logdir = tmp_path / 'logdir'
  result = subprocess.run(train_command(logdir, PARAMS), capture_output=True, text=True,
                          env=worker_env(tmp_path), timeout=200)
  assert result.returncode == 2
  assert errors(result.stderr) == [
      'error: distribute: multi_worker needs a cluster of workers, but TF_CONFIG is not set and '
      'this is no SLURM job step; set TF_CONFIG on every worker, e.g. TF_CONFIG=\'{"cluster": '
      '{"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\', '
      'start the workers with srun in a SLURM allocation, or try it on this machine with '
      'scripts/launch_workers.py'], result.stderr
  assert not logdir.exists()
  # B = 5 does not split over 2 workers: both say so.
  command = [sys.executable, str(LAUNCHER), '--workers', '2', '--'] + train_command(
      logdir, dict(PARAMS, batch_shape=[5, 5]))
  result = subprocess.run(command, capture_output=True, text=True, env=worker_env(tmp_path),
                          timeout=200)
  assert result.returncode == 2
  message = ('error: batch_shape[0] = 5 must be a multiple of the 2 replicas on 2 workers of '
             'distribute: multi_worker; change batch_shape or the number of devices')
  lines = [line for line in errors(result.stderr) if not line.startswith('launch_workers:')]
  assert sorted(lines) == [f'[worker 0] {message}', f'[worker 1] {message}'], result.stderr
  assert not logdir.exists()
