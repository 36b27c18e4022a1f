"""Starts N workers of one training command on this machine, as a loopback cluster.

    python scripts/launch_workers.py --workers 2 -- python -m dreamer.scripts.train \
      --logdir ./logdir/workers --params '{defaults: [dreamer, debug], tasks: [dummy],
      distribute: multi_worker, batch_shape: [4, 10]}'

Every worker runs the same command with a TF_CONFIG that lists all of them on free
127.0.0.1 ports and names its own index; that is how distribute: multi_worker finds its
cluster (on several machines, set TF_CONFIG yourself or use SLURM; see the README). Each
line a worker prints comes out prefixed with `[worker k] `, on the stream it was written
to. The launcher exits with the status of the first worker that failed (a signal N counts
as 128 + N), or 0. Ctrl-C reaches every worker; a worker that dies makes the others stop
on their own within seconds.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def free_ports(count, host='127.0.0.1'):
  """`count` distinct ports that nothing listens on right now."""
  sockets = []
  try:
    for _ in range(count):
      sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      sock.bind((host, 0))
      sockets.append(sock)
    return [sock.getsockname()[1] for sock in sockets]
  finally:
    for sock in sockets:
      sock.close()


def tf_config(addresses, index):
  """The TF_CONFIG of worker `index` of a cluster of `addresses` (worker 0 is the chief)."""
  return json.dumps({'cluster': {'worker': list(addresses)},
                     'task': {'type': 'worker', 'index': index}})


def _copy(stream, prefix, out, lock):
  for line in iter(stream.readline, ''):
    with lock:
      out.write(prefix + line)
      out.flush()
  stream.close()


def launch(command, count, host='127.0.0.1', env=None):
  """Runs `command` as `count` workers; returns their exit statuses in the order they ended."""
  addresses = [f'{host}:{port}' for port in free_ports(count, host)]
  lock = threading.Lock()
  processes, threads = [], []
  for index in range(count):
    worker_env = dict(os.environ if env is None else env, TF_CONFIG=tf_config(addresses, index),
                      PYTHONUNBUFFERED='1')
    # Ctrl-C is forwarded as SIGINT, which the workers must not inherit as ignored (as in
    # a job a shell without job control sent to the background).
    process = subprocess.Popen(command, env=worker_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, errors='replace',
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    processes.append(process)
    for stream, out in ((process.stdout, sys.stdout), (process.stderr, sys.stderr)):
      thread = threading.Thread(target=_copy, args=(stream, f'[worker {index}] ', out, lock),
                                daemon=True)
      thread.start()
      threads.append(thread)
  ended = []  # (index, status) in the order the workers ended.

  def poll():
    for index, process in enumerate(processes):
      if index not in dict(ended) and process.poll() is not None:
        ended.append((index, process.returncode))

  try:
    while len(ended) < count:
      poll()
      time.sleep(0.1)
  except KeyboardInterrupt:
    for process in processes:
      if process.poll() is None:
        process.send_signal(signal.SIGINT)
    for process in processes:
      process.wait()
    poll()
  for thread in threads:
    thread.join()
  return ended


def exit_status(ended):
  """The first failure's status (128 + N for signal N), or 0."""
  for _, code in ended:
    if code:
      return 128 - code if code < 0 else code
  return 0


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workers', type=int, default=2, help='how many workers to start')
  parser.add_argument('--host', default='127.0.0.1', help='the address the workers listen on')
  parser.add_argument('command', nargs=argparse.REMAINDER,
                      help='the training command, after --')
  args = parser.parse_args(argv)
  command = args.command[1:] if args.command[:1] == ['--'] else args.command
  if not command:
    parser.exit(2, 'error: give the training command after -- (see --help)\n')
  if args.workers < 1:
    parser.exit(2, 'error: --workers must be at least 1\n')
  ended = launch(command, args.workers, args.host)
  for index, code in ended:
    if code:
      print(f'launch_workers: worker {index} exited with {code}', file=sys.stderr)
  return exit_status(ended)


if __name__ == '__main__':
  sys.exit(main())
