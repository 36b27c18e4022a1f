"""What one update costs and where its time goes: graph size, FLOPs, op profile, CPU peak.

Used by `scripts/benchmark.py --profile DIR`; each function returns plain numbers so that
the benchmark prints them as JSON lines. Two FLOP counts of the traced train step check
each other: TensorFlow's own (tf.compat.v1.profiler with its registered per-op statistics,
which also count elementwise ops) and ours, 2 x multiply-adds of every matmul and
convolution (forward and gradient kernels) from their static shapes.
"""

import collections
import glob
import os
import pathlib
import re

import numpy as np

# Kernels whose cost is multiply-adds; everything else in the step is elementwise or
# data movement.
DENSE_OPS = ('MatMul', 'BatchMatMulV2', 'BatchMatMulV3', 'Conv2D', 'Conv2DBackpropInput',
             'Conv2DBackpropFilter')


def live_ops(concrete):
  """Names of the traced step's ops that its outputs and side effects depend on.

  A gradient tape also builds gradient ops that lead nowhere (towards tensors whose
  gradient no objective asks for); TensorFlow prunes them before it runs the graph, so
  they are left out of the counts below."""
  import tensorflow as tf
  graph_def = concrete.graph.as_graph_def()
  outputs = [t.op.name for t in concrete.outputs]
  pruned = tf.compat.v1.graph_util.extract_sub_graph(graph_def, outputs)
  return {node.name for node in pruned.node}


def graph_nodes(concrete, live=None):
  """Nodes of a traced tf.function's graph (those in `live`, if given) and of the functions
  it calls, before TensorFlow's graph optimisations."""
  graph_def = concrete.graph.as_graph_def()
  nodes = [n for n in graph_def.node if live is None or n.name in live]
  return len(nodes) + sum(len(f.node_def) for f in graph_def.library.function)


def _static(shape):
  dims = shape.as_list() if shape.rank is not None else None
  if dims is None or any(d is None for d in dims):
    return None
  return dims


def op_flops(op):
  """2 x multiply-adds of one matmul or convolution op from its static shapes (0 if the
  shapes are unknown or the op is not one of DENSE_OPS)."""
  if op.type not in DENSE_OPS:
    return 0
  if op.type.startswith(('MatMul', 'BatchMatMul')):
    a, b = (_static(t.shape) for t in op.inputs[:2])
    out = _static(op.outputs[0].shape)
    if a is None or out is None:
      return 0
    transpose_a = op.get_attr('transpose_a' if op.type == 'MatMul' else 'adj_x')
    inner = a[-2] if transpose_a else a[-1]
    return 2 * int(np.prod(out)) * inner
  if op.type == 'Conv2D':
    kernel, out = _static(op.inputs[1].shape), _static(op.outputs[0].shape)
  elif op.type == 'Conv2DBackpropInput':
    kernel, out = _static(op.inputs[1].shape), _static(op.inputs[2].shape)
  else:  # Conv2DBackpropFilter: out_backprop is the forward convolution's output.
    kernel, out = _static(op.outputs[0].shape), _static(op.inputs[2].shape)
  if kernel is None or out is None:
    return 0
  height, width, channels_in, _ = kernel
  return 2 * int(np.prod(out)) * height * width * channels_in


def _graphs(concrete):
  """The traced graph and every function graph it holds (cond branches, nested calls)."""
  yield concrete.graph
  for function in concrete.graph._functions.values():  # pylint: disable=protected-access
    graph = getattr(function, 'graph', None)
    if graph is not None:
      yield graph


def _ops(concrete, live):
  for graph in _graphs(concrete):
    for op in graph.get_operations():
      if graph is not concrete.graph or live is None or op.name in live:
        yield op


def dense_flops(concrete, live=None):
  """FLOPs of the step's matmuls and convolutions (forward and gradient kernels), by op
  type, over the ops in `live` (all if None). Returns (total, {op type: flops})."""
  groups = collections.Counter()
  for op in _ops(concrete, live):
    groups[op.type] += op_flops(op)
  groups = {k: v for k, v in groups.items() if v}
  return sum(groups.values()), groups


def tensorflow_flops(concrete, live=None):
  """TensorFlow's own FLOP count of the step's ops in `live` (all if None): the
  statistics it registers per op type (MatMul, Conv2D and its gradients, elementwise ops),
  which tf.compat.v1.profiler adds up."""
  from tensorflow.python.framework import ops as tf_ops  # pylint: disable=no-name-in-module
  total = 0
  for op in _ops(concrete, live):
    try:
      value = tf_ops.get_stats_for_node_def(op.graph, op.node_def, 'flops').value
    except (ValueError, TypeError):  # Shapes unknown to the statistic.
      value = None
    total += value or 0
  return total


def op_profile(logdir):
  """Time by op type in the newest tf.profiler trace under `logdir`.

  Sums the duration of every kernel event ('name:Type') on TensorFlow's executor threads.
  Returns ({type: seconds}, {type: count}).
  """
  from tensorflow.tsl.profiler.protobuf import xplane_pb2
  paths = sorted(glob.glob(os.path.join(logdir, 'plugins', 'profile', '*', '*.xplane.pb')))
  if not paths:
    raise FileNotFoundError(f'no profile (*.xplane.pb) under {logdir}')
  space = xplane_pb2.XSpace()
  space.ParseFromString(pathlib.Path(paths[-1]).read_bytes())
  seconds, counts = collections.Counter(), collections.Counter()
  for plane in space.planes:
    for line in plane.lines:
      if not line.name.startswith('tf_Compute'):
        continue
      for event in line.events:
        name = plane.event_metadata[event.metadata_id].name
        if ':' in name and '::' not in name:
          kind = name.rsplit(':', 1)[1]
          seconds[kind] += event.duration_ps * 1e-12
          counts[kind] += 1
  return dict(seconds), dict(counts)


def cpu_description():
  """Vendor, model, logical cores, the vector flags that matter and the clock in GHz."""
  text = ''
  try:
    text = pathlib.Path('/proc/cpuinfo').read_text()
  except OSError:
    pass
  field = lambda key: (re.findall(rf'^{key}\s*:\s*(.*)$', text, re.M) or [''])[0].strip()
  flags = set(field('flags').split())
  clock = None
  try:
    clock = int(pathlib.Path(
        '/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq').read_text()) / 1e6
  except (OSError, ValueError):
    mhz = field('cpu MHz')
    clock = float(mhz) / 1e3 if mhz else None
  return dict(vendor=field('vendor_id'), model=field('model name'),
              family=field('cpu family'), cores=os.cpu_count(), clock_ghz=clock,
              flags=sorted(flags & {'avx2', 'fma', 'avx512f', 'avx512_bf16', 'amx_bf16',
                                    'amx_tile'}))


def peak_flops(cpu, fma_units=None):
  """Theoretical fp32 and bf16 FLOP/s of this CPU, with how each was derived.

  fp32: cores x lanes (16 with AVX-512, 8 with AVX2) x FMA units x 2 FLOPs x clock. FMA
  units per core: Intel's AVX-512 server cores have two 512-bit units; AMD Zen 4 runs a
  512-bit FMA as two halves on its two 256-bit units (one 512-bit FMA per cycle); AVX2
  cores have two 256-bit units. bf16: AMX tiles do 1024 bf16 FLOPs per cycle per core
  (Intel's figure for Sapphire Rapids); AVX512_BF16's dot product does twice the fp32
  rate; without either, bf16 runs at the fp32 rate at best (converted to fp32).
  """
  flags = set(cpu['flags'])
  clock = cpu['clock_ghz'] or 0.0
  wide = 'avx512f' in flags
  lanes = 16 if wide else 8
  if fma_units is None:
    zen4 = cpu['vendor'] == 'AuthenticAMD' and cpu['family'] == '25'
    fma_units = 1 if wide and zen4 else 2
  fp32 = cpu['cores'] * lanes * fma_units * 2 * clock * 1e9
  how = (f"{cpu['cores']} cores x {lanes} fp32 lanes x {fma_units} FMA units x 2 x "
         f'{clock:.2f} GHz')
  if 'amx_bf16' in flags:
    bf16, bf16_how = cpu['cores'] * 1024 * clock * 1e9, 'AMX: cores x 1024 x clock'
  elif 'avx512_bf16' in flags:
    bf16, bf16_how = 2 * fp32, 'AVX512_BF16 dot products: 2 x the fp32 rate'
  else:
    bf16, bf16_how = fp32, 'no bf16 hardware: the fp32 rate'
  return dict(fp32=fp32, fp32_how=how, bfloat16=bf16, bfloat16_how=bf16_how)


def measured_matmul_flops(dtype='float32', size=2048, repeats=5):
  """FLOP/s of TensorFlow's best case here: a large square matmul (median of repeats)."""
  import time
  import tensorflow as tf
  a = tf.random.normal([size, size], dtype=tf.float32)
  a = tf.cast(a, dtype)
  run = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
  float(run(a))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    float(run(a))
    times.append(time.perf_counter() - start)
  return 2 * size ** 3 / float(np.median(times))
