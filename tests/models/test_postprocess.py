import numpy as np
import pytest

from models._postprocess import PostProcess, postprocess
from models._preprocess import resize_prob, resize_prob_window


def test_threshold_small_components_and_holes():
    p = np.zeros((100, 100), np.float32)
    p[10:40, 10:40] = 0.9          # main lesion, 900 px
    p[20:25, 20:25] = 0.2          # hole inside it
    p[60:75, 60:75] = 0.8          # second lesion, 225 px (25% of the first): kept
    p[90:92, 90:92] = 0.99         # 4 px speck: dropped
    m = postprocess(p, PostProcess(threshold=0.5, min_area_frac=0.001, keep_relative=0.1))
    assert m[22, 22]                # hole filled
    assert m[65, 65]
    assert not m[90, 90]
    assert m.sum() == 900 + 225


def test_relative_size_filter_and_no_fill():
    p = np.zeros((100, 100), np.float32)
    p[0:50, 0:50] = 1.0
    p[80:84, 80:84] = 1.0  # 16 px, < 10% of 2500
    p[20:30, 20:30] = 0.0
    m = postprocess(p, PostProcess(fill_holes=False))
    assert not m[82, 82]
    assert not m[25, 25]


def test_min_confidence_drops_faint_components_only():
    p = np.zeros((100, 100), np.float32)
    p[10:40, 10:40] = 0.9  # confident lesion
    p[60:90, 60:90] = 0.55  # faint blob, as networks leave on normal images
    assert postprocess(p, PostProcess(threshold=0.5, min_confidence=0.0))[70, 70]
    m = postprocess(p, PostProcess(threshold=0.5, min_confidence=0.6))
    assert m[20, 20] and not m[70, 70]
    assert m.sum() == 900
    # The floor is on the component's mean, not on each pixel.
    p[60:90, 60:75] = 0.7
    assert postprocess(p, PostProcess(threshold=0.5, min_confidence=0.6))[70, 70]
    p[10:40, 10:40] = 0.56
    assert not postprocess(p, PostProcess(threshold=0.5, min_confidence=0.7)).any()


def test_empty_and_bad_input():
    assert not postprocess(np.zeros((5, 5))).any()
    with pytest.raises(ValueError, match="prob"):
        postprocess(np.zeros((2, 2, 2)))


@pytest.mark.parametrize("settings", [
    PostProcess(),
    PostProcess(threshold=0.4, min_area_frac=0.003, min_confidence=0.6),
    PostProcess(threshold=0.3, keep_relative=0.0, fill_holes=False),
])
def test_a_window_of_the_map_gives_the_same_mask(settings, smooth_map):
    rng = np.random.default_rng(3)
    for _ in range(10):
        seg = smooth_map(rng)
        shape = (int(rng.integers(100, 700)), int(rng.integers(100, 700)))
        whole = postprocess(resize_prob(seg, *shape), settings)
        window, offset = resize_prob_window(seg, *shape, settings.threshold)
        part = postprocess(window, settings, shape=shape, offset=offset)
        assert part.shape == shape
        np.testing.assert_array_equal(part, whole)


def test_window_must_fit():
    with pytest.raises(ValueError, match="does not fit"):
        postprocess(np.ones((10, 10)), shape=(20, 20), offset=(15, 0))
    assert not postprocess(np.zeros((0, 0)), shape=(5, 6)).any()


@pytest.mark.parametrize("bad, reason", [
    ({"threshold": 1.5}, "threshold: 1.5 is outside"),
    ({"threshold": 0}, "threshold: 0 is outside"),
    ({"min_area_frac": -0.01}, "min_area_frac"),
    ({"keep_relative": 2}, "keep_relative"),
    ({"min_confidence": float("nan")}, "min_confidence"),
    ({"normal_gate": -1}, "normal_gate"),
    ({"gate_keep_confidence": "high"}, "gate_keep_confidence: expected a number"),
    ({"threshold": True}, "threshold: expected a number"),
    ({"fill_holes": "yes"}, "fill_holes"),
])
def test_settings_out_of_range_are_refused_by_name(bad, reason):
    with pytest.raises(ValueError, match=reason):
        PostProcess(**bad)


def test_the_documented_extremes_are_settings():
    # Above 1 turns the gate off; a gate keeping above 1 empties the mask; 0 floors nothing.
    extremes = PostProcess(threshold=1.0, normal_gate=2.0, gate_keep_confidence=2.0,
                           min_confidence=0.0, min_area_frac=0.0, keep_relative=0.0,
                           fill_holes=np.bool_(False))
    # Kept as given (the manifest records them), not clamped or replaced by defaults.
    assert extremes.to_dict() == {
        "threshold": 1.0, "min_area_frac": 0.0, "keep_relative": 0.0, "fill_holes": False,
        "normal_gate": 2.0, "min_confidence": 0.0, "gate_keep_confidence": 2.0}
    assert PostProcess(threshold=np.float32(0.4)).threshold == pytest.approx(0.4)
    # And they act as documented: only certain pixels are lesion, a 1-pixel speck
    # is kept (no area floor), a hole is left open.
    p = np.zeros((20, 20), np.float32)
    p[2:8, 2:8] = 1.0  # 36 px
    p[4, 4] = 0.99  # a hole below the threshold
    p[15, 15] = 1.0  # a speck
    m = postprocess(p, extremes)
    assert m.sum() == 36 - 1 + 1 and m[15, 15] and not m[4, 4]


def test_settings_from_numpy_values_are_written_as_json():
    # Tuning picks settings out of numpy arrays; the manifest is JSON.
    import json

    settings = PostProcess(threshold=np.float32(0.375), min_confidence=np.float64(0.5),
                           fill_holes=np.bool_(False))
    written = json.loads(json.dumps(settings.to_dict()))
    assert written["threshold"] == 0.375 and written["min_confidence"] == 0.5
    assert written["fill_holes"] is False
    assert all(type(v) in (float, bool) for v in settings.to_dict().values())
