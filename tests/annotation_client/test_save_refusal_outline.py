"""Save's refusal while the model's outline is on its way goes once the outline is in.

The refusal "The model's outline of this image is still on its way" stayed on screen
after the outline had arrived, and read as "still waiting" (audit 806 F3).
"""

from __future__ import annotations

import json

import plotly
import pytest
from _dash_helpers import text_of
from dash.exceptions import PreventUpdate

from annotation_client import _editing, _history, create_app

SHA = "d2" * 32
META = {"sha256": SHA, "name": "scan.png", "width": 160, "height": 120}
OPENED = {"image": SHA, "at": 5}
NAME = "Enter your name in Annotator before saving."


@pytest.fixture(autouse=True)
def app(tmp_path):
    """The app the page registers with (before the page module is imported)."""
    return create_app({"DATA_DIR": tmp_path / "annotations"})


def _sent(component) -> dict:
    """The component as the browser sends it back: JSON."""
    return json.loads(json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder))


def _opened():
    return _history.new_history(_editing.make_state([], "open"), image=SHA)


def _with_ai():
    return _history.push(_opened(), _editing.make_state(["M20,20L60,20L60,60Z"], "ai"))


def test_the_refusal_goes_once_the_outline_is_in(annotate):
    alert = _sent(annotate._refusal([(annotate.OUTLINE_ON_ITS_WAY, "warning")], waiting=SHA))
    # Still on its way: the refusal stays.
    with pytest.raises(PreventUpdate):
        annotate.outline_arrived(1, None, alert, META, _opened(), None, True, OPENED)
    shown = annotate.outline_arrived(2, None, alert, META, _with_ai(), None, True, OPENED)
    assert text_of(shown) == annotate.OUTLINE_ARRIVED
    # The model server answered with an error: nothing is waited for either.
    shown = annotate.outline_arrived(None, 6, alert, META, _opened(), None, True, OPENED)
    assert text_of(shown) == annotate.OUTLINE_ARRIVED


def test_its_other_reasons_stay(annotate):
    alert = _sent(annotate._refusal([(annotate.OUTLINE_ON_ITS_WAY, "warning"),
                                     (NAME, "warning")], waiting=SHA))
    shown = annotate.outline_arrived(2, None, alert, META, _with_ai(), None, True, OPENED)
    assert "Not saved." in text_of(shown) and NAME in text_of(shown)
    assert "on its way" not in text_of(shown)


def test_other_messages_are_left_alone(annotate):
    for alert in (_sent(annotate._refusal([(NAME, "warning")])), None, "Saved."):
        with pytest.raises(PreventUpdate):
            annotate.outline_arrived(2, None, alert, META, _with_ai(), None, True, OPENED)
    # A refusal for another image is not this one's.
    alert = _sent(annotate._refusal([(annotate.OUTLINE_ON_ITS_WAY, "warning")],
                                    waiting="e3" * 32))
    with pytest.raises(PreventUpdate):
        annotate.outline_arrived(2, None, alert, META, _with_ai(), None, True, OPENED)
