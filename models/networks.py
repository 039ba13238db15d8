"""Network builders: pure functions that return uncompiled Keras models.

Coordinates: tensors are ``(batch, row, col, channel)``.
"""

from __future__ import annotations

import operator

import keras
from keras import layers, ops


def _conv_block(x, filters, name, dropout=0.0, bn_momentum=0.9):
    """Two 3x3 conv + BN + ReLU with a 1x1 residual shortcut.

    BatchNorm momentum is 0.9, not Keras's 0.99: an epoch of BUSI is only
    about 30 steps, and slower moving averages lag the weights enough to
    make inference-mode outputs much worse than training-mode ones.
    """
    shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_c1")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn1")(x)
    x = layers.Activation("relu", name=f"{name}_r1")(x)
    if dropout:
        x = layers.SpatialDropout2D(dropout, name=f"{name}_drop")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_c2")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn2")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(x)


@keras.saving.register_keras_serializable("sonotrace")
class HintSelect(layers.Layer):
    """Pick the supplied ``hint`` mask where ``use_hint`` is 1, else ``own``."""

    def call(self, hint, own, use_hint):
        w = ops.reshape(use_hint, (-1, 1, 1, 1))
        return hint * w + own * (1.0 - w)


@keras.saving.register_keras_serializable("sonotrace")
class MaskStats(layers.Layer):
    """Mean and max of a mask ``(B, H, W, 1)``, as ``(B, 2)``."""

    def call(self, mask):
        return ops.concatenate([ops.mean(mask, axis=(1, 2)), ops.max(mask, axis=(1, 2))], axis=-1)


@keras.saving.register_keras_serializable("sonotrace")
class MaskedAveragePool(layers.Layer):
    """Average ``features`` ``(B, h, w, C)`` under a soft mask ``(B, H, W, 1)``.

    The mask is resized to the feature grid. An empty mask gives zeros, so the
    classifier sees "no lesion" explicitly.
    """

    def call(self, features, mask):
        h, w = ops.shape(features)[1], ops.shape(features)[2]
        m = ops.image.resize(mask, (h, w), interpolation="bilinear")
        num = ops.sum(features * m, axis=(1, 2))
        den = ops.sum(m, axis=(1, 2)) + 1.0
        return num / den


def check_side(name, size, levels):
    """A U-Net's side must halve ``levels`` times exactly, or its skips cannot meet."""
    step = 2 ** levels
    try:
        size = operator.index(size)
    except TypeError:
        raise ValueError(f"{name}: expected a whole number of pixels, got {size!r}") from None
    if size < step or size % step:
        near = step * max(1, round(size / step))
        raise ValueError(f"{name}: {size} is not a multiple of {step} ({levels} halvings "
                         f"must come out exact), e.g. {near}")


def get_multitask_unet(
    input_size=160,
    base_filters=16,
    depth=4,
    num_classes=3,
    dropout=0.1,
    name="sonotrace_unet",
):
    """Build the shared-encoder U-Net with a segmentation and a classification head.

    Parameters
    ----------
    input_size : int
        Side of the square grey input.
    base_filters : int
        Filters at full resolution; doubled at each level.
    depth : int
        Number of down-sampling steps.
    num_classes : int
        Classes of the classification head (normal, benign, malignant).

    Returns
    -------
    keras.Model
        Inputs ``image`` ``(B, S, S, 1)`` float in [0, 1], ``hint`` ``(B, S, S, 1)``
        mask and ``use_hint`` ``(B, 1)`` in {0, 1}. Outputs ``seg`` ``(B, S, S, 1)``
        lesion probability and ``cls`` ``(B, num_classes)`` logits.

        The classification head pools decoder features under a lesion mask:
        the supplied ``hint`` where ``use_hint`` is 1 (a radiologist's
        corrected outline), otherwise the network's own segmentation.
    """
    check_side("input_size", input_size, depth)
    image = keras.Input((input_size, input_size, 1), name="image")
    hint = keras.Input((input_size, input_size, 1), name="hint")
    use_hint = keras.Input((1,), name="use_hint")

    x = image
    skips = []
    for i in range(depth):
        x = _conv_block(x, base_filters * 2**i, f"enc{i}", dropout if i >= 2 else 0.0)
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
    x = _conv_block(x, base_filters * 2**depth, "bottleneck", dropout * 2)
    bottleneck = x
    decoded = []
    for i in reversed(range(depth)):
        x = layers.UpSampling2D(interpolation="bilinear", name=f"up{i}")(x)
        x = layers.Concatenate(name=f"cat{i}")([x, skips[i]])
        x = _conv_block(x, base_filters * 2**i, f"dec{i}")
        decoded.append(x)
    seg = layers.Conv2D(1, 1, activation="sigmoid", name="seg", dtype="float32")(x)

    # Which mask the classifier looks through: the hint, or our own outline.
    own = ops.stop_gradient(seg)
    pool_mask = HintSelect(name="pool_mask")(hint, own, use_hint)
    feats = [
        layers.GlobalAveragePooling2D(name="gap")(bottleneck),
        layers.GlobalMaxPooling2D(name="gmp")(bottleneck),
        MaskedAveragePool(name="lesion_pool_b")(bottleneck, pool_mask),
        MaskedAveragePool(name="lesion_pool_d")(decoded[1], pool_mask),
        MaskStats(name="mask_stats")(pool_mask),
    ]
    z = layers.Concatenate(name="cls_feats")(feats)
    z = layers.Dropout(0.3, name="cls_drop0")(z)
    z = layers.Dense(128, activation="relu", name="cls_fc")(z)
    z = layers.Dropout(0.3, name="cls_drop1")(z)
    cls = layers.Dense(num_classes, name="cls", dtype="float32")(z)
    return keras.Model([image, hint, use_hint], {"seg": seg, "cls": cls}, name=name)


SEG_FUSIONS = ("mean", "max")


def get_ensemble(members, name="sonotrace_unet", seg_fusion="mean"):
    """Combine several multi-task U-Nets that share input size and class list.

    Parameters
    ----------
    members : list of keras.Model
        Networks from :func:`get_multitask_unet`, each with a unique ``name``.
    seg_fusion : {"mean", "max"}
        How the members' lesion maps are combined, pixel by pixel. ``max``
        keeps a lesion that only one member sees, where the mean halves it.

    Returns
    -------
    keras.Model
        Same inputs and outputs as a member: ``seg`` is the members' lesion
        probability ``(B, S, S, 1)`` combined by ``seg_fusion``, and ``cls``
        the mean logits ``(B, num_classes)``. Averaging logits (not
        probabilities) keeps one temperature meaningful for the whole ensemble.
    """
    if seg_fusion not in SEG_FUSIONS:
        raise ValueError(f"seg_fusion must be one of {SEG_FUSIONS}, not {seg_fusion!r}")
    if len(members) == 1:
        return members[0]
    first = members[0]
    size = first.input_shape[0][1] if isinstance(first.input_shape, list) else None
    inputs = {
        "image": keras.Input((size, size, 1), name="image"),
        "hint": keras.Input((size, size, 1), name="hint"),
        "use_hint": keras.Input((1,), name="use_hint"),
    }
    outs = [m([inputs["image"], inputs["hint"], inputs["use_hint"]]) for m in members]
    fuse = layers.Average if seg_fusion == "mean" else layers.Maximum
    seg = fuse(name="seg", dtype="float32")([o["seg"] for o in outs])
    cls = layers.Average(name="cls", dtype="float32")([o["cls"] for o in outs])
    return keras.Model(
        [inputs["image"], inputs["hint"], inputs["use_hint"]], {"seg": seg, "cls": cls}, name=name
    )


def get_lesion_classifier(crop_size=96, filters=(24, 48, 96, 160), dropout=0.4,
                          name="lesion_classifier"):
    """Build the benign/malignant classifier that looks at a lesion crop.

    Parameters
    ----------
    crop_size : int
        Side of the square grey crop (see :mod:`models.lesion_crop`).
    filters : tuple of int
        Filters of each residual block; each block halves the resolution.

    Returns
    -------
    keras.Model
        Input ``crop`` ``(B, S, S, 1)`` float in [0, 1]; output ``malignant``
        ``(B, 1)``, the log-odds of malignant against benign.
    """
    crop = keras.Input((crop_size, crop_size, 1), name="crop")
    x = crop
    for i, f in enumerate(filters):
        x = _conv_block(x, f, f"les{i}")
        x = layers.MaxPooling2D(name=f"les_pool{i}")(x)
    x = layers.GlobalAveragePooling2D(name="les_gap")(x)
    x = layers.Dropout(dropout, name="les_drop")(x)
    out = layers.Dense(1, name="malignant", dtype="float32")(x)
    return keras.Model(crop, out, name=name)


def get_refiner(crop_size=128, filters=(12, 24, 48, 64), name="lesion_refiner"):
    """Build the outline refiner: a small U-Net that segments the lesion in a crop.

    Parameters
    ----------
    crop_size : int
        Side of the square grey crop around the first outline (see
        :mod:`models.lesion_refine`); divisible by ``2 ** (len(filters) - 1)``.
    filters : tuple of int
        Filters per level, full resolution first; the last is the bottleneck.

    Returns
    -------
    keras.Model
        Input ``crop`` ``(B, S, S, 1)`` float in [0, 1]; output ``seg``
        ``(B, S, S, 1)``, the lesion probability per pixel of the crop.
    """
    check_side("crop_size", crop_size, len(filters) - 1)
    crop = keras.Input((crop_size, crop_size, 1), name="crop")
    x, skips = crop, []
    for i, f in enumerate(filters[:-1]):
        x = _conv_block(x, f, f"ref_down{i}")
        skips.append(x)
        x = layers.MaxPooling2D(name=f"ref_pool{i}")(x)
    x = _conv_block(x, filters[-1], "ref_bottom", dropout=0.1)
    for i, (f, skip) in reversed(list(enumerate(zip(filters[:-1], skips, strict=True)))):
        x = layers.UpSampling2D(interpolation="bilinear", name=f"ref_up{i}")(x)
        x = layers.Concatenate(name=f"ref_cat{i}")([x, skip])
        x = _conv_block(x, f, f"ref_dec{i}")
    out = layers.Conv2D(1, 1, activation="sigmoid", name="seg", dtype="float32")(x)
    return keras.Model(crop, out, name=name)


def get_lesion_ensemble(members, name="lesion_classifier"):
    """Average the log-odds of several lesion classifiers of one crop size."""
    if len(members) == 1:
        return members[0]
    size = members[0].input_shape[1]
    crop = keras.Input((size, size, 1), name="crop")
    out = layers.Average(name="malignant", dtype="float32")([m(crop) for m in members])
    return keras.Model(crop, out, name=name)


def build_lesion_from_architecture(arch):
    """Rebuild the lesion classifier described by a manifest's ``lesion_classifier``."""
    n = int(arch.get("members", 1))
    nets = [
        get_lesion_classifier(int(arch["crop_size"]), tuple(arch["filters"]),
                              name="lesion_classifier" if n == 1 else f"lesion{i}")
        for i in range(n)
    ]
    return get_lesion_ensemble(nets)


def build_refiner_from_architecture(arch):
    """Rebuild the outline refiner described by a manifest's ``refiner`` entry."""
    return get_refiner(int(arch["crop_size"]), tuple(arch["filters"]))


def build_from_architecture(arch):
    """Rebuild the network described by a manifest's ``architecture`` entry.

    Parameters
    ----------
    arch : dict
        ``input_size``, ``base_filters``, ``num_classes``, ``members``
        (1 for a single network) and ``seg_fusion`` (``mean`` if absent).
    """
    n = int(arch.get("members", 1))
    nets = [
        get_multitask_unet(
            int(arch["input_size"]), int(arch["base_filters"]),
            num_classes=int(arch["num_classes"]),
            name="sonotrace_unet" if n == 1 else f"member{i}",
        )
        for i in range(n)
    ]
    return get_ensemble(nets, seg_fusion=arch.get("seg_fusion", "mean"))


def save_half_weights(model, path, int8=False):
    """Write ``model``'s weights to an ``.npz``, in ``get_weights`` order.

    Parameters
    ----------
    model : keras.Model
    path : str or Path
    int8 : bool
        If true, every kernel (an array of two or more axes, the last one the
        output channels, and at least 1024 values) is stored as int8 with one
        float32 scale per output channel, ``w ~ q * scale`` with
        ``scale = max|w| / 127`` over the other axes: the symmetric
        per-channel scheme of LiteRT's dynamic-range quantisation, so a Keras
        network loaded from this file computes with the same rounded weights
        as the int8 LiteRT file. Biases and BatchNorm statistics stay
        float16. The file is about half the size.

    Notes
    -----
    Otherwise all arrays are float16: half precision halves the file (the
    LiteRT file is float16 already) and costs nothing measurable: the
    validation figures agree to three decimals.
    """
    import numpy as np

    arrays = {}
    for i, w in enumerate(model.get_weights()):
        w = np.asarray(w, np.float32)
        # LiteRT leaves kernels under 1024 values in float, and so does this file.
        if int8 and w.ndim >= 2 and w.size >= 1024:
            scale = np.abs(w).reshape(-1, w.shape[-1]).max(axis=0) / 127.0
            scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
            arrays[f"w{i:04d}"] = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
            arrays[f"s{i:04d}"] = scale
        else:
            arrays[f"w{i:04d}"] = w.astype(np.float16)
    with open(path, "wb") as fh:
        # Compressed: float16 weights still deflate by about 8 %, which the size budget needs.
        np.savez_compressed(fh, **arrays)


def save_half_keras(model, path):
    """Write ``model`` as a standard ``.keras`` file whose weights are stored in float16.

    ``keras.models.load_model`` opens it (once this module is imported, which registers
    the custom layers) and gives the network in float32, as it was built, with the
    weights rounded to half precision: the same network, to the last bit, as
    :func:`load_half_weights` fills from a float16 ``.weights.npz``.

    Parameters
    ----------
    model : keras.Model
        Any float32 network of this module.
    path : str or Path
        The file to write; its name must end in ``.keras``.

    Notes
    -----
    ``model.save`` stores float32 weights, uncompressed: 18.2 MB for the shipped pair of
    U-Nets, which beside the LiteRT files would not fit the 20 MB the repository ships.
    Here its ``model.weights.h5`` is rewritten with every float32 array in float16 (as
    the LiteRT file holds them, which changes no validation figure at three decimals)
    and the archive deflated: 8.1 MB, the size of the ``.npz``. Keras casts the arrays
    to its variables' float32 as it loads them.
    """
    import io
    import tempfile
    import zipfile
    from pathlib import Path

    import h5py
    import numpy as np

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: a Keras file's name must end in .keras")
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full.keras"
        model.save(full)
        half = io.BytesIO()
        with zipfile.ZipFile(full) as archive:
            with (h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as src,
                  h5py.File(half, "w") as dst):
                dst.attrs.update(src.attrs)

                def copy(name, item):
                    if isinstance(item, h5py.Dataset):
                        data = item[()]
                        if data.dtype == np.float32:
                            data = data.astype(np.float16)
                        dst.create_dataset(name, data=data)
                    else:
                        dst.require_group(name)
                    dst[name].attrs.update(item.attrs)

                src.visititems(copy)
            members = {name: archive.read(name) for name in archive.namelist()}
        members["model.weights.h5"] = half.getvalue()
        partial = path.with_name(path.name + ".partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for name, data in members.items():
                out.writestr(name, data)
        partial.replace(path)


def load_half_weights(model, path):
    """Load an export's weights file into a matching network.

    ``path`` is a ``.weights.npz`` written by :func:`save_half_weights` (float16 or
    int8), or a ``.keras`` file (:func:`save_half_keras`, or any with the same
    network), whose weights are taken in ``get_weights`` order.

    Raises
    ------
    ValueError
        If the file's arrays do not match the network's weights in number or shape.
    """
    import numpy as np

    if str(path).endswith(".keras"):
        arrays = keras.models.load_model(path, compile=False).get_weights()
    else:
        with np.load(path) as data:
            # An int8 kernel w0012 comes with its per-output-channel scale s0012.
            arrays = [
                data[k] * data["s" + k[1:]] if "s" + k[1:] in data.files else data[k]
                for k in sorted(f for f in data.files if f.startswith("w"))
            ]
    current = model.get_weights()
    if len(arrays) != len(current) or any(
        a.shape != c.shape for a, c in zip(arrays, current, strict=True)
    ):
        raise ValueError(f"{path}: weights do not match the network built from the manifest")
    model.set_weights([a.astype(c.dtype) for a, c in zip(arrays, current, strict=True)])
