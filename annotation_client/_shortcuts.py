"""The Annotate page's keyboard shortcuts, listed where the radiologist can find them.

The keys themselves are handled in ``assets/sonotrace.js``; this module only says
what they do, in the panel that the *Keys* button (or ``?``) opens: change the two
together.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

#: ``(keys, what they do)``, in the order of a reading: look, edit, save.
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("H", "Show or hide the outline, to see the margin under it"),
    ("Ctrl + scroll", "Zoom the image (a trackpad's pinch too); the scroll alone moves "
                      "the page"),
    ("C", "Pick the Cut away tool: draw around what is not lesion"),
    ("R or Shift+R", "Select the next or the previous outline (with Pan or Zoom); Esc "
                     "selects none"),
    ("Delete or Backspace", "Erase the selected outline (a click or R selects it)"),
    ("+ and −", "Grow or shrink every outline by a step"),
    ("Double-click a vertex", "Remove that vertex of the selected outline"),
    ("Ctrl+Z", "Undo"),
    ("Ctrl+Y or Ctrl+Shift+Z", "Redo"),
    ("Ctrl+S", "Save"),
    ("Ctrl+Shift+S", "Save and open the next image not annotated (with a worklist)"),
    ("?", "Show this list"),
)

#: Where the keys act, said under the list: a key pressed elsewhere belongs there.
WHERE = ("The image's keys act while the image or its tools have the focus (or nothing "
         "has). In the Record form they are left to the form, and in a text field every "
         "key is typed, except Ctrl+S in the note. On a Mac, ⌘ stands for Ctrl.")


def button(button_id: str) -> dbc.Button:
    """The tool bar's *Keys* button, which opens :func:`panel`."""
    return dbc.Button(
        "Keys",
        id=button_id,
        color="secondary",
        outline=True,
        size="sm",
        title="Keyboard shortcuts (?)",
    )


def panel(panel_id: str) -> dbc.Modal:
    """The dialog listing :data:`SHORTCUTS`; closed by its button, Esc or a click out."""
    rows = [html.Tr([html.Td(html.Kbd(keys), className="text-nowrap"), html.Td(action)])
            for keys, action in SHORTCUTS]
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle("Keyboard shortcuts", id=f"{panel_id}-title")),
            dbc.ModalBody([
                dbc.Table(
                    [html.Thead(html.Tr([html.Th("Keys", scope="col"),
                                         html.Th("Does", scope="col")])),
                     html.Tbody(rows)],
                    size="sm", class_name="mb-2",
                ),
                html.P(WHERE, className="small text-muted mb-0"),
            ]),
        ],
        id=panel_id,
        is_open=False,
        size="lg",
        labelledby=f"{panel_id}-title",
    )
