"""Memory the training process holds now, for progress lines and TensorBoard."""

import os
import resource
import sys


def resident_bytes():
  """The resident set size (RSS) of this process, in bytes.

  On Linux the current value, from /proc/self/statm, so that a leak or a cache being
  freed shows as it happens. Where /proc is missing, the peak so far (ru_maxrss), the best
  the standard library offers there. Env worker processes are not included.
  """
  try:
    with open('/proc/self/statm') as f:
      return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
  except (OSError, ValueError, IndexError):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024  # macOS: bytes; else KiB.
