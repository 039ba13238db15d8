from pathlib import Path

import pytest

from annotation_client import ClientConfig


def test_defaults_without_environment():
    config = ClientConfig.load(environ={})
    assert config.model_server_url == "http://127.0.0.1:5000"
    assert config.request_timeout == 30.0
    assert config.auto_segment is True


def test_environment_then_mapping_override():
    environ = {
        "SONOTRACE_MODEL_SERVER_URL": "http://server:5000/",
        "SONOTRACE_DATA_DIR": "/tmp/annotations",
        "SONOTRACE_REQUEST_TIMEOUT": "2.5",
        "SONOTRACE_AUTO_SEGMENT": "off",
    }
    config = ClientConfig.load({"request_timeout": 9, "SONOTRACE_DEFAULT_VERTICES": "48"}, environ)
    assert config.model_server_url == "http://server:5000"
    assert config.data_dir == Path("/tmp/annotations")
    assert config.request_timeout == 9.0
    assert config.auto_segment is False
    assert config.default_vertices == 48
    assert config.max_upload_bytes == 20 * 1024 * 1024


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("MODEL_SERVER_URL", "server:5000", "MODEL_SERVER_URL"),
        ("REQUEST_TIMEOUT", "-1", "REQUEST_TIMEOUT"),
        ("AUTO_SEGMENT", "maybe", "AUTO_SEGMENT"),
        ("DEFAULT_VERTICES", "2", "DEFAULT_VERTICES"),
        ("DEFAULT_VERTICES", "256", "between 8 and 128"),
        ("NO_SUCH_SETTING", "1", "unknown"),
    ],
)
def test_bad_settings_are_refused_by_name(key, value, match):
    with pytest.raises(ValueError, match=match):
        ClientConfig.load({key: value}, environ={})


def test_no_worklist_by_default(tmp_path):
    assert ClientConfig.load(environ={}).worklist_dir is None
    assert ClientConfig.load(environ={"SONOTRACE_WORKLIST_DIR": ""}).worklist_dir is None
    assert ClientConfig.load({"WORKLIST_DIR": None}, environ={}).worklist_dir is None


def test_the_worklist_folder_from_the_environment_or_a_mapping(tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    environ = {"SONOTRACE_WORKLIST_DIR": str(folder)}
    assert ClientConfig.load(environ=environ).worklist_dir == folder
    assert ClientConfig.load({"worklist_dir": folder}, environ={}).worklist_dir == folder


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_worklist_that_is_not_a_folder_is_refused_by_name(tmp_path, kind):
    path = tmp_path / "studies"
    if kind == "file":
        path.write_text("not a folder")
    with pytest.raises(ValueError, match="SONOTRACE_WORKLIST_DIR=.*not an existing folder"):
        ClientConfig.load(environ={"SONOTRACE_WORKLIST_DIR": str(path)})
