"""``--resume`` refuses settings other than the run's, and keeps the run's split.

Audit 506, finding 3: a resume with another ``--split-seed`` redrew ``split.json``
(validation images the weights had trained on), another ``--input-size`` was
recorded silently, another ``--base-filters`` ended in a Keras traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY = ["--batch-size", "4", "--input-size", "32", "--base-filters", "4", "--verbose", "0",
        "--val-fraction", "0.34", "--steps-per-epoch", "1"]


@pytest.fixture(scope="module")
def one_epoch(synthetic_busi, tmp_path_factory):
    from models import train

    root, _ = synthetic_busi
    out = tmp_path_factory.mktemp("resumable")
    assert train.main(["--data", str(root), "--out", str(out), *TINY, "--epochs", "1"]) == 0
    return root, out


@pytest.mark.parametrize("change, named", [
    (["--split-seed", "7"], "--split-seed 42 (now 7)"),
    (["--seed", "5"], "--seed 42 (now 5)"),
    (["--lr", "0.1"], "--lr 0.002 (now 0.1)"),
    (["--base-filters", "8"], "--base-filters 4 (now 8)"),
    (["--input-size", "64"], "--input-size 32 (now 64)"),
])
def test_resume_with_other_settings_is_refused_and_keeps_the_split(one_epoch, change, named,
                                                                   capsys):
    from models import train

    root, out = one_epoch
    split = (out / "split.json").read_text()
    assert train.main(["--data", str(root), "--out", str(out), *TINY, "--epochs", "2",
                       "--resume", *change]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0]
    assert (out / "split.json").read_text() == split
    assert len((out / "history.csv").read_text().splitlines()) == 2


def test_an_older_run_is_checked_against_its_train_info(one_epoch, tmp_path, capsys):
    import shutil

    from models import train
    from models.training import RUN_SETTINGS

    root, run = one_epoch
    out = tmp_path / "older"
    shutil.copytree(run, out)
    (out / RUN_SETTINGS).unlink()
    assert train.main(["--data", str(root), "--out", str(out), *TINY, "--epochs", "2",
                       "--resume", "--seed", "5"]) == 2
    assert "--seed 42 (now 5)" in capsys.readouterr().err


def test_a_split_that_differs_from_the_runs_is_refused(tmp_path):
    from models._cli import UsageError
    from models.training import check_resumed_split

    (tmp_path / "split.json").write_text(json.dumps({"train": ["a"], "val": ["b"]}))
    check_resumed_split(tmp_path, {"train": ["a"], "val": ["b"]})
    with pytest.raises(UsageError, match="split drawn now differs"):
        check_resumed_split(tmp_path, {"train": ["b"], "val": ["a"]})


@pytest.mark.parametrize("tool", ["train_lesion", "train_refine", "pretrain"])
def test_the_other_trainers_check_their_settings_too(tool, synthetic_busi, tmp_path, capsys):
    import importlib

    from models.training import RUN_SETTINGS, run_settings

    module = importlib.import_module(f"models.{tool}")
    root, _ = synthetic_busi
    out = tmp_path / "run"
    (out / "backup").mkdir(parents=True)
    size = ["--crop-size", "32"] if tool != "pretrain" else ["--input-size", "32"]
    args = ["--data", str(root), "--out", str(out), *size, "--resume"]
    parsed = module.parse_args(args)
    key = "crop_size" if tool != "pretrain" else "input_size"
    settings = run_settings(parsed, **{key: 32, "split_seed": parsed.seed})
    (out / RUN_SETTINGS).write_text(json.dumps(settings))
    assert module.main([*args, "--seed", "3", "--split-seed", str(parsed.seed)]) == 2
    assert f"--seed {parsed.seed} (now 3)" in capsys.readouterr().err


def test_a_resume_whose_patience_is_spent_ends_before_another_epoch(tiny_run, tmp_path, caplog):
    # Audit 803 F7: it trained one more epoch (an hour at the shipped size) first.
    import shutil

    from models import train

    root, run = tiny_run
    out = Path(shutil.copytree(run, tmp_path / "run"))
    history = out / "history.csv"
    header, first, second = history.read_text().splitlines()
    cells = first.split(",")
    cells[header.split(",").index("val_score")] = "99"  # epoch 0 best, epoch 1 without gain
    history.write_text(f"{header}\n{','.join(cells)}\n{second}\n")
    before = history.read_text()
    with caplog.at_level("WARNING"):
        assert train.main(["--data", str(root), "--out", str(out), "--epochs", "4",
                           "--steps-per-epoch", "2", "--batch-size", "4", "--input-size", "32",
                           "--base-filters", "4", "--verbose", "0", "--val-fraction", "0.34",
                           "--patience", "1", "--resume"]) == 0
    assert history.read_text() == before
    assert "--patience 1 is already spent" in caplog.text
