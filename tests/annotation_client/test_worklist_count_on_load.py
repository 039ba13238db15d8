"""The worklist's count comes however the health poll and the page's load cross."""

from __future__ import annotations

import threading
import time

from _dash_helpers import make_worklist, wait_for, worklist_app
from selenium.webdriver.common.by import By


def test_a_poll_while_the_page_loads_does_not_drop_the_first_count(dash_duo, tmp_path,
                                                                    monkeypatch):
    folder = make_worklist(tmp_path)
    app = worklist_app(tmp_path / "data", folder)
    from annotation_client.pages import annotate  # registered by create_app

    monkeypatch.setattr(annotate, "SERVER_POLL_MS", 1000)
    real = annotate._worklist_listing
    first = threading.Event()

    def slow_first_listing():
        # A slow share: the load's listing takes longer than the poll's interval.
        if not first.is_set():
            first.set()
            time.sleep(3)
        return real()

    monkeypatch.setattr(annotate, "_worklist_listing", slow_first_listing)
    dash_duo.start_server(app)
    wait_for(dash_duo, lambda: "image(s)" in dash_duo.driver.find_element(
        By.ID, "worklist-count").text, 15, "no count under the worklist")
