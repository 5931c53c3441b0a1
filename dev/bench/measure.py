"""Latency recording, percentiles, and CPU and memory of the stack's processes."""

from __future__ import annotations

import resource
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import psutil


@dataclass
class Latencies:
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Calls the API refused at once (503, Retry-After, nothing started) and the client sent
    # again after the wait it was told, as a polite client does (issue 32).
    shed: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, name: str, seconds: float) -> None:
        self.samples[name].append(seconds)

    def fail(self, name: str) -> None:
        self.errors[name] += 1

    def summary(self) -> dict[str, dict[str, float]]:
        return {name: percentiles(values) for name, values in self.samples.items()}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"count": len(ordered), "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99)}


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_seconds(pid: int) -> float:
    """The process tree's CPU, counting children that already exited (PostgreSQL's
    backends come and go): those are in the root's children_user/children_system."""
    total = 0.0
    for i, proc in enumerate(_tree(pid)):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
        if i == 0:
            total += times.children_user + times.children_system
    return total


def _rss(pid: int) -> int:
    total = 0
    for proc in _tree(pid):
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def speed_check_ms() -> float:
    """How long a fixed pure-Python loop takes on one core right now, in ms (lower is
    faster). Taken before the lifecycle and floor phases: this kind of machine changes speed
    by a third over a day, and a ratio of two phases is only fair if both ran alike."""
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        sum(i * i for i in range(200_000))
        best = min(best, time.perf_counter() - began)
    return best * 1000


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children now, in MiB."""
    return _rss(pid) / 2**20


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ProcessWatch:
    """CPU seconds used and peak resident memory of each component while it is open."""

    def __init__(self, processes: dict[str, int], interval: float = 0.25) -> None:
        self._pids = dict(processes)
        self._interval = interval
        self._start: dict[str, float] = {}
        self._peak: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.cpu: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}
        self.final_rss_mb: dict[str, float] = {}
        self.wall = 0.0

    def __enter__(self) -> ProcessWatch:
        self._t0 = time.perf_counter()
        self._start = {name: _cpu_seconds(pid) for name, pid in self._pids.items()}
        self._start["benchmark client"] = _own_cpu()
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            for name, pid in self._pids.items():
                self._peak[name] = max(self._peak[name], _rss(pid))

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.wall = time.perf_counter() - self._t0
        for name, pid in self._pids.items():
            self.cpu[name] = _cpu_seconds(pid) - self._start[name]
            self.final_rss_mb[name] = _rss(pid) / 2**20
            self.peak_rss_mb[name] = max(self._peak[name], _rss(pid)) / 2**20
        self.cpu["benchmark client"] = _own_cpu() - self._start["benchmark client"]

    def as_dict(self) -> dict[str, object]:
        return {
            "wall_s": self.wall,
            "cpu_s": self.cpu,
            "peak_rss_mb": self.peak_rss_mb,
            "final_rss_mb": self.final_rss_mb,
        }
