"""Train, export and evaluate end to end on a tiny synthetic folder (no real training)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from models import export, train
from models.runtime import Runtime


def test_training_writes_checkpoints_curves_and_split(tiny_run):
    _, out = tiny_run
    assert (out / "best.keras").stat().st_size > 0
    assert (out / "learning_curves.png").stat().st_size > 0
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "val_dice" in history[0]
    split = json.loads((out / "split.json").read_text())
    assert split["train"] and split["val"]
    assert not set(split["train"]) & set(split["val"])


def _tiny_args(root, out):
    """models.train arguments for a run of seconds on the tiny folder (epochs not given)."""
    return ["--data", str(root), "--out", str(out), "--steps-per-epoch", "1",
            "--batch-size", "4", "--input-size", "32", "--base-filters", "4", "--verbose", "0",
            "--val-fraction", "0.34"]


def test_resume_continues_from_backup(tiny_run, tmp_path):
    root, _ = tiny_run
    args = _tiny_args(root, tmp_path)
    assert train.main(args + ["--epochs", "1"]) == 0
    # Simulate a run that was killed after its first epoch: the backup holds epoch 1.
    assert train.main(args + ["--epochs", "3", "--resume"]) == 0
    rows = (tmp_path / "history.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["0", "1", "2"]


def test_resume_keeps_the_best_epoch_of_the_epochs_before_it(tiny_run, tmp_path):
    root, _ = tiny_run
    args = _tiny_args(root, tmp_path)
    assert train.main(args + ["--epochs", "1"]) == 0
    best = tmp_path / "best.keras"
    kept = best.read_bytes()
    # Make the epoch before the restart unbeatable: the resumed epochs score lower, so
    # best.keras must stay that epoch's.
    history = tmp_path / "history.csv"
    header, row = history.read_text().splitlines()
    column = header.split(",").index("val_score")
    cells = row.split(",")
    cells[column] = "99"
    history.write_text(f"{header}\n{','.join(cells)}\n")
    assert train.main(args + ["--epochs", "3", "--resume"]) == 0
    assert len(history.read_text().splitlines()) == 4
    assert best.read_bytes() == kept


def test_export_then_evaluate_cli(tiny_run, tmp_path):
    root, run = tiny_run
    weights = tmp_path / "weights"
    card = tmp_path / "card"
    rc = export.main(["--run", str(run), "--data", str(root), "--out", str(weights),
                      "--card-dir", str(card), "--version", "test"])
    assert rc == 0
    manifest = json.loads((weights / "manifest.json").read_text())
    assert manifest["input_size"] == 32
    assert manifest["class_names"] == ["normal", "benign", "malignant"]
    assert 0.1 < manifest["temperature"] < 10
    assert "segmentation" in manifest["metrics"]
    assert 0.0 <= manifest["metrics"]["classification"]["ece_crossfit_2fold"] <= 1.0
    assert (card / "confusion_matrix.png").exists() and (card / "calibration.png").exists()

    # Keras and LiteRT files must give the same answers.
    img = (np.random.default_rng(1).random((70, 90)) * 255).astype(np.uint8)
    assert "litert" in manifest["files"]  # the conversion must not fail quietly
    a = Runtime(weights, backend="keras").segment(img)
    b = Runtime(weights, backend="litert").segment(img)
    assert np.abs(a - b).max() < 1e-3

    out = tmp_path / "metrics.json"
    proc = subprocess.run(
        [sys.executable, "-m", "models.evaluate", "--data", str(root), "--weights", str(weights),
         "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mean Dice" in proc.stdout and "confusion matrix" in proc.stdout
    assert "95% bootstrap interval" in proc.stdout
    result = json.loads(out.read_text())
    assert result["n_images"] == 18
    seg, cls = result["segmentation"], result["classification"]
    for key in ("mean_dice", "mean_iou", "mean_precision", "mean_recall", "normal_predicted_empty"):
        assert 0.0 <= seg[key] <= 1.0
    for key in ("accuracy", "macro_f1", "ece", "confusion_matrix", "auc_ovr", "recall"):
        assert key in cls
    floor = cls["ece_if_calibrated"]
    assert 0.0 <= floor["mean"] <= floor["p95"] <= 1.0
    assert "if exactly calibrated" in proc.stdout
    # The proper scores are those of the per-image probabilities written beside them.
    p_true = [row["probabilities"][row["true_class"]] for row in result["per_image"]]
    assert cls["log_loss"] == pytest.approx(-np.log(np.clip(p_true, 1e-12, 1)).mean(), abs=5e-3)
    assert 0.0 <= cls["brier"] <= 2.0
    assert f"{cls['log_loss']:.4f} / {cls['brier']:.4f}" in proc.stdout
    assert np.sum(cls["confusion_matrix"]) == 18
    for key, (lo, hi) in result["intervals_95"].items():
        assert 0.0 <= lo <= hi <= 1.0, key
    lo, hi = result["intervals_95"]["recall_malignant"]
    assert lo <= cls["recall"]["malignant"] <= hi
    row = result["per_image"][0]
    assert {"dice", "iou", "precision", "recall", "true_class", "pred_class"} <= set(row)


def test_int8_export_halves_the_unet_files_and_both_backends_agree(tiny_run, tmp_path):
    root, run = tiny_run
    common = ["--run", str(run), "--data", str(root), "--card-dir", str(tmp_path / "card"),
              "--version", "t", "--tta", "off", "--no-recalibrate"]
    half, int8 = tmp_path / "half", tmp_path / "int8"
    assert export.main([*common, "--out", str(half)]) == 0
    assert export.main([*common, "--out", str(int8), "--int8"]) == 0
    manifest = json.loads((int8 / "manifest.json").read_text())
    half_manifest = json.loads((half / "manifest.json").read_text())
    assert manifest["weights"].startswith("int8")
    assert half_manifest["weights"] == "float16"
    # A .keras cannot hold the int8 kernels' scales: the Keras file is an .npz then.
    assert manifest["files"]["keras"] == "sonotrace_unet.weights.npz"
    assert half_manifest["files"]["keras"] == "sonotrace_unet.keras"
    for kind in ("keras", "litert"):
        small, large = int8 / manifest["files"][kind], half / half_manifest["files"][kind]
        assert small.stat().st_size < 0.75 * large.stat().st_size, kind
    with np.load(int8 / manifest["files"]["keras"]) as data:
        assert any(data[k].dtype == np.int8 for k in data.files)
    # Both backends compute with the same rounded kernels; LiteRT also rounds activations.
    img = (np.random.default_rng(2).random((70, 90)) * 255).astype(np.uint8)
    keras_rt, lite_rt = Runtime(int8, backend="keras"), Runtime(int8, backend="litert").load()
    assert lite_rt.backend_used == "litert"
    assert np.abs(keras_rt.segment(img) - lite_rt.segment(img)).max() < 0.05
    k, t = keras_rt.classify(img), lite_rt.classify(img)
    assert max(abs(k[c] - t[c]) for c in k) < 0.05
    # And they stay close to the float16 export they were rounded from.
    assert np.abs(Runtime(half, backend="keras").segment(img) - keras_rt.segment(img)).max() < 0.1


def test_evaluate_cli_rejects_folder_without_images(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "models.evaluate", "--data", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "no images" in proc.stderr


def test_evaluate_cli_scores_without_tqdm_a_blank_weights_variable_or_a_narrow_console(
        synthetic_busi, tmp_path):
    import shutil

    root, expected = synthetic_busi
    data = tmp_path / "data"
    shutil.copytree(root, data)
    # A name the console's encoding cannot show, printed: a lesion image without a mask.
    (data / "benign" / "benign (1).png").rename(data / "benign" / "b\u00e9nin (1).png")
    (data / "benign" / "benign (1)_mask.png").unlink()
    # tqdm comes with the train extra only: an install for serving has none.
    shim = tmp_path / "no_tqdm" / "tqdm"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named tqdm')\n")
    env = {**os.environ, "PYTHONPATH": str(shim.parent), "PYTHONIOENCODING": "ascii",
           "SONOTRACE_WEIGHTS_DIR": " "}  # blank: unset, as the README says
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "models.evaluate", "--data", str(data), "--json", str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "evaluating" not in proc.stderr  # no bar, and no failure for the want of one
    assert "b\\xe9nin (1)" in proc.stdout  # escaped, not a UnicodeEncodeError
    result = json.loads(out.read_text())
    assert result["n_images"] == len(expected)
    assert "benign/b\u00e9nin (1)" in {r["image"] for r in result["per_image"]}


def test_evaluate_cli_skips_unreadable_files_and_refuses_a_folder_of_them(synthetic_busi,
                                                                           tmp_path):
    root, _ = synthetic_busi
    data = tmp_path / "data"
    (data / "benign").mkdir(parents=True)
    for name in ("benign (1).png", "benign (1)_mask.png"):
        (data / "benign" / name).write_bytes((root / "benign" / name).read_bytes())
    (data / "benign" / "benign (2).png").write_bytes(b"not a png")
    (data / "benign" / "benign (3)_mask.png").write_bytes(
        (root / "benign" / "benign (3)_mask.png").read_bytes())  # its image is missing
    # The JSON's folder does not exist yet: it is made, not found missing after the run.
    out = tmp_path / "new folder" / "result.json"
    cmd = [sys.executable, "-m", "models.evaluate", "--data", str(data), "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "skipped benign/benign (2)" in proc.stdout
    orphan = "benign/: benign (3)_mask.png without an image benign (3).*: left out"
    assert f"  folder: {orphan}\n" in proc.stdout

    def strict(constant):
        raise AssertionError(f"{constant} is not JSON")

    # No normal image: the figures that need one are null, not NaN.
    result = json.loads(out.read_text(), parse_constant=strict)
    assert result["segmentation"]["normal_predicted_empty"] is None
    assert result["n_images"] == 1 and result["per_image"][0]["image"] == "benign/benign (1)"
    assert [item["image"] for item in result["skipped"]] == ["benign/benign (2)"]
    assert result["files_left_out"] == [orphan]

    (data / "benign" / "benign (1).png").write_bytes(b"")
    proc = subprocess.run(cmd[:-2], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "no image could be scored (2 skipped" in proc.stderr

    # A --json that cannot be written is refused before the run, not after it.
    proc = subprocess.run([*cmd[:-1], str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert "--json" in proc.stderr and "directory" in proc.stderr.lower()
    assert "evaluating" not in proc.stderr
    # Writable by its permissions (the tests may run as root), yet not a place for files.
    proc = subprocess.run([*cmd[:-1], "/proc/sonotrace-result.json"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "--json" in proc.stderr
    assert "evaluating" not in proc.stderr and "Traceback" not in proc.stderr
    # Weights that are not an export: the reason, not a traceback.
    proc = subprocess.run([*cmd[:-2], "--weights", str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "error: --weights: no manifest.json in" in proc.stderr
    assert "Traceback" not in proc.stderr
    # Given by the variable, the variable is named (it said --weights, never given).
    proc = subprocess.run(cmd[:-2], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SONOTRACE_WEIGHTS_DIR": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    assert "error: SONOTRACE_WEIGHTS_DIR: no manifest.json in" in proc.stderr


def _second_run(root, out, split_seed):
    rc = train.main([
        "--data", str(root), "--out", str(out), "--epochs", "1", "--steps-per-epoch", "1",
        "--batch-size", "4", "--input-size", "32", "--base-filters", "4", "--verbose", "0",
        "--val-fraction", "0.34", "--seed", "5", "--split-seed", str(split_seed),
    ])
    assert rc == 0
    return out


def test_export_averages_runs_that_share_a_split(tiny_run, tmp_path):
    root, run = tiny_run
    other = _second_run(root, tmp_path / "run2", split_seed=42)
    assert (other / "split.json").read_text() == (run / "split.json").read_text()
    weights = tmp_path / "weights"
    rc = export.main(["--run", str(run), str(other), "--data", str(root), "--out", str(weights),
                      "--card-dir", str(tmp_path / "card"), "--version", "ens", "--tta", "off"])
    assert rc == 0
    manifest = json.loads((weights / "manifest.json").read_text())
    assert manifest["architecture"]["members"] == 2
    assert [r["seed"] for r in manifest["training"]["runs"]] == [42, 5]
    assert manifest["files"]["keras"] == "sonotrace_unet.keras"
    assert not (weights / "sonotrace_unet.weights.npz").exists()
    assert (tmp_path / "card" / "learning_curves_2.png").exists()
    img = (np.random.default_rng(2).random((64, 80)) * 255).astype(np.uint8)
    from models.networks import get_multitask_unet

    single = get_multitask_unet(32, 4).count_params()
    assert manifest["parameters"] == 2 * single
    keras_rt = Runtime(weights, backend="keras")
    assert keras_rt.load()._net.model.count_params() == 2 * single
    assert "litert" in manifest["files"]
    a = keras_rt.segment(img)
    b = Runtime(weights, backend="litert").segment(img)
    assert np.abs(a - b).max() < 2e-3


def test_export_refuses_runs_with_different_splits(tiny_run, tmp_path):
    root, run = tiny_run
    other = _second_run(root, tmp_path / "run2", split_seed=7)
    assert (other / "split.json").read_text() != (run / "split.json").read_text()
    with pytest.raises(SystemExit, match="split"):
        export.main(["--run", str(run), str(other), "--data", str(root),
                     "--out", str(tmp_path / "w"), "--card-dir", str(tmp_path / "card")])


def test_check_same_network_returns_the_shared_shape_or_says_what_differs():
    split = {"train": ["a"], "val": ["b"]}
    wide = {"input_size": 96, "args": {"base_filters": 8}}
    assert export.check_same_network([wide, dict(wide)], [split, split]) == (96, 8)
    # Runs without a train_info.json take the defaults.
    assert export.check_same_network([{}, {}], [split, split]) == (export.INPUT_SIZE, 16)
    with pytest.raises(ValueError, match="base filters"):
        export.check_same_network([wide, {"input_size": 96}], [split, split])
    with pytest.raises(ValueError, match="split"):
        export.check_same_network([wide, wide], [split, {"train": ["b"], "val": ["a"]}])


def test_training_can_start_from_one_member_of_an_export(tiny_run, tmp_path):
    from models.networks import get_multitask_unet

    root, run = tiny_run
    other = _second_run(root, tmp_path / "run2", split_seed=42)
    weights = tmp_path / "weights"
    assert export.main(["--run", str(run), str(other), "--data", str(root), "--out", str(weights),
                        "--card-dir", str(tmp_path / "card"), "--tta", "off"]) == 0

    fresh = get_multitask_unet(32, 4)
    first = train.exported_member_weights(weights, 0, fresh)
    second = train.exported_member_weights(weights, 1, fresh)
    # Member 1 is the second run, so its first convolution must be that run's (to float16).
    from models.export import clean_model

    trained = clean_model(other / "best.keras", 32, 4).get_weights()
    assert np.allclose(second[0], trained[0], atol=2e-3)
    assert not np.allclose(first[0], second[0])
    with pytest.raises(ValueError, match="member"):
        train.exported_member_weights(weights, 2, fresh)
    with pytest.raises(ValueError, match="does not match"):
        train.exported_member_weights(weights, 0, get_multitask_unet(32, 8))

    # The warm restart itself runs end to end.
    out = tmp_path / "warm"
    assert train.main(["--data", str(root), "--out", str(out), "--epochs", "1",
                       "--steps-per-epoch", "1", "--batch-size", "4", "--input-size", "32",
                       "--base-filters", "4", "--verbose", "0", "--val-fraction", "0.34",
                       "--init-from", str(weights), "--init-member", "1",
                       "--seg-loss", "image-tversky", "--mixup", "0.4",
                       "--mixup-targets", "lesion", "--mixup-pairs", "status",
                       "--presence-weight", "0.5", "--augment", "strong"]) == 0
    assert (out / "best.keras").exists()
    recorded = json.loads((out / "train_info.json").read_text())["args"]
    assert recorded["seg_loss"] == "image-tversky" and recorded["mixup"] == 0.4
    assert recorded["mixup_targets"] == "lesion" and recorded["mixup_pairs"] == "status"
    assert recorded["presence_weight"] == 0.5 and recorded["augment"] == "strong"


def test_weight_averaged_run_exports_beside_a_best_epoch_run(tiny_run, tmp_path):
    root, run = tiny_run
    swa = tmp_path / "swa"
    args = ["--data", str(root), "--out", str(swa), "--steps-per-epoch", "1",
            "--batch-size", "4", "--input-size", "32", "--base-filters", "4", "--verbose", "0",
            "--val-fraction", "0.34", "--split-seed", "42", "--swa-start", "2",
            "--lr", "0.05",  # large steps, so the average and the best epoch differ
            "--presence-weight", "0.25"]
    assert train.main(args + ["--epochs", "2"]) == 0
    # Killed after epoch 2, resumed for a third: the average covers epochs 2 and 3.
    assert train.main(args + ["--epochs", "3", "--resume"]) == 0
    with np.load(swa / "swa_state.npz") as state:
        assert int(state["count"]) == 2 and int(state["last_epoch"]) == 2
    header, *rows = (swa / "history.csv").read_text().splitlines()
    col = header.split(",").index("val_swa_dice")
    assert rows[0].split(",")[col] == "nan" and rows[2].split(",")[col] != "nan"
    info = json.loads((swa / "train_info.json").read_text())
    assert info["args"]["swa_start"] == 2

    weights = tmp_path / "weights"
    with pytest.raises(SystemExit, match="one per run"):
        export.main(["--run", str(swa), str(run), "--data", str(root), "--out", str(weights),
                     "--checkpoint", "swa.keras", "best.keras", "best.keras"])
    with pytest.raises(SystemExit, match="no such checkpoint"):
        export.main(["--run", str(run), "--data", str(root), "--out", str(weights),
                     "--checkpoint", "swa.keras"])
    assert export.main(["--run", str(swa), str(run), "--data", str(root), "--out", str(weights),
                        "--card-dir", str(tmp_path / "card"), "--tta", "off", "--no-litert",
                        "--checkpoint", "swa.keras", "best.keras"]) == 0
    runs = json.loads((weights / "manifest.json").read_text())["training"]["runs"]
    assert [(r["checkpoint"], r["swa_start"]) for r in runs] == [("swa.keras", 2),
                                                                 ("best.keras", None)]
    assert [r["seg_loss"] for r in runs] == ["batch-dice", "batch-dice"]
    assert [(r["presence_weight"], r["mixup"]) for r in runs] == [(0.25, 0.0), (0.0, 0.0)]
    # Member 0 is the average, not the run's best epoch.
    from models.networks import get_multitask_unet

    member0 = train.exported_member_weights(weights, 0, get_multitask_unet(32, 4))
    averaged = export.clean_model(swa / "swa.keras", 32, 4).get_weights()
    best = export.clean_model(swa / "best.keras", 32, 4).get_weights()
    assert np.allclose(member0[0], averaged[0], atol=2e-3)
    assert np.abs(member0[0] - best[0]).max() > 1e-2


def test_refit_on_every_image_takes_its_twins_settings(tiny_run, tiny_export, tmp_path, capsys):
    root, run = tiny_run
    twin, _ = tiny_export
    refit = tmp_path / "refit"
    args = ["--data", str(root), "--out", str(refit), "--steps-per-epoch", "1",
            "--batch-size", "4", "--input-size", "32", "--base-filters", "4", "--verbose", "0",
            "--val-fraction", "0", "--epochs", "2", "--seed", "9"]
    with pytest.raises(SystemExit):  # no validation images, so no best epoch to keep
        train.parse_args(args)
    assert train.main(args + ["--swa-start", "1"]) == 0
    split = json.loads((refit / "split.json").read_text())
    whole = json.loads((run / "split.json").read_text())
    assert split["val"] == [] and sorted(split["train"]) == sorted(whole["train"] + whole["val"])
    assert (refit / "swa.keras").exists() and not (refit / "best.keras").exists()
    assert "val_swa_dice" not in (refit / "history.csv").read_text().splitlines()[0]

    weights = tmp_path / "weights"
    common = ["--run", str(refit), "--data", str(root), "--out", str(weights), "--no-litert",
              "--checkpoint", "swa.keras", "--card-dir", str(tmp_path / "card")]
    with pytest.raises(SystemExit, match="settings-from"):
        export.main(common)
    with pytest.raises(SystemExit, match="refitted runs"):
        export.main(["--run", str(run), "--data", str(root), "--out", str(weights),
                     "--settings-from", str(twin)])
    other = tmp_path / "other"
    other.mkdir()
    changed = json.loads((twin / "manifest.json").read_text())
    changed["architecture"]["base_filters"] = 8
    (other / "manifest.json").write_text(json.dumps(changed))
    with pytest.raises(SystemExit, match="different network"):
        export.main(common + ["--settings-from", str(other)])
    # The twin's thresholds were tuned on mean-fused maps; a max-fused refit is another network.
    with pytest.raises(SystemExit, match="max fusion"):
        export.main(common + ["--settings-from", str(twin), "--seg-fusion", "max"])

    assert export.main(common + ["--settings-from", str(twin), "--version", "refit"]) == 0
    manifest = json.loads((weights / "manifest.json").read_text())
    source = json.loads((twin / "manifest.json").read_text())
    for key in ("temperature", "blend_temperature", "postprocess", "tuning", "metrics"):
        assert manifest[key] == source[key]
    assert manifest["version"] == "refit"
    assert manifest["training"]["val_images"] == 0
    assert manifest["training"]["train_images"] == len(split["train"])
    assert manifest["training"]["validated_twin"]["version"] == source["version"]
    # The exported weights are the refit's average, not the twin's.
    from models.networks import get_multitask_unet

    net = get_multitask_unet(32, 4)
    ours = train.exported_member_weights(weights, 0, net)
    theirs = train.exported_member_weights(twin, 0, net)
    averaged = export.clean_model(refit / "swa.keras", 32, 4).get_weights()
    assert np.allclose(ours[0], averaged[0], atol=2e-3)
    assert not np.allclose(ours[0], theirs[0], atol=2e-3)
    img = (np.random.default_rng(3).random((40, 50)) * 255).astype(np.uint8)
    assert Runtime(weights, backend="keras").segment(img).shape == (40, 50)

    # Its "validation" images are training images now: no re-tuning, and scores say so.
    from models import evaluate, tune

    capsys.readouterr()
    assert tune.main(["--data", str(root), "--split", str(run / "split.json"),
                      "--weights", str(weights)]) == 2
    assert "refitted on every image" in capsys.readouterr().err
    assert json.loads((weights / "manifest.json").read_text()) == manifest
    scores = tmp_path / "scores.json"
    assert evaluate.main(["--data", str(root), "--weights", str(weights), "--backend", "keras",
                          "--json", str(scores)]) == 0
    assert "in-sample" in capsys.readouterr().err
    assert json.loads(scores.read_text())["model"]["refit_on_every_image"] is True


@pytest.mark.parametrize(("env", "says"), [
    ("0", None), ("abc", "error: SONOTRACE_NUM_THREADS='abc': must be a whole number")])
def test_evaluate_cli_takes_the_thread_setting_as_the_server_does(synthetic_busi, tmp_path,
                                                                   env, says):
    # SONOTRACE_NUM_THREADS=0 stopped it with "error: --weights: num_threads should >= 1",
    # blaming an option nobody gave.
    root, _ = synthetic_busi
    proc = subprocess.run(
        [sys.executable, "-m", "models.evaluate", "--data", str(root)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "SONOTRACE_NUM_THREADS": env},
    )
    if says is None:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 2
        assert proc.stderr.startswith(says) and "--weights" not in proc.stderr
