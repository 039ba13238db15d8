"""A weights file that fails to load is named, and leaves the runtime unloaded (audit 802 F7)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.runtime import DEFAULT_WEIGHTS_DIR, Runtime


def test_a_broken_lesion_classifier_is_named_and_nothing_counts_as_loaded(tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(Path(DEFAULT_WEIGHTS_DIR), weights)
    broken = weights / "lesion_classifier.tflite"
    broken.write_bytes(broken.read_bytes()[:1000])
    runtime = Runtime(weights, backend="litert")
    with pytest.raises(ValueError) as caught:
        runtime.load()
    assert caught.value.__notes__ == [f"while loading the lesion classifier from {broken}"]
    # The U-Net had loaded: it counted the runtime ready, serving without its classifier.
    assert not runtime.ready
