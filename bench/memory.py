"""Peak resident memory of a benchmark's processes: this Python driver, the local-mode JVM and its workers.

    with PeakMemory() as peak:
        run_forecast(...)
    peak.result()  # {"driver_python_peak_mb": ..., "jvm_peak_mb": ..., "python_workers_peak_mb": ..., ...}

``PeakMemory`` samples the process tree every ``interval`` seconds while the block runs (a spike shorter
than that can be missed; ``driver_python_lifetime_peak_mb`` is the kernel's exact high-water mark of
this process, over its whole life). ``peak_rss_mb`` / ``jvm_pid`` read /proc for a process's lifetime
high-water mark (Linux only).
"""

from __future__ import annotations

import resource
import threading
from pathlib import Path
from types import TracebackType

import psutil


def peak_rss_mb(pid: int) -> float | None:
    """The lifetime peak resident memory (VmHWM, MB) of process ``pid``; None if it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _is_jvm(process: psutil.Process) -> bool:
    return "java" in process.name()


def jvm_pid() -> int | None:
    """The pid of the local-mode Spark JVM (a child of this Python process), or None."""
    for child in psutil.Process().children():
        try:
            if _is_jvm(child):
                return child.pid
        except psutil.NoSuchProcess:
            continue
    return None


class PeakMemory:
    """Samples the RSS of this process, the local JVM and every other descendant (PySpark workers,
    Horovod processes) while the ``with`` block runs; ``result()`` gives the peaks in MB."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peaks = {"driver_python_peak_mb": 0.0, "jvm_peak_mb": 0.0, "python_workers_peak_mb": 0.0,
                      "all_processes_peak_mb": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _sample_until_stopped(self) -> None:
        me = psutil.Process()
        while True:
            self._sample(me)
            if self._stop.wait(self.interval):
                break

    def _sample(self, me: psutil.Process) -> None:
        driver = me.memory_info().rss / 2**20
        jvm = workers = 0.0
        for child in me.children(recursive=True):
            try:
                rss = child.memory_info().rss / 2**20
                if _is_jvm(child):
                    jvm += rss
                else:
                    workers += rss
            except psutil.NoSuchProcess:  # a worker that ended between listing and reading
                continue
        for key, value in (("driver_python_peak_mb", driver), ("jvm_peak_mb", jvm),
                           ("python_workers_peak_mb", workers), ("all_processes_peak_mb", driver + jvm + workers)):
            self.peaks[key] = max(self.peaks[key], value)

    def result(self) -> dict[str, float]:
        """The sampled peaks (MB, rounded), plus this process's lifetime high-water mark."""
        out = {key: round(value, 1) for key, value in self.peaks.items()}
        out["driver_python_lifetime_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        out["sample_interval_s"] = self.interval
        return out

