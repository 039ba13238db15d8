"""Browser test: the Annotate page warns before Save when the outline and the AI label came
from different model versions.

The real model server (gunicorn, one worker) serves the shipped weights through a link;
the link is switched to a copy whose manifest names another version and the server is
reloaded gracefully (SIGHUP), as a release is rolled out, between the outline and
Classify. The warning under the AI label names both versions; Save still saves, and records
both; outlining again with the new model makes it go.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest
import requests
from _dash_helpers import click, settled, wait_for
from _dash_helpers import graph_js as _js
from _dash_helpers import upload as _upload
from selenium.webdriver.common.by import By
from weight_releases import another_release, shipped_weights, switch_link

from annotation_client import create_app, ids

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The version the copied weights' manifest is given: another release.
NEW_VERSION = "2099-01-01.1"


def _text(dash_duo, element_id: str) -> str:
    return dash_duo.driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
        element_id)


def _drawn_paths(dash_duo) -> int:
    return _js(dash_duo, "return gd ? gd.querySelectorAll('.shapelayer path').length : 0;")


def test_a_label_from_another_model_version_than_the_outline_is_warned_of_before_save(
    dash_duo, start_service, free_port, busi_dir, tmp_path, artifacts_dir
):
    shipped, old_version = shipped_weights()
    assert old_version != NEW_VERSION
    release = another_release(tmp_path / "release-2", NEW_VERSION)
    link = tmp_path / "weights"
    link.symlink_to(shipped, target_is_directory=True)
    base = f"http://127.0.0.1:{free_port}"
    master = start_service(
        [sys.executable, "-m", "model_server", "--host", "127.0.0.1", "--port", str(free_port),
         "--workers", "1"],
        f"{base}/health",
        env={"SONOTRACE_LOG_LEVEL": "INFO", "SONOTRACE_WEIGHTS_DIR": str(link)},
        timeout=float(os.environ.get("SONOTRACE_TEST_SERVER_TIMEOUT", "180")),
    )
    assert requests.get(f"{base}/health", timeout=30).json()["model"]["version"] == old_version

    data_dir = tmp_path / "annotations"
    dash_duo.start_server(create_app({"MODEL_SERVER_URL": base, "DATA_DIR": data_dir}))
    driver = dash_duo.driver
    dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD}")
    wait_for(dash_duo, lambda: "ready" in driver.find_element(By.ID, ids.SERVER_STATUS).text,
             60, "the page never saw the model server ready")
    settled(dash_duo, quiet=0.5)  # the recall of a stored name would write over one typed
    driver.find_element(By.ID, ids.ANNOTATOR).send_keys("Dr Ada")
    _upload(dash_duo, busi_dir / "benign" / "benign (4).png")
    wait_for(dash_duo, lambda: _drawn_paths(dash_duo) > 0, 90, "no AI outline appeared")
    click(driver, By.ID, ids.CLASSIFY_BUTTON)
    wait_for(dash_duo, lambda: old_version in (_text(dash_duo, "ai-label-text") or ""), 60,
             "the AI label never came")
    settled(dash_duo, quiet=0.5)
    # One model, one version: nothing to warn of.
    assert not _text(dash_duo, ids.MODEL_VERSIONS_HINT)

    # A release rolled out under the open case: the link switched, a graceful reload.
    switch_link(link, release)
    master.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 180
    while True:
        try:
            health = requests.get(f"{base}/health", timeout=30)
            if health.status_code == 200 and health.json()["model"]["version"] == NEW_VERSION:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "the reloaded server never served the new version"
        time.sleep(0.5)

    # Classify again: the label now comes from the new weights, the outline from the old.
    click(driver, By.ID, ids.CLASSIFY_BUTTON)
    wait_for(dash_duo, lambda: NEW_VERSION in (_text(dash_duo, "ai-label-text") or ""), 60,
             "the AI label of the new model never came")
    expected = (f"The outline is from model version {old_version}, the AI label from "
                f"version {NEW_VERSION}")
    wait_for(dash_duo, lambda: expected in (_text(dash_duo, ids.MODEL_VERSIONS_HINT) or ""),
             20, "no warning of the two model versions under the AI label")
    hint = driver.find_element(By.ID, ids.MODEL_VERSIONS_HINT)
    # Read out by a screen reader as it appears, and seen before Save: under the AI label.
    assert hint.get_attribute("role") == "status"
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", hint)
    assert hint.is_displayed() and expected in hint.text
    label = driver.find_element(By.ID, "ai-label-text").rect
    assert 0 <= hint.rect["y"] - (label["y"] + label["height"]) < 40
    driver.save_screenshot(str(artifacts_dir / "two-model-versions.png"))

    # A warning, not a refusal: Save saves, says it again, and records both versions.
    click(driver, By.ID, ids.SAVE_BUTTON)
    wait_for(dash_duo, lambda: (_text(dash_duo, "save-result") or "").startswith("Saved."),
             30, "the case was not saved")
    assert expected in _text(dash_duo, "save-models-check")
    (folder,) = [p for p in data_dir.iterdir() if p.is_dir() and len(p.name) == 64]
    record = json.loads((folder / "v001.json").read_text())
    assert record["model"]["segmentation"]["version"] == old_version
    assert record["model"]["classification"]["version"] == NEW_VERSION

    # Outlined again by the new model: both from one version, and the warning is gone.
    click(driver, By.ID, ids.SEGMENT_BUTTON)
    wait_for(dash_duo, lambda: not _text(dash_duo, ids.MODEL_VERSIONS_HINT), 90,
             "the warning stayed once both came from one model version")
