"""README.md against the code: settings, their defaults, and the model server's command line.

Every ``SONOTRACE_*`` variable the code reads must be in the README with its default,
and every one the README names must be read somewhere: someone deploying SonoTrace
configures it from the README alone.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
FOLDERS = ("model_server", "annotation_client", "vectorizer", "models", "scripts", "bench", "tests")
NAME = re.compile(r"SONOTRACE_[A-Z0-9_]*[A-Z0-9]")
#: Names in the code that are not environment variables: the client's Flask config and
#: extension keys, and a variable one fixture test sets for its child process only.
NOT_SETTINGS = {"SONOTRACE_CLIENT", "SONOTRACE_INDEX", "SONOTRACE_SIGNING_KEY",
                "SONOTRACE_PREVIOUS_SIGNING_KEYS", "SONOTRACE_EXAMPLE",
                # misspellings the tests of vectorizer._variables use on purpose
                "SONOTRACE_DATADIR", "SONOTRACE_WORKER", "SONOTRACE_SOMETHING_ELSE",
                "SONOTRACE_MAXPIXELS"}
#: ``os.environ.get("SONOTRACE_X", default)``, ``os.getenv(...)`` and ``_env_int(...)``.
READ_WITH_DEFAULT = re.compile(
    r"""(?:environ\.get|getenv|_env_int)\(\s*"(SONOTRACE_\w+)",\s*("[^"]*"|-?[0-9.]+)\s*\)"""
)
#: Defaults the README words rather than quotes: 0 threads means "cores / workers".
WORDED = {("SONOTRACE_NUM_THREADS", "0"): "cores / workers"}


def _sources() -> dict[Path, str]:
    me = Path(__file__).resolve()
    return {
        path: path.read_text(encoding="utf-8")
        for folder in FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.resolve() != me and "__pycache__" not in path.parts
    }


def _server_defaults() -> dict[str, object]:
    # create_app reads SONOTRACE_<KEY> for each of its DEFAULTS (from_prefixed_env).
    from model_server._app import DEFAULTS

    return {f"SONOTRACE_{key}": value for key, value in DEFAULTS.items()}


def _client_defaults() -> dict[str, object]:
    # ClientConfig.load reads SONOTRACE_<FIELD> for each of its fields.
    from annotation_client._config import ClientConfig

    return {
        f"SONOTRACE_{f.name.upper()}": (f.default if f.default is not MISSING else None)
        for f in fields(ClientConfig)
    }


def _launcher_defaults() -> dict[str, object]:
    # python -m model_server reads its serving options through options(): its defaults
    # are what it resolves with no argument and an empty environment.
    from model_server.__main__ import options

    chosen = options([], environ={})
    return {
        "SONOTRACE_HOST": chosen.host,
        "SONOTRACE_PORT": chosen.port,
        "SONOTRACE_WORKERS": chosen.workers,
        "SONOTRACE_THREADS": chosen.threads,
        "SONOTRACE_TIMEOUT": chosen.timeout,
        "SONOTRACE_NUM_THREADS": chosen.model_threads,
        "SONOTRACE_LOG_LEVEL": chosen.log_level,
    }


def _read_by_code() -> set[str]:
    names = set()
    for text in _sources().values():
        names.update(NAME.findall(text))
    names.update(_server_defaults(), _client_defaults())
    return names - NOT_SETTINGS


def _rows(name: str) -> list[str]:
    """The README's table rows whose first cell names ``name``, after that cell."""
    rows = []
    for line in README.splitlines():
        cells = line.split(" | ")
        if line.startswith("| ") and f"`{name}`" in cells[0]:
            rows.append(" | ".join(cells[1:]))
    return rows


def _prose(name: str) -> list[str]:
    """The next 200 characters after each mention of ``name`` outside tables."""
    windows = []
    for match in re.finditer(rf"`{name}`", README):
        line_start = README.rfind("\n", 0, match.start()) + 1
        if not README.startswith("|", line_start):
            windows.append(README[match.end() : match.end() + 200])
    return windows


def _shown(value) -> str | None:
    """How the README writes a default, or None when it is not a plain value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    return None


def _defaults() -> list[tuple[str, str]]:
    found = set()
    for text in _sources().values():
        for name, raw in READ_WITH_DEFAULT.findall(text):
            found.add((name, raw.strip('"')))
    for name, value in {**_server_defaults(), **_client_defaults(), **_launcher_defaults()}.items():
        shown = _shown(value)
        if shown is not None and name not in NOT_SETTINGS:
            found.add((name, shown))
    return sorted(found)


def test_every_variable_the_code_reads_is_in_the_readme():
    documented = set(NAME.findall(README))
    assert sorted(_read_by_code() - documented) == []


def test_every_variable_the_readme_names_is_read_by_the_code():
    # Less the misspelling the README gives as its example of one.
    documented = set(NAME.findall(README)) - NOT_SETTINGS
    assert sorted(documented - _read_by_code()) == []


@pytest.mark.parametrize(("name", "default"), _defaults(), ids=lambda v: str(v))
def test_the_readme_gives_each_default_the_code_has(name, default):
    wanted = WORDED.get((name, default), default)
    word = re.compile(rf"(?<![\w.]){re.escape(wanted)}(?![\w])", re.IGNORECASE)
    rows = _rows(name)
    if rows:
        # Every settings table that lists it gives the code's default (tables must agree).
        assert [row for row in rows if not word.search(row)] == [], (
            f"a README.md table row of {name} does not give its default {wanted!r}"
        )
    else:
        windows = _prose(name)
        assert windows, f"{name} is never named in backquotes in README.md"
        assert any(word.search(text) for text in windows), (
            f"README.md never gives {name}'s default {wanted!r} where it names it"
        )


def test_the_model_server_synopsis_lists_every_option():
    from model_server.__main__ import build_parser

    section = README.split("### Running it", 1)[1]
    synopsis = section[: section.index(" runs gunicorn")]
    options = [
        action.option_strings[0]
        for action in build_parser()._actions
        if action.dest != "help"
    ]
    assert [option for option in options if option not in synopsis] == []


def test_every_known_variable_is_in_configuration_or_the_settings_it_links_to():
    # Audit 804 F11: SONOTRACE_OUTLINE_BUDGET_S was named only under "Speed": a deployer
    # or tester reads Configuration (and the model server's Settings it links to).
    from vectorizer._variables import KNOWN_VARIABLES

    configuration = README.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    settings = README.split("\n### Settings", 1)[1].split("\n## ", 1)[0]
    named = set(NAME.findall(configuration + settings))
    assert sorted(KNOWN_VARIABLES - named) == []
