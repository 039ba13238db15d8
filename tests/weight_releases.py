"""Weights folders for the tests that roll a release out under a running model server.

A release is the shipped weights copied with another version in their manifest (the
server tells releases apart by it), served through a symbolic link that is switched as
a deployment switches it: a new link renamed over the old one, never a moment without.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def shipped_weights() -> tuple[Path, str]:
    """The shipped weights folder (links resolved) and the version its manifest names."""
    from models.runtime import DEFAULT_WEIGHTS_DIR

    shipped = Path(DEFAULT_WEIGHTS_DIR).resolve()
    return shipped, json.loads((shipped / "manifest.json").read_text())["version"]


def another_release(folder: Path, version: str) -> Path:
    """``folder``: a copy of the shipped weights whose manifest names ``version``."""
    shutil.copytree(shipped_weights()[0], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = version
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


def switch_link(link: Path, target: Path) -> None:
    """Point the symbolic link ``link`` at ``target`` at once (a new link renamed over it)."""
    new = link.with_name(link.name + ".new")
    new.symlink_to(target, target_is_directory=True)
    os.replace(new, link)
