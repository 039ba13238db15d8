import importlib.util
import re
from pathlib import Path

import pytest

from annotation_client import ClientConfig


def test_defaults_without_environment():
    config = ClientConfig.load(environ={})
    assert config.model_server_url == "http://127.0.0.1:5000"
    assert config.request_timeout == 30.0
    assert config.auto_segment is True
    assert config.keep_uploads is True


def test_environment_then_mapping_override():
    environ = {
        "SONOTRACE_MODEL_SERVER_URL": "http://server:5000/",
        "SONOTRACE_DATA_DIR": "/tmp/annotations",
        "SONOTRACE_REQUEST_TIMEOUT": "2.5",
        "SONOTRACE_AUTO_SEGMENT": "off",
        "SONOTRACE_KEEP_UPLOADS": "no",
    }
    config = ClientConfig.load({"request_timeout": 9, "SONOTRACE_DEFAULT_VERTICES": "48"}, environ)
    assert config.model_server_url == "http://server:5000"
    assert config.data_dir == Path("/tmp/annotations")
    assert config.request_timeout == 9.0
    assert config.auto_segment is False
    assert config.keep_uploads is False
    assert config.default_vertices == 48
    assert config.max_upload_bytes == 20 * 1024 * 1024


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("MODEL_SERVER_URL", "server:5000", "MODEL_SERVER_URL"),
        ("REQUEST_TIMEOUT", "-1", "REQUEST_TIMEOUT"),
        ("AUTO_SEGMENT", "maybe", "AUTO_SEGMENT"),
        ("KEEP_UPLOADS", "sometimes", "KEEP_UPLOADS"),
        ("DEFAULT_VERTICES", "2", "DEFAULT_VERTICES"),
        ("DEFAULT_VERTICES", "256", "between 8 and 128"),
        ("MAX_PIXELS", "0", "MAX_PIXELS.*positive"),
        ("MAX_PIXELS", "2.5e7", "MAX_PIXELS=.2.5e7."),
        ("MAX_PIXELS", True, "MAX_PIXELS.*whole number"),
        ("NO_SUCH_SETTING", "1", "unknown"),
    ],
)
def test_bad_settings_are_refused_by_name(key, value, match):
    with pytest.raises(ValueError, match=match):
        ClientConfig.load({key: value}, environ={})


def test_the_read_timeout_is_the_model_servers_variable_and_rule():
    # One SONOTRACE_READ_TIMEOUT for both services (a shared env file): whole seconds
    # from 1 to a day, 20 by default, as the server takes it.
    assert ClientConfig.load(environ={}).read_timeout == 20
    assert ClientConfig.load(environ={"SONOTRACE_READ_TIMEOUT": "5"}).read_timeout == 5
    for bad in ("0", "2.5", "86401", "soon"):
        with pytest.raises(ValueError, match=rf"^SONOTRACE_READ_TIMEOUT='{bad}': must be a "
                                             "whole number of seconds from 1 to 86400$"):
            ClientConfig.load(environ={"SONOTRACE_READ_TIMEOUT": bad})


@pytest.mark.parametrize("blank", ["", " ", "\t "])
def test_a_blank_variable_is_unset(blank):
    # SONOTRACE_DATA_DIR=" " made a folder named " " in the working directory, to hold
    # patient data outside every ignore file (audit helper-503, 4).
    names = ("DATA_DIR", "KEEP_UPLOADS", "REQUEST_TIMEOUT", "WORKLIST_DIR")
    config = ClientConfig.load(environ={f"SONOTRACE_{n}": blank for n in names})
    default = ClientConfig()
    assert (config.data_dir, config.keep_uploads, config.request_timeout,
            config.worklist_dir) == (default.data_dir, default.keep_uploads,
                                     default.request_timeout, default.worklist_dir)


@pytest.mark.parametrize("value", ["/srv/data ", " /srv/data", "/srv/data\n"])
def test_a_data_folder_with_a_space_at_either_end_is_refused(value):
    # "/srv/data " is another folder: an empty one, the saved annotations out of sight.
    with pytest.raises(ValueError, match="DATA_DIR.*starts or ends with a space"):
        ClientConfig.load(environ={"SONOTRACE_DATA_DIR": value})


def test_the_pixel_limit_is_the_model_servers_variable_and_default():
    from model_server._app import DEFAULTS as SERVER_DEFAULTS

    server_default = SERVER_DEFAULTS["MAX_PIXELS"]
    assert ClientConfig.load(environ={}).max_pixels == server_default == 25_000_000
    environ = {"SONOTRACE_MAX_PIXELS": "4000000"}
    assert ClientConfig.load(environ=environ).max_pixels == 4_000_000
    assert ClientConfig.load({"max_pixels": 1000}, environ=environ).max_pixels == 1000


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


def _sqlite_file(url) -> str:
    """The file a SQLite URL (a string or a sqlalchemy URL) names."""
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    assert parsed.get_backend_name() == "sqlite"
    return parsed.database


def test_the_index_defaults_to_a_sqlite_file_in_the_data_dir(tmp_path):
    config = ClientConfig.load({"DATA_DIR": tmp_path}, environ={})
    assert config.database_url is None
    assert _sqlite_file(config.index_url) == str(tmp_path.resolve() / "index.sqlite3")


def test_the_database_url_from_the_environment_or_a_mapping(tmp_path):
    from_env = f"sqlite:///{tmp_path / 'env.sqlite3'}"
    from_map = f"sqlite:///{tmp_path / 'map.sqlite3'}"
    environ = {"SONOTRACE_DATABASE_URL": f" {from_env} ", "SONOTRACE_DATA_DIR": str(tmp_path)}
    config = ClientConfig.load(environ=environ)
    assert config.database_url == from_env
    assert config.index_url == from_env
    assert ClientConfig.load({"database_url": from_map}, environ).index_url == from_map
    assert ClientConfig.load({"SONOTRACE_DATABASE_URL": from_map}, environ={}).index_url == from_map


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_a_blank_database_url_means_the_default(tmp_path, blank):
    default = str(tmp_path.resolve() / "index.sqlite3")
    other = {"SONOTRACE_DATABASE_URL": f"sqlite:///{tmp_path / 'other.sqlite3'}"}
    config = ClientConfig.load({"DATA_DIR": tmp_path, "DATABASE_URL": blank}, environ=other)
    assert config.database_url is None
    assert _sqlite_file(config.index_url) == default
    if blank is not None:
        environ = {"SONOTRACE_DATABASE_URL": blank, "SONOTRACE_DATA_DIR": str(tmp_path)}
        assert _sqlite_file(ClientConfig.load(environ=environ).index_url) == default


@pytest.mark.parametrize("url", ["garbage", "nosuchdb://x", "/data/index.sqlite3"])
def test_a_bad_database_url_is_refused_by_name(url):
    with pytest.raises(ValueError, match="SONOTRACE_DATABASE_URL"):
        ClientConfig.load({"DATABASE_URL": url}, environ={})
    with pytest.raises(ValueError, match="SONOTRACE_DATABASE_URL"):
        ClientConfig.load(environ={"SONOTRACE_DATABASE_URL": url})


def test_a_refused_database_url_does_not_show_its_password():
    with pytest.raises(ValueError, match="SONOTRACE_DATABASE_URL") as refused:
        ClientConfig.load({"DATABASE_URL": "postgresq://u:s3cret@db/sonotrace"}, environ={})
    assert "s3cret" not in str(refused.value)


@pytest.mark.skipif(importlib.util.find_spec("psycopg2") is not None, reason="psycopg2 installed")
def test_a_database_url_whose_driver_is_missing_is_refused_by_name():
    # psycopg2 is named: this install has psycopg 3 instead.
    url = "postgresql+psycopg2://u:s3cret@db/sonotrace"
    with pytest.raises(ValueError, match="SONOTRACE_DATABASE_URL.*psycopg2") as refused:
        ClientConfig.load({"DATABASE_URL": url}, environ={})
    assert "s3cret" not in str(refused.value)
    with pytest.raises(ValueError, match="SONOTRACE_DATABASE_URL"):
        ClientConfig.load(environ={"SONOTRACE_DATABASE_URL": url})


def test_a_postgresql_url_is_taken_as_given(psycopg_installed):
    url = "postgresql://sonotrace:PASSWORD@db.example/sonotrace"
    environ = {"SONOTRACE_DATABASE_URL": f" {url} "}
    assert ClientConfig.load(environ=environ).database_url == url
    assert ClientConfig.load(environ=environ).index_url == url
    assert ClientConfig.load({"DATABASE_URL": url}, environ={}).database_url == url


def test_no_annotator_header_by_default():
    assert ClientConfig.load(environ={}).annotator_header is None
    assert ClientConfig.load(environ={"SONOTRACE_ANNOTATOR_HEADER": ""}).annotator_header is None
    assert ClientConfig.load({"ANNOTATOR_HEADER": "  "}, environ={}).annotator_header is None
    assert ClientConfig.load({"annotator_header": None}, environ={}).annotator_header is None


@pytest.mark.parametrize(
    "name", ["X-Forwarded-User", "Remote-User", "x-auth-request-user", "X-Remote-User.v2"]
)
def test_the_annotator_header_from_the_environment_or_a_mapping(name):
    environ = {"SONOTRACE_ANNOTATOR_HEADER": f" {name} "}
    assert ClientConfig.load(environ=environ).annotator_header == name
    assert ClientConfig.load({"annotator_header": name}, environ={}).annotator_header == name


@pytest.mark.parametrize(
    "name",
    [
        "X Forwarded User",  # a space
        "X-Forwarded-User:",  # the colon of a header line
        "X-Forwarded-User\r\nX-Other",  # a second header smuggled in
        "(X-User)",  # separators
        "X-Usér",  # not ASCII
        # Legal in HTTP, but WSGI servers drop it (it would clash with X-Forwarded-User).
        "X_Forwarded_User",
    ],
)
def test_a_bad_annotator_header_name_is_refused_by_name(name):
    with pytest.raises(ValueError, match="SONOTRACE_ANNOTATOR_HEADER=.*HTTP header name"):
        ClientConfig.load(environ={"SONOTRACE_ANNOTATOR_HEADER": name})
    with pytest.raises(ValueError, match="SONOTRACE_ANNOTATOR_HEADER"):
        ClientConfig.load({"ANNOTATOR_HEADER": name}, environ={})


@pytest.mark.parametrize(
    "name", ["Authorization", "proxy-authorization", "Cookie", "Host", "Content-Type"]
)
def test_a_header_that_carries_credentials_or_plumbing_is_no_annotator(name):
    # Behind basic authentication "Authorization" is the likely slip: every save would
    # record the user's credentials as the annotator.
    with pytest.raises(ValueError, match="SONOTRACE_ANNOTATOR_HEADER=.*not the user's name"):
        ClientConfig.load(environ={"SONOTRACE_ANNOTATOR_HEADER": name})
    assert ClientConfig.load({"ANNOTATOR_HEADER": "X-Authorization-User"}).annotator_header == (
        "X-Authorization-User"
    )


# --------------------------------------------------------------------------- blinded reading


def test_blinded_reading_is_off_and_nobody_is_a_reviewer_by_default():
    config = ClientConfig.load(environ={})
    assert config.blinded_reading is False and config.reviewers == frozenset()


def test_blinded_reading_and_reviewers_from_the_environment_or_a_mapping():
    environ = {
        "SONOTRACE_ANNOTATOR_HEADER": "X-Forwarded-User",
        "SONOTRACE_BLINDED_READING": "yes",
        "SONOTRACE_REVIEWERS": " dr.lead@hospital.example , Dr Chair,, ",
    }
    config = ClientConfig.load(environ=environ)
    assert config.blinded_reading is True
    assert config.reviewers == {"dr.lead@hospital.example", "Dr Chair"}
    mapped = ClientConfig.load(
        {"annotator_header": "Remote-User", "blinded_reading": True, "reviewers": ["Dr Chair"]},
        environ={},
    )
    assert mapped.reviewers == {"Dr Chair"} and isinstance(mapped.reviewers, frozenset)


def test_blinded_reading_without_a_sign_in_header_is_refused():
    # Without the proxy's header every request is anonymous: no reader could be told apart.
    with pytest.raises(ValueError, match="BLINDED_READING needs SONOTRACE_ANNOTATOR_HEADER"):
        ClientConfig.load(environ={"SONOTRACE_BLINDED_READING": "true"})


def test_reviewers_without_blinded_reading_are_refused():
    environ = {"SONOTRACE_ANNOTATOR_HEADER": "X-Forwarded-User", "SONOTRACE_REVIEWERS": "Dr Chair"}
    with pytest.raises(ValueError, match="REVIEWERS is set but SONOTRACE_BLINDED_READING is not"):
        ClientConfig.load(environ=environ)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("Dr Chair,Dr\x07Bell", "control characters"),
        ("x" * 201, "longer than 200"),
        ([3], "user names"),
    ],
)
def test_a_reviewer_name_no_sign_in_could_send_is_refused(value, match):
    settings = {"annotator_header": "X-Forwarded-User", "blinded_reading": True}
    with pytest.raises(ValueError, match=f"SONOTRACE_REVIEWERS=.*{match}"):
        ClientConfig.load(settings | {"reviewers": value}, environ={})


def test_a_config_built_directly_gets_its_reviewers_parsed_too(tmp_path):
    from annotation_client import _readers, create_app

    config = ClientConfig(data_dir=tmp_path, annotator_header="X-Forwarded-User",
                          blinded_reading=True, reviewers=" Dr Chair ,Dr Lead")
    assert config.reviewers == {"Dr Chair", "Dr Lead"}
    # A substring of a reviewer's name is no reviewer.
    assert _readers.visible_annotator(config, {"X-Forwarded-User": "Chair"}) == "Chair"
    assert _readers.visible_annotator(config, {"X-Forwarded-User": "Dr Chair"}) is None
    app = create_app(config)
    assert app.server.test_client().get(
        "/api/saved", headers={"X-Forwarded-User": "Chair"}).get_json()["rows"] == []
    with pytest.raises(TypeError, match="blinded_reading must be a bool"):
        ClientConfig(annotator_header="X-Forwarded-User", blinded_reading="false")
    with pytest.raises(ValueError, match="control characters"):
        ClientConfig(annotator_header="X-Forwarded-User", blinded_reading=True,
                     reviewers=["Dr\nChair"])


@pytest.mark.parametrize("where", ["the data folder", "inside the data folder"])
def test_a_worklist_in_the_data_folder_is_refused(tmp_path, where):
    data = tmp_path / "data"
    worklist = data if where == "the data folder" else data / "scans"
    worklist.mkdir(parents=True)
    environ = {"SONOTRACE_DATA_DIR": str(data), "SONOTRACE_WORKLIST_DIR": str(worklist)}
    with pytest.raises(ValueError, match=f"SONOTRACE_WORKLIST_DIR={worklist} is {where} "
                       f"SONOTRACE_DATA_DIR={data}: the worklist would list every reader's"):
        ClientConfig.load(environ=environ)
    # Through a symbolic link too.
    (tmp_path / "link").symlink_to(worklist)
    with pytest.raises(ValueError, match=where):
        ClientConfig.load({"worklist_dir": tmp_path / "link"}, environ=environ)


def test_a_data_folder_inside_the_worklist_is_accepted(tmp_path):
    # The walk leaves the data folder out (test_worklist); a site may keep both on one volume.
    (tmp_path / "data").mkdir()
    config = ClientConfig.load({"data_dir": tmp_path / "data", "worklist_dir": tmp_path},
                               environ={})
    assert config.worklist_dir == tmp_path


# --------------------------------------------------------------------------- numbers and URL


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("REQUEST_TIMEOUT", "inf"),
        ("REQUEST_TIMEOUT", "nan"),
        ("REQUEST_TIMEOUT", "0"),
        ("REQUEST_TIMEOUT", "0.09"),
        ("REQUEST_TIMEOUT", "3601"),
        ("REQUEST_TIMEOUT", "abc"),
        ("REQUEST_TIMEOUT", True),
        ("MAX_UPLOAD_MB", "inf"),
        ("MAX_UPLOAD_MB", "-inf"),
        ("MAX_UPLOAD_MB", "1e-7"),
        ("MAX_UPLOAD_MB", "0.009"),
        ("MAX_UPLOAD_MB", "1025"),
        ("MAX_UPLOAD_MB", "1e300"),
    ],
)
def test_a_number_out_of_its_range_is_refused_by_name(key, value):
    unit, low, high = ("seconds", 0.1, 3600) if key == "REQUEST_TIMEOUT" else ("MB", 0.01, 1024)
    match = f"SONOTRACE_{key}=.*: must be a number( of {unit} from {low} to {high})?$"
    with pytest.raises(ValueError, match=match):
        ClientConfig.load({key: value}, environ={})
    with pytest.raises(ValueError, match=f"SONOTRACE_{key}"):
        ClientConfig.load(environ={f"SONOTRACE_{key}": str(value)})


@pytest.mark.parametrize(
    ("key", "value"),
    [("REQUEST_TIMEOUT", "0.1"), ("REQUEST_TIMEOUT", "3600"),
     ("MAX_UPLOAD_MB", "0.01"), ("MAX_UPLOAD_MB", "1024")],
)
def test_the_ends_of_a_numbers_range_are_accepted(key, value):
    config = ClientConfig.load(environ={f"SONOTRACE_{key}": value})
    assert getattr(config, key.lower()) == float(value)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://", "must name a host"),
        ("https://", "must name a host"),
        ("http://:5000", "must name a host"),
        ("http:///predict", "must name a host"),
        ("ftp://server:5000", "must start with http:// or https://"),
        ("http://server:port", "port number from 1 to 65535"),
        ("http://server:70000", "port number from 1 to 65535"),
        ("http://server:0", "port number from 1 to 65535"),
    ],
)
def test_a_model_server_url_without_a_host_is_refused(url, match):
    with pytest.raises(ValueError, match=f"SONOTRACE_MODEL_SERVER_URL='{url}': .*{match}"):
        ClientConfig.load(environ={"SONOTRACE_MODEL_SERVER_URL": url})


@pytest.mark.parametrize("url", ["http://user:s3cret@server:5000", "http://s3cret@server:5000",
                                 "https://:s3cret@server"])
def test_a_model_server_url_with_a_password_is_refused_without_showing_it(url):
    # Audit 711: it was kept, and shown in plain text by /health, the start line and the
    # page's "cannot be reached" messages.
    with pytest.raises(ValueError, match="must not hold a user name or password") as caught:
        ClientConfig.load(environ={"SONOTRACE_MODEL_SERVER_URL": url})
    assert "s3cret" not in str(caught.value) and "***@server" in str(caught.value)


@pytest.mark.parametrize("url, match", [
    ("user:s3cret@server:5000", "must start with http"),
    ("http:/user:s3cret@server:5000", "must name a host"),
    ("http://user:s3cret@[::1", "is not a URL"),
    ("ftp://u:s3cret@server", "must start with http"),
])
def test_a_malformed_model_server_url_is_refused_without_showing_its_password(url, match):
    # Audit 805 F2: a URL refused for its scheme or host was echoed whole, and a broken
    # IPv6 address said only "Invalid IPv6 URL", naming no setting.
    with pytest.raises(ValueError, match=match) as caught:
        ClientConfig.load(environ={"SONOTRACE_MODEL_SERVER_URL": url})
    said = str(caught.value)
    assert "s3cret" not in said and "***@" in said
    assert said.startswith("SONOTRACE_MODEL_SERVER_URL=")


@pytest.mark.parametrize("url, match", [
    ("http://127.0.0.1:5000/?q=1#x", "query"),
    ("http://server:5000/#top", "fragment"),
    ("http://exa mple:5000", "names no valid host"),
    ("http://server;x:5000", "names no valid host"),
])
def test_a_model_server_url_every_call_would_fail_with_is_refused(url, match):
    # Audit 804 F4: accepted, then every call went to ".../?q=1#x/predict", or to a host
    # with a space, with only "cannot be reached" in the log.
    with pytest.raises(ValueError, match=match):
        ClientConfig.load(environ={"SONOTRACE_MODEL_SERVER_URL": url})


@pytest.mark.parametrize("url", ["http://model-server:5000", "http://[::1]:5000",
                                 "http://[fe80::1%25eth0]:5000", "https://10.0.0.7/sonotrace",
                                 "http://models.hospital.example.:8443", "http://model_server"])
def test_a_model_server_url_of_every_kind_of_host_is_kept(url):
    assert ClientConfig.load(
        environ={"SONOTRACE_MODEL_SERVER_URL": url}).model_server_url == url


def test_a_model_server_url_with_a_host_is_kept():
    url = "https://models.hospital.example:8443/sonotrace/"
    config = ClientConfig.load(environ={"SONOTRACE_MODEL_SERVER_URL": url})
    assert config.model_server_url == url.rstrip("/")
    assert ClientConfig.load({"model_server_url": "http://[::1]:5000"}).model_server_url == (
        "http://[::1]:5000"
    )


# --------------------------------------------------------------------------- the data folder


def test_the_data_folder_is_made_and_no_probe_is_left(tmp_path):
    config = ClientConfig.load(environ={"SONOTRACE_DATA_DIR": str(tmp_path / "a" / "data")})
    # Loading makes nothing: a mistyped folder given to prune_uploads must stay missing.
    assert not (tmp_path / "a").exists()
    config.check_data_dir()
    assert (tmp_path / "a" / "data").is_dir()
    assert list((tmp_path / "a" / "data").iterdir()) == []
    config.check_data_dir()  # an existing folder, again


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("file", "it exists and is not a folder"),
        ("under a file", "Not a directory"),
        ("/proc/nope", "No such file or directory"),  # cannot be made, even by root
        ("/proc", ""),  # an existing folder that takes no file, even from root
    ],
)
def test_a_data_folder_that_cannot_take_files_is_refused_by_name(tmp_path, where, reason):
    path = {"file": tmp_path / "f", "under a file": tmp_path / "f" / "data"}.get(where, where)
    (tmp_path / "f").write_text("not a folder")
    config = ClientConfig.load(environ={"SONOTRACE_DATA_DIR": str(path)})
    expected = f"SONOTRACE_DATA_DIR='{path}' is not a writable folder: {reason}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        config.check_data_dir()


def test_create_app_refuses_a_data_folder_that_is_a_file(tmp_path):
    from annotation_client import create_app

    (tmp_path / "data").write_text("not a folder")
    with pytest.raises(ValueError, match="SONOTRACE_DATA_DIR=.* is not a writable folder"):
        create_app({"DATA_DIR": tmp_path / "data"})
    with pytest.raises(ValueError, match="SONOTRACE_DATA_DIR=.* is not a writable folder"):
        create_app(ClientConfig(data_dir=Path("/proc")))
