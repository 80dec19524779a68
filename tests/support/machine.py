"""What the tests run on: CPUs this process may use and memory, read from the OS (and the cgroup's limits
in a container), so a run's output says what machine its durations came from."""

from __future__ import annotations

import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity, cut to the cgroup's CPU quota if it has one."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = (CGROUP / "cpu.max").read_text().split()
        if quota != "max":
            count = min(count, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit readable: the affinity is the answer
    return count


def memory_bytes() -> tuple[int | None, int | None]:
    """(total, available) in bytes: the machine's, or the cgroup's limit where it is lower; None if unknown."""
    total = available = None
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        total = int(info["MemTotal"].split()[0]) * 1024
        available = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        pass  # not Linux
    try:
        limit = (CGROUP / "memory.max").read_text().strip()
        if limit != "max" and (total is None or int(limit) < total):
            total = int(limit)
            used = int((CGROUP / "memory.current").read_text())
            available = max(0, total - used) if available is None else min(available, max(0, total - used))
    except (OSError, ValueError):
        pass
    return total, available


def describe() -> str:
    total, available = memory_bytes()

    def gib(n: int | None) -> str:
        return "unknown" if n is None else f"{n / 2**30:.1f} GiB"

    return (f"machine: {usable_cpus()} usable CPU(s) of {os.cpu_count()}, memory {gib(total)} "
            f"({gib(available)} available), load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
