"""The shipped weights, through the runtime the server uses."""

import threading
from pathlib import Path

import numpy as np
import pytest

from models.data import load_samples, read_image, read_mask
from models.metrics import overlap_scores
from models.runtime import ModelInputError, Runtime, mix_malignant_odds, recalibrate


@pytest.fixture(scope="module")
def runtime():
    return Runtime().load()


@pytest.fixture(scope="module")
def lesion_case(busi_dir):
    s = next(x for x in load_samples(busi_dir) if x.name == "benign (102)")
    grey = read_image(s.image_path)
    return grey, read_mask(s.mask_paths, grey.shape)


def test_info_and_manifest(runtime):
    info = runtime.info()
    assert info["name"] and info["version"]
    assert info["class_names"] == ["normal", "benign", "malignant"]


def test_shipped_weights_fit_the_size_budget(runtime):
    """Every weight file, the lesion classifier's and refiner's too, in at most 20 MB."""
    files = set(runtime.manifest["files"].values())
    for part in ("lesion_classifier", "refiner"):
        files.update(runtime.manifest.get(part, {}).get("files", {}).values())
    # Every weight file on disk must be one the manifest names, so none escapes the count.
    on_disk = {f.name for f in runtime.weights_dir.iterdir() if f.name != "manifest.json"}
    assert on_disk <= files
    sizes = [(runtime.weights_dir / f).stat().st_size for f in files]
    assert all(sizes) and sum(sizes) <= 20e6


def test_each_shipped_network_is_a_keras_file_plain_keras_opens(runtime):
    """The Keras backend's files are standard ``.keras`` files with float16 weights."""
    import keras

    import models.networks  # noqa: F401  (registers the custom layers)

    manifest = runtime.manifest
    names = [manifest["files"]["keras"], manifest["lesion_classifier"]["files"]["keras"],
             manifest["refiner"]["files"]["keras"]]
    assert names == ["sonotrace_unet.keras", "lesion_classifier.keras", "lesion_refiner.keras"]
    counts = [manifest["parameters"], manifest["lesion_classifier"]["parameters"],
              manifest["refiner"]["parameters"]]
    assert counts == [4_365_672, 553_489, 213_765]
    for name, count in zip(names, counts, strict=True):
        model = keras.models.load_model(runtime.weights_dir / name, compile=False)
        assert model.count_params() == count
        weights = model.get_weights()
        assert all(w.dtype == np.float32 for w in weights)
        # Half precision, as the LiteRT files hold them.
        assert all(np.array_equal(w, w.astype(np.float16).astype(np.float32))
                   for w in weights)


def test_backends_agree_on_classification(lesion_case):
    """Keras and LiteRT give the same answer, lesion classifier included."""
    grey, truth = lesion_case
    keras_rt, lite_rt = Runtime(backend="keras"), Runtime(backend="litert").load()
    assert lite_rt.backend_used == "litert"
    for mask in (None, truth):
        k, t = keras_rt.classify(grey, mask=mask), lite_rt.classify(grey, mask=mask)
        assert max(abs(k[c] - t[c]) for c in k) < 0.01


def test_busi_lesion_is_found(runtime, lesion_case):
    """Guards against broken preprocessing: a clear lesion must be segmented."""
    grey, truth = lesion_case
    prob = runtime.segment(grey)
    assert prob.shape == grey.shape and prob.dtype == np.float32
    assert 0.0 <= prob.min() and prob.max() <= 1.0
    mask = runtime.predict_mask(grey)
    assert overlap_scores(mask, truth)["dice"] > 0.5


def test_rgb_input_matches_grey(runtime, lesion_case):
    grey, _ = lesion_case
    a = runtime.segment(grey)
    b = runtime.segment(np.stack([grey] * 3, -1))
    assert np.abs(a - b).max() < 1e-4


def test_box_limits_the_output(runtime, lesion_case):
    grey, truth = lesion_case
    rows, cols = np.nonzero(truth)
    pad = 20
    x0, x1 = max(0, cols.min() - pad), min(grey.shape[1], cols.max() + pad)
    y0, y1 = max(0, rows.min() - pad), min(grey.shape[0], rows.max() + pad)
    prob = runtime.segment(grey, box=(x0, y0, x1, y1))
    outside = np.ones_like(truth)
    outside[y0:y1, x0:x1] = False
    assert prob[outside].max() == 0.0
    mask = runtime.predict_mask(grey, box=(x0, y0, x1, y1))
    assert overlap_scores(mask, truth)["dice"] > 0.5
    assert not mask[outside].any()  # the refiner's square reaches past the box; the outline not


def test_box_ignores_the_confidence_floor(lesion_case):
    grey, truth = lesion_case
    rows, cols = np.nonzero(truth)
    box = (cols.min() - 10, rows.min() - 10, cols.max() + 10, rows.max() + 10)
    # A floor no component can reach empties the whole-image mask but not the
    # box, where the user has said there is a lesion.
    strict = Runtime(postprocess={"min_confidence": 1.01, "normal_gate": 2.0})
    assert not strict.predict_mask(grey).any()
    assert overlap_scores(strict.predict_mask(grey, box=box), truth)["dice"] > 0.5


def test_gate_keeps_confident_outlines_when_asked(lesion_case):
    grey, truth = lesion_case
    # A gate at P(normal) >= 0 always fires: alone it empties the mask...
    emptying = Runtime(postprocess={"normal_gate": 0.0, "gate_keep_confidence": 2.0})
    assert not emptying.predict_mask(grey).any()
    # ...but told to keep confident components, it keeps what a floor at that level keeps.
    keeping = Runtime(postprocess={"normal_gate": 0.0, "gate_keep_confidence": 0.6})
    floor = Runtime(postprocess={"normal_gate": 2.0, "min_confidence": 0.6})
    kept = keeping.predict_mask(grey)
    assert overlap_scores(kept, truth)["dice"] > 0.5
    assert np.array_equal(kept, floor.predict_mask(grey))
    # A level no component reaches empties it again.
    unreachable = Runtime(postprocess={"normal_gate": 0.0, "gate_keep_confidence": 1.0})
    assert not unreachable.predict_mask(grey).any()


def test_outputs_are_the_raw_network_outputs(runtime, lesion_case):
    grey, _ = lesion_case
    prob, logits = runtime.outputs(grey)
    assert prob.shape == grey.shape and prob.dtype == np.float32
    assert np.allclose(prob, runtime.segment(grey))
    z = logits / runtime.temperature
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    head = dict(zip(runtime.class_names, p, strict=True))
    odds = runtime.lesion_odds(grey)
    if odds is not None:  # the served answer is the head blended with the lesion classifier
        head = mix_malignant_odds(head, odds, runtime.manifest["lesion_classifier"]["weight"])
    head = recalibrate(head, runtime.manifest.get("blend_temperature", 1.0))
    assert np.allclose(list(head.values()), list(runtime.classify(grey).values()), atol=1e-6)


def test_mask_is_post_processed_once_per_image(runtime, lesion_case, monkeypatch):
    grey, _ = lesion_case
    first = runtime.predict_mask(grey)
    calls = []
    monkeypatch.setattr(runtime, "_first_outline",
                        lambda g, seg, logits: calls.append(1) or (first, runtime.settings))
    again = runtime.predict_mask(grey)
    assert calls == [] and np.array_equal(again, first)
    again[:] = ~again  # a caller's edits do not reach the cache
    assert np.array_equal(runtime.predict_mask(grey), first)
    other = grey.copy()
    other[0, 0] ^= 1
    runtime.predict_mask(other)
    assert calls == [1]


def test_the_mask_cache_keeps_to_its_byte_budget(lesion_case, monkeypatch):
    # Eight full-resolution masks of a 25-megapixel image are 400 MB kept for good in
    # every worker; the cache counts bytes, not images.
    import models.runtime as runtime_module

    grey, _ = lesion_case
    runtime = Runtime().load()
    variants = []
    for i in range(4):
        other = grey.copy()
        other[0, 0] = i  # another image, to the cache
        variants.append(other)
    first, served = runtime._outlines(variants[0])
    pair = first.nbytes + (served.nbytes if served is not first else 0)
    monkeypatch.setattr(runtime_module, "MASK_CACHE_BYTES", 2 * pair + pair // 2)
    for image in variants[1:]:
        runtime.predict_mask(image)

    def kept():
        return sum(a.nbytes + (b.nbytes if b is not a else 0)
                   for a, b in runtime._mask_cache.values())

    assert len(runtime._mask_cache) == 2  # the two newest: 3 pairs are over the budget
    assert runtime._mask_cache_bytes == kept() <= runtime_module.MASK_CACHE_BYTES
    # A pair larger than the whole budget is served, and not kept.
    monkeypatch.setattr(runtime_module, "MASK_CACHE_BYTES", pair - 1)
    before = list(runtime._mask_cache)
    big = grey.copy()
    big[0, 0] = 200
    assert runtime.predict_mask(big).shape == grey.shape
    assert list(runtime._mask_cache) == before
    assert runtime._mask_cache_bytes == kept()


@pytest.mark.parametrize("box", [(0, 0, 3, 3), (5, 5, 5, 50), ("a", 1, 2, 3), (1, 2, 3)])
def test_bad_box(runtime, box):
    img = np.zeros((64, 64), np.uint8)
    img[20:40, 20:40] = 90  # not blank, so the box is what is refused
    with pytest.raises(ModelInputError, match="box"):
        runtime.segment(img, box=box)


def test_classify_probabilities_and_hint(runtime, lesion_case):
    grey, truth = lesion_case
    p = runtime.classify(grey)
    assert list(p) == ["normal", "benign", "malignant"]
    assert sum(p.values()) == pytest.approx(1.0, abs=1e-6)
    with_mask = runtime.classify(grey, mask=truth)
    assert sum(with_mask.values()) == pytest.approx(1.0, abs=1e-6)
    empty = runtime.classify(grey, mask=np.zeros_like(truth))
    # Pooling under another outline must change the answer.
    assert max(abs(with_mask[k] - empty[k]) for k in p) > 1e-4
    with pytest.raises(ModelInputError, match="mask"):
        runtime.classify(grey, mask=np.zeros((5, 5), bool))
    # A mask drawn in transparency alone is the same outline, not an empty one.
    rgba = np.zeros((*truth.shape, 4), np.uint8)
    rgba[..., 3] = truth.astype(np.uint8) * 255
    assert runtime.classify(grey, mask=rgba) == with_mask
    for bad in (np.full(truth.shape, np.nan), np.full(truth.shape, "x")):
        with pytest.raises(ModelInputError, match="mask"):
            runtime.classify(grey, mask=bad)


def test_bad_images(runtime):
    # Not blank, so each is refused for its own fault.
    ramp = np.arange(100, dtype=np.uint8)
    with pytest.raises(ModelInputError, match="too small"):
        runtime.segment(ramp[:9].reshape(3, 3))
    with pytest.raises(ModelInputError, match="expected"):
        runtime.segment(np.resize(ramp, (10, 10, 7)))


@pytest.mark.parametrize("call", ["segment", "predict_mask", "classify", "outputs", "lesion_odds"])
@pytest.mark.parametrize("image", [np.zeros((64, 80), np.uint8),
                                   np.full((64, 80, 3), 255, np.uint8),
                                   np.full((64, 80), 0.5, np.float32)])
def test_blank_images_are_refused(runtime, call, image):
    # The server refuses a blank upload; the runtime, called directly, must not
    # answer it with an outline and a class either.
    with pytest.raises(ModelInputError, match="blank"):
        getattr(runtime, call)(image)


def test_concurrent_calls_agree(runtime, lesion_case):
    grey, _ = lesion_case
    images = [grey, grey[::-1].copy(), grey[:, ::-1].copy()]
    ref = [runtime.segment(i) for i in images]
    errors, results = [], {}

    def work(k):
        try:
            results[k] = runtime.segment(images[k % 3])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(9)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    for k, r in results.items():
        assert np.abs(r - ref[k % 3]).max() < 1e-5


def test_keras_backend_reads_both_weight_formats(tmp_path):
    """A ``.keras`` model (exports since 2026-12-06, with float16 weights) or float16
    ``.weights.npz`` weights rebuilt from the manifest (those before, and ``--int8``)."""
    import json

    from models.networks import get_multitask_unet, save_half_weights

    net = get_multitask_unet(32, 4)
    base = {"name": "t", "version": "0", "input_size": 32, "class_names":
            ["normal", "benign", "malignant"], "postprocess": {"normal_gate": 2.0}}
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    net.save(old / "m.keras")
    (old / "manifest.json").write_text(json.dumps({**base, "files": {"keras": "m.keras"}}))
    save_half_weights(net, new / "m.weights.npz")
    (new / "manifest.json").write_text(json.dumps({
        **base, "files": {"keras": "m.weights.npz"},
        "architecture": {"input_size": 32, "base_filters": 4, "num_classes": 3, "members": 1},
    }))
    img = (np.random.default_rng(0).random((50, 70)) * 255).astype(np.uint8)
    a = Runtime(old, backend="keras").segment(img)
    b = Runtime(new, backend="keras").segment(img)
    assert a.shape == (50, 70)
    assert np.abs(a - b).max() < 5e-3
    # A weights file that does not fit the architecture is refused, not half-loaded.
    bad = json.loads((new / "manifest.json").read_text())
    bad["architecture"]["base_filters"] = 8
    (new / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="do not match"):
        Runtime(new, backend="keras").load()


@pytest.mark.parametrize("backend", ["litert", "keras"])
def test_crop_models_averaged_with_their_mirror_when_asked(tmp_path, lesion_case, backend):
    """``tta_flip`` on a crop model averages it with its run on the mirrored crop."""
    import json
    import shutil

    from models.lesion_crop import lesion_crop
    from models.lesion_refine import crop_square, lesion_box

    grey, truth = lesion_case
    plain = Runtime(backend=backend).load()
    manifest = json.loads((plain.weights_dir / "manifest.json").read_text())
    for f in plain.weights_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    for part in ("lesion_classifier", "refiner"):
        manifest[part]["tta_flip"] = True
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    flipped = Runtime(tmp_path, backend=backend).load()

    spec = manifest["lesion_classifier"]
    crop = lesion_crop(grey, truth, int(spec["crop_size"]), float(spec["margin"]))[None, :, :, None]
    once, mirror = plain._lesion(crop), plain._lesion(crop[:, :, ::-1].copy())
    assert abs(once - mirror) > 1e-3  # the mirror is another view, or the test proves nothing
    assert flipped._lesion(crop) == pytest.approx((once + mirror) / 2, abs=1e-5)
    assert flipped.lesion_odds(grey, truth) == pytest.approx((once + mirror) / 2, abs=1e-5)

    spec = manifest["refiner"]
    box = lesion_box(truth, float(spec["margin"]))
    square = crop_square(grey, box, int(spec["crop_size"]))[None, :, :, None]
    a, b = plain._refiner(square), plain._refiner(square[:, :, ::-1].copy())
    assert np.abs(a - b[:, ::-1]).max() > 1e-3
    np.testing.assert_allclose(flipped._refiner(square), (a + b[:, ::-1]) / 2, atol=1e-5)
    # The U-Net is not touched: only the crop models see the mirror.
    np.testing.assert_array_equal(flipped.segment(grey), plain.segment(grey))


@pytest.mark.parametrize(("env", "arg", "threads"), [
    (None, None, 2), ("0", None, 2), ("", None, 2), (" 3 ", None, 3), ("0", 5, 5),
    ("4", None, 4), (None, 0, 2), ("6", 1, 1)])
def test_the_inference_threads_come_from_the_caller_then_the_environment(
        monkeypatch, env, arg, threads):
    # 0 or empty is not saying, as the README says: SONOTRACE_NUM_THREADS=0 (cores per
    # worker under python -m model_server) made models.evaluate fail ("num_threads
    # should >= 1"), and an empty one int('').
    if env is None:
        monkeypatch.delenv("SONOTRACE_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("SONOTRACE_NUM_THREADS", env)
    assert Runtime(num_threads=arg).num_threads == threads


@pytest.mark.parametrize("env", ["abc", "-1", "65", "2.5"])
def test_an_inference_thread_count_that_is_none_is_refused_by_its_name(monkeypatch, env):
    monkeypatch.setenv("SONOTRACE_NUM_THREADS", env)
    with pytest.raises(ValueError, match=rf"^SONOTRACE_NUM_THREADS='{env}': must be a whole "
                                         r"number from 1 to 64 \(0 or unset: 2\)$"):
        Runtime()


@pytest.mark.parametrize("part", ["lesion_classifier", "refiner"])
def test_a_load_that_fails_part_way_leaves_the_runtime_unloaded(tmp_path, part):
    """Audit 804 F2: a crop model that fails to load must not leave the U-Net loaded
    alone; the next ``load()`` loads everything again."""
    import json
    import shutil

    from models.runtime import DEFAULT_WEIGHTS_DIR

    shipped = Path(DEFAULT_WEIGHTS_DIR)
    for f in shipped.iterdir():
        shutil.copy(f, tmp_path / f.name)
    name = json.loads((shipped / "manifest.json").read_text())[part]["files"]["litert"]
    (tmp_path / name).unlink()
    runtime = Runtime(tmp_path, backend="litert")
    for _ in range(2):  # the second call must try again, not return at once
        with pytest.raises(Exception, match=name):
            runtime.load()
        assert not runtime.ready
        assert runtime._net is None and runtime.manifest == {}
    shutil.copy(shipped / name, tmp_path / name)
    info = runtime.load().info()
    assert runtime.ready
    assert info["lesion_classifier"] and info["refiner"]
    assert info["version"] == json.loads((shipped / "manifest.json").read_text())["version"]


def test_a_manifest_holding_nan_is_read_with_null_in_its_place(tmp_path):
    # Exports before 2026-12-07 wrote a figure that could not be computed as a bare NaN,
    # which the model server's strict JSON refused: /models answered 500 (audit 803 F2).
    import json

    from models.networks import get_multitask_unet

    get_multitask_unet(32, 4).save(tmp_path / "m.keras")
    (tmp_path / "manifest.json").write_text(
        '{"name": "t", "version": "0", "input_size": 32, "class_names": '
        '["normal", "benign", "malignant"], "files": {"keras": "m.keras"}, '
        '"metrics": {"auc_normal": NaN, "dice": 0.7, "worst": -Infinity}}')
    runtime = Runtime(tmp_path, backend="keras").load()
    assert runtime.manifest["metrics"] == {"auc_normal": None, "dice": 0.7, "worst": None}
    json.dumps(runtime.manifest, allow_nan=False)
