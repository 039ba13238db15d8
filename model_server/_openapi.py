"""The OpenAPI 3 description of the REST API (served at /openapi.json)."""

from __future__ import annotations

from vectorizer import MAX_IMAGE_SIDE, MAX_PIXEL_SPACING_MM, MIN_PIXEL_SPACING_MM

from ._inputs import MAX_PARTS, MAX_VERTICES_RANGE

API_VERSION = "1.0.0"


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _file_body(field: str, description: str, extra_fields: dict | None = None) -> dict:
    properties = {field: {"type": "string", "format": "binary", "description": description}}
    properties.update(extra_fields or {})
    raw = {"schema": {"type": "string", "format": "binary"}}
    return {
        "required": True,
        "description": f"Multipart form with a file field `{field}`, or the raw file as the "
        "body. A multipart part of another name than those listed, or one given twice, is "
        "400.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [field],
                    "properties": properties,
                    "additionalProperties": False,
                }
            },
            "application/octet-stream": raw,
            "image/png": raw,
            **(
                {"image/jpeg": raw, "application/dicom": raw}
                if field == "image"
                else {}
            ),
        },
    }


MAX_VERTICES_PARAM = {
    "name": "max_vertices",
    "in": "query",
    "required": False,
    "description": "Largest number of vertices of each polygon ring in `paths`.",
    "schema": {
        "type": "integer",
        "minimum": MAX_VERTICES_RANGE[0],
        "maximum": MAX_VERTICES_RANGE[1],
        "default": 32,
    },
}

COMMON_ERRORS = {
    "400": _error(
        "Missing field, empty or undecodable file (including a PNG whose data ends before "
        "its last row or fails its CRC, a JPEG whose scan data an early end-of-image marker "
        "cuts short, a JPEG or a DICOM's JPEG frame of more than 500 scans, and corrupt "
        "or truncated DICOM pixel data), a DICOM whose Rescale "
        "Slope/Intercept is not valid, a blank image (every pixel the same "
        "value: nothing to segment or classify; a mask may be empty) or one under 8 pixels "
        "a side, a bad parameter (or a query parameter sent as a form field: parameters "
        "go in the query string), a multipart part the endpoint does not take or a "
        "field given twice (the message names it), or a mask the vectorizer cannot "
        "outline."
    ),
    "408": _error(
        "The client stopped sending its request body for longer than the read timeout "
        "(SONOTRACE_READ_TIMEOUT, 20 s by default), or sent it at under 500 bytes/s on "
        "average after that long (production server only)."
    ),
    "413": _error(
        f"Body over the byte limit (sent with a Content-Length or chunked), a multipart "
        f"body of more than {MAX_PARTS} parts, or an image over the pixel limit or over "
        f"{MAX_IMAGE_SIDE} pixels a side."
    ),
    "415": _error(
        "Content is not a PNG, JPEG or DICOM file (recognised from its bytes), a JSON or "
        "non-form multipart body (send the file as multipart field or raw body), a JPEG "
        "of 12- or 16-bit samples, a DICOM transfer syntax no installed decoder handles, "
        "or a body sent with a Content-Encoding (answered with Accept-Encoding: identity)."
    ),
    "501": _error(
        "A body sent with a Transfer-Encoding other than chunked (gzip, say): only the "
        "chunked coding is read."
    ),
}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}},
    },
    "ErrorDetail": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {
                "type": "integer",
                "description": "The response's HTTP status, repeated as an integer.",
                "example": 400,
            },
            "message": {"type": "string"},
        },
    },
    "ModelRef": {
        "type": "object",
        "required": ["name", "version"],
        "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
    },
    "Timing": {
        "type": "object",
        "description": "Milliseconds spent per stage, and `total` for the request.",
        "additionalProperties": {"type": "number"},
    },
    "LineSegment": {
        "type": "array",
        "description": "[[x, y], [x, y]]: the two ends of a caliper line, in image pixels",
        "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "minItems": 2,
        "maxItems": 2,
    },
    "Region": {
        "type": "object",
        "description": "One connected region of the mask (vectorizer.measure_regions). "
        "Coordinates are (x, y) image pixels; `*_mm` fields appear when the pixel "
        "spacing is known.",
        "required": ["area_px", "bbox", "max_diameter_px"],
        "properties": {
            "area_px": {"type": "number"},
            "perimeter_px": {"type": "number"},
            "bbox": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 4,
                "maxItems": 4,
                "description": "[x0, y0, x1, y1]",
            },
            "width_px": {"type": "number"},
            "height_px": {"type": "number"},
            "max_diameter_px": {"type": "number", "description": "longest chord (long axis)"},
            "max_diameter_endpoints": {"$ref": "#/components/schemas/LineSegment"},
            "perpendicular_diameter_px": {
                "type": "number",
                "description": "longest chord perpendicular to the long axis",
            },
            "perpendicular_diameter_endpoints": {"$ref": "#/components/schemas/LineSegment"},
            "centroid": {"type": "array", "items": {"type": "number"}},
            "area_mm2": {"type": "number"},
            "perimeter_mm": {"type": "number"},
            "max_diameter_mm": {"type": "number"},
            "perpendicular_diameter_mm": {"type": "number"},
            "width_mm": {"type": "number"},
            "height_mm": {"type": "number"},
            "max_diameter_mm_endpoints": {
                "$ref": "#/components/schemas/LineSegment",
                "description": "ends, in pixels, of the chord max_diameter_mm measures "
                "(another chord than in pixels when pixels are not square)",
            },
            "perpendicular_diameter_mm_endpoints": {
                "$ref": "#/components/schemas/LineSegment",
                "description": "ends, in pixels, of the chord perpendicular_diameter_mm "
                "measures",
            },
        },
    },
    "Outlines": {
        "type": "object",
        "required": ["width", "height", "svg", "paths", "regions"],
        "properties": {
            "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1},
            "svg": {
                "type": "string",
                "description": "SVG document of the image's size, one evenodd path per region.",
            },
            "paths": {
                "type": "array",
                "items": {"type": "string"},
                "description": "One absolute `M x,y L x,y ... Z` path per region "
                "(holes are extra subpaths).",
            },
            "regions": {"type": "array", "items": {"$ref": "#/components/schemas/Region"}},
            "timing_ms": {"$ref": "#/components/schemas/Timing"},
        },
    },
    "Prediction": {
        "allOf": [
            {"$ref": "#/components/schemas/Outlines"},
            {
                "type": "object",
                "required": ["mask", "pixel_spacing_mm", "model", "timing_ms"],
                "properties": {
                    "mask": {
                        "type": "string",
                        "format": "byte",
                        "description": "Base64 PNG, 8-bit 0/255, the image's size.",
                    },
                    "pixel_spacing_mm": {
                        "type": "array",
                        "nullable": True,
                        "items": {"type": "number"},
                        "minItems": 2,
                        "maxItems": 2,
                        "description": "[row_mm, col_mm] from the DICOM header, else null; "
                        "null too when the header's spacing is not from "
                        f"{MIN_PIXEL_SPACING_MM:g} to {MAX_PIXEL_SPACING_MM:g} mm.",
                    },
                    "box": {
                        "type": "array",
                        "nullable": True,
                        "items": {"type": "integer"},
                        "description": "The box actually used (clipped to the image, whole "
                        "pixels), or null.",
                    },
                    "model": {"$ref": "#/components/schemas/ModelRef"},
                },
            },
        ]
    },
    "Classification": {
        "type": "object",
        "required": ["label", "probabilities", "model"],
        "properties": {
            "label": {"type": "string", "enum": ["normal", "benign", "malignant"]},
            "probabilities": {
                "type": "object",
                "required": ["normal", "benign", "malignant"],
                "properties": {
                    k: {"type": "number", "minimum": 0, "maximum": 1}
                    for k in ("normal", "benign", "malignant")
                },
            },
            "model": {"$ref": "#/components/schemas/ModelRef"},
            "timing_ms": {"$ref": "#/components/schemas/Timing"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "loading", "error"]},
            "model": {"type": "object", "nullable": True},
            "workers": {
                "type": "object",
                "properties": {"ready": {"type": "integer"}, "expected": {"type": "integer"}},
            },
            "load_seconds": {"type": "number"},
            "error": {"$ref": "#/components/schemas/ErrorDetail"},
        },
    },
    "Models": {
        "type": "object",
        "required": ["runtime", "manifest", "tasks"],
        "properties": {
            "runtime": {"type": "object", "description": "models.runtime Runtime.info()"},
            "manifest": {
                "type": "object",
                "description": "The exported models' manifest, with the model card's metrics.",
            },
            "tasks": {"type": "object", "additionalProperties": {"type": "object"}},
        },
    },
}

UNAVAILABLE = _error("The models could not be loaded (retry later).")
#: /predict and /classify refuse as well while the workers disagree (_api).
UNAVAILABLE_OR_MIXED = _error("The models could not be loaded (retry later), or the "
                              "workers loaded different model versions (restart the "
                              "server).")


def openapi_document(config) -> dict:
    """Build the OpenAPI 3.0 document; limits are taken from the app ``config``."""
    max_bytes = config.get("MAX_CONTENT_LENGTH")
    max_pixels = config.get("MAX_PIXELS")
    image_body = _file_body("image", "PNG, JPEG or DICOM (first frame of a multi-frame file).")
    classify_body = _file_body(
        "image",
        "PNG, JPEG or DICOM (first frame of a multi-frame file).",
        {
            "mask": {
                "type": "string",
                "format": "binary",
                "description": "Optional mask PNG of the image's size (non-zero = lesion) "
                "to classify a corrected region: the U-Net head pools under it and the "
                "lesion classifier crops around it. Default: the model's own outline.",
            }
        },
    )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "SonoTrace model server",
            "version": API_VERSION,
            "description": (
                "Breast-ultrasound lesion segmentation and classification. Images are sent "
                "as multipart field `image` or as the raw body; the format is recognised "
                "from the file's bytes. Limits: "
                f"{max_bytes} bytes per request, {max_pixels} pixels per image. "
                'Every error is JSON `{"error": {"code", "message"}}`.'
            ),
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Readiness: 200 once the models are loaded, 503 before.",
                    "responses": {
                        "200": {
                            "description": "Ready.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Health"}
                                }
                            },
                        },
                        "503": {
                            "description": ("Loading, or the models failed to load, or the "
                                            "workers loaded different model versions "
                                            "(restart the server)."),
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Health"}
                                }
                            },
                        },
                    },
                }
            },
            "/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Segment the lesion: mask, SVG, editable paths and measurements.",
                    "description": "With `Accept: image/png` the response is the mask PNG "
                    "itself (0/255, the image's size).",
                    "parameters": [
                        MAX_VERTICES_PARAM,
                        {
                            "name": "box",
                            "in": "query",
                            "required": False,
                            "description": "`x0,y0,x1,y1` in image pixels (x = column): segment "
                            "inside this box, with no normal gate; the outline refiner redraws "
                            "what is found and the outline stays in the box. Clipped to the "
                            "image.",
                            "schema": {"type": "string", "example": "40,30,200,160"},
                        },
                    ],
                    "requestBody": image_body,
                    "responses": {
                        "200": {
                            "description": "The segmentation.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Prediction"}
                                },
                                "image/png": {"schema": {"type": "string", "format": "binary"}},
                            },
                        },
                        **COMMON_ERRORS,
                        "503": UNAVAILABLE_OR_MIXED,
                    },
                }
            },
            "/classify": {
                "post": {
                    "operationId": "classify",
                    "summary": "Probabilities of normal, benign and malignant.",
                    "requestBody": classify_body,
                    "responses": {
                        "200": {
                            "description": "The classification.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Classification"}
                                }
                            },
                        },
                        **COMMON_ERRORS,
                        "503": UNAVAILABLE_OR_MIXED,
                    },
                }
            },
            "/vectorize": {
                "post": {
                    "operationId": "vectorize",
                    "summary": "Mask PNG to SVG, editable paths and measurements.",
                    "parameters": [
                        MAX_VERTICES_PARAM,
                        {
                            "name": "pixel_spacing",
                            "in": "query",
                            "required": False,
                            "description": "`row_mm,col_mm` to get measurements in mm as well; "
                            f"each from {MIN_PIXEL_SPACING_MM:g} to "
                            f"{MAX_PIXEL_SPACING_MM:g} mm per pixel.",
                            "schema": {"type": "string", "example": "0.1,0.1"},
                        },
                    ],
                    "requestBody": _file_body("mask", "Mask PNG (non-zero = region)."),
                    "responses": {
                        "200": {
                            "description": "Outlines and measurements.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Outlines"}
                                }
                            },
                        },
                        **COMMON_ERRORS,
                    },
                }
            },
            "/models": {
                "get": {
                    "operationId": "models",
                    "summary": "The models' manifests, including the model card's metrics.",
                    "responses": {
                        "200": {
                            "description": "Runtime info, manifest and tasks.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Models"}
                                }
                            },
                        },
                        "503": UNAVAILABLE,
                    },
                }
            },
            **({"/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics: answers and durations by route, stages, "
                    "ready workers, the models served (SONOTRACE_METRICS).",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "503": _error("The counts cannot be read now (the workers' folder "
                                      "is gone or unreadable); the server's log says why."),
                    },
                }
            }} if config.get("METRICS", True) else {}),
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/docs": {
                "get": {
                    "operationId": "docs",
                    "summary": "Browsable documentation (offline, no CDN).",
                    "responses": {
                        "200": {
                            "description": "HTML page.",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": SCHEMAS},
    }
