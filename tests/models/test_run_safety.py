"""A training script refuses a bad start in one line, before it touches the run folder.

Audit 506, findings 4, 7, 8 and 11: a new run into an earlier run's folder kept its
``best.keras``; a typo in ``--data`` or a bad ``--init-from`` cleared a finished run;
user errors ended in tracebacks.
"""

from __future__ import annotations

import json

import pytest

TINY = ["--batch-size", "4", "--input-size", "32", "--base-filters", "4", "--verbose", "0",
        "--val-fraction", "0.34", "--epochs", "1", "--steps-per-epoch", "1"]
CROP = ["--batch-size", "4", "--crop-size", "32", "--filters", "4", "8", "--verbose", "0",
        "--val-fraction", "0.34", "--epochs", "1", "--steps-per-epoch", "1"]


def _finished(folder):
    """A stand-in for a finished run: what a refused start must leave as it was."""
    (folder / "backup").mkdir(parents=True)
    for name in ("best.keras", "final.keras", "pretrained.weights.npz", "split.json"):
        (folder / name).write_text(name)
    return sorted(p.name for p in folder.rglob("*"))


def _without(flags, name):
    """``flags`` without the option ``name`` and its values."""
    kept, skipping = [], False
    for f in flags:
        if f.startswith("--"):
            skipping = f == name
        if not skipping:
            kept.append(f)
    return kept


def _one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_a_new_run_into_a_run_folder_is_refused_and_overwrite_clears_it(synthetic_busi,
                                                                         tmp_path, capsys):
    from models import train

    root, _ = synthetic_busi
    out = tmp_path / "old"
    before = _finished(out)
    assert train.main(["--data", str(root), "--out", str(out), *TINY]) == 2
    assert "--overwrite" in _one_line(capsys)
    assert sorted(p.name for p in out.rglob("*")) == before
    assert train.main(["--data", str(root), "--out", str(out), *TINY, "--overwrite"]) == 0
    assert not (out / "final.keras").exists() and (out / "best.keras").stat().st_size > 100


@pytest.mark.parametrize("tool", ["train", "train_lesion", "train_refine", "pretrain"])
def test_a_typo_in_data_is_one_line_and_leaves_the_run(tool, tmp_path, capsys):
    import importlib

    module = importlib.import_module(f"models.{tool}")
    out = tmp_path / "done"
    before = _finished(out)
    flags = CROP if tool.startswith("train_") else TINY
    rc = module.main(["--data", str(tmp_path / "nonexist"), "--out", str(out), *flags,
                      "--overwrite"])
    assert rc == 2
    assert "nonexist is not a directory" in _one_line(capsys)
    assert sorted(p.name for p in out.rglob("*")) == before


def test_pretrain_refuses_an_input_size_before_reading_data(tmp_path, capsys):
    from models import pretrain

    with pytest.raises(SystemExit):
        pretrain.parse_args(["--data", str(tmp_path), "--input-size", "40"])
    assert "--input-size" in capsys.readouterr().err


def test_a_bad_init_from_is_refused_before_the_folder_is_cleared(synthetic_busi, tiny_export,
                                                                  tmp_path, capsys):
    from models import train

    root, _ = synthetic_busi
    weights, _ = tiny_export
    out = tmp_path / "done"
    before = _finished(out)
    common = ["--data", str(root), "--out", str(out), *TINY, "--overwrite"]
    assert train.main([*common, "--init-from", str(tmp_path / "nonexist")]) == 2
    assert "no readable export" in _one_line(capsys)
    assert train.main([*common, "--init-from", str(weights), "--init-member", "3"]) == 2
    assert "--init-member 3 does not exist" in _one_line(capsys)
    wide = [*common, "--init-from", str(weights), "--base-filters", "8"]
    assert train.main(wide) == 2
    assert "4-filter network" in _one_line(capsys)
    assert sorted(p.name for p in out.rglob("*")) == before
    assert json.loads((weights / "manifest.json").read_text())["architecture"]["members"] == 1


@pytest.mark.parametrize("tool", ["train", "train_lesion", "train_refine", "pretrain"])
@pytest.mark.parametrize("made", [False, True])
def test_resume_on_a_missing_or_empty_out_is_refused(tool, made, synthetic_busi, tmp_path,
                                                     capsys):
    # Audit 803 F1: a mistyped --out with --resume quietly trained a new run from scratch.
    import importlib

    module = importlib.import_module(f"models.{tool}")
    root, _ = synthetic_busi
    out = tmp_path / "typo"
    if made:
        out.mkdir()
    flags = CROP if tool.startswith("train_") else TINY
    assert module.main(["--data", str(root), "--out", str(out), *flags, "--resume"]) == 2
    assert "no run to continue" in _one_line(capsys)
    assert (out.is_dir() and not any(out.iterdir())) if made else not out.exists()


@pytest.mark.parametrize("tool, flags", [
    ("train", ["--base-filters", "0"]),
    ("pretrain", ["--base-filters", "-4"]),
    ("train_lesion", ["--crop-size", "12", "--filters", "4", "4", "4", "4"]),
    ("train_lesion", ["--filters", "8", "0"]),
    ("train_refine", ["--filters", "0", "8"]),
])
def test_a_size_no_network_can_have_is_refused_before_the_folder_is_made(
        tool, flags, synthetic_busi, tmp_path, capsys):
    # Audit 803 F4: a Keras traceback after run_settings.json and split.json were
    # written, so the same command with a sound value was then refused.
    import importlib

    module = importlib.import_module(f"models.{tool}")
    root, _ = synthetic_busi
    out = tmp_path / "new"
    base = _without(CROP if tool.startswith("train_") else TINY, flags[0])
    with pytest.raises(SystemExit) as done:
        module.main(["--data", str(root), "--out", str(out), *base, *flags])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and flags[0] in err and "Traceback" not in err
    assert not out.exists()
