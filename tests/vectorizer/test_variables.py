"""The list of SONOTRACE_* variables, against the code, and the warning of a misspelt one."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from vectorizer import _variables

ROOT = Path(__file__).resolve().parents[2]


def test_the_list_is_every_variable_the_code_reads():
    # Read from the code as tests/test_readme_config.py reads it, this file's list left
    # out: a name dropped from the code, or a new one, must change the list too.
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import test_readme_config as readme
    finally:
        sys.path.remove(str(ROOT / "tests"))
    names = set()
    for path, source in readme._sources().items():
        if path.name != "_variables.py":
            names |= set(readme.NAME.findall(source))
    names |= set(readme._server_defaults()) | set(readme._client_defaults())
    assert _variables.KNOWN_VARIABLES == names - readme.NOT_SETTINGS


def test_a_misspelt_name_is_warned_of_with_the_likely_one(caplog):
    log = logging.getLogger("sonotrace.test")
    environ = {"SONOTRACE_DATADIR": "/srv/x", "SONOTRACE_WORKER": "2",
               "SONOTRACE_SOMETHING_ELSE": "1", "SONOTRACE_DATA_DIR": "/srv/y", "HOME": "/"}
    with caplog.at_level("WARNING", logger="sonotrace.test"):
        _variables.warn_unknown(log, environ)
    assert [r.getMessage() for r in caplog.records] == [
        "SONOTRACE_DATADIR is not a SonoTrace setting and is ignored (did you mean "
        "SONOTRACE_DATA_DIR?)",
        "SONOTRACE_SOMETHING_ELSE is not a SonoTrace setting and is ignored",
        "SONOTRACE_WORKER is not a SonoTrace setting and is ignored (did you mean "
        "SONOTRACE_WORKERS?)",
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="sonotrace.test"):
        _variables.warn_unknown(log, {"SONOTRACE_PORT": "5000"})
    assert caplog.records == []
