"""How many CPUs this process may use: the inference thread pools are sized by it.

``os.cpu_count()`` is the machine's count. In a container with a CPU limit
(``cpus: 2`` in a compose override, a Kubernetes limit) the process gets a share of
the time of all of them, and pools sized for the machine's count oversubscribe that
share: throughput drops. The limit is read from the cgroup (v2 ``cpu.max``, else v1
``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``), and the CPUs the process may run on
from its affinity (``taskset``, ``docker run --cpuset-cpus``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

#: Where the cgroup file system is mounted in Linux containers and hosts.
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _quota(root: Path) -> float | None:
    """The CPU limit of the cgroup at ``root`` in CPUs, or None for none (or unknown)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cpus(root: str | os.PathLike = CGROUP_ROOT) -> int:
    """The CPUs this process can keep busy: its affinity, capped by a cgroup limit.

    Parameters
    ----------
    root : str or os.PathLike, optional
        The cgroup mount (a test gives a folder of such files).

    Returns
    -------
    int
        At least 1; a limit of 1.5 CPUs counts as 2.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    limit = _quota(Path(root))
    if limit is not None:
        count = min(count, math.ceil(limit))
    return max(1, count)
