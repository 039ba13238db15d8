"""User errors of export, soup, tune and robustness end in one line, not a traceback."""

from __future__ import annotations

import json
import shutil

import pytest

from models import export, robustness, soup, tune


@pytest.fixture(scope="module")
def lesion_run(tiny_run, tmp_path_factory):
    """A lesion classifier run folder (untrained: only its shape matters here)."""
    from models.networks import get_lesion_classifier

    _, run = tiny_run
    out = tmp_path_factory.mktemp("les")
    get_lesion_classifier(32, (4, 8)).save(out / "final.keras")
    split = json.loads((run / "split.json").read_text())
    (out / "split.json").write_text(json.dumps(
        {part: [n for n in names if not n.startswith("normal/")]
         for part, names in split.items()}))
    (out / "train_info.json").write_text(json.dumps(
        {"args": {"seed": 0}, "crop_size": 32, "filters": [4, 8]}))
    return out


def _export(root, run, out, *extra):
    return export.main(["--run", str(run), "--data", str(root), "--out", str(out),
                        "--no-litert", "--tta", "off", *extra])


def test_export_refuses_what_it_cannot_use_in_one_line(tiny_run, lesion_run, tmp_path):
    root, run = tiny_run
    out = tmp_path / "w"
    nosplit = tmp_path / "nosplit"
    shutil.copytree(run, nosplit)
    (nosplit / "split.json").unlink()
    with pytest.raises(SystemExit, match="no split.json"):
        _export(root, nosplit, out)
    empty = tmp_path / "empty"
    empty.mkdir()
    for data in (tmp_path / "no-such-folder", empty):
        with pytest.raises(SystemExit, match="--data"):
            _export(data, run, out)
    with pytest.raises(SystemExit, match="not a U-Net"):
        _export(root, lesion_run, out, "--checkpoint", "final.keras")
    truncated = tmp_path / "truncated"
    shutil.copytree(run, truncated)
    best = truncated / "best.keras"
    best.write_bytes(best.read_bytes()[:2000])
    # Keras itself would say "File not found" of a file that is there.
    with pytest.raises(SystemExit, match="best.keras is damaged"):
        _export(root, truncated, out)
    # A lesion classifier given as the refiner: refused, and nothing is left behind.
    with pytest.raises(SystemExit, match="not an outline refiner run"):
        _export(root, run, out, "--refine-run", str(lesion_run))
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "nosplit", "truncated"]


def test_soup_refuses_a_folder_that_is_not_a_run(tiny_run, tmp_path):
    _, run = tiny_run
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run / "best.keras", bare / "best.keras")
    with pytest.raises(SystemExit, match="no train_info.json"):
        soup.main(["--run", str(run), str(bare), "--checkpoint", "best.keras",
                   "--out", str(tmp_path / "soup")])


def test_tune_refuses_a_folder_without_a_manifest(synthetic_busi, tiny_export, tmp_path, capsys):
    root, _ = synthetic_busi
    _, split = tiny_export
    rc = tune.main(["--data", str(root), "--split", str(split),
                    "--weights", str(tmp_path / "nothing")])
    assert rc == 2
    assert "manifest.json" in capsys.readouterr().err


def test_robustness_checks_json_and_weights_before_the_run(synthetic_busi, tiny_export, tmp_path,
                                                           capsys, monkeypatch):
    root, _ = synthetic_busi
    weights, _ = tiny_export

    def not_run(*args, **kwargs):
        raise AssertionError("the perturbations ran")

    monkeypatch.setattr(robustness, "run", not_run)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    for path in ("/proc/sonotrace/rob.json", str(folder)):
        rc = robustness.main(["--data", str(root), "--weights", str(weights), "--json", path])
        assert rc == 2
        assert "--json" in capsys.readouterr().err
    rc = robustness.main(["--data", str(root), "--weights", str(tmp_path / "nothing")])
    assert rc == 2
    assert "--weights" in capsys.readouterr().err


def test_soup_out_may_not_be_an_ingredient_or_another_run(tiny_run, tmp_path):
    _, run = tiny_run
    other = tmp_path / "other"
    shutil.copytree(run, other)
    before = (other / "best.keras").read_bytes()
    common = ["--run", str(run), str(other), "--checkpoint", "best.keras"]
    with pytest.raises(SystemExit, match="one of the --run folders"):
        soup.main(common + ["--out", str(other)])
    third = tmp_path / "third"
    shutil.copytree(run, third)
    with pytest.raises(SystemExit, match="holds a training run"):
        soup.main(common + ["--out", str(third)])
    assert (other / "best.keras").read_bytes() == before
    # An earlier soup is no ingredient: it may be replaced.
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "train_info.json").write_text(json.dumps({"soup": {"runs": []}}))
    soup.check_soup_out(earlier, [run, other])
