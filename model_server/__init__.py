"""SonoTrace model server: the REST API in front of the segmentation and classification models.

Public API
----------
create_app(config=None)
    The Flask app factory (config from ``SONOTRACE_*`` variables, then ``config``).
DecodedImage, decode_image, decode_mask, sniff_format
    The upload decoding used by the endpoints (PNG, JPEG, DICOM).

Run a production server with ``python -m model_server --host 127.0.0.1 --port 5000``.
"""

from ._app import DEFAULTS, create_app
from ._decode import DecodedImage, decode_image, decode_mask, sniff_format

__all__ = ["DEFAULTS", "DecodedImage", "create_app", "decode_image", "decode_mask", "sniff_format"]
