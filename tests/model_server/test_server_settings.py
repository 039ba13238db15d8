"""Bad configuration stops the server at start, in one line naming the SONOTRACE_ variable.

``python -m model_server`` checks its options and the app's settings before
gunicorn starts (exit status 2, one line on stderr), and ``create_app`` runs the
same check (``ValueError``) for anyone who creates the app directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_server import _gunicorn, create_app
from model_server.__main__ import main, options
from model_server._app import DEFAULTS, MAX_NUM_THREADS, app_settings

ROOT = Path(__file__).resolve().parents[2]


class FakeServer:
    """Stands in for gunicorn: records what main() would have run."""

    runs: list = []

    def __init__(self, options, app_config=None, argv=None, upgrade=True):
        self.options, self.app_config = options, app_config
        self.argv, self.upgrade = argv, upgrade

    def run(self):
        FakeServer.runs.append(self)


@pytest.fixture(autouse=True)
def fake_gunicorn(monkeypatch):
    """Every main() here runs this instead of gunicorn: a check that lets a bad setting
    through must fail its test, not start a server that never returns."""
    FakeServer.runs = []
    monkeypatch.setattr(_gunicorn, "ModelServerApplication", FakeServer)
    # main() sets the thread variables for the workers it would start; keep them from
    # the tests that follow.
    saved = dict(os.environ)
    yield FakeServer.runs
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def clean_env(monkeypatch):
    """No SONOTRACE_ variable of the caller's shell or CI reaches the test."""
    for name in list(os.environ):
        if name.startswith("SONOTRACE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def refused(environ: dict, capsys, argv=()) -> str:
    """main()'s one stderr line for ``environ``, after checking it exits 2."""
    assert main(list(argv), environ) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


def option_refused(argv: list[str], capsys) -> str:
    """options()'s stderr for the command line ``argv``, after checking it exits 2."""
    with pytest.raises(SystemExit) as exit_info:
        options(argv, {})
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def weights_folder(tmp_path: Path, manifest: str | None) -> str:
    folder = tmp_path / "weights"
    folder.mkdir()
    if manifest is not None:
        (folder / "manifest.json").write_text(manifest)
    return str(folder)


# -- the bind address and port -------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", "   "])
def test_an_empty_host_variable_keeps_the_server_on_loopback(fake_gunicorn, clean_env, blank):
    # Before: SONOTRACE_HOST= bound ":5000", every interface.
    assert main([], {"SONOTRACE_HOST": blank}) == 0
    assert fake_gunicorn[0].options["bind"] == "127.0.0.1:5000"


def test_an_empty_host_option_is_refused(capsys):
    assert "argument --host: must not be empty" in option_refused(["--host", ""], capsys)


@pytest.mark.parametrize("host", ["10.0.0.5:80", "localhost:5000", "[::1]:5000", "[10.0.0.5]"])
def test_a_host_with_a_port_is_refused_at_once(capsys, host):
    # gunicorn retried it for 5 s as a name it could not find, then exited 1.
    assert "argument --host: must be an address or name without a port" in option_refused(
        ["--host", host], capsys)


def test_a_host_variable_with_a_port_is_refused_by_its_name(capsys):
    line = refused({"SONOTRACE_HOST": "10.0.0.5:80"}, capsys)
    assert "SONOTRACE_HOST" in line and "without a port" in line, line


@pytest.mark.parametrize("host", ["::1", "[::1]", "::", "fe80::1", "10.0.0.5"])
def test_an_ipv6_or_ipv4_host_is_taken(host):
    assert options(["--host", host], {}).host == host


def test_a_misspelt_variable_is_warned_of_at_start(fake_gunicorn, clean_env, caplog):
    # SONOTRACE_MAXPIXELS was ignored without a word: the default limit served.
    with caplog.at_level("WARNING", logger="model_server"):
        assert main([], {"SONOTRACE_MAXPIXELS": "100"}) == 0
    assert ("SONOTRACE_MAXPIXELS is not a SonoTrace setting and is ignored (did you mean "
            "SONOTRACE_MAX_PIXELS?)") in caplog.text


def test_a_host_variable_is_used_as_given(fake_gunicorn, clean_env):
    assert main([], {"SONOTRACE_HOST": "0.0.0.0", "SONOTRACE_PORT": "6001"}) == 0
    assert fake_gunicorn[0].options["bind"] == "0.0.0.0:6001"


@pytest.mark.parametrize("raw", ["70000", "65536", "0", "-1", "http"])
def test_a_port_variable_outside_1_to_65535_is_refused_by_its_name(capsys, raw):
    line = refused({"SONOTRACE_PORT": raw}, capsys)
    assert line.startswith(f"error: SONOTRACE_PORT='{raw}': must be")


@pytest.mark.parametrize("raw", ["70000", "0", "-1"])
def test_a_port_option_outside_1_to_65535_is_refused_by_its_name(capsys, raw):
    assert (f"argument --port: must be a port number from 1 to 65535, not '{raw}'"
            in option_refused(["--port", raw], capsys))


def test_the_option_wins_over_a_bad_variable():
    assert options(["--port", "6002"], {"SONOTRACE_PORT": "70000"}).port == 6002


@pytest.mark.parametrize("port", ["1", "65535"])
def test_the_ends_of_the_port_range_are_accepted(port):
    assert options([], {"SONOTRACE_PORT": port}).port == int(port)


# -- the weights folder --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: str(tmp / "missing"), "no such folder"),
        (lambda tmp: str(Path(weights_folder(tmp, "{}")) / "manifest.json"), "not a folder"),
        (lambda tmp: weights_folder(tmp, None), "no manifest.json in it"),
        (lambda tmp: weights_folder(tmp, "{not json"), "its manifest.json cannot be read"),
    ],
    ids=["missing", "a-file", "no-manifest", "bad-manifest"],
)
def test_a_weights_folder_without_a_manifest_stops_the_server(tmp_path, capsys, make, reason):
    # Before: the server started and answered 503 forever, a traceback per load in its log.
    path = make(tmp_path)
    line = refused({"SONOTRACE_WEIGHTS_DIR": path}, capsys)
    assert line.startswith(f"error: SONOTRACE_WEIGHTS_DIR={path!r}: {reason}")
    with pytest.raises(ValueError, match=f"^SONOTRACE_WEIGHTS_DIR=.*: {reason}"):
        create_app({"WEIGHTS_DIR": path, "WARMUP": False})


@pytest.mark.parametrize("blank", ["", " "])
def test_an_empty_weights_variable_means_the_shipped_weights(clean_env, blank):
    clean_env.setenv("SONOTRACE_WEIGHTS_DIR", blank)
    app = create_app({"WARMUP": False})
    assert app.config["WEIGHTS_DIR"] is None
    assert app.extensions["sonotrace_models"].weights_dir is None


def test_a_weights_folder_with_a_manifest_is_taken(tmp_path):
    folder = weights_folder(tmp_path, json.dumps({"name": "x"}))
    assert app_settings(environ={"SONOTRACE_WEIGHTS_DIR": folder})["WEIGHTS_DIR"] == folder


# -- inference threads ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["abc", "-3", "2.5", str(MAX_NUM_THREADS + 1), "100000"])
def test_create_app_refuses_an_inference_thread_count_outside_1_to_64(clean_env, raw):
    clean_env.setenv("SONOTRACE_NUM_THREADS", raw)
    with pytest.raises(ValueError, match=rf"^SONOTRACE_NUM_THREADS='{raw}': must be a whole "
                                         rf"number from 1 to {MAX_NUM_THREADS}$"):
        create_app({"WARMUP": False})


# 0, as empty, is not saying (the README's "0 or unset"): under python -m model_server
# cores / workers, here the default. It was refused here, so one environment file could
# not serve both.
@pytest.mark.parametrize(("raw", "threads"),
                         [("", 2), ("0", 2), (" 0 ", 2), ("1", 1), ("64", 64), (" 8 ", 8)])
def test_create_app_passes_the_inference_threads_to_the_runtime(clean_env, raw, threads):
    clean_env.setenv("SONOTRACE_NUM_THREADS", raw)
    app = create_app({"WARMUP": False})
    assert app.config["NUM_THREADS"] == threads
    assert app.extensions["sonotrace_models"].num_threads == threads


@pytest.mark.parametrize("raw", ["abc", "-3", "-1", "65", "100000"])
def test_the_server_refuses_an_inference_thread_count_by_its_name(capsys, raw):
    # Before: negatives silently became "automatic"; 100000 made every request a 500.
    line = refused({"SONOTRACE_NUM_THREADS": raw}, capsys)
    assert line.startswith(f"error: SONOTRACE_NUM_THREADS='{raw}': must be a whole number")


@pytest.mark.parametrize("raw", ["-1", "65"])
def test_the_model_threads_option_is_refused_outside_0_to_64(capsys, raw):
    assert "argument --model-threads: must be a whole number from 1 to 64, or 0" in (
        option_refused(["--model-threads", raw], capsys))


@pytest.mark.parametrize("raw", ["0", ""])
def test_zero_or_no_inference_threads_is_cores_per_worker_under_the_server(
    fake_gunicorn, clean_env, raw
):
    assert main(["--workers", "1"], {"SONOTRACE_NUM_THREADS": raw}) == 0
    # The CPUs this process may use (a container's limit), not the machine's count.
    from model_server._cpus import usable_cpus

    expected = min(MAX_NUM_THREADS, usable_cpus())
    assert os.environ["SONOTRACE_NUM_THREADS"] == str(expected)
    assert fake_gunicorn[0].app_config["NUM_THREADS"] == expected


def shipped_weights_elsewhere(tmp_path: Path) -> str:
    """The shipped weights under another path: a fresh holder, not the session app's."""
    from models.runtime import DEFAULT_WEIGHTS_DIR

    link = tmp_path / "weights"
    link.symlink_to(Path(DEFAULT_WEIGHTS_DIR).resolve(), target_is_directory=True)
    return str(link)


@pytest.mark.parametrize(("raw", "threads"), [("", 2), ("3", 3)])
def test_the_runtime_runs_with_the_checked_thread_count(tmp_path, clean_env, raw, threads):
    # Before: an empty variable reached the runtime, whose int('') failed every load.
    clean_env.setenv("SONOTRACE_NUM_THREADS", raw)
    app = create_app({"WEIGHTS_DIR": shipped_weights_elsewhere(tmp_path), "WARMUP": False})
    assert app.extensions["sonotrace_models"].runtime().num_threads == threads


# -- the app's own settings ----------------------------------------------------------------


@pytest.mark.parametrize("raw", ["null", "none", "0", "-5", "1.5", "64MiB", "1e6"])
def test_a_body_limit_that_is_not_a_positive_whole_number_is_refused(clean_env, raw):
    # Before: `null` became None, and no limit at all.
    clean_env.setenv("SONOTRACE_MAX_CONTENT_LENGTH", raw)
    with pytest.raises(ValueError, match=rf"^SONOTRACE_MAX_CONTENT_LENGTH='{raw}': must be a "
                                         r"whole number of bytes of at least 1$"):
        create_app({"WARMUP": False})


def test_no_body_limit_is_refused_from_the_config_mapping_too():
    with pytest.raises(ValueError, match="^SONOTRACE_MAX_CONTENT_LENGTH=None: must be"):
        create_app({"MAX_CONTENT_LENGTH": None, "WARMUP": False})


def test_a_body_limit_beyond_the_machines_memory_is_refused(clean_env):
    clean_env.setenv("SONOTRACE_MAX_CONTENT_LENGTH", str(10**18))
    with pytest.raises(ValueError, match=r"^SONOTRACE_MAX_CONTENT_LENGTH='1000000000000000000': "
                                         r"more than this machine's memory \(\d+ bytes\)"):
        create_app({"WARMUP": False})


def test_an_empty_body_limit_is_the_default(clean_env):
    clean_env.setenv("SONOTRACE_MAX_CONTENT_LENGTH", "")
    assert create_app({"WARMUP": False}).config["MAX_CONTENT_LENGTH"] == 64 * 1024 * 1024


@pytest.mark.parametrize(
    ("name", "raw", "reason"),
    [
        ("SONOTRACE_MAX_PIXELS", "0", "must be a whole number of at least 1"),
        ("SONOTRACE_MAX_PIXELS", "lots", "must be a whole number of at least 1"),
        ("SONOTRACE_MAX_CONTENT_LENGTH", "null", "must be a whole number of bytes"),
        ("SONOTRACE_READ_TIMEOUT", "0", "must be a whole number of seconds from 1 to 86400"),
        ("SONOTRACE_READ_TIMEOUT", "-2", "must be a whole number of seconds from 1 to 86400"),
        ("SONOTRACE_WARMUP", "sometimes", "must be true or false"),
        ("SONOTRACE_RUNTIME_BACKEND", "tflite", "must be one of auto, litert, keras"),
        ("SONOTRACE_LOG_LEVEL", "loud", "must be one of debug, info"),
        ("SONOTRACE_WORKERS", "0", "must be a whole number of at least 1"),
        ("SONOTRACE_TIMEOUT", "soon", "must be a whole number"),
    ],
)
def test_the_server_refuses_a_bad_setting_before_gunicorn_starts(
    fake_gunicorn, clean_env, capsys, name, raw, reason
):
    # Before: the app's settings were checked only in the workers, each printing a
    # traceback, "Worker failed to boot", exit 3, and "config MAX_PIXELS must be...".
    line = refused({name: raw}, capsys)
    assert line.startswith(f"error: {name}='{raw}': {reason}")
    assert fake_gunicorn == []


def test_the_workers_get_the_settings_checked_before_the_start(fake_gunicorn, clean_env):
    assert main([], {"SONOTRACE_MAX_PIXELS": "1000", "SONOTRACE_WARMUP": "off"}) == 0
    app_config = fake_gunicorn[0].app_config
    assert (app_config["MAX_PIXELS"], app_config["WARMUP"]) == (1000, False)


def test_a_bad_setting_ends_the_real_command_in_one_line(tmp_path):
    env = {**os.environ, "SONOTRACE_MAX_PIXELS": "0", "SONOTRACE_WORKERS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "model_server", "--port", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: SONOTRACE_MAX_PIXELS='0': must be a whole number of at least 1\n"
    )


def test_create_app_names_the_variable_for_a_bad_config_value():
    with pytest.raises(ValueError, match="^SONOTRACE_MAX_PIXELS=0: must be a whole number"):
        create_app({"MAX_PIXELS": 0, "WARMUP": False})


def test_only_the_servers_own_variables_reach_flask(clean_env):
    # Before: every SONOTRACE_* variable of a shared env file became Flask config. (The
    # names are built, so that tests/test_readme_config.py does not take them for
    # settings the README must document.)
    for key, value in [("SECRET_KEY", "from-the-clients-env-file"), ("TESTING", "true"),
                       ("DEBUG", "true"), ("PROPAGATE_EXCEPTIONS", "true")]:
        clean_env.setenv(f"SONOTRACE_{key}", value)
    app = create_app({"WARMUP": False})
    assert app.config["SECRET_KEY"] is None
    assert app.config["TESTING"] is False and app.debug is False
    assert app.config["PROPAGATE_EXCEPTIONS"] is None
    assert set(app_settings(environ=dict(os.environ))) == set(DEFAULTS)


def test_the_binary_upgrade_setting_reaches_the_master_and_a_bad_word_is_refused(
    clean_env, fake_gunicorn, capsys
):
    argv = ["--port", "5001"]
    assert main(argv, {}) == 0
    assert (fake_gunicorn[-1].argv, fake_gunicorn[-1].upgrade) == (argv, True)
    assert main(argv, {"SONOTRACE_BINARY_UPGRADE": "off"}) == 0
    assert fake_gunicorn[-1].upgrade is False
    assert "SONOTRACE_BINARY_UPGRADE" in refused({"SONOTRACE_BINARY_UPGRADE": "later"}, capsys)
