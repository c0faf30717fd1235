#!/usr/bin/env python
"""Start/stop a real Spark standalone cluster on loopback: one master and N workers.

    .venv/bin/python scripts/standalone_cluster.py start            # prints the master URL
    make submit JOB=ingest CONF=conf/cluster.yaml MASTER=spark://127.0.0.1:<port>
    .venv/bin/python scripts/standalone_cluster.py status
    .venv/bin/python scripts/standalone_cluster.py stop

Every daemon runs in its own process group (executors and Python workers it forks included), so
`stop` leaves nothing behind. Ports are picked free (master RPC and both web UIs), worker scratch
and logs go under the state directory (default `.cluster/`), never into SPARK_HOME. The test suite
uses `StandaloneCluster` directly as a context manager.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = REPO / ".cluster"


def spark_home() -> Path:
    """SPARK_HOME if set, else the pyspark package directory (it ships bin/spark-class and jars/)."""
    if os.environ.get("SPARK_HOME"):
        return Path(os.environ["SPARK_HOME"])
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def kill_group(pid: int, grace_seconds: float = 10.0) -> None:
    """SIGTERM the process group led by ``pid``, SIGKILL whatever is left after the grace period."""
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap our own child so it does not linger as a zombie
            time.sleep(0.2)


@dataclass
class StandaloneCluster:
    """A master and ``workers`` workers on 127.0.0.1, each worker with ``cores`` cores and ``memory``."""

    state_dir: Path = DEFAULT_STATE_DIR
    workers: int = 2
    cores: int = 1
    memory: str = "2g"
    python: str = sys.executable
    host: str = "127.0.0.1"
    daemon_memory: str = "512m"
    master_port: int = 0
    master_ui_port: int = 0
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.master_port}"

    @property
    def master_ui(self) -> str:
        return f"http://{self.host}:{self.master_ui_port}"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "cluster.json"

    def env(self) -> dict[str, str]:
        home = spark_home()
        env = dict(os.environ)
        env.update({
            "SPARK_HOME": str(home),
            "SPARK_LOCAL_IP": self.host,
            "SPARK_DAEMON_MEMORY": self.daemon_memory,
            "SPARK_LOG_DIR": str(self.state_dir / "logs"),
            "SPARK_WORKER_DIR": str(self.state_dir / "work"),
            # Executors (and Horovod tasks) must run the interpreter that has seasonrec, TF and Horovod.
            "PYSPARK_PYTHON": self.python,
            "PYSPARK_DRIVER_PYTHON": self.python,
        })
        return env

    def _spawn(self, name: str, args: list[str]) -> int:
        spark_class = spark_home() / "bin" / "spark-class"
        log_path = self.state_dir / "logs" / f"{name}.log"
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen([str(spark_class), *args], stdout=log_file, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=self.env(), cwd=self.state_dir,
                                       start_new_session=True)
        self.pids[name] = process.pid
        self._save()
        return process.pid

    def _save(self) -> None:
        self.state_file.write_text(json.dumps({
            "master_url": self.master_url, "master_ui": self.master_ui, "pids": self.pids,
        }, indent=2))

    def status(self) -> dict:
        """The master's JSON status (workers, cores, running apps)."""
        with urllib.request.urlopen(f"{self.master_ui}/json/", timeout=5) as response:
            return json.loads(response.read())

    def alive_workers(self) -> int:
        try:
            return sum(1 for w in self.status().get("workers", []) if w.get("state") == "ALIVE")
        except OSError:
            return 0

    def start(self, timeout: float = 120.0) -> StandaloneCluster:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        (self.state_dir / "work").mkdir(exist_ok=True)
        self.master_port = self.master_port or free_port()
        self.master_ui_port = self.master_ui_port or free_port()
        try:
            self._spawn("master", ["org.apache.spark.deploy.master.Master", "--host", self.host,
                                   "--port", str(self.master_port), "--webui-port", str(self.master_ui_port)])
            self._wait(lambda: port_answers(self.host, self.master_port), timeout, "the master to listen")
            for index in range(self.workers):
                work_dir = self.state_dir / "work" / f"worker-{index}"
                work_dir.mkdir(parents=True, exist_ok=True)
                self._spawn(f"worker-{index}", [
                    "org.apache.spark.deploy.worker.Worker", "--host", self.host, "--cores", str(self.cores),
                    "--memory", self.memory, "--webui-port", str(free_port()), "--work-dir", str(work_dir),
                    self.master_url,
                ])
            self._wait(lambda: self.alive_workers() >= self.workers, timeout, f"{self.workers} workers to register")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [name for name, pid in self.pids.items() if not _alive(pid)]
            if dead:
                raise RuntimeError(f"standalone cluster: {', '.join(dead)} exited while waiting for {what}; "
                                   f"see {self.state_dir / 'logs'}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"standalone cluster: timed out after {timeout:.0f}s waiting for {what}; "
                                   f"see {self.state_dir / 'logs'}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Kill workers first (with their executors), then the master. Safe to call twice."""
        for name in sorted(self.pids, key=lambda n: n == "master"):
            kill_group(self.pids[name])
        self.pids.clear()
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()

    @classmethod
    def from_state(cls, state_dir: Path) -> StandaloneCluster:
        data = json.loads((state_dir / "cluster.json").read_text())
        host, port = data["master_url"].removeprefix("spark://").rsplit(":", 1)
        ui_port = int(data["master_ui"].rsplit(":", 1)[1])
        return cls(state_dir=state_dir, host=host, master_port=int(port), master_ui_port=ui_port,
                   pids={k: int(v) for k, v in data["pids"].items()})

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:  # not our child (e.g. `status` from another shell): probe it
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1, help="cores per worker")
    parser.add_argument("--memory", default="2g", help="memory per worker")
    parser.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"),
                        help="interpreter for executors (PYSPARK_PYTHON)")
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    running = (state_dir / "cluster.json").exists()
    if args.action == "start":
        if running:
            print(f"standalone cluster: already running ({StandaloneCluster.from_state(state_dir).master_url}); "
                  "stop it first", file=sys.stderr)
            return 1
        try:
            cluster = StandaloneCluster(state_dir=state_dir, workers=args.workers, cores=args.cores,
                                        memory=args.memory, python=args.python).start()
        except (RuntimeError, TimeoutError) as exc:
            print(exc, file=sys.stderr)
            return 1
        print(cluster.master_url)
        print(f"web UI {cluster.master_ui}; logs {state_dir / 'logs'}; stop with: {sys.argv[0]} stop", file=sys.stderr)
        return 0
    if not running:
        print(f"standalone cluster: nothing running under {state_dir}", file=sys.stderr)
        return 0 if args.action == "stop" else 1
    cluster = StandaloneCluster.from_state(state_dir)
    if args.action == "stop":
        cluster.stop()
        print("standalone cluster: stopped", file=sys.stderr)
        return 0
    try:
        status = cluster.status()
    except OSError as exc:
        print(f"standalone cluster: master UI {cluster.master_ui} does not answer ({exc})", file=sys.stderr)
        return 1
    print(json.dumps({"master_url": cluster.master_url, "status": status.get("status"),
                      "workers": [(w["host"], w["state"], w["cores"], w["coresused"]) for w in status["workers"]],
                      "active_apps": [a["name"] for a in status.get("activeapps", [])]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
