"""Make the README's screenshot of the Annotate page from a synthetic phantom.

``python scripts/screenshot.py`` (the virtualenv's Python, from the checkout) draws a
breast-ultrasound phantom, starts the real model server and annotation client on free
ports of 127.0.0.1 with a temporary ``SONOTRACE_DATA_DIR``, opens the page in Debian's
headless Chromium through selenium, uploads the phantom, waits for the AI outline and
its measurements, clicks Classify, waits for the probabilities and saves the window to
``docs/screenshot-annotate.png`` (``--out``). No BUSI image may be committed (README,
"Data and citation"), so the picture must be made from an image that is nobody's.

Everything it starts (both services, chromedriver and Chromium) is stopped before it
exits, after an error, Ctrl-C or SIGTERM too; the services also get SIGTERM from the
kernel if this script is killed outright, as under ``make run`` (``scripts/run.py``,
whose :class:`Service` starts and stops them here). Each ``SONOTRACE_*`` setting of
the calling shell is blanked for the services, so that the picture shows the defaults
and nothing is read from or written to a real data folder or database.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

SCRIPTS = Path(__file__).resolve().parent
REPO_ROOT = SCRIPTS.parent
# Run as a script, this folder is on sys.path but the checkout is not: the launcher
# needs both (it imports vectorizer._settings).
for folder in (SCRIPTS, REPO_ROOT):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import run as launcher  # noqa: E402 - needs the sys.path entries above

from annotation_client import ids  # noqa: E402

log = logging.getLogger("sonotrace.screenshot")

DEFAULT_OUT = REPO_ROOT / "docs" / "screenshot-annotate.png"
CHROMIUM = os.environ.get("SONOTRACE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SONOTRACE_CHROMEDRIVER", "/usr/bin/chromedriver")
#: The tests' Chromium flags (tests/conftest.py), for the same rendering; reduced motion
#: so that a scroll is over when the next step reads the page.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--force-prefers-reduced-motion",
    "--hide-scrollbars",
)
#: JavaScript: the number of outline shapes drawn on the Annotate page's graph.
DRAWN_PATHS = (
    "var gd = document.querySelector('#annotation-graph .js-plotly-plot');"
    "return gd ? gd.querySelectorAll('.shapelayer path').length : 0;"
)
#: JavaScript: the percentages written on the classification chart's bars.
BAR_LABELS = (
    f"return Array.from(document.querySelectorAll('#{ids.PROBABILITY_GRAPH} .bars text'))"
    ".map(t => t.textContent.trim()).filter(t => t);"
)
#: JavaScript: whether Dash has a callback in flight (dash.testing's check, shortened).
CALLBACKS_PENDING = (
    "var s = window.store && window.store.getState(); if (!s) { return true; }"
    "var c = Object.assign({}, s.callbacks); delete c.stored; delete c.completed;"
    "return [].concat.apply([], Object.values(c)).length > 0;"
)


class ScreenshotError(RuntimeError):
    """A step did not happen in time, or a service could not serve."""


# ----------------------------------------------------------------------------- phantom


def phantom(seed: int = 4, width: int = 560, height: int = 460) -> tuple[np.ndarray, np.ndarray]:
    """A B-mode breast-ultrasound phantom with one benign-looking lesion.

    Skin line, subcutaneous fat with Cooper's ligaments, layered fibroglandular tissue
    and pectoral muscle, darker with depth; an oval hypoechoic lesion, wider than tall,
    with a gently lobulated soft rim, low-level internal echoes and posterior
    enhancement; Rayleigh speckle blurred more sideways than in depth, as a
    transducer's point spread function is. The shipped model outlines seed 4 with a
    Dice of about 0.95 against ``lesion`` and calls it benign.

    Parameters
    ----------
    seed : int
        Seed of the speckle, fat and ligaments; the lesion is the same for every seed.
    width, height : int
        Image size in pixels, at least 400 x 300 (the lesion is centred at x = 290,
        y = 210).

    Returns
    -------
    image : ndarray of uint8, shape (height, width)
        The grey image, (row, col).
    lesion : ndarray of bool, shape (height, width)
        The lesion as drawn, for checking the model's outline.

    Examples
    --------
    >>> image, lesion = phantom(width=400, height=300)
    >>> image.shape, image.dtype.name, bool(lesion[210, 290]), bool(lesion[20, 20])
    ((300, 400), 'uint8', True, False)
    """
    if width < 400 or height < 300:
        raise ValueError(f"width and height must be at least 400 x 300, not {width} x {height}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    wave = 10 * np.sin(xx / 70.0 + 0.8) + 6 * np.sin(xx / 31.0)
    base = np.full((height, width), 0.55)
    base[yy < 18] = 0.95  # skin
    fat = (yy >= 18) & (yy < 110 + wave)
    # Fat is blotchy, not flat grey: a smooth random field, wider than tall.
    blotch = ndimage.gaussian_filter(rng.standard_normal((height, width)), (6, 14))
    base = np.where(fat, 0.34 + 3.0 * blotch, base)
    for _ in range(7):  # Cooper's ligaments: thin curved lines slanting through the fat
        x0, tilt, bend = rng.uniform(0, width), rng.uniform(-1.2, 1.2), rng.uniform(20, 50)
        line = np.abs(xx - (x0 + tilt * (yy - 60) + bend * np.sin(yy / 35.0)))
        base = np.where(fat & (line < 1.5), 0.62, base)
    gland = (yy >= 110 + wave) & (yy < 360 + 0.6 * wave)
    base[gland] = 0.62 + 0.12 * np.sin(yy[gland] / 9.0 + np.sin(xx[gland] / 45.0))
    muscle = yy >= 360 + 0.6 * wave  # striated: fibres as bright bands
    base[muscle] = 0.4 + 0.15 * (np.sin(yy[muscle] / 6.0) > 0.6)
    base *= np.clip(1.15 - 0.6 * yy / height, 0.4, 1.0)  # attenuation with depth

    cx, cy, a, b = 290, 210, 70, 45
    angle = np.arctan2(yy - cy, xx - cx)
    lobes = 1 + 0.04 * np.sin(3 * angle + 0.5) + 0.03 * np.sin(5 * angle)
    r = np.hypot((xx - cx) / a, (yy - cy) / b) / lobes
    lesion = r < 1
    # A soft rim, as a real margin blurs; a cut-out edge looks pasted in. The internal
    # echoes stay faint and smooth: stronger, patchy ones made the model say malignant.
    rim = np.clip((r - 0.93) / 0.14, 0, 1)
    inside = 0.13 + 0.7 * ndimage.gaussian_filter(rng.standard_normal((height, width)), 5)
    base = rim * base + (1 - rim) * np.clip(inside, 0.06, 0.3)
    below = np.clip(1 - np.abs(xx - cx) / (a * 0.95), 0, 1) ** 0.5
    below *= (yy > cy + b * 0.7) * np.exp(-(yy - cy - b) / 180.0).clip(0, 1)
    base *= 1 + 0.3 * below * (r >= 1)  # posterior enhancement, fading with depth

    speckle = rng.rayleigh(0.55, (height, width))
    image = ndimage.gaussian_filter(base * speckle, (0.9, 2.2))
    image = np.clip(image / np.percentile(image, 99.5), 0, 1) ** 0.9
    return (image * 255).astype(np.uint8), lesion


# ---------------------------------------------------------------------------- services


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def services(data_dir: Path, server_port: int, client_port: int,
             timeout: float) -> Iterator[str]:
    """Run the model server and the annotation client until the block ends.

    Parameters
    ----------
    data_dir : Path
        The client's ``SONOTRACE_DATA_DIR``.
    server_port, client_port : int
        Ports of 127.0.0.1; 0 picks a free one.
    timeout : float
        Seconds both have to answer ``/health`` with 200 (the models load meanwhile).

    Yields
    ------
    str
        The client's URL, ``http://127.0.0.1:PORT``.

    Raises
    ------
    ScreenshotError
        When a port is taken, a service exits or says it cannot serve, or is not ready
        within ``timeout``. Both are stopped, client first, in every case.
    """
    server_port = server_port or free_port()
    while not client_port or client_port == server_port:  # two asks may get one port
        client_port = free_port()
    started = launcher.build_services("127.0.0.1", server_port, client_port)
    # Blank, which the services read as unset: the caller's database, worklist or
    # sign-in must not be used, nor show in the picture.
    blank = {name: "" for name in os.environ if name.startswith("SONOTRACE_")}
    quiet = {"SONOTRACE_LOG_LEVEL": "warning", "TF_CPP_MIN_LOG_LEVEL": "2"}
    for service, option in zip(started, ("--server-port", "--client-port"), strict=True):
        service.port_option = option  # named in the message when the port is taken
        problem = service.port_problem()
        if problem:
            raise ScreenshotError(problem)
        service.env = {**blank, **quiet, **service.env, "SONOTRACE_DATA_DIR": str(data_dir)}
    # One worker: a second would only load the models again.
    started[0].env["SONOTRACE_WORKERS"] = "1"
    try:
        for service in started:
            service.start()
        wait(lambda: all(_ready(service) for service in started), timeout,
             "the model server and the annotation client to be ready")
        yield started[-1].url
    finally:
        for service in reversed(started):
            service.stop(grace=15)


def _ready(service: launcher.Service) -> bool:
    if not service.alive():
        raise ScreenshotError(f"the {service.name} exited with code {service.process.poll()}")
    try:
        # Asked once ready no more: the other may still be loading its models.
        service.ready = service.ready or service.healthy()
    except launcher.ServiceFailed as exc:
        raise ScreenshotError(f"the {service.name} cannot serve: {exc}") from None
    return service.ready


def wait(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll ``condition()`` until it is truthy, and return it.

    Raises
    ------
    ScreenshotError
        Naming ``what`` was waited for, after ``timeout`` seconds.
    """
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
    )

    deadline = time.monotonic() + timeout
    while True:
        # Dash re-renders elements between finding and reading them: try again.
        with contextlib.suppress(NoSuchElementException, StaleElementReferenceException):
            result = condition()
            if result:
                return result
        if time.monotonic() > deadline:
            raise ScreenshotError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.1)


# ----------------------------------------------------------------------------- browser


@contextlib.contextmanager
def browser(width: int, height: int) -> Iterator:
    """Headless Chromium through selenium, its viewport ``width`` x ``height``; quit at
    the end of the block.

    Yields
    ------
    selenium.webdriver.Chrome
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=options)
    try:
        _set_viewport(driver, width, height)
        yield driver
    finally:
        driver.quit()


def _set_viewport(driver, width: int, height: int) -> None:
    # The window size includes what headless Chromium keeps for its (hidden) frame,
    # so a 1280x900 window shows a smaller page: size the window by what is left.
    driver.set_window_size(width, height)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight];")
    driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])


def settle(driver, quiet: float = 1.0, timeout: float = 60) -> None:
    """Wait until no Dash callback has been in flight for ``quiet`` seconds, so that the
    picture is of a page that has finished drawing."""
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        if driver.execute_script(CALLBACKS_PENDING):
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= quiet:
            return
        time.sleep(0.05)
    raise ScreenshotError(f"Dash callbacks still in flight after {timeout:.0f} s")


def click(driver, element_id: str) -> None:
    """Click an element as a user would: scrolled into view first."""
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.ID, element_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def annotate(driver, url: str, image: Path, annotator: str, timeout: float) -> bytes:
    """Open ``image`` on the Annotate page at ``url``, outline and classify it.

    Returns
    -------
    bytes
        The PNG of the browser's viewport, scrolled to the top.
    """
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def text(element_id: str) -> str:
        return driver.find_element(By.ID, element_id).text

    driver.get(url)
    wait(lambda: "ready" in text(ids.SERVER_STATUS), timeout, "the model server badge")
    settle(driver, quiet=0.5)  # a stored name recalled later would replace the one typed
    if annotator:
        field = driver.find_element(By.ID, ids.ANNOTATOR)
        if not field.get_attribute("value"):
            field.send_keys(annotator, Keys.TAB)
    # What a file chosen in the browse dialog does (tests/annotation_client/_dash_helpers).
    upload = driver.find_element(By.CSS_SELECTOR, f"#{ids.IMAGE_UPLOAD} input[type=file]")
    upload.send_keys(str(image))
    wait(lambda: driver.execute_script(DRAWN_PATHS), timeout, "the AI outline")
    wait(lambda: "px²" in text(ids.MEASUREMENTS), timeout, "the measurements")
    click(driver, ids.CLASSIFY_BUTTON)
    wait(lambda: len(driver.execute_script(BAR_LABELS)) == 3, timeout, "the probabilities")
    settle(driver)
    # The page as first seen: at the top, no focus ring on Classify, and the mouse
    # over the empty middle of the navbar rather than over a plot (hover labels) or
    # a button (its hover colour).
    driver.execute_script("window.scrollTo(0, 0); document.activeElement.blur();")
    ActionChains(driver).move_to_element(driver.find_element(By.ID, ids.NAVBAR)).perform()
    settle(driver, quiet=0.5)
    return driver.get_screenshot_as_png()


def small_png(png: bytes) -> bytes:
    """``png`` as a 256-colour PNG with zlib's best effort and no metadata: the README's
    picture stays in git forever.

    Median cut without dithering keeps the page's flat colours exact and moves the
    image's greys by 0.2 levels on average: the file is 28 % smaller than as RGB. (An
    octree palette is smaller still but posterizes the greys into bands of colour.)
    """
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# -------------------------------------------------------------------------------- main


def _stop_on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
    # SIGTERM or SIGHUP would end Python without the finally blocks: as an exception
    # they run, and the services, chromedriver and Chromium are stopped.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, make the phantom and the screenshot.

    Returns
    -------
    int
        0 once the picture is written; 1, after one line on stderr, when a step failed.
    """
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where to write the PNG (default docs/screenshot-annotate.png)")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in pixels")
    parser.add_argument("--height", type=int, default=757, help="viewport height in pixels")
    parser.add_argument("--seed", type=int, default=4, help="the phantom's random seed")
    parser.add_argument("--annotator", default="",
                        help="a name typed in the Record panel (below the picture; not "
                        "needed to classify)")
    parser.add_argument("--server-port", type=int, default=0,
                        help="model server port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--client-port", type=int, default=0,
                        help="annotation client port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds for the services to be ready and for each step")
    args = parser.parse_args(argv)
    if args.server_port and args.server_port == args.client_port:
        parser.error("--server-port and --client-port must differ")
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_on_signal)
    try:
        with tempfile.TemporaryDirectory(prefix="sonotrace-screenshot-") as folder:
            image = Path(folder) / "phantom.png"
            Image.fromarray(phantom(args.seed)[0]).save(image)
            data_dir = Path(folder) / "data"
            data_dir.mkdir()
            with services(data_dir, args.server_port, args.client_port, args.timeout) as url:
                with browser(args.width, args.height) as driver:
                    png = annotate(driver, url, image, args.annotator, args.timeout)
    except ScreenshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(small_png(png))
    log.info("wrote %s (%d KB)", args.out, args.out.stat().st_size // 1024)
    return 0


if __name__ == "__main__":
    sys.exit(main())
