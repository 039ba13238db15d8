"""Checkpoints are replaced whole, and a damaged one is named, not a traceback.

Audit 506, finding 5: a SIGKILL while Keras wrote ``backup/latest.weights.h5`` in
place left a truncated file, and ``--resume`` died in h5py; a truncated
``best.keras`` read as "File not found".
"""

from __future__ import annotations

import os
import shutil

import keras
import numpy as np
import pytest

TINY = ["--batch-size", "4", "--input-size", "32", "--base-filters", "4", "--verbose", "0",
        "--val-fraction", "0.34", "--steps-per-epoch", "2"]  # as tiny_run


def test_a_resume_from_a_truncated_backup_names_the_file(tiny_run, tmp_path, capsys):
    from models import train

    root, run = tiny_run
    out = tmp_path / "killed"
    shutil.copytree(run, out)
    weights = out / "backup" / "latest.weights.h5"
    os.truncate(weights, weights.stat().st_size // 3)
    assert train.main(["--data", str(root), "--out", str(out), *TINY, "--epochs", "3",
                       "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "latest.weights.h5 is damaged" in err[0] and "--overwrite" in err[0]


def _net():
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])


def test_a_kill_during_a_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    from models import training

    model = _net()
    model.compile(loss="mse", optimizer="sgd")
    best = training.best_checkpoint(tmp_path / "best.keras", "val_score", 0.5)
    best.set_model(model)
    best.on_epoch_end(0, {"val_score": 0.4})  # does not beat the resumed best
    assert not (tmp_path / "best.keras").exists()
    best.on_epoch_end(1, {"val_score": 0.6})
    kept = (tmp_path / "best.keras").read_bytes()
    best.on_epoch_end(2, {"val_score": np.nan})
    assert best.best == 0.6

    def killed(self, path, *args, **kwargs):  # the write stops half-way
        with open(path, "wb") as fh:
            fh.write(kept[: len(kept) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(type(model), "save", killed)
    with pytest.raises(KeyboardInterrupt):
        best.on_epoch_end(3, {"val_score": 0.9})
    assert (tmp_path / "best.keras").read_bytes() == kept

    backup = training.run_backup(tmp_path)
    backup.set_model(model)
    backup.on_epoch_end(0)
    before = (tmp_path / "backup" / "latest.weights.h5").read_bytes()
    monkeypatch.setattr(type(model), "save_weights", killed)
    with pytest.raises(KeyboardInterrupt):
        backup.on_epoch_end(1)
    assert (tmp_path / "backup" / "latest.weights.h5").read_bytes() == before
    training.check_backup(tmp_path)


def test_a_truncated_keras_file_is_called_damaged(tmp_path):
    from models._cli import UsageError
    from models.training import check_checkpoint, save_model_atomic

    path = tmp_path / "best.keras"
    save_model_atomic(_net(), path)
    check_checkpoint(path)
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(UsageError, match="best.keras is damaged"):
        check_checkpoint(path)
    with pytest.raises(UsageError, match="no such checkpoint"):
        check_checkpoint(tmp_path / "other.keras")


def _epochs(history):
    import csv

    with open(history, newline="") as fh:
        return [int(row["epoch"]) for row in csv.DictReader(fh)]


def test_a_resume_after_a_kill_between_backup_and_log_lists_each_epoch_once(tiny_run, tmp_path):
    from models import train

    root, run = tiny_run
    out = tmp_path / "killed"
    shutil.copytree(run, out)
    history = out / "history.csv"
    lines = history.read_text().splitlines(keepends=True)
    assert _epochs(history) == [0, 1]
    # Epoch 1 logged twice, a row for an epoch the backup never held (2), then a row cut
    # short by the kill: each would otherwise stay in the log beside the replayed epochs.
    history.write_text("".join(lines + [lines[-1], lines[-1].replace("1,", "2,", 1),
                                        lines[-1][: len(lines[-1]) // 2]]))
    assert train.main(["--data", str(root), "--out", str(out), *TINY, "--epochs", "3",
                       "--resume"]) == 0
    assert _epochs(history) == [0, 1, 2]
    assert history.read_text().splitlines()[1:3] == [line.rstrip("\r\n") for line in lines[1:3]]


def test_align_history_keeps_a_log_that_matches_its_backup(tmp_path):
    import json

    from models.training import align_history

    assert align_history(tmp_path) == 0  # no files: nothing to do
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "training_metadata.json").write_text(json.dumps({"epoch": 2}))
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss\r\n0,0.5\r\n1,0.4\r\n")
    before = history.read_bytes()
    assert align_history(tmp_path) == 0 and history.read_bytes() == before
    history.write_text("epoch,loss\r\n0,0.5\r\n1,0.4\r\n1,0.39\r\n2,0.3\r\nx,1\r\n")
    assert align_history(tmp_path) == 3
    assert history.read_text().splitlines() == ["epoch,loss", "0,0.5", "1,0.39"]
    # Rows of another width (a resumed run's keys under the old header) are the epochs'
    # own: kept (audit 709, F4: all of them went, and the run's best with them).
    history.write_text("epoch,loss\r\n0,0.5,0.1\r\n1,0.4,0.2\r\n1,0.4,0.2\r\n")
    assert align_history(tmp_path) == 1
    assert history.read_text().splitlines() == ["epoch,loss", "0,0.5,0.1", "1,0.4,0.2"]
