"""The annotation figure: the image at full resolution with the outline on top.

Plotly's axes are the image's pixel coordinates: x to the right, y downwards
(the y axis is reversed) and ``scaleanchor`` keeps pixels square. The image
trace is placed so that pixel ``(r, c)`` covers x in [c, c+1], y in [r, r+1],
the same convention as the vectorizer's paths. ``constrain: "domain"`` narrows the
plot area to the image's shape, so the plot area is the image (the page keeps
plotly.js from carrying one image's range over to the next:
:data:`FRESH_VIEW_SCRIPT`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import plotly.graph_objects as go

from . import _shapes, ids

OUTLINE_COLOR = "#00e5ff"
BOX_COLOR = "#ffd400"
#: Lime, unlike the yellow of a box waiting for its re-segmentation.
CALIPER_COLOR = "#76ff03"
#: Upper bound of the fill opacity: the image must stay visible through the outline.
MAX_FILL_OPACITY = 0.5
DEFAULT_FILL_OPACITY = 0.25

#: plotly's ``config`` for the graph: scroll zoom and the drawing tools.
#: Scroll zoom answers Ctrl+wheel (and a trackpad's pinch) only: ``assets/sonotrace.js``
#: stops a plain wheel over the graph before plotly sees it, so that it scrolls the page.
#: ``edits.shapePosition`` stays off on purpose: with it, plotly.js (4.x) lets shapes be
#: moved and scaled as wholes but never *activated*, and only an activated editable
#: path shows the vertex handles that make vertex dragging and deleting possible.
#: An activated shape can still be moved by dragging its outline.
GRAPH_CONFIG = {
    "displaylogo": False,
    "scrollZoom": True,
    "modeBarButtonsToAdd": ["drawclosedpath", "eraseshape"],
    # sendDataToCloud: the plotly.js bundled shows "Share chart..." by default, which
    # offers to upload the figure, the patient's image in it, to Plotly Cloud. Nothing
    # of a reading leaves the workstation.
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "sendDataToCloud"],
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "plotlyServerURL": "",
    "doubleClick": "reset",
}

#: Clientside callback body (Dash ``clientside_callback``, input: the graph's figure)
#: that makes plotly.js draw every newly opened image as if on a fresh graph.
#:
#: Why: plotly.js keeps two private notes per axis across ``Plotly.react``, which is
#: how ``dcc.Graph`` draws every new figure, and a new image's own ranges do not
#: replace them. ``_inputRange`` is what the ``constrain: "domain"`` logic believes the
#: range was before it last narrowed the plot area; an image with a shorter side than
#: the first image shown got the first image's range back, so a portrait image opened
#: after a landscape one was drawn at the left of a plot area the old width, with a
#: black strip (``plot_bgcolor``) to its right, and a square or wider one likewise.
#: ``_rangeInitial0/1`` is where a double-click (``doubleClick: "reset"``) and the mode
#: bar's home button go back to: the first image's view, strip and all. Plotly
#: clears the first only on ``relayout`` and sets the second only on a graph's first
#: plot, so before the first plot of each new image (its ``uirevision``, the image
#: hash, is new) this drops the one and sets the other to the image's own ranges
#: (with ``constrain: "domain"`` only the domain narrows, so they are the ranges
#: the view settles at). Zoom and pan within one image are left alone.
FRESH_VIEW_SCRIPT = """
function(_figure) {
    function install(tries) {
        var gd = document.querySelector('#annotation-graph .js-plotly-plot');
        if (!gd || typeof gd.on !== 'function') {
            // The graph is plotted just after its first figure arrives.
            if (tries > 0) { setTimeout(function() { install(tries - 1); }, 100); }
            return;
        }
        if (gd.__sonotraceFreshView) { return; }
        gd.__sonotraceFreshView = true;
        gd.on('plotly_relayout', function(event) { shown(gd, event); edited(gd, event); });
        gd.on('plotly_react', function() { keepSelection(gd); });
        gd.on('plotly_beforeplot', function() {
            var layout = gd._fullLayout;
            if (!layout || !layout.uirevision || layout.uirevision === gd.__sonotraceImage) {
                return;
            }
            gd.__sonotraceImage = layout.uirevision;
            // When the tab drew it, by its own clock (annotate's IMAGE_SHOWN): Dash runs
            // that callback only when a slot among the requests in flight is free.
            gd.__sonotraceImageAt = performance.now();
            // plotly.js keeps the outline selected across figures: the last image's
            // selection would select the new image's outline of that number, which
            // Delete would then erase unseen (the focus is on the image after an open).
            delete layout._activeShapeIndex;
            ['xaxis', 'yaxis'].forEach(function(name) {
                var axis = layout[name];
                if (!axis || !Array.isArray(axis.range)) { return; }
                delete axis._inputRange;
                axis._rangeInitial0 = axis.range[0];
                axis._rangeInitial1 = axis.range[1];
            });
        });
    }
    // After a graph edit, every outline plotly shows (its layout holds all edits made
    // on screen; the event only the shape it changed) and the drawing they were made
    // on, for the edit callback (annotate._shown_edits). Written as plotly reports
    // the edit, so already there when Dash builds that callback's request: a Dash
    // callback on relayoutData would wait for the edit callback, which writes it.
    function shown(gd, event) {
        var keys = event ? Object.keys(event) : [];
        if (!keys.some(function(k) { return k.indexOf('shapes') === 0; })) { return; }
        var dc = window.dash_clientside;
        if (!dc || typeof dc.set_props !== 'function' || !gd.layout) { return; }
        // Paths drawn with Cut away (named so by newshape) are kept apart: areas to
        // take off the outline, not regions of it.
        var paths = [], cuts = [];
        (gd.layout.shapes || []).forEach(function(s) {
            if (!s || s.type !== 'path' || typeof s.path !== 'string') { return; }
            (s.name === 'CUT_NAME' ? cuts : paths).push(s.path);
        });
        var revision = gd.layout.editrevision;
        dc.set_props('SHAPES_SHOWN', {data: {
            revision: typeof revision === 'string' ? revision : null, paths: paths,
            cuts: cuts}});
    }
    // The outline's paths as the graph shows them, by shape index: those of the last
    // figure, with the graph's own edits made on it since (an erase, a dragged vertex).
    function pathsOf(gd) {
        return ((gd.layout && gd.layout.shapes) || []).map(function(s) {
            return s && s.type === 'path' ? s.path : null;
        });
    }
    // A graph edit: the shapes it changed, which may differ from the answer's only in
    // plotly's number format, are the graph's own (their index is what the user edited).
    function edited(gd, event) {
        var keys = event ? Object.keys(event) : [];
        if (!keys.some(function(k) { return k.indexOf('shapes') === 0; })) { return; }
        gd.__sonotraceEdited = gd.__sonotraceEdited || {};
        keys.forEach(function(k) {
            var m = /^shapes\\[(\\d+)\\]/.exec(k);
            if (m) { gd.__sonotraceEdited[m[1]] = true; }
        });
        gd.__sonotracePaths = pathsOf(gd);
    }
    // plotly.js keeps the selected outline as a position in the shape list
    // (_activeShapeIndex) across figures: after an erase, an undo, a Grow or the AI's
    // outline, the position named another outline, which Delete then erased though
    // nobody had picked it (audit 806 F1). The selection is kept only while it is
    // still the outline the user picked: as many outlines, and none changed but the
    // selected one, and that one only by the user's own edit of it on the graph (a
    // dragged vertex). Else nothing is selected.
    function keepSelection(gd) {
        var before = gd.__sonotracePaths, touched = gd.__sonotraceEdited || {};
        var now = pathsOf(gd);
        gd.__sonotracePaths = now;
        gd.__sonotraceEdited = {};
        var layout = gd._fullLayout;
        var active = layout ? layout._activeShapeIndex : null;
        if (typeof active !== 'number' || active < 0) { return; }
        var same = Array.isArray(before) && before.length === now.length &&
            now.every(function(path, i) {
                return path === before[i] || (i === active && touched[i] === true);
            });
        if (same) { return; }
        if (typeof layout._deactivateShape === 'function') { layout._deactivateShape(gd); }
        else { delete layout._activeShapeIndex; }
    }
    install(50);
    return window.dash_clientside.no_update;
}
""".replace("SHAPES_SHOWN", ids.SHAPES_SHOWN).replace("CUT_NAME", _shapes.CUT_NAME)

#: The page's tools and the plotly ``dragmode`` each one sets.
TOOL_DRAGMODES = {
    "pan": "pan",
    "zoom": "zoom",
    "draw": "drawclosedpath",
    "box": "drawrect",
    "cut": "drawclosedpath",
}
#: A cut's path while it is drawn (and until the page takes it off the outline).
CUT_COLOR = "#ff1744"

#: The mouse modes in which the outline is editable: those in which a drag draws nothing.
#: plotly.js gives an editable shape's edge the mouse (a press there selects it), so in
#: a drawing mode (a region, a box, a cut, the calibration line) a drag that started on
#: the outline's edge drew nothing: see :data:`OUTLINE_EDITING_SCRIPT`.
EDITING_DRAGMODES = ("pan", "zoom")

#: Clientside callback body (inputs: the graph's figure and relayoutData; output: the
#: figure) that makes the outline editable only in :data:`EDITING_DRAGMODES`.
#:
#: Why in the browser: only it knows how many shapes the figure holds (the server would
#: need the figure, image and all) and the mouse mode the mode bar's buttons chose, which
#: only the graph's relayout event says. The mode is the figure's ``dragmode`` when that
#: changes (a tool picked, Calibrate), else the one a mode bar button last chose, kept on
#: the graph's element until the figure's mode or image changes (plotly keeps a mode bar
#: choice over a new figure that leaves the mode as it was). Every redraw of the outline
#: (``region_shape``: editable) is set right again at once. Going to a drawing mode also
#: drops the outline's selection: a non-editable shape is not shown selected, and Delete
#: would erase it unseen.
OUTLINE_EDITING_SCRIPT = """
function(figure, relayout) {
    var dc = window.dash_clientside;
    var layout = figure && figure.layout;
    var holder = document.getElementById('GRAPH_ID');
    if (!layout || !Array.isArray(layout.shapes) || !holder) { return dc.no_update; }
    var seen = holder.__sonotraceMouse || {};
    var triggered = (dc.callback_context.triggered || []).map(function(t) { return t.prop_id; });
    var mode = seen.mode;
    if (triggered.indexOf('GRAPH_ID.relayoutData') >= 0 && relayout &&
            typeof relayout.dragmode === 'string') {
        mode = relayout.dragmode;
    } else if (layout.dragmode !== seen.figure || layout.uirevision !== seen.image) {
        mode = layout.dragmode;
    }
    holder.__sonotraceMouse = {figure: layout.dragmode, image: layout.uirevision, mode: mode};
    var editable = EDITING_DRAGMODES.indexOf(mode) >= 0;
    var gd = holder.querySelector('.js-plotly-plot');
    var full = gd && gd._fullLayout;
    if (!editable && full && full._activeShapeIndex >= 0) {
        if (typeof full._deactivateShape === 'function') { full._deactivateShape(gd); }
        else { delete full._activeShapeIndex; }
    }
    var patch = new dc.Patch(), changed = false;
    layout.shapes.forEach(function(shape, i) {
        if (shape && (shape.editable === true) !== editable) {
            patch.assign(['layout', 'shapes', i, 'editable'], editable);
            changed = true;
        }
    });
    return changed ? patch.build() : dc.no_update;
}
""".replace("GRAPH_ID", ids.ANNOTATION_GRAPH).replace(
    "EDITING_DRAGMODES", json.dumps(list(EDITING_DRAGMODES))
)


def region_shape(path: str, *, fill_opacity: float = DEFAULT_FILL_OPACITY, visible=True) -> dict:
    """The plotly shape for one region: an editable even-odd path.

    Editable as drawn; the page takes that off while the mouse draws (a box, a cut, a
    region), so that a drag from the outline's edge draws: :data:`OUTLINE_EDITING_SCRIPT`.

    Parameters
    ----------
    path : str
        The region's path in image pixels (x, y).
    fill_opacity : float, optional
        Alpha of the fill, clipped to [0, :data:`MAX_FILL_OPACITY`]; the outline
        itself stays opaque so it is always clearly visible.
    visible : bool, optional
        Show or hide the overlay.
    """
    if not isinstance(path, str):
        raise TypeError("path must be a str")
    alpha = min(max(float(fill_opacity), 0.0), MAX_FILL_OPACITY)
    return {
        "type": "path",
        "path": path,
        "xref": "x",
        "yref": "y",
        "editable": True,
        "layer": "above",
        "fillrule": "evenodd",
        "fillcolor": f"rgba(0, 229, 255, {alpha:.3f})",
        "opacity": 1,
        "line": {"color": OUTLINE_COLOR, "width": 3},
        "visible": bool(visible),
    }


def region_shapes(
    paths: Sequence[str], *, fill_opacity: float = DEFAULT_FILL_OPACITY, visible=True
) -> list[dict]:
    """One :func:`region_shape` per path, in order (shape ``i`` is region ``i``)."""
    return [region_shape(p, fill_opacity=fill_opacity, visible=visible) for p in paths]


def caliper_annotations(region: dict | None) -> list[dict]:
    """The calipers of a region as plotly annotations: its max diameter and the
    diameter perpendicular to it, each a line with a dot at both ends.

    Annotations, not shapes: the page's shapes are the outline, one editable path per
    region, and every edit is read back from them. Plotly gives annotations that
    cannot be edited (``GRAPH_CONFIG`` has no ``edits``) no pointer events, so the
    calipers never stand between a click and a vertex.

    Parameters
    ----------
    region : dict or None
        One region of ``vectorizer.measure_regions`` (image pixels, x right, y down),
        with ``max_diameter_endpoints`` and ``perpendicular_diameter_endpoints``, and
        measured with a pixel spacing their ``_mm_endpoints``, which are drawn then:
        with non-square pixels the chords the mm figures measure are other ones, and
        the panel gives those. None draws nothing.
    """
    if not region:
        return []
    out = []
    for key in ("max_diameter_endpoints", "perpendicular_diameter_endpoints"):
        (x0, y0), (x1, y1) = region.get(key.replace("_endpoints", "_mm_endpoints")) or region[key]
        if (x0, y0) == (x1, y1):
            continue
        out.append({
            "x": x1, "y": y1, "ax": x0, "ay": y0,
            "xref": "x", "yref": "y", "axref": "x", "ayref": "y",
            "text": "", "showarrow": True, "arrowside": "end+start",
            "arrowhead": 6, "startarrowhead": 6, "arrowsize": 1, "startarrowsize": 1,
            "arrowwidth": 1.5, "arrowcolor": CALIPER_COLOR, "name": key,
        })  # fmt: skip
    return out


def newshape_style(tool: str) -> dict:
    """plotly ``layout.newshape`` for a tool: regions look like regions, boxes and cuts
    stand out."""
    if tool == "box":
        return {
            "line": {"color": BOX_COLOR, "width": 2, "dash": "dash"},
            "fillcolor": "rgba(0, 0, 0, 0)",
            "opacity": 1,
        }
    if tool == "cut":
        # Named, so that the page takes it for a cut, not a region (_shapes.CUT_NAME).
        return {
            "name": _shapes.CUT_NAME,
            "line": {"color": CUT_COLOR, "width": 2, "dash": "dot"},
            "fillcolor": "rgba(255, 23, 68, 0.2)",
            "fillrule": "evenodd",
            "opacity": 1,
        }
    return {
        "line": {"color": OUTLINE_COLOR, "width": 2},
        "fillcolor": f"rgba(0, 229, 255, {DEFAULT_FILL_OPACITY})",
        "fillrule": "evenodd",
        "opacity": 1,
    }


def empty_figure() -> go.Figure:
    """The figure shown before any image is opened."""
    figure = go.Figure()
    figure.update_layout(
        template="plotly_white",
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": "Open an ultrasound image to start",
                "showarrow": False,
                "font": {"size": 16, "color": "#6c757d"},
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
            }
        ],
        dragmode=False,
    )
    return figure


def image_figure(
    display_uri: str, width: int, height: int, revision: str, tool: str = "pan"
) -> go.Figure:
    """The figure of one image, without outline.

    Parameters
    ----------
    display_uri : str
        ``data:`` URI of the picture.
    width, height : int
        Image size in pixels.
    revision : str
        ``uirevision``: zoom and pan survive outline updates until this changes
        (the page uses the image hash).
    tool : str, optional
        The selected tool (a key of :data:`TOOL_DRAGMODES`), so a new figure
        keeps the mouse doing what the tool bar shows; unknown means pan.
    """
    if tool not in TOOL_DRAGMODES:
        tool = "pan"
    figure = go.Figure(
        go.Image(
            source=display_uri,
            x0=0.5,
            y0=0.5,
            dx=1,
            dy=1,
            # plotly gives a pixel's centre, c + 0.5: with no decimal it read as c + 1
            # (rounded up), one pixel off. One decimal gives the centre in the units
            # of the outline's SVG and the calibration line.
            hovertemplate="x %{x:.1f} · y %{y:.1f}<extra></extra>",
        )
    )
    figure.update_layout(
        template="plotly_white",
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        xaxis={
            "range": [0, width],
            "showgrid": False,
            "zeroline": False,
            "showticklabels": False,
            "constrain": "domain",
            # Zoom and pan stop at the image's edges: zoomed out past them, the image
            # was a small picture in a black field.
            "minallowed": 0,
            "maxallowed": width,
        },
        yaxis={
            "range": [height, 0],
            "showgrid": False,
            "zeroline": False,
            "showticklabels": False,
            "scaleanchor": "x",
            "scaleratio": 1,
            "constrain": "domain",
            "minallowed": 0,
            "maxallowed": height,
        },
        dragmode=TOOL_DRAGMODES[tool],
        newshape=newshape_style(tool),
        # The selected outline keeps its colour (plotly's default is magenta).
        activeshape={"fillcolor": OUTLINE_COLOR, "opacity": 0.4},
        uirevision=revision,
        shapes=[],
        plot_bgcolor="#000000",
    )
    return figure
