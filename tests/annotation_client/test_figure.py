import json

import pytest

from annotation_client import _figure as f
from annotation_client import ids


def test_region_shapes_are_editable_translucent_evenodd_paths():
    shape = f.region_shape("M0,0L4,0L4,4Z", fill_opacity=0.9)
    assert shape["type"] == "path" and shape["editable"] is True
    assert shape["fillrule"] == "evenodd"
    alpha = float(shape["fillcolor"].rsplit(",", 1)[1].rstrip(") "))
    assert alpha == f.MAX_FILL_OPACITY == 0.5  # capped: the image must stay visible
    assert shape["opacity"] == 1 and shape["line"]["color"] == f.OUTLINE_COLOR
    assert f.region_shape("M0,0L1,0L1,1Z", fill_opacity=-1)["fillcolor"].endswith("0.000)")
    assert [s["path"] for s in f.region_shapes(["a", "b"], visible=False)] == ["a", "b"]
    assert not f.region_shapes(["a"], visible=False)[0]["visible"]


def test_image_figure_uses_image_pixel_axes():
    figure = f.image_figure("data:image/png;base64,AAAA", 300, 200, "rev").to_plotly_json()
    layout = figure["layout"]
    assert layout["xaxis"]["range"] == [0, 300]
    assert layout["yaxis"]["range"] == [200, 0]  # y grows downwards, as in the image
    assert layout["yaxis"]["scaleanchor"] == "x" and layout["yaxis"]["scaleratio"] == 1
    assert layout["uirevision"] == "rev"
    trace = figure["data"][0]
    # Pixel (r, c) covers x in [c, c+1]: its centre is at c + 0.5.
    assert (trace["x0"], trace["y0"], trace["dx"], trace["dy"]) == (0.5, 0.5, 1, 1)
    # The hover gives that centre: rounded to a whole number, 0.5 read as 1.
    assert trace["hovertemplate"] == "x %{x:.1f} · y %{y:.1f}<extra></extra>"


@pytest.mark.parametrize(("tool", "dragmode"), [("draw", "drawclosedpath"), ("box", "drawrect"),
                                               ("zoom", "zoom"), (None, "pan")])
def test_a_new_image_figure_keeps_the_selected_tool(tool, dragmode):
    # Opening an image (or coming back to the page) with "Box re-segment" selected
    # must leave the mouse drawing boxes, as the tool bar shows.
    layout = f.image_figure("data:,", 30, 20, "rev", tool).to_plotly_json()["layout"]
    assert layout["dragmode"] == dragmode
    assert layout["newshape"] == f.newshape_style(tool if tool else "pan")


def test_tools_map_to_plotly_dragmodes():
    assert f.TOOL_DRAGMODES == {
        "pan": "pan",
        "zoom": "zoom",
        "draw": "drawclosedpath",
        "box": "drawrect",
        "cut": "drawclosedpath",
    }
    assert f.newshape_style("box")["line"]["dash"] == "dash"
    assert f.newshape_style("draw")["fillrule"] == "evenodd"
    # Vertex editing needs shape activation, which plotly disables with shapePosition.
    assert "shapePosition" not in f.GRAPH_CONFIG.get("edits", {})


def test_the_outline_is_editable_only_where_a_drag_draws_nothing():
    # plotly.js gives an editable outline's edge the mouse: a box, cut, region or
    # calibration line dragged from there drew nothing.
    assert set(f.EDITING_DRAGMODES) == {f.TOOL_DRAGMODES["pan"], f.TOOL_DRAGMODES["zoom"]}
    for tool in ("draw", "box", "cut"):
        assert f.TOOL_DRAGMODES[tool] not in f.EDITING_DRAGMODES
    assert "drawline" not in f.EDITING_DRAGMODES  # Calibrate's line
    script = f.OUTLINE_EDITING_SCRIPT
    assert json.dumps(list(f.EDITING_DRAGMODES)) in script
    assert f"'{ids.ANNOTATION_GRAPH}.relayoutData'" in script and "GRAPH_ID" not in script


def test_calipers_are_two_lines_between_the_diameters_ends():
    region = {
        "max_diameter_endpoints": [[1.0, 1.0], [5.0, 3.0]],
        "perpendicular_diameter_endpoints": [[3.5, 1.0], [2.5, 3.0]],
    }
    long, across = f.caliper_annotations(region)
    assert (long["ax"], long["ay"], long["x"], long["y"]) == (1.0, 1.0, 5.0, 3.0)
    assert (across["ax"], across["ay"], across["x"], across["y"]) == (3.5, 1.0, 2.5, 3.0)
    for line in (long, across):
        # Both ends in image pixels, dotted at both ends, with no text box.
        assert (line["xref"], line["yref"], line["axref"], line["ayref"]) == ("x", "y", "x", "y")
        assert line["arrowside"] == "end+start" and line["text"] == ""
    assert f.caliper_annotations(None) == []
    # A single pixel's perpendicular diameter has length, a point's none: not drawn.
    point = dict(region, perpendicular_diameter_endpoints=[[2.0, 2.0], [2.0, 2.0]])
    assert [a["name"] for a in f.caliper_annotations(point)] == ["max_diameter_endpoints"]


def test_zoom_and_pan_stop_at_the_image_edges_and_zoom_takes_ctrl_wheel():
    layout = f.image_figure("data:,", 300, 200, "rev").to_plotly_json()["layout"]
    assert (layout["xaxis"]["minallowed"], layout["xaxis"]["maxallowed"]) == (0, 300)
    assert (layout["yaxis"]["minallowed"], layout["yaxis"]["maxallowed"]) == (0, 200)
    # plotly's scroll zoom stays on: sonotrace.js lets only Ctrl+wheel (a pinch) reach it.
    assert f.GRAPH_CONFIG["scrollZoom"] is True
