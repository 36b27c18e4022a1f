"""dreamer.scripts.quiet_tensorflow: the entry points hide TensorFlow's start-up chatter
unless the user set TF_CPP_MIN_LOG_LEVEL."""

import json
import os
import subprocess
import sys

import pytest

from dreamer.scripts import quiet_tensorflow
from tests.scripts.test_train import SMOKE

IMPORT = '''
import os, sys
from dreamer.scripts import quiet_tensorflow
print('before TensorFlow', file=sys.stderr, flush=True)
tf = quiet_tensorflow.import_tensorflow()
print(float(tf.reduce_sum(tf.ones(3))), os.environ['TF_CPP_MIN_LOG_LEVEL'])
'''


def python(code, *args, level=None):
  """Runs code in a fresh process whose environment has no TF_CPP_MIN_LOG_LEVEL (the test
  process sets one), or the given one."""
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  if level is not None:
    env['TF_CPP_MIN_LOG_LEVEL'] = level
  return subprocess.run([sys.executable, '-c', code, *args], capture_output=True, text=True,
                        env=env, timeout=240)


def test_chatter_is_told_from_other_lines():
  hidden = [
      'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR',
      'I0000 00:00:1796670672.067798    3374 port.cc:153] oneDNN custom operations are on.',
      'I0000 00:00:1796670672.068132    3374 cudart_stub.cc:31] Could not find cuda drivers',
      'I0000 00:00:1796670672.122955    3374 cpu_feature_guard.cc:227] This TensorFlow binary',
      'To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild',
      'E0000 00:00:1796670675.405288    3374 cuda_platform.cc:52] failed call to cuInit: ...',
      'E0000 00:00:1721867282.123456    3374 cuda_dnn.cc:8310] Unable to register cuDNN factory',
  ]
  kept = [
      'E0000 00:00:1796670675.405288    3374 op_kernel.cc:1830] OP_REQUIRES failed at ...',
      '/x/y.py:3: DeprecationWarning: something',
      'error: something the user must see',
  ]
  assert all(quiet_tensorflow.chatter(line) for line in hidden)
  assert not any(quiet_tensorflow.chatter(line) for line in kept)


@pytest.mark.timeout(300)
def test_start_up_lines_are_hidden_unless_the_user_sets_the_level():
  quiet = python(IMPORT)
  assert quiet.returncode == 0, quiet.stderr
  assert quiet.stdout.split() == ['3.0', quiet_tensorflow.LEVEL]
  assert quiet.stderr.splitlines() == ['before TensorFlow'], quiet.stderr
  loud = python(IMPORT, level='0')
  assert loud.returncode == 0, loud.stderr
  assert loud.stdout.split() == ['3.0', '0']  # The user's value wins.
  assert any(quiet_tensorflow.chatter(line) for line in loud.stderr.splitlines()), loud.stderr


@pytest.mark.timeout(300)
def test_a_training_run_starts_without_them(tmp_path):
  code = 'import sys\nfrom dreamer.scripts import train\nsys.exit(train.cli(sys.argv[1:]))\n'
  result = python(code, '--logdir', str(tmp_path), '--params',
                  json.dumps(dict(SMOKE, max_steps=10)))
  assert result.returncode == 0, result.stderr
  assert (tmp_path / '00001' / 'DONE').exists()
  chatter = [line for line in result.stderr.splitlines() if quiet_tensorflow.chatter(line)]
  assert chatter == [], result.stderr
  assert 'Start a new run' in result.stdout
