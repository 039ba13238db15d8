"""Weight averages of runs fine-tuned from one start (no real training)."""

import json

import numpy as np
import pytest

from models import export, soup, train


def test_average_weights_is_the_element_wise_mean_in_the_first_dtype():
    a = [np.array([[1.0, 2.0]], np.float32), np.array([0, 4], np.int32)]
    b = [np.array([[3.0, 6.0]], np.float32), np.array([2, 8], np.int32)]
    c = [np.array([[5.0, 1.0]], np.float32), np.array([4, 0], np.int32)]
    mean = soup.average_weights([a, b, c])
    assert mean[0].dtype == np.float32 and mean[1].dtype == np.int32
    assert np.allclose(mean[0], [[3.0, 3.0]])
    assert mean[1].tolist() == [2, 4]


def test_average_weights_refuses_one_network_or_different_shapes():
    a = [np.zeros((2, 3))]
    with pytest.raises(ValueError, match="at least two"):
        soup.average_weights([a])
    with pytest.raises(ValueError, match="shape"):
        soup.average_weights([a, [np.zeros((3, 2))]])
    with pytest.raises(ValueError, match="shape"):
        soup.average_weights([a, [np.zeros((2, 3)), np.zeros(1)]])


def _info(init_from="runs/w", member=0, size=160, filters=16):
    return {"input_size": size,
            "args": {"init_from": init_from, "init_member": member, "base_filters": filters}}


def test_check_ingredients_refuses_what_cannot_be_averaged():
    split = {"train": ["a", "b"], "val": ["c"]}
    # The same start: fine, and the shared network shape comes back for the soup.
    assert soup.check_ingredients([_info(), _info()], [split, split]) == (160, 16)
    with pytest.raises(ValueError, match="split"):
        soup.check_ingredients([_info(), _info()], [split, {"train": ["a"], "val": ["b", "c"]}])
    with pytest.raises(ValueError, match="members"):
        soup.check_ingredients([_info(member=0), _info(member=1)], [split, split])
    with pytest.raises(ValueError, match="start from an export"):
        soup.check_ingredients([_info(), _info(init_from=None)], [split, split])
    with pytest.raises(ValueError, match="base filters"):
        soup.check_ingredients([_info(), _info(filters=8)], [split, split])


def test_soup_of_two_warm_restarts_exports_as_one_member(tiny_run, tiny_export, tmp_path):
    root, run = tiny_run
    weights, _ = tiny_export
    runs = []
    for seed in (1, 2):
        out = tmp_path / f"warm{seed}"
        assert train.main(["--data", str(root), "--out", str(out), "--epochs", "1",
                           "--steps-per-epoch", "1", "--batch-size", "4", "--input-size", "32",
                           "--base-filters", "4", "--verbose", "0", "--val-fraction", "0.34",
                           "--split-seed", "42", "--seed", str(seed), "--lr", "0.05",
                           "--init-from", str(weights), "--init-member", "0"]) == 0
        runs.append(out)

    # The tiny run started from random weights, so it cannot join the soup.
    with pytest.raises(SystemExit, match="start from an export"):
        soup.main(["--run", str(runs[0]), str(run), "--checkpoint", "best.keras",
                   "--out", str(tmp_path / "bad")])
    with pytest.raises(SystemExit, match="no such checkpoint"):
        soup.main(["--run", *map(str, runs), "--out", str(tmp_path / "bad")])

    out = tmp_path / "soup"
    assert soup.main(["--run", *map(str, runs), "--checkpoint", "best.keras",
                      "--out", str(out)]) == 0
    ingredients = [export.clean_model(r / "best.keras", 32, 4).get_weights() for r in runs]
    assert not np.allclose(ingredients[0][0], ingredients[1][0])  # different seeds, different nets
    mixed = export.clean_model(out / "best.keras", 32, 4).get_weights()
    for i in (0, len(mixed) - 1):
        assert np.allclose(mixed[i], (ingredients[0][i] + ingredients[1][i]) / 2, atol=1e-6)
    assert (out / "split.json").read_text() == (runs[0] / "split.json").read_text()
    info = json.loads((out / "train_info.json").read_text())
    assert info["soup"]["seeds"] == [1, 2]
    assert info["soup"]["runs"] == [str(r) for r in runs]

    # The export takes the soup like any run: one network, not two.
    exported = tmp_path / "weights"
    assert export.main(["--run", str(out), "--data", str(root), "--out", str(exported),
                        "--card-dir", str(tmp_path / "card"), "--no-litert",
                        "--tta", "off"]) == 0
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["architecture"]["members"] == 1
