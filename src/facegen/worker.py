"""A warm process for many short jobs: the worker imports every facegen module once, then forks one child
per `facegen` command it is handed.

Why: the quick profile runs about 40 jobs of a few seconds each, and each fresh process spent half its
time importing torch, torchvision (whose ops import torch._dynamo), scikit-learn and the rest: 2.4 s
before a training job's first step, 5 s before an evaluation's (on the 2-core reference machine).

How: when $FACEGEN_WORKER names a live worker's socket, the `facegen` command sends it its arguments,
working directory, environment and standard streams (file descriptors passed over the Unix socket),
forwards the signals it gets to the child, and exits with the child's status. The child runs the same
`facegen.cli.main`, so a job writes the same files either way: test_workflow compares the quick
profile built by Snakemake through a worker with DVC's build without one, byte for byte.
Without a worker, or one built from another interpreter or source tree, the command runs itself.

Fork is safe because the worker never runs a torch operation, so there is no thread pool to copy; each
child sets its own thread count. Linux only: elsewhere fork after these imports is not safe.

What Snakemake's `benchmark:` cannot see: it measures the client process, so a job run by the worker
records its wall time but not its CPU time or memory. The workflow therefore starts a worker only where
the config asks (`job_worker: true`, the quick profile), and the report's Compute section says so."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
from typing import Callable

ENV = "FACEGEN_WORKER"
STREAMS = (0, 1, 2)
_HEADER = struct.Struct("!I")
_in_worker = False


def in_worker() -> bool:
    """Whether this process is a job the worker forked: its start-up cost nothing."""
    return _in_worker


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


def _identity() -> dict:
    """What a worker must share with a client to run its command as the client would."""
    import facegen

    return {"python": sys.executable, "package": os.path.dirname(os.path.abspath(facegen.__file__))}


def _send(sock: socket.socket, message: dict) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _read_exact(sock: socket.socket, n: int, head: bytes = b"") -> bytes:
    data = head
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the client closed the connection mid-request")
        data += chunk
    return data


# The client: the `facegen` command itself.

def delegate(argv: list[str]) -> int | None:
    """Run `facegen argv` in the worker named by $FACEGEN_WORKER and return its exit status; None when
    there is no usable worker, and the caller runs the command itself."""
    path = os.environ.get(ENV)
    if not path or not supported() or (argv and argv[0] == "worker"):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), **_identity()}).encode()
    with sock:
        try:  # until the child answers, nothing has run: the command can still run here instead
            socket.send_fds(sock, [_HEADER.pack(len(request))], list(STREAMS))
            sock.sendall(request)
            replies = sock.makefile("rb")
            first = replies.readline()
        except OSError:
            return None
        if not first:
            return None
        reply = json.loads(first)
        if "refused" in reply:
            return None
        pid = reply["pid"]
        previous = {sig: signal.signal(sig, lambda signum, frame: os.kill(pid, signum))
                    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            last = replies.readline()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if not last:
        print(f"facegen: the worker's job process {pid} ended without an exit status (killed?)", file=sys.stderr)
        return 1
    return int(json.loads(last)["exit"])


# The orchestrator's side: Snakemake's onstart and onsuccess/onerror handlers (workflow/rules/common.smk).

def start(log_file: str | os.PathLike) -> dict | None:
    """Start a worker for this process's jobs and point $FACEGEN_WORKER at it; None where it cannot run
    or the user set FACEGEN_WORKER=off. Jobs started before its imports finish run themselves."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    command = shutil.which("facegen")
    if not supported() or command is None or os.environ.get(ENV) == "off":
        return None
    folder = tempfile.mkdtemp(prefix="facegen-worker-")  # short: a socket's path has at most 107 bytes
    path = os.path.join(folder, "socket")
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as log:
        process = subprocess.Popen([command, "worker", "--socket", path, "--parent", str(os.getpid())],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    os.environ[ENV] = path
    return {"process": process, "folder": folder}


def stop(handle: dict | None) -> None:
    import shutil
    import subprocess

    if not handle:
        return
    os.environ.pop(ENV, None)
    handle["process"].terminate()
    try:
        handle["process"].wait(timeout=10)
    except subprocess.TimeoutExpired:
        handle["process"].kill()
    shutil.rmtree(handle["folder"], ignore_errors=True)


# The worker.

def modules() -> list[str]:
    """Every facegen module (and through them torch, torchvision, scikit-learn, matplotlib...)."""
    import pkgutil

    import facegen

    return [m.name for m in pkgutil.walk_packages(facegen.__path__, "facegen.") if not m.name.endswith("__main__")]


def serve(path: str, main: Callable[[list[str]], int], parent: int | None = None, load: bool = True) -> None:
    """Run `main(argv)` (facegen.cli.main) in a forked child for each client on the Unix socket `path`,
    until SIGTERM or until the process `parent` is gone.

    The socket appears once torch is imported (most of any job's start-up); the other modules are
    imported one at a time while no client waits, so the first jobs need not wait for all of them. A
    module that fails to import is left for the job that needs it to report."""
    import importlib

    if load:
        import torch  # noqa: F401
    pending, failed = (modules() if load else []), []
    tmp = f"{path}.{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(tmp)
    server.listen(64)
    os.replace(tmp, path)
    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished children
    try:
        while not stopping and (parent is None or os.getppid() == parent):
            server.settimeout(0.01 if pending else 1.0)
            try:
                conn, _ = server.accept()
            except (TimeoutError, InterruptedError):
                if pending:
                    name = pending.pop(0)
                    try:
                        importlib.import_module(name)
                    except Exception:  # noqa: BLE001 - the job that imports it reports the error itself
                        failed.append(name)
                    if not pending and failed:
                        print(f"facegen worker: could not import {', '.join(failed)}", file=sys.stderr, flush=True)
                continue
            if os.fork() == 0:
                server.close()
                _run_job(conn, main)  # never returns
            conn.close()
    finally:
        server.close()
        if os.path.exists(path):
            os.unlink(path)


def _run_job(conn: socket.socket, main: Callable[[list[str]], int]) -> None:
    global _in_worker
    _in_worker = True
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        conn.settimeout(None)
        head, fds, _, _ = socket.recv_fds(conn, _HEADER.size, len(STREAMS))
        (size,) = _HEADER.unpack(_read_exact(conn, _HEADER.size, head))
        request = json.loads(_read_exact(conn, size))
        if {k: request.get(k) for k in ("python", "package")} != _identity() or len(fds) != len(STREAMS):
            _send(conn, {"refused": "another interpreter or source tree"})
            os._exit(0)
        # The worker's own log, before the child takes the client's streams.
        print(f"job {os.getpid()}: facegen {' '.join(request['argv'][:1])} in {request['cwd']}", flush=True)
        for target, fd in zip(STREAMS, fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # A fresh process's OpenMP reads this when torch loads, and otherwise takes every core; here
        # torch loaded in the worker, under the worker's environment.
        import torch

        threads = os.environ.get("OMP_NUM_THREADS", "")
        torch.set_num_threads(int(threads) if threads.isdigit() else len(os.sched_getaffinity(0)))
        sys.argv = ["facegen", *request["argv"]]
        _send(conn, {"pid": os.getpid()})
        code = _main(main, request["argv"])
        _send(conn, {"exit": code})
    finally:
        os._exit(code)


def _main(main: Callable[[list[str]], int], argv: list[str]) -> int:
    import logging
    import traceback

    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's --help and usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - a fresh process would print the traceback and exit 1
        traceback.print_exc()
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    return code
