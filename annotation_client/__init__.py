"""SonoTrace annotation client: the segment-then-edit workstation in the browser.

``create_app(config=None)`` builds the Dash app; ``python -m annotation_client``
serves it. The pure modules behind the page are public here so they can be
tested and reused without a browser.
"""

from ._app import create_app
from ._config import ClientConfig
from ._editing import make_state, merge_box, revectorize
from ._history import can_redo, can_undo, new_history, push, redo, undo
from ._imageio import DecodedImage, ImageDecodeError, decode_image, parse_data_url
from ._measurements import orientation, summarize
from ._record import DESCRIPTOR_OPTIONS, LABELS, build_record, clean_descriptors, dice, iou
from ._server_client import ModelServerClient, ModelServerError, ModelServerUnavailable
from ._shapes import (
    apply_relayout,
    clip_box,
    format_path,
    parse_path,
    paths_to_mask,
    paths_to_svg,
)
from ._storage import AnnotationStore, SavedVersion

__all__ = [
    "DESCRIPTOR_OPTIONS",
    "LABELS",
    "AnnotationStore",
    "ClientConfig",
    "DecodedImage",
    "ImageDecodeError",
    "ModelServerClient",
    "ModelServerError",
    "ModelServerUnavailable",
    "SavedVersion",
    "apply_relayout",
    "build_record",
    "can_redo",
    "can_undo",
    "clean_descriptors",
    "clip_box",
    "create_app",
    "decode_image",
    "dice",
    "format_path",
    "iou",
    "make_state",
    "merge_box",
    "new_history",
    "orientation",
    "parse_data_url",
    "parse_path",
    "paths_to_mask",
    "paths_to_svg",
    "push",
    "redo",
    "revectorize",
    "summarize",
    "undo",
]
