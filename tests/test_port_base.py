"""``SONOTRACE_TEST_PORT_BASE`` moves the ports dash[testing] serves test apps on.

Two pytest runs at once on one machine (a stress run beside ``make test``) would
otherwise both serve on 58050, 58051, ... and open each other's apps. Each check runs
a separate pytest process with this suite's ``conftest.py`` as a plugin and a probe test
that serves a real Dash app through dash[testing]'s ``dash_thread_server``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

PROBE = '''
from dash import Dash, html


def test_probe(dash_thread_server):
    app = Dash(__name__)
    app.layout = html.Div("probe")
    dash_thread_server(app)
    print("SERVED-ON", dash_thread_server.url)
'''

#: Without a base nothing is served: 58050 may be in use by a run beside this one.
START = '''
from dash.testing.application_runners import BaseDashRunner


def test_probe():
    print("SERVED-ON http://localhost:%d" % BaseDashRunner._next_port)
'''


def _served_on(tmp_path: Path, base: str | None, probe: str = PROBE) -> int:
    """The port the probe's app was (or would be) served on, with ``base`` as the setting
    (None: unset)."""
    (tmp_path / "test_probe.py").write_text(probe)
    env = {k: v for k, v in os.environ.items() if k != "SONOTRACE_TEST_PORT_BASE"}
    if base is not None:
        env["SONOTRACE_TEST_PORT_BASE"] = base
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT)])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-s", "-q",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_probe.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = re.search(r"SERVED-ON http://[^:]+:(\d+)", result.stdout)
    assert found, result.stdout[-3000:]
    return int(found.group(1))


def test_a_run_given_a_base_serves_its_first_app_there(tmp_path):
    assert _served_on(tmp_path, "59321") == 59321


@pytest.mark.parametrize("base", [None, ""])
def test_without_a_base_dash_keeps_its_own_start(tmp_path, base):
    # 58050 is dash[testing]'s own first port (dash 4.4.1, pinned in pyproject.toml).
    assert _served_on(tmp_path, base, START) == 58050
