"""Network builders: the ensemble averages its members; half-precision weights round-trip."""

import numpy as np
import pytest

from models.networks import (
    build_from_architecture,
    get_ensemble,
    get_multitask_unet,
    get_refiner,
    load_half_weights,
    save_half_keras,
    save_half_weights,
)


def _feed(size, n=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 1)).astype(np.float32)
    return {"image": x, "hint": np.zeros_like(x), "use_hint": np.zeros((n, 1), np.float32)}


def _run(model, feed):
    out = model(feed, training=False)
    return np.asarray(out["seg"]), np.asarray(out["cls"])


@pytest.fixture(scope="module")
def two_members():
    a = get_multitask_unet(32, 4, name="member0")
    b = get_multitask_unet(32, 4, name="member1")
    return a, b


def test_ensemble_outputs_are_the_members_mean(two_members):
    a, b = two_members
    feed = _feed(32)
    seg_a, cls_a = _run(a, feed)
    seg_b, cls_b = _run(b, feed)
    # Independently initialised, or the test could not tell a mean from a copy.
    assert np.abs(cls_a - cls_b).max() > 1e-3
    seg, cls = _run(get_ensemble([a, b]), feed)
    np.testing.assert_allclose(seg, (seg_a + seg_b) / 2, atol=1e-5)
    np.testing.assert_allclose(cls, (cls_a + cls_b) / 2, atol=1e-5)


def test_max_fusion_keeps_the_surer_member_and_still_averages_logits(two_members):
    a, b = two_members
    feed = _feed(32, seed=1)
    seg_a, cls_a = _run(a, feed)
    seg_b, cls_b = _run(b, feed)
    # Pixels where the members disagree, or max and mean could not be told apart.
    assert np.abs(seg_a - seg_b).max() > 1e-3
    seg, cls = _run(get_ensemble([a, b], seg_fusion="max"), feed)
    np.testing.assert_allclose(seg, np.maximum(seg_a, seg_b), atol=1e-5)
    np.testing.assert_allclose(cls, (cls_a + cls_b) / 2, atol=1e-5)


def test_max_fusion_survives_the_architecture_round_trip(two_members, tmp_path):
    ens = get_ensemble(list(two_members), seg_fusion="max")
    path = tmp_path / "w.npz"
    save_half_weights(ens, path)
    rebuilt = build_from_architecture(
        {"input_size": 32, "base_filters": 4, "num_classes": 3, "members": 2,
         "seg_fusion": "max"}
    )
    load_half_weights(rebuilt, path)
    feed = _feed(32, seed=4)
    seg_a, _ = _run(two_members[0], feed)
    seg_b, _ = _run(two_members[1], feed)
    seg, _ = _run(rebuilt, feed)
    assert np.abs(seg - np.maximum(seg_a, seg_b)).max() < 5e-3


def test_unknown_fusion_is_refused(two_members):
    with pytest.raises(ValueError, match="seg_fusion"):
        get_ensemble(list(two_members), seg_fusion="median")


def test_single_member_ensemble_is_the_member(two_members):
    a, _ = two_members
    assert get_ensemble([a]) is a


def test_half_weights_round_trip_through_the_architecture(two_members, tmp_path):
    ens = get_ensemble(list(two_members))
    path = tmp_path / "w.npz"
    save_half_weights(ens, path)
    n_params = ens.count_params()
    # float16: two bytes a parameter, compressed, plus zip and .npy headers per array.
    with np.load(path) as data:
        arrays = [data[k] for k in data.files]
    assert all(a.dtype == np.float16 for a in arrays)
    assert sum(a.nbytes for a in arrays) == 2 * n_params
    assert path.stat().st_size < 2 * n_params + 400 * len(ens.get_weights())
    rebuilt = build_from_architecture(
        {"input_size": 32, "base_filters": 4, "num_classes": 3, "members": 2}
    )
    load_half_weights(rebuilt, path)
    feed = _feed(32, seed=3)
    seg0, cls0 = _run(ens, feed)
    seg1, cls1 = _run(rebuilt, feed)
    assert np.abs(seg0 - seg1).max() < 5e-3
    np.testing.assert_allclose(cls1, cls0, rtol=2e-2, atol=2e-2)
    assert rebuilt.get_weights()[0].dtype == np.float32


def test_a_half_keras_file_is_plain_keras_with_the_npz_weights(two_members, tmp_path):
    import zipfile

    import h5py
    import keras

    ens = get_ensemble(list(two_members))
    save_half_keras(ens, tmp_path / "w.keras")
    save_half_weights(ens, tmp_path / "w.npz")
    # Plain Keras opens it as the float32 network it was, with the float16 weights:
    # bit for bit those the .npz gives, and within half-precision rounding of the
    # network's own.
    opened = keras.models.load_model(tmp_path / "w.keras", compile=False)
    from_npz = build_from_architecture(
        {"input_size": 32, "base_filters": 4, "num_classes": 3, "members": 2}
    )
    load_half_weights(from_npz, tmp_path / "w.npz")
    got, want = opened.get_weights(), from_npz.get_weights()
    assert len(got) == len(want) == len(ens.get_weights())
    assert all(g.dtype == np.float32 and np.array_equal(g, w)
               for g, w in zip(got, want, strict=True))
    assert any(not np.array_equal(g, o) for g, o in zip(got, ens.get_weights(), strict=True))
    feed = _feed(32, seed=6)
    np.testing.assert_array_equal(_run(opened, feed)[0], _run(from_npz, feed)[0])
    # ... stored in half precision, deflated: about the .npz's size, half Keras's own.
    with zipfile.ZipFile(tmp_path / "w.keras") as archive:
        assert archive.getinfo("model.weights.h5").compress_type == zipfile.ZIP_DEFLATED
        with archive.open("model.weights.h5") as fh, h5py.File(fh, "r") as store:
            dtypes = set()
            store.visititems(lambda _, item: dtypes.add(item.dtype)
                             if isinstance(item, h5py.Dataset) else None)
    assert dtypes == {np.dtype(np.float16)}
    ens.save(tmp_path / "full.keras")
    size = (tmp_path / "w.keras").stat().st_size
    assert size < 0.6 * (tmp_path / "full.keras").stat().st_size
    assert size < 1.2 * (tmp_path / "w.npz").stat().st_size
    # load_half_weights reads it as an export's file too.
    again = build_from_architecture(
        {"input_size": 32, "base_filters": 4, "num_classes": 3, "members": 2}
    )
    load_half_weights(again, tmp_path / "w.keras")
    assert all(np.array_equal(a, w) for a, w in zip(again.get_weights(), want, strict=True))
    assert not list(tmp_path.glob("*.partial"))


def test_a_half_keras_file_must_be_named_keras(two_members, tmp_path):
    with pytest.raises(ValueError, match="must end in .keras"):
        save_half_keras(two_members[0], tmp_path / "w.h5")
    assert not list(tmp_path.iterdir())


def test_a_keras_file_of_another_network_is_refused(two_members, tmp_path):
    save_half_keras(two_members[0], tmp_path / "w.keras")
    other = build_from_architecture(
        {"input_size": 32, "base_filters": 8, "num_classes": 3, "members": 1}
    )
    with pytest.raises(ValueError, match="do not match"):
        load_half_weights(other, tmp_path / "w.keras")


def test_half_weights_refuse_a_different_network(two_members, tmp_path):
    path = tmp_path / "w.npz"
    save_half_weights(two_members[0], path)
    other = build_from_architecture(
        {"input_size": 32, "base_filters": 8, "num_classes": 3, "members": 1}
    )
    with pytest.raises(ValueError, match="do not match"):
        load_half_weights(other, path)


def test_int8_weights_are_per_channel_and_round_trip(tmp_path):
    net = get_multitask_unet(32, 8, name="member0")
    path = tmp_path / "w.npz"
    save_half_weights(net, path, int8=True)
    weights = net.get_weights()
    with np.load(path) as data:
        stored = {k: data[k] for k in data.files}
    big = [i for i, w in enumerate(weights) if w.ndim >= 2 and w.size >= 1024]
    small = [i for i in range(len(weights)) if i not in big]
    assert big and small
    for i in big:
        q, scale = stored[f"w{i:04d}"], stored[f"s{i:04d}"]
        assert q.dtype == np.int8 and scale.shape == (weights[i].shape[-1],)
        # Symmetric per output channel: each channel's largest weight maps to +-127.
        assert (np.abs(q).reshape(-1, q.shape[-1]).max(axis=0) == 127).all()
        # Rounding error at most half a step of that channel's scale.
        assert np.all(np.abs(q * scale - weights[i]) <= scale / 2 + 1e-7)
    assert all(stored[f"w{i:04d}"].dtype == np.float16 for i in small)
    assert not any(f"s{i:04d}" in stored for i in small)
    rebuilt = build_from_architecture(
        {"input_size": 32, "base_filters": 8, "num_classes": 3, "members": 1}
    )
    load_half_weights(rebuilt, path)
    for i in big:
        np.testing.assert_array_equal(
            rebuilt.get_weights()[i], stored[f"w{i:04d}"] * stored[f"s{i:04d}"]
        )
    seg0, cls0 = _run(net, _feed(32, seed=5))
    seg1, cls1 = _run(rebuilt, _feed(32, seed=5))
    assert np.abs(seg0 - seg1).max() < 2e-2
    np.testing.assert_allclose(cls1, cls0, atol=5e-2)
    # About half the float16 file: one byte a kernel weight instead of two.
    half = tmp_path / "h.npz"
    save_half_weights(net, half)
    assert path.stat().st_size < 0.65 * half.stat().st_size


@pytest.mark.parametrize("unet, refiner", [(100, 100), (168, 12), (8, 4), (0, 0),
                                            (16.0, 16.0)])
def test_builders_refuse_a_side_their_levels_cannot_halve(unet, refiner):
    with pytest.raises(ValueError, match="input_size"):
        get_multitask_unet(unet, base_filters=4)
    with pytest.raises(ValueError, match="crop_size"):
        get_refiner(crop_size=refiner)


def test_the_training_scripts_refuse_such_a_side_before_reading_data(capsys):
    from models import train, train_refine

    with pytest.raises(SystemExit) as stop:
        train.parse_args(["--data", "/nonexistent", "--input-size", "100"])
    assert stop.value.code == 2
    assert "--input-size: 100 is not a multiple of 16" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_refine.parse_args(["--data", "/nonexistent", "--crop-size", "100"])
    assert "--crop-size: 100 is not a multiple of 8" in capsys.readouterr().err
    assert train.parse_args(["--data", "/x", "--input-size", "96"]).input_size == 96
