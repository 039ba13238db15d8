"""The Dash application factory: the shell (navbar, page container, shared stores)."""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from importlib import metadata
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
import flask
from dash import dcc, html
from werkzeug.exceptions import ClientDisconnected

from vectorizer._connections import RequestTooSlow
from vectorizer._settings import cross_site, same_origin, untrusted_host_hint  # noqa: F401

from . import _api, _callback_guard, _readers, _signing, _worklist, ids
from ._config import ClientConfig, host_is_trusted
from ._database import AnnotationIndex, IndexUnavailable
from ._server_client import CallSlots, HealthWatch
from ._storage import (
    DATA_MARK,
    AnnotationStore,
    DataFolderChanged,
    IndexProbe,
    WriteProbe,
    mark_data_folder,
)

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_KEY = "SONOTRACE_CLIENT"
INDEX_KEY = "SONOTRACE_INDEX"
#: The worker's slots for calls to the model server (see _server_client.CallSlots).
MODEL_SLOTS_KEY = "sonotrace.model_slots"
#: The worker's health checks of the model server (see _server_client.HealthWatch).
HEALTH_WATCH_KEY = "sonotrace.health_watch"
#: The id of the data folder's mark when the app started (see _storage.mark_data_folder).
DATA_MARK_KEY = "sonotrace.data_mark"
WARMUP_THREAD = "sonotrace-worklist-warmup"
#: Bootstrap 5's CSS comes from the XStatic-Bootstrap wheel and is served by this
#: app: dbc.themes.* point at a CDN, and hospitals run air-gapped.
VENDOR_ROUTE = "/_sonotrace/vendor/bootstrap/"
BOOTSTRAP_CSS = VENDOR_ROUTE + "css/bootstrap.min.css"
#: The component properties that carry an image file: only the callbacks that take
#: one may send an upload-sized body (see _callback_guard).
FILE_VALUES = ((ids.IMAGE_UPLOAD, "contents"), (ids.IMAGE_DATA, "data"))
#: Headers on every answer (a route's own value wins). No other site may frame the
#: pages (a click on Save through an invisible frame). The policy names only what
#: cannot break Dash, which runs inline scripts and Plotly's inline styles. Referrer
#: same-origin, not no-referrer: under no-referrer the browser sends "Origin: null"
#: with the page's own callbacks, which the origin check refuses.
SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
#: Methods that change nothing; any other must come from the client's own pages.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _bootstrap_dir() -> Path:
    import xstatic.pkg.bootstrap as xstatic_bootstrap

    return Path(xstatic_bootstrap.BASE_DIR)


def package_version() -> str:
    """SonoTrace's installed version (``0+unknown`` in a checkout never installed)."""
    try:
        return metadata.version("sonotrace")
    except metadata.PackageNotFoundError:  # running from a checkout without install
        return "0+unknown"


def get_config() -> ClientConfig:
    """The :class:`ClientConfig` of the app serving the current request."""
    return flask.current_app.config[CONFIG_KEY]


def get_model_slots() -> CallSlots:
    """The model-call slots of the app serving the current request: one set per
    process (gunicorn builds the app in each worker), shared by its threads."""
    return flask.current_app.config[MODEL_SLOTS_KEY]


def get_health_watch() -> HealthWatch:
    """The model server's health checks of the app serving the current request: one
    watch per process, so at most one of its threads waits for a hung server."""
    return flask.current_app.config[HEALTH_WATCH_KEY]


def get_index() -> AnnotationIndex:
    """The annotation index of the app serving the current request."""
    return flask.current_app.config[INDEX_KEY]


def get_reader() -> str | None:
    """Whose saves the current request may see (see :mod:`annotation_client._readers`).

    Returns
    -------
    str or None
        The signed-in reader under blinded reading, None (every save) otherwise.

    Raises
    ------
    annotation_client._signin.SignInError
        Under blinded reading, when the sign-in proxy named nobody (a ValueError).
    """
    return _readers.visible_annotator(get_config(), flask.request.headers)


def get_store() -> AnnotationStore:
    """The annotation store of the current app: its data directory, indexed, and checked
    at each save to be the folder the app started on (its mark)."""
    return AnnotationStore(get_config().data_dir, index=get_index(),
                           mark=flask.current_app.config.get(DATA_MARK_KEY))


def _sync_index(index: AnnotationIndex, data_dir: Path, probe: IndexProbe) -> None:
    # Saves whose index write failed, or records copied in, join the index here.
    # The client works without the index, so a broken database is logged, and said by
    # /health, not fatal. Opened first, even with no saved version to add: a mistyped
    # SQLite path or a PostgreSQL server that is down showed only at the first listing.
    if probe.problem() is not None:
        return  # logged by the probe; the sync would fail the same way
    try:
        result = index.sync(data_dir)
    except IndexUnavailable as exc:
        logger.error("annotation index %s unavailable: %s", index.safe_url, exc.logged())
        return
    if result["skipped"]:
        logger.warning("annotation index: %d record(s) unreadable", len(result["skipped"]))


def _plain(status: int, text: str) -> flask.Response:
    return flask.Response(text + "\n", status=status, mimetype="text/plain")


def _install_request_checks(server: flask.Flask, settings: ClientConfig) -> None:
    """Refuse requests to another host (400) and state changes from another site (403)."""

    def check_request():
        request = flask.request
        host = request.headers.get("Host")
        if not host_is_trusted(host, settings.trusted_hosts):
            # A page that rebinds its own name to this machine's address gets here: the
            # browser sends that name. Plain text: Dash pages are not JSON.
            logger.warning("refused a request from %s for the host %r", request.remote_addr,
                           (host or "")[:200])
            return _plain(400, f"Bad Request: this client does not answer to the host "
                          f"{(host or '')[:200]!r}{untrusted_host_hint(host)}")
        if request.method in SAFE_METHODS:
            return None
        reason = cross_site(request.headers)
        if reason is not None:
            logger.warning("refused a %s %s from %s: %s", request.method, request.path,
                           request.remote_addr, reason)
            return _plain(403, f"Forbidden: {reason}")
        return None

    # First of all the hooks (Dash's setup, the callback guard, which reads the body):
    # nothing runs for a request this client should not answer.
    server.before_request_funcs.setdefault(None, []).insert(0, check_request)

    @server.errorhandler(ClientDisconnected)
    def stalled_request(exc: ClientDisconnected):
        # werkzeug makes any error reading a body "client disconnected", a 400. A read
        # that timed out is a body that stalled or came too slowly (under gunicorn:
        # vectorizer._connections); the answer says so, and gunicorn closes after it.
        cause = exc.__context__
        if not isinstance(cause, TimeoutError):
            return exc  # its own 400, as before (only callbacks read a body; no /api path)
        reason = (str(cause) if isinstance(cause, RequestTooSlow)
                  else f"the request stalled: no data for {settings.read_timeout} s")
        logger.warning("a %s %s from %s ended: %s", flask.request.method,
                       flask.request.path[:200], flask.request.remote_addr, reason)
        return _plain(408, f"Request Timeout: {reason}")

    @server.after_request
    def add_security_headers(response: flask.Response) -> flask.Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @server.after_request
    def not_found_status(response: flask.Response) -> flask.Response:
        # Dash answers every path with its page shell and picks the page in the
        # browser, so a mistyped address or a stale bookmark was a 200: invisible to
        # link checkers, proxies and monitoring. The shell is still sent (the page
        # says "not found"), with the status that says so.
        if (response.status_code == 200 and response.mimetype == "text/html"
                and flask.request.method in ("GET", "HEAD")
                and not _is_page(flask.request.path)):
            response.status_code = 404
        return response


def _is_page(path: str) -> bool:
    """Whether ``path`` (the request's, without the app's prefix) is one of the pages
    the navbar lists, as Dash matches them (a trailing slash ignored)."""
    wanted = path.rstrip("/") or "/"
    return any(
        (page["path"].rstrip("/") or "/") == wanted
        for page in dash.page_registry.values()
        if page["module"].split(".")[-1] != "not_found_404"
    )


def _owner_only_index(settings: ClientConfig) -> None:
    # The default index is a SQLite file in the data folder, made with the process's
    # umask (0644 under the usual 022): notes, readers' names and file paths. It is the
    # client's own file, so an index made before this check, or under another umask, is
    # made owner-only too. SQLite gives its journal the database's mode.
    if settings.database_url is not None:
        return
    path = Path(settings.index_url.database)
    if not path.exists():  # the index could not be opened: logged already
        return
    try:
        mode = path.stat().st_mode
        if mode & 0o077 and path.stat().st_uid == os.geteuid():
            path.chmod(stat.S_IMODE(mode) & 0o700)
    except OSError as exc:
        logger.warning("annotation index %s: could not make it owner-only: %s", path, exc)


def _navbar() -> dbc.Navbar:
    pages = [
        page
        for page in sorted(dash.page_registry.values(), key=lambda p: (p["order"] or 0, p["path"]))
        if page["module"].split(".")[-1] != "not_found_404"
    ]
    links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
        for page in pages
    ]
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand("SonoTrace", href="/", class_name="fw-semibold"),
                dbc.Nav(links, navbar=True, class_name="me-auto"),
            ],
            fluid=True,
        ),
        id=ids.NAVBAR,
        color="dark",
        dark=True,
        class_name="mb-2 py-1",
    )


def _reset_global_callbacks() -> None:
    # Pages register their callbacks with dash.callback into module-level lists that
    # the *first app to serve a request* takes. Dash re-executes the page modules for
    # every new app, so leftovers of an app that was built but never served (a unit
    # test, say) would be handed to this one twice. Start each app from a clean slate.
    from dash import _callback

    _callback.GLOBAL_CALLBACK_LIST.clear()
    _callback.GLOBAL_CALLBACK_MAP.clear()
    _callback.GLOBAL_INLINE_SCRIPTS.clear()


def _set_up_dash_now(app: dash.Dash) -> None:
    """Run Dash's first-request setup now, before the app serves any request.

    Dash builds ``app.callback_map`` (and the pages router's callback) in
    ``before_request`` hooks that mark themselves done before they finish: requests
    that reached a fresh worker together saw a map half built, and the callback
    guard refused a valid Save with "reload the page", which loses the outline
    (audit 701). Run here, in one thread, the map is whole before the first request.
    """
    hooks = [hook for hook in app.server.before_request_funcs.get(None, [])
             if getattr(hook, "__qualname__", "").startswith("Dash.")]
    with app.server.test_request_context("/"):
        for hook in hooks:
            hook()


def _warm_worklist(settings: ClientConfig, index: AnnotationIndex) -> threading.Thread | None:
    """Hash the worklist's files in the background, so the first page load does not.

    An entry's status needs the SHA-256 of its file; the first listing would
    otherwise read every file while the radiologist waits (a network share of
    thousands of images takes minutes). The hashes land in the process's cache.
    """
    if settings.worklist_dir is None:
        return None

    def run():
        started = time.perf_counter()
        try:
            listing = _worklist.list_images(
                settings.worklist_dir,
                AnnotationStore(settings.data_dir, index=index),
                max_bytes=settings.max_upload_bytes,
            )
        except (OSError, ValueError) as exc:
            logger.warning("worklist warm-up failed: %s", exc)
            return
        logger.info(
            "worklist: %d file(s) under %s hashed in %.1f s",
            len(listing.entries),
            settings.worklist_dir,
            time.perf_counter() - started,
        )

    thread = threading.Thread(target=run, name=WARMUP_THREAD, daemon=True)
    thread.start()
    return thread


def create_app(config=None) -> dash.Dash:
    """Build the annotation client.

    Parameters
    ----------
    config : mapping, optional
        Settings overriding the ``SONOTRACE_*`` environment (see
        :class:`ClientConfig`), e.g. ``{"MODEL_SERVER_URL": ..., "DATA_DIR": ...}``.

    Returns
    -------
    dash.Dash
        The app; ``app.server`` is its Flask server (``GET /health`` answers 200).

    Raises
    ------
    ValueError
        For a setting that does not parse, or a data folder that is not a folder
        in which files can be written (made here when it is missing).
    """
    settings = config if isinstance(config, ClientConfig) else ClientConfig.load(config)
    # Before anything opens files there: otherwise /health would answer 200 while every
    # save failed.
    settings.check_data_dir()
    try:
        # Which folder saves go to: one unmounted or moved while the client runs is
        # not made again in its place (AnnotationStore.check_folder).
        mark = mark_data_folder(settings.data_dir)
    except OSError as exc:
        raise ValueError(f"SONOTRACE_DATA_DIR={str(settings.data_dir)!r}: its mark "
                         f"{DATA_MARK} cannot be read or made: {exc}") from None
    _reset_global_callbacks()
    app = dash.Dash(
        "annotation_client",
        use_pages=True,
        pages_folder=str(PACKAGE_DIR / "pages"),
        assets_folder=str(PACKAGE_DIR / "assets"),
        external_stylesheets=[BOOTSTRAP_CSS],
        serve_locally=True,
        suppress_callback_exceptions=True,
        title="SonoTrace",
        update_title=None,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    server = app.server
    server.config[CONFIG_KEY] = settings
    server.config[MODEL_SLOTS_KEY] = CallSlots(settings.model_calls)
    server.config[HEALTH_WATCH_KEY] = HealthWatch()
    # The gunicorn workers' read timeout (vectorizer._connections reads it here).
    server.config["READ_TIMEOUT"] = settings.read_timeout
    server.config[DATA_MARK_KEY] = mark
    index = AnnotationIndex(settings.index_url)
    server.config[INDEX_KEY] = index
    index_probe = IndexProbe(index)
    _sync_index(index, settings.data_dir, index_probe)
    _owner_only_index(settings)
    _install_request_checks(server, settings)
    _api.register(server, index, settings)
    server.config[_signing.CONFIG_KEY] = _signing.load_key(settings.data_dir)
    server.config[_signing.PREVIOUS_CONFIG_KEY] = _signing.load_previous_keys()
    # Base64 inflates an upload by 4/3; a save carries the file and everything a
    # callback without it may (the undo history, the model's answers): that much room.
    # Only the callbacks that carry the file get this much (the guard's FILE_VALUES).
    server.config["MAX_CONTENT_LENGTH"] = (
        int(settings.max_upload_bytes * 1.4) + _callback_guard.SMALL_LIMIT
    )
    _callback_guard.register(app, FILE_VALUES)
    _warm_worklist(settings, index)

    bootstrap_dir = _bootstrap_dir()

    @server.route(VENDOR_ROUTE + "<path:filename>")
    def vendor_bootstrap(filename: str):
        return flask.send_from_directory(bootstrap_dir, filename, max_age=86400)

    # Saves fail on a disk full or remounted read-only though the folder is the same one.
    probe = WriteProbe(settings.data_dir)

    @server.route("/health")
    def health():
        body = {
            "status": "ok",
            "service": "annotation_client",
            "version": package_version(),
            "model_server_url": settings.model_server_url,
        }
        try:
            AnnotationStore(settings.data_dir, mark=mark).check_folder()
        except DataFolderChanged as exc:
            # Saves are refused until the folder is back: a health check should see it.
            logger.error("data folder %s %s", settings.data_dir, exc.why)
            return flask.jsonify(body | {"status": "error", "data_folder": exc.why}), 503
        problem = probe.problem()  # logged by the probe when it changes
        if problem is not None:
            return flask.jsonify(body | {"status": "error", "data_folder": problem}), 503
        # The Saved page, its API and the saves' rows fail while the index cannot be opened.
        problem = index_probe.problem()  # logged by the probe when it changes
        if problem is not None:
            return flask.jsonify(body | {"status": "error", "index": problem}), 503
        return flask.jsonify(body)

    app.layout = html.Div(
        [
            _navbar(),
            dcc.Store(id=ids.ANNOTATOR_STORE, storage_type="local"),
            html.Div(id=ids.UNSAVED_FLAG, hidden=True),
            dcc.Store(id=ids.SIGNED_IN_AS),
            # The annotate page's work lives in the shell, so visiting another page and
            # coming back loses nothing.
            dcc.Store(id=ids.IMAGE_META),
            # Written from IMAGE_META, so in the shell too (see the annotate page).
            dcc.Store(id=ids.WORKLIST_REOPEN, storage_type="session"),
            dcc.Store(id=ids.IMAGE_DATA),
            dcc.Store(id=ids.HISTORY),
            dcc.Store(id=ids.AI_RESULT),
            dcc.Store(id=ids.CLASSIFICATION),
            # True from a Classify click until its answer is taken in.
            dcc.Store(id=ids.CLASSIFY_PENDING),
            # Re-segmentation boxes asked for and not yet taken in, and the answers.
            dcc.Store(id=ids.BOX_PENDING),
            dcc.Store(id=ids.BOX_RESULT),
            # The page's content is its main landmark, so a screen reader can skip the
            # navbar to it.
            html.Main(dbc.Container(dash.page_container, fluid=True, class_name="pb-4")),
        ]
    )
    # Screen readers pick the voice from the document's language.
    app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)
    _set_up_dash_now(app)
    logger.info(
        "annotation client: model server %s, data dir %s, index %s",
        settings.model_server_url,
        # Absolute: "annotations", the default, says nothing of where saves go.
        Path(settings.data_dir).resolve(),
        index.safe_url,
    )
    if settings.annotator_header:
        # Says who is trusted to name the annotator, for whoever audits the deployment.
        logger.info(
            "annotation client: saves record the user named by the sign-in proxy's %s header",
            settings.annotator_header,
        )
    if settings.blinded_reading:
        logger.info(
            "annotation client: blinded reading, each reader sees only their own saves; "
            "%d reviewer(s) see every save",
            len(settings.reviewers),
        )
    return app
