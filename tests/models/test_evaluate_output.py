"""``python -m models.evaluate --json``: the result is never lost, nor the data it scores
(audit 603, F1, F2, F5 to F7). Runs the shipped weights on the synthetic BUSI folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models import evaluate


@pytest.fixture
def data(synthetic_busi, tmp_path):
    root, _ = synthetic_busi
    copy = tmp_path / "busi"
    shutil.copytree(root, copy)
    # Four images are enough to score; the shipped networks take a while per image.
    for cls in ("benign", "malignant", "normal"):
        for p in sorted((copy / cls).iterdir()):
            if not p.name.startswith((f"{cls} (1)", f"{cls} (2)")):
                p.unlink()
    return copy


#: An earlier run's result, as far as the check of --json reads it.
EARLIER = '{"n_images": 1, "per_image": [], "earlier": true}'


def _run(data, *extra):
    return evaluate.main(["--data", str(data), *extra])


def test_a_json_that_cannot_be_written_keeps_the_table_and_the_earlier_file(
        data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "result.json"
    out.write_text(EARLIER)

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(evaluate.os, "replace", disk_full)
    assert _run(data, "--json", str(out)) == 1
    captured = capsys.readouterr()
    assert "No space left on device" in captured.err
    # The run's figures are on the terminal, and the earlier result is whole.
    assert "mean Dice" in captured.out and "accuracy" in captured.out
    assert out.read_text() == EARLIER
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busi", "result.json"]


def test_an_earlier_result_is_replaced_whole(data, tmp_path):
    out = tmp_path / "result.json"
    out.write_text(EARLIER)
    assert _run(data, "--json", str(out)) == 0
    result = json.loads(out.read_text())
    assert result["n_images"] == 6 and result["per_image"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busi", "result.json"]


@pytest.mark.parametrize("target", ["benign/benign (1)_mask.png", "index.csv"])
def test_a_json_path_on_a_file_of_the_data_is_refused_before_the_run(data, target, capsys):
    before = (data / target).read_bytes()
    assert _run(data, "--json", str(data / target)) == 2
    assert "not an earlier result" in capsys.readouterr().err
    assert (data / target).read_bytes() == before


def test_a_refused_run_makes_no_folder_for_its_json(tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "result.json"
    assert _run(tmp_path / "no-such-data", "--json", str(out)) == 2
    assert not (tmp_path / "new").exists()


def test_a_json_path_under_a_file_says_so(data, tmp_path, capsys):
    (tmp_path / "file.json").write_text("{}")
    assert _run(data, "--json", str(tmp_path / "file.json" / "sub.json")) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_an_interrupted_run_says_nothing_was_written(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "result.json"
    out.write_text(EARLIER)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "evaluate", interrupted)
    assert _run(data, "--json", str(out)) == 130
    assert "interrupted: nothing written" in capsys.readouterr().err
    assert out.read_text() == EARLIER


def test_the_backend_follows_the_servers_variable_unless_given(data, monkeypatch, tmp_path):
    out = tmp_path / "r.json"
    monkeypatch.setenv("SONOTRACE_RUNTIME_BACKEND", "keras")
    assert _run(data, "--json", str(out)) == 0
    assert json.loads(out.read_text())["model"]["backend"] == "keras"
    assert _run(data, "--json", str(out), "--backend", "litert") == 0
    assert json.loads(out.read_text())["model"]["backend"] == "litert"


def test_a_new_json_is_readable_as_a_file_made_in_its_folder_would_be(data, tmp_path):
    import os
    import stat

    out = tmp_path / "new" / "r.json"
    assert _run(data, "--json", str(out)) == 0
    umask = os.umask(0)
    os.umask(umask)
    # Not mkstemp's private 0600: a reviewer's other account reads the result.
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    assert Path(out).read_text().startswith("{")


@pytest.mark.parametrize("earlier", [
    {"train": ["benign/benign (1)"], "val": ["benign/benign (2)"]},  # a split.json
    {"name": "sonotrace_unet", "version": "1", "files": {}},  # a manifest.json
])
def test_other_json_files_are_not_taken_for_an_earlier_result(data, tmp_path, earlier, capsys):
    out = tmp_path / "some.json"
    out.write_text(json.dumps(earlier))
    assert _run(data, "--json", str(out)) == 2
    assert "not an earlier result" in capsys.readouterr().err
    assert json.loads(out.read_text()) == earlier


def test_an_empty_file_and_a_link_are_written(data, tmp_path):
    empty = tmp_path / "empty.json"
    empty.touch()
    assert _run(data, "--json", str(empty)) == 0
    assert json.loads(empty.read_text())["n_images"] == 6
    kept = tmp_path / "results" / "latest.json"
    kept.parent.mkdir()
    kept.write_text("")
    link = tmp_path / "link.json"
    link.symlink_to(kept)
    assert _run(data, "--json", str(link)) == 0
    assert link.is_symlink() and json.loads(kept.read_text())["n_images"] == 6


def test_a_bad_backend_variable_is_named(data, monkeypatch, capsys):
    monkeypatch.setenv("SONOTRACE_RUNTIME_BACKEND", "tpu")
    assert _run(data) == 2
    assert "error: SONOTRACE_RUNTIME_BACKEND: backend:" in capsys.readouterr().err


def test_a_folder_that_is_not_a_class_folder_is_printed_and_in_the_json(data, tmp_path,
                                                                        capsys):
    # Audit 803 F3: every normal image left the score without a word.
    (data / "normal").rename(data / "normal_cases")
    out = tmp_path / "result.json"
    assert _run(data, "--json", str(out)) == 0
    printed = capsys.readouterr().out
    assert "folder: normal_cases/: not a class folder" in printed
    result = json.loads(out.read_text())
    assert result["n_images"] == 4
    assert any(item.startswith("normal_cases/: not a class folder")
               for item in result["files_left_out"])


def test_a_file_name_that_is_not_utf8_leaves_the_json_valid_unicode(data, tmp_path):
    import os

    # An archive from another system unpacks its names' bytes as they were (latin-1 é):
    # Python holds them as lone surrogates, which strict parsers (serde_json, pydantic's)
    # refuse as \udce9 escapes, costing the reader the whole result.
    folder = os.fsencode(data / "benign")
    for old, new in (("benign (1).png", b"b\xe9nin (1).png"),
                     ("benign (1)_mask.png", b"b\xe9nin (1)_mask.png")):
        os.rename(os.path.join(folder, os.fsencode(old)), os.path.join(folder, new))
    out = tmp_path / "result.json"
    assert _run(data, "--json", str(out)) == 0
    text = out.read_text(encoding="utf-8")
    assert "\\udc" not in text.replace("\\\\udc", "")
    names = [row["image"] for row in json.loads(text)["per_image"]]
    assert "benign/b\\udce9nin (1)" in names  # as a terminal shows it


@pytest.mark.parametrize("plots", ["file.png", "file.png/plots"])
def test_a_plots_folder_that_cannot_be_one_is_refused_before_the_run(data, tmp_path, plots,
                                                                       capsys):
    (tmp_path / "file.png").write_bytes(b"kept")
    # It raised a FileExistsError traceback once every image was scored.
    assert _run(data, "--plots", str(tmp_path / plots)) == 2
    err = capsys.readouterr().err
    assert f"error: --plots {tmp_path / plots}: " in err and "not a folder" in err.lower()
    assert "evaluating" not in err and "Traceback" not in err
    assert (tmp_path / "file.png").read_bytes() == b"kept"
    if plots == "file.png":  # and a folder still to be made is made, with both plots
        assert _run(data, "--plots", str(tmp_path / "new" / "plots")) == 0
        assert sorted(p.name for p in (tmp_path / "new" / "plots").iterdir()) == sorted(
            evaluate.PLOT_FILES)
