"""Every ``SONOTRACE_*`` environment variable SonoTrace reads, to catch a misspelt one.

A name no part reads is ignored: ``SONOTRACE_DATADIR=/srv/x`` (for ``DATA_DIR``) saved
patients' annotations under the default folder without a word. Both services share
one env file in a deployment, so each warns only of names that *no* part reads: the
services, their launcher, the model tools, and the test suite's own switches.
``tests/test_readme_config.py`` checks this list against the code.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping

#: The names read anywhere: services, launcher, model tools, benchmarks and tests.
KNOWN_VARIABLES = frozenset({
    # the model server and its launcher
    "SONOTRACE_HOST", "SONOTRACE_PORT", "SONOTRACE_WORKERS", "SONOTRACE_THREADS",
    "SONOTRACE_TIMEOUT", "SONOTRACE_NUM_THREADS", "SONOTRACE_WEIGHTS_DIR",
    "SONOTRACE_RUNTIME_BACKEND", "SONOTRACE_WARMUP", "SONOTRACE_MAX_CONTENT_LENGTH",
    "SONOTRACE_MAX_PIXELS", "SONOTRACE_READ_TIMEOUT", "SONOTRACE_LOAD_ERROR_GRACE",
    "SONOTRACE_METRICS", "SONOTRACE_BINARY_UPGRADE",
    # both services
    "SONOTRACE_LOG_LEVEL", "SONOTRACE_TRUSTED_HOSTS",
    # the annotation client and its launcher
    "SONOTRACE_CLIENT_HOST", "SONOTRACE_CLIENT_PORT", "SONOTRACE_CLIENT_WORKERS",
    "SONOTRACE_CLIENT_THREADS", "SONOTRACE_MODEL_SERVER_URL", "SONOTRACE_DATA_DIR",
    "SONOTRACE_WORKLIST_DIR", "SONOTRACE_DATABASE_URL", "SONOTRACE_SECRET_KEY",
    "SONOTRACE_PREVIOUS_SECRET_KEYS",
    "SONOTRACE_ANNOTATOR_HEADER", "SONOTRACE_BLINDED_READING", "SONOTRACE_REVIEWERS",
    "SONOTRACE_AUTO_SEGMENT", "SONOTRACE_DEFAULT_VERTICES", "SONOTRACE_KEEP_UPLOADS",
    "SONOTRACE_MAX_UPLOAD_MB", "SONOTRACE_REQUEST_TIMEOUT", "SONOTRACE_MODEL_CALLS",
    # model tools, benchmarks and tests
    "SONOTRACE_BUSI_DIR", "SONOTRACE_CHROMIUM", "SONOTRACE_CHROMEDRIVER", "SONOTRACE_HEADED",
    "SONOTRACE_HYPOTHESIS_EXAMPLES", "SONOTRACE_OUTLINE_BUDGET_S", "SONOTRACE_TEST_IMAGE",
    "SONOTRACE_TEST_PORT_BASE", "SONOTRACE_TEST_SERVER_TIMEOUT",
})  # fmt: skip


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """The ``SONOTRACE_*`` names in ``environ`` that nothing reads, each with the known
    name it is likely a misspelling of (or None), sorted by name.

    >>> unknown_variables({"SONOTRACE_DATADIR": "/srv", "SONOTRACE_PORT": "5000"})
    [('SONOTRACE_DATADIR', 'SONOTRACE_DATA_DIR')]
    """
    environ = os.environ if environ is None else environ
    found = []
    for name in sorted(environ):
        if name.startswith("SONOTRACE_") and name not in KNOWN_VARIABLES:
            close = difflib.get_close_matches(name, KNOWN_VARIABLES, n=1, cutoff=0.8)
            found.append((name, close[0] if close else None))
    return found


def warn_unknown(log: logging.Logger, environ: Mapping[str, str] | None = None) -> None:
    """One WARNING on ``log`` per name :func:`unknown_variables` finds."""
    for name, close in unknown_variables(environ):
        hint = f" (did you mean {close}?)" if close else ""
        log.warning("%s is not a SonoTrace setting and is ignored%s", name, hint)
