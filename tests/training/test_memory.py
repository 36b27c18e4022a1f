"""The resident memory that progress lines and TensorBoard report."""

import pathlib

import numpy as np
import pytest

from dreamer.training import memory


def test_resident_memory_is_current_not_the_peak():
  if not pathlib.Path('/proc/self/statm').exists():
    pytest.skip('only the peak is known without /proc')
  before = memory.resident_bytes()
  assert before > 10e6  # Python and numpy alone hold more.
  block = np.ones(300 * 2 ** 20 // 8)  # 300 MiB, every page touched.
  held = memory.resident_bytes()
  assert held - before > 250 * 2 ** 20
  del block  # Large blocks are given back to the system at once.
  assert held - memory.resident_bytes() > 250 * 2 ** 20
