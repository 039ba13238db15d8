"""The CPUs the inference pools are sized by: affinity, capped by a cgroup's limit."""

from __future__ import annotations

import os

import pytest

from model_server._cpus import usable_cpus

AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, AFFINITY),  # no cgroup files: the affinity
        ({"cpu.max": "max 100000\n"}, AFFINITY),  # v2, no limit
        ({"cpu.max": "100000 100000\n"}, 1),  # v2, one CPU
        ({"cpu.max": "150000 100000\n"}, min(AFFINITY, 2)),  # 1.5 CPUs keep 2 threads busy
        ({"cpu.max": "10000 100000\n"}, 1),  # a tenth of a CPU: still one thread
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, AFFINITY),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
        ({"cpu.max": "garbage"}, AFFINITY),  # unreadable: as if none
    ],
)
def test_a_cgroup_limit_caps_the_affinity(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert usable_cpus(tmp_path) == expected


def test_this_machine_counts_at_least_one_cpu():
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)
