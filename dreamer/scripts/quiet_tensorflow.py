"""Imports TensorFlow without its start-up chatter on the console, unless the user asks for it.

Every process that loads TensorFlow 2.21 prints its oneDNN, CUDA and CPU-feature lines on
stderr, most of them through absl before absl's logging is set up, where
TF_CPP_MIN_LOG_LEVEL does not reach. So the entry points import TensorFlow here: stderr is
caught while TensorFlow loads and looks for devices, and everything but those lines is
written back. A TF_CPP_MIN_LOG_LEVEL that the user set turns this off and shows them all.
"""

import os
import re
import sys
import tempfile

# What this sets TF_CPP_MIN_LOG_LEVEL to: TensorFlow's later C++ INFO and WARNING lines are
# hidden too, its errors are not.
LEVEL = '2'

# absl's preamble, INFO and WARNING lines, the CUDA errors of a machine without a usable GPU
# (cuInit, the cuDNN/cuFFT/cuBLAS factories) and the CPU-feature line's second line.
_CHATTER = re.compile(
    r'(WARNING: All log messages before absl::InitializeLog\(\) is called'
    r'|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\]'
    r'|E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ cuda\w*\.cc:\d+\]'
    r'|To enable the following instructions: )')


def chatter(line):
  """Whether a line of stderr is TensorFlow's start-up chatter."""
  return bool(_CHATTER.match(line))


def import_tensorflow():
  """Returns the tensorflow module, imported without its start-up lines unless the user set
  TF_CPP_MIN_LOG_LEVEL (or it is imported already, when they have been printed)."""
  if 'TF_CPP_MIN_LOG_LEVEL' in os.environ or 'tensorflow' in sys.modules:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf
  os.environ['TF_CPP_MIN_LOG_LEVEL'] = LEVEL
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as caught:
    os.dup2(caught.fileno(), 2)
    try:
      import tensorflow as tf  # pylint: disable=import-outside-toplevel
      tf.config.list_physical_devices()  # Where a machine without a GPU logs its CUDA errors.
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      caught.seek(0)
      lines = caught.read().decode('utf-8', 'replace').splitlines(keepends=True)
      kept = ''.join(line for line in lines if not chatter(line))
      if kept:  # Python's own warnings, and anything else TensorFlow says while it loads.
        sys.stderr.write(kept)
        sys.stderr.flush()
  return tf
