"""The shared browser fixture drives real headless Debian chromium through a real Dash app."""

from __future__ import annotations

import pytest
from dash import Dash, Input, Output, html

pytestmark = pytest.mark.browser


def _counter_app() -> Dash:
    # An annotation client built by an earlier test and never served leaves its pages'
    # callbacks in Dash's module-level lists, which the next app to serve takes; this
    # app has none of their components, so the browser would log an error for each.
    # The client's factory clears them for its own apps (_app._reset_global_callbacks).
    from dash import _callback

    _callback.GLOBAL_CALLBACK_LIST.clear()
    _callback.GLOBAL_CALLBACK_MAP.clear()
    _callback.GLOBAL_INLINE_SCRIPTS.clear()
    app = Dash(__name__)
    app.layout = html.Div(
        [
            html.Button("add", id="add", n_clicks=0),
            html.Div(id="count"),
        ]
    )

    @app.callback(Output("count", "children"), Input("add", "n_clicks"))
    def _show(n_clicks):
        return f"clicked {n_clicks} times"

    return app


def test_dash_duo_runs_callbacks_in_headless_chromium(dash_duo):
    dash_duo.start_server(_counter_app())
    dash_duo.wait_for_text_to_equal("#count", "clicked 0 times")
    dash_duo.multiple_click("#add", 3)
    dash_duo.wait_for_text_to_equal("#count", "clicked 3 times")

    driver = dash_duo.driver
    capabilities = driver.capabilities
    assert capabilities["browserName"].lower() in {"chrome", "chrome-headless-shell", "chromium"}
    # Headless chromium says so in its user agent; a visible window would need a display.
    assert "Headless" in driver.execute_script("return navigator.userAgent")
    size = driver.get_window_size()
    assert (size["width"], size["height"]) == (1280, 900)
    # Scrolls are instant: Bootstrap's smooth scrolling, left on, moves elements away
    # from where a click has just been aimed (conftest.CHROMIUM_FLAGS).
    assert driver.execute_script("return matchMedia('(prefers-reduced-motion: reduce)').matches")
    assert dash_duo.get_logs() == [], "the browser console reported errors"
