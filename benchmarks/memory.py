"""Peak resident memory of a process tree, sampled by a background thread.

The tree is this process and all its descendants: for the Spark cases that is the Python
driver, Spark's JVM (launched by pyspark as a child) and the Python workers the JVM forks.
RSS is summed over the processes, so pages that forked workers share with their parent are
counted once per process: an upper bound on what the tree really holds.
"""

from __future__ import annotations

import os
import threading
import time
from types import TracebackType

import psutil


def tree_rss(root: psutil.Process) -> tuple[int, dict[str, int]]:
    """Bytes resident in `root` and its live descendants now, total and by kind of process
    ("this process", "jvm", "other": Python workers and helpers)."""
    total, kinds = 0, {"this process": 0, "jvm": 0, "other": 0}
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, kinds
    for proc in procs:
        try:
            rss = proc.memory_info().rss
            kind = (
                "this process"
                if proc.pid == root.pid
                else ("jvm" if proc.name().startswith("java") else "other")
            )
        except psutil.Error:  # a worker that exited between listing and reading
            continue
        total += rss
        kinds[kind] += rss
    return total, kinds


class PeakRSS:
    """Context manager: ``with PeakRSS() as mem: ...`` then ``mem.peak_mib``.

    Samples every `interval` seconds (plus once at entry and exit); spikes shorter than the
    interval can be missed.
    """

    def __init__(self, interval: float = 0.1, pid: int | None = None) -> None:
        self.interval = interval
        self.root = psutil.Process(pid or os.getpid())
        self.peak = 0
        self.peak_kinds: dict[str, int] = {}
        self.start_rss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        total, kinds = tree_rss(self.root)
        if total >= self.peak:
            self.peak, self.peak_kinds = total, kinds
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakRSS:
        self.start_rss, self.peak_kinds = tree_rss(self.root)
        self.peak = self.start_rss
        self._thread = threading.Thread(target=self._loop, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    @property
    def peak_mib(self) -> float:
        return self.peak / 2**20

    @property
    def start_mib(self) -> float:
        return self.start_rss / 2**20

    @property
    def peak_breakdown_mib(self) -> dict[str, float]:
        """RSS by kind of process at the peak sample."""
        return {k: round(v / 2**20, 1) for k, v in self.peak_kinds.items()}


def measure(func, repeats: int) -> tuple[list[float], float, float]:  # noqa: ANN001
    """Run `func()` `repeats` times under one PeakRSS; (seconds of each run, peak MiB, start MiB)."""
    times = []
    with PeakRSS() as mem:
        for _ in range(repeats):
            started = time.perf_counter()
            func()
            times.append(time.perf_counter() - started)
    return times, mem.peak_mib, mem.start_mib
