"""The page shown for an unknown address."""

import dash
import dash_bootstrap_components as dbc
from dash import html

dash.register_page(__name__, path="/404", name="Not found", title="SonoTrace · Not found")


def layout(**_query):
    return dbc.Alert(
        [
            # The page's one h1 (screen readers list a page by its headings), at the
            # size of the alert's heading.
            html.H1("Page not found", className="alert-heading h4"),
            html.P("There is no page at this address."),
            dbc.Button("Back to Annotate", href="/", color="primary", size="sm"),
        ],
        color="light",
        class_name="mt-4",
        id="not-found",
    )
