"""The warm worker (facegen.worker): a command handed to it prints, exits and writes as it would alone,
and a client runs the command itself wherever no worker can take it. The byte-for-byte check on a whole
study is test_workflow's: Snakemake runs the quick profile through a worker, DVC without one."""

import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, tool_env
from facegen import worker

pytestmark = pytest.mark.skipif(not worker.supported(), reason="the worker runs on Linux only")

START_GUARD_S = 120  # a hang guard: the worker's imports take seconds


@pytest.fixture
def live(tmp_path):
    """A worker with torch imported (not every module: the fork after torch is what matters here)."""
    path = str(tmp_path / "socket")
    log = (tmp_path / "worker.log").open("w")
    code = ("import sys, torch; from facegen.cli import main; from facegen.worker import serve; "
            f"serve({path!r}, main, load=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=tool_env(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_GUARD_S
    while not os.path.exists(path):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
        time.sleep(0.1)
    yield path, tmp_path / "worker.log"
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    assert not os.path.exists(path), "the worker leaves no socket behind"


def facegen(*args, worker_path=None):
    env = tool_env()
    env.pop(worker.ENV, None)
    if worker_path:
        env[worker.ENV] = worker_path
    return subprocess.run(["facegen", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=START_GUARD_S)


def test_a_command_through_the_worker_prints_and_exits_as_it_would_alone(live):
    path, log = live
    for args, code, says in ((["validate-config"], 0, "config OK"), (["no-such-command"], 2, "invalid choice: 'no-such-command'"),
                             (["validate-config", "--config", '{"seed": -1}'], 2, "invalid configuration")):
        alone, served = facegen(*args), facegen(*args, worker_path=path)
        assert served.returncode == alone.returncode == code and served.stdout == alone.stdout, args
        assert says in served.stdout + served.stderr and alone.stderr.splitlines()[-1:] == served.stderr.splitlines()[-1:]
    ran = log.read_text()
    assert ran.count("facegen validate-config in") == 2 and "facegen no-such-command in" in ran


def test_the_worker_runs_the_job_in_the_clients_directory_and_environment(live, tmp_path):
    path, _ = live
    work = tmp_path / "elsewhere"
    (work / "config").mkdir(parents=True)
    (work / "config" / "config.yaml").write_text((ROOT / "config" / "config.yaml").read_text().replace("seed: 1234", "seed: 77"))
    env = tool_env()
    env[worker.ENV] = path
    code = "from facegen.cli import main; import sys; sys.argv = ['facegen', 'validate-config']; sys.exit(main())"
    alone = subprocess.run([sys.executable, "-c", code], cwd=work, env={**env, worker.ENV: ""}, capture_output=True, text=True)
    served = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True)
    assert served.returncode == alone.returncode == 0 and served.stdout == alone.stdout
    assert served.stdout != facegen("validate-config").stdout  # another config, so another hash


def test_without_a_usable_worker_the_command_runs_itself(tmp_path, monkeypatch, live):
    path, log = live
    monkeypatch.delenv(worker.ENV, raising=False)
    assert worker.delegate(["validate-config"]) is None
    monkeypatch.setenv(worker.ENV, str(tmp_path / "nobody-listens"))
    assert worker.delegate(["validate-config"]) is None
    monkeypatch.setenv(worker.ENV, path)
    assert worker.delegate(["worker", "--socket", "x"]) is None  # a worker never hands itself on
    # A worker built from another source tree refuses, and the client runs the command itself.
    monkeypatch.setattr(worker, "_identity", lambda: {"python": sys.executable, "package": "/another/checkout/facegen"})
    assert worker.delegate(["validate-config"]) is None
    assert "validate-config" not in log.read_text()


def test_the_worker_stops_when_its_orchestrator_is_gone(tmp_path):
    path = str(tmp_path / "socket")
    not_my_parent = os.getpid() + 10_000_000
    code = f"from facegen.cli import main; from facegen.worker import serve; serve({path!r}, main, parent={not_my_parent}, load=False)"
    proc = subprocess.run([sys.executable, "-c", code], env=tool_env(), timeout=START_GUARD_S)
    assert proc.returncode == 0 and not os.path.exists(path)


def test_start_points_jobs_at_a_new_worker_and_stop_ends_it(tmp_path, monkeypatch):
    monkeypatch.delenv(worker.ENV, raising=False)
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    monkeypatch.chdir(tmp_path)  # the worker reads no config, so it starts anywhere
    handle = worker.start(tmp_path / "logs" / "worker.log")
    assert handle is not None and os.environ[worker.ENV].startswith(handle["folder"])
    deadline = time.monotonic() + START_GUARD_S
    while not os.path.exists(os.environ[worker.ENV]):
        assert handle["process"].poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    worker.stop(handle)
    assert worker.ENV not in os.environ and not os.path.exists(handle["folder"])
    assert handle["process"].returncode is not None
    monkeypatch.setenv(worker.ENV, "off")
    assert worker.start(tmp_path / "worker.log") is None
