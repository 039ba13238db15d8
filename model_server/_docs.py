"""OpenAPI document and the offline browsable docs page."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect

from ._openapi import openapi_document

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document(current_app.config))


@bp.get("/docs")
def docs():
    # A self-contained page (static/docs.html + docs.js + docs.css): no CDN, works air-gapped.
    return current_app.send_static_file("docs.html")


@bp.get("/")
def index():
    return redirect("/docs")
