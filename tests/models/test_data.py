import re
import shutil
import zlib

import numpy as np
import pytest
from PIL import Image

from models.data import (
    CLASS_NAMES,
    UnreadableFileError,
    load_arrays,
    load_samples,
    read_image,
    read_mask,
    split_by_group,
)


def test_loader_reads_quirky_layout(synthetic_busi):
    root, expected = synthetic_busi
    samples = load_samples(root)
    assert len(samples) == 18
    by_key = {(s.class_name, s.name): s for s in samples}
    assert set(by_key) == set(expected)
    two = by_key[("benign", "benign (2)")]
    assert [p.name for p in two.mask_paths] == ["benign (2)_mask.png", "benign (2)_mask_1.png"]
    for key, s in by_key.items():
        grey = read_image(s.image_path)
        assert grey.dtype == np.uint8 and grey.ndim == 2
        mask = read_mask(s.mask_paths, grey.shape)
        assert np.array_equal(mask, expected[key]), key
    assert by_key[("normal", "normal (1)")].label == CLASS_NAMES.index("normal")


def test_split_keeps_duplicate_groups_together(synthetic_busi):
    root, _ = synthetic_busi
    samples = load_samples(root)
    train, val = split_by_group(samples, 0.34, seed=3)
    assert len(train) + len(val) == len(samples)
    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    assert {s.label for s in val} == {0, 1, 2}
    again = split_by_group(samples, 0.34, seed=3)[1]
    assert [s.name for s in again] == [s.name for s in val]


def _as_unpacked(root, into, index_at_top=False):
    """Copy the synthetic folder as an archive unpacks it: one wrapping folder,
    ``Benign/`` capitalised, a masks named ``_Mask``, and the clutter of other systems."""
    inner = into / "Dataset_BUSI_with_GT"
    shutil.copytree(root, inner)
    (inner / "benign").rename(inner / "Benign")
    for p in (inner / "malignant").glob("* (5)_mask.png"):
        p.rename(p.with_name(p.name.replace("_mask", "_Mask")))
    (inner / ".DS_Store").write_bytes(b"\0")
    (into / ".Trash").mkdir()
    (inner / "Benign" / "Thumbs.db").write_bytes(b"\0")
    if index_at_top:
        (inner / "index.csv").rename(into / "index.csv")
    return inner


@pytest.mark.parametrize("index_at_top", [False, True])
def test_loader_reads_a_folder_as_unpacked(synthetic_busi, tmp_path, index_at_top):
    root, expected = synthetic_busi
    _as_unpacked(root, tmp_path, index_at_top)
    plain = {(s.class_name, s.name): s for s in load_samples(root)}
    samples = load_samples(tmp_path)
    assert {(s.class_name, s.name) for s in samples} == set(expected)
    for s in samples:
        ref = plain[(s.class_name, s.name)]
        # The same duplicate groups (index.csv found beside or above the class folders),
        # and every mask, the capitalised one too.
        assert s.group == ref.group
        assert [p.name.lower() for p in s.mask_paths] == [p.name for p in ref.mask_paths]
        mask = read_mask(s.mask_paths, read_image(s.image_path).shape)
        assert np.array_equal(mask, expected[(s.class_name, s.name)])
    assert len({s.group for s in samples}) < len(samples)


def test_loader_refuses_to_guess(synthetic_busi, tmp_path):
    root, _ = synthetic_busi
    inner = _as_unpacked(root, tmp_path / "one")
    shutil.copytree(inner / "Benign", inner / "benign")
    with pytest.raises(ValueError, match="both"):
        load_samples(tmp_path / "one")
    # Two wrapping folders: which one is the data set is not for the loader to pick.
    _as_unpacked(root, tmp_path / "two" / "a")
    _as_unpacked(root, tmp_path / "two" / "b")
    with pytest.raises(ValueError, match=r"several folders below it do \(a/Data.*, b/Data"):
        load_samples(tmp_path / "two")


@pytest.mark.parametrize("layout", ["beside another folder", "two levels down"])
def test_the_one_wrapped_data_set_is_found_within_two_levels(synthetic_busi, tmp_path, layout):
    root, expected = synthetic_busi
    if layout == "beside another folder":
        shutil.copytree(root, tmp_path / "Dataset_BUSI_with_GT")
        (tmp_path / "results").mkdir()
    else:
        shutil.copytree(root, tmp_path / "test" / "Dataset_BUSI_with_GT")
        (tmp_path / "test" / "README.txt").write_text("held out")
    samples = load_samples(tmp_path)
    assert {(s.class_name, s.name) for s in samples} == set(expected)
    assert [s.group for s in samples] == [s.group for s in load_samples(root)]


@pytest.mark.parametrize(
    "content",
    [b"image,label\nbenign (1).png,benign\n", b"\xff\xfe\x00garbage\x81\n", b""],
)
def test_an_index_of_another_shape_is_left_aside(synthetic_busi, tmp_path, content, caplog):
    root, expected = synthetic_busi
    copy = tmp_path / "busi"
    shutil.copytree(root, copy)
    (copy / "index.csv").write_bytes(content)
    samples = load_samples(copy)
    assert {(s.class_name, s.name) for s in samples} == set(expected)
    # Every image its own group: nothing read, nothing guessed.
    assert sorted(s.group for s in samples) == sorted(f"{c}/{n}" for c, n in expected)
    assert content == b"" or "duplicate groups not read" in caplog.text


def test_an_index_with_a_bom_and_capitalised_classes_is_read(synthetic_busi, tmp_path):
    root, _ = synthetic_busi
    copy = tmp_path / "busi"
    shutil.copytree(root, copy)
    text = (root / "index.csv").read_text().replace("\nbenign,", "\nBenign,")
    (copy / "index.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())  # as Excel saves it
    assert [s.group for s in load_samples(copy)] == [s.group for s in load_samples(root)]


def test_split_on_real_busi_has_no_leakage(busi_dir):
    samples = load_samples(busi_dir)
    assert len(samples) >= 600
    train, val = split_by_group(samples, 0.2, seed=42)
    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    assert 0.15 < len(val) / len(samples) < 0.25


def test_load_arrays_shapes(synthetic_busi):
    root, _ = synthetic_busi
    samples = load_samples(root)[:4]
    x, m, y = load_arrays(samples, 32)
    assert x.shape == (4, 32, 32, 1) and m.shape == (4, 32, 32, 1)
    assert 0 <= x.min() and x.max() <= 1
    assert set(np.unique(m)) <= {0.0, 1.0}
    assert y.tolist() == [s.label for s in samples]


def test_load_samples_rejects_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="root"):
        load_samples(tmp_path / "nope")
    with pytest.raises(ValueError, match="no images"):
        load_samples(tmp_path)


@pytest.mark.parametrize(
    "content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40]
)
def test_unreadable_image_and_mask_name_the_file(tmp_path, content):
    bad = tmp_path / "benign (1).png"
    bad.write_bytes(content)
    with pytest.raises(UnreadableFileError, match=r"benign \(1\)\.png: cannot read"):
        read_image(bad)
    with pytest.raises(UnreadableFileError, match=r"benign \(1\)\.png"):
        read_mask([bad], (4, 4))
    # Callers that already handle ValueError (the CLIs' bad-input paths) keep working.
    assert issubclass(UnreadableFileError, ValueError)


def test_truncated_and_missing_files_are_unreadable(tmp_path):
    good = tmp_path / "whole.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert read_image(good).shape == (64, 64)
    with pytest.raises(UnreadableFileError, match="cut.png"):
        read_image(cut)
    with pytest.raises(UnreadableFileError, match="gone.png"):
        read_image(tmp_path / "gone.png")


def test_image_past_the_pixel_limit_is_unreadable(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.new("L", (100, 100)).save(path)
    # Pillow raises DecompressionBombError past twice MAX_IMAGE_PIXELS.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(UnreadableFileError, match="huge.png"):
        read_image(path)


def _save(path, array, mode=None):
    Image.fromarray(array, mode).save(path)
    return path


def test_mask_modes_and_lossy_masks(tmp_path):
    lesion = np.zeros((20, 30), bool)
    lesion[5:12, 8:20] = True
    opaque = np.full(lesion.shape, 255, np.uint8)
    black = np.zeros(lesion.shape, np.uint8)
    white = np.where(lesion, 255, 0).astype(np.uint8)
    cases = {
        # lesion in the colour channels, alpha everywhere
        "colour.png": np.dstack([white, white, white, opaque]),
        # lesion drawn in transparency alone, colour all black
        "alpha.png": np.dstack([black, black, black, white]),
    }
    for name, rgba in cases.items():
        assert np.array_equal(read_mask([_save(tmp_path / name, rgba, "RGBA")], lesion.shape),
                              lesion), name
    # Drawn white on a transparent ground whose hidden pixels are white too.
    ground = np.dstack([opaque, opaque, opaque, white])
    assert np.array_equal(read_mask([_save(tmp_path / "ground.png", ground, "RGBA")],
                                    lesion.shape), lesion)
    empty = _save(tmp_path / "empty.png", np.dstack([black, black, black, opaque]), "RGBA")
    assert not read_mask([empty], lesion.shape).any()
    # A JPEG rings around the edge: only its bright half is lesion.
    jpeg = tmp_path / "m.jpg"
    Image.fromarray(white).save(jpeg, quality=75)
    assert (np.asarray(Image.open(jpeg)) > 0).sum() > lesion.sum()  # the ringing is there
    assert np.array_equal(read_mask([jpeg], lesion.shape), lesion)


def test_a_mask_that_went_through_jpeg_is_thresholded_at_half_its_maximum(tmp_path):
    lesion = np.zeros((40, 50), bool)
    lesion[8:30, 10:38] = True
    white = np.where(lesion, 255, 0).astype(np.uint8)
    # Through JPEG once and saved back as PNG: the ringing is in a lossless file now.
    Image.fromarray(white).save(tmp_path / "once.jpg", quality=75)
    ringing = np.asarray(Image.open(tmp_path / "once.jpg"))
    assert (ringing > 0).sum() > lesion.sum() + 50
    notes = []
    got = read_mask([_save(tmp_path / "ringing.png", ringing)], lesion.shape, notes=notes)
    assert np.array_equal(got, lesion)
    assert len(notes) == 1 and "ringing.png has" in notes[0] and "half its maximum" in notes[0]
    # A JPEG mask stored as 0 and 1: a fixed threshold of 127 would empty it. (JPEG
    # at those levels rounds a few corner pixels away, whatever the threshold.)
    Image.fromarray(lesion.astype(np.uint8)).save(tmp_path / "ones.jpg", quality=95)
    got = read_mask([tmp_path / "ones.jpg"], lesion.shape)
    assert (got != lesion).sum() <= 12 and (got & lesion).sum() > 0.98 * lesion.sum()
    # A label map (two lesions marked 1 and 2) keeps both: above 0, as before.
    labels = np.zeros(lesion.shape, np.uint8)
    labels[2:6, 2:6], labels[20:25, 40:45] = 1, 2
    notes = []
    got = read_mask([_save(tmp_path / "labels.png", labels)], lesion.shape, notes=notes)
    assert np.array_equal(got, labels > 0) and notes == []


def test_sixteen_bit_images_are_read_by_the_servers_rule(tmp_path):
    from vectorizer import sixteen_bit_to_uint8

    rng = np.random.default_rng(1)
    twelve = rng.integers(0, 4096, (20, 30)).astype(np.uint16)
    expanded = (rng.integers(0, 60, (20, 30)) * 257).astype(np.uint16)  # a dark 8-bit image
    for values in (twelve, expanded):
        got = read_image(_save(tmp_path / "x.png", values))
        assert np.array_equal(got, sixteen_bit_to_uint8(values))
    assert read_image(tmp_path / "x.png").max() < 60  # not stretched to its own range


def test_files_that_cannot_be_paired_are_left_out_and_said(synthetic_busi, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_busi[0], root)
    benign = root / "benign"
    Image.open(benign / "benign (1).png").save(benign / "benign (1).jpg")  # a second image
    (benign / "benign (5).png").unlink()  # its masks stay
    (benign / "._benign (2).png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    problems = []
    samples = load_samples(root, problems)
    names = {s.name for s in samples if s.class_name == "benign"}
    assert names == {"benign (2)", "benign (3)", "benign (4)", "benign (6)"}
    assert len(problems) == 3
    assert "benign (1).jpg, benign (1).png share one name" in problems[0]
    assert "benign (5)_mask.png without an image" in problems[1]
    # index.csv lists both; a copy that lost files must not be scored as if whole.
    assert problems[2] == ("index.csv lists 2 image(s) the folder does not hold (or holds "
                           "unpaired): benign/benign (1), benign/benign (5)")


def test_a_folder_beside_the_class_folders_is_said_not_dropped(synthetic_busi, tmp_path):
    # Audit 803 F3: normal_cases/ (not a class name) vanished from the score without a
    # word; "Benign " (a space left by a copy) too.
    root = tmp_path / "data"
    shutil.copytree(synthetic_busi[0], root)
    (root / "normal").rename(root / "normal_cases")
    (root / "benign").rename(root / "Benign ")
    shutil.copy(root / "malignant" / "malignant (1).png", root / "stray.png")
    (root / "README.md").write_text("a data set")
    (root / "__MACOSX").mkdir()
    problems = []
    samples = load_samples(root, problems)
    assert {s.class_name for s in samples} == {"benign", "malignant"}
    assert len([s for s in samples if s.class_name == "benign"]) == 6
    left_out = [p for p in problems if not p.startswith("index.csv")]
    assert left_out == [
        "normal_cases/: not a class folder (only normal/, benign/ and malignant/ are read, "
        "in any case): its images are left out",
        "stray.png: an image outside the class folders: left out"]
    # The normal images index.csv lists are said missing as well.
    assert problems[-1].startswith("index.csv lists 6 image(s) the folder does not hold")


def test_the_annotation_exports_dicom_folders_are_not_said_left_out(synthetic_busi, tmp_path):
    # Audit 902 F2: the README's "export, then evaluate" flagged the export's own
    # dicom_seg/ and dicom_sr/ as folders whose images were left out.
    from annotation_client._export import DICOM_FILES
    from models.data import EXPORT_DICOM_FOLDERS

    assert set(EXPORT_DICOM_FOLDERS) == set(DICOM_FILES)
    root = tmp_path / "data"
    shutil.copytree(synthetic_busi[0], root)
    for folder in EXPORT_DICOM_FOLDERS:
        (root / folder).mkdir()
        (root / folder / "benign (1)_x.dcm").write_bytes(b"DICM")
    problems = []
    load_samples(root, problems)
    assert not [p for p in problems if "dicom" in p], problems


def test_a_folder_without_class_folders_names_what_it_holds(tmp_path):
    (tmp_path / "benign_cases").mkdir()
    Image.fromarray(np.full((20, 20), 90, np.uint8)).save(tmp_path / "benign_cases" / "a.png")
    with pytest.raises(ValueError, match=r"no images found.*\(benign_cases/: not a class folder"):
        load_samples(tmp_path)


def test_a_class_left_packed_or_not_a_folder_is_said(synthetic_busi, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_busi[0], root)
    # A copy whose malignant images came as an archive never unpacked, and whose normal
    # "folder" is a file: both classes left the score without a word.
    shutil.make_archive(str(root / "malignant"), "zip", root, "malignant")
    shutil.rmtree(root / "malignant")
    shutil.rmtree(root / "normal")
    (root / "Normal").write_text("")
    (root / "benign" / "more.tar.gz").write_bytes(b"")
    problems = []
    assert {s.class_name for s in load_samples(root, problems)} == {"benign"}
    assert problems[:3] == ["Normal: named as a class but not a folder: left out",
                            "malignant.zip: an archive: unpack it to score its images: left out",
                            "benign/more.tar.gz: an archive: unpack it to score its images: "
                            "left out"]


def test_a_class_folder_given_for_the_data_names_the_folder_to_give(synthetic_busi, monkeypatch):
    benign = synthetic_busi[0] / "benign"
    monkeypatch.chdir(benign)
    for given in (benign, "."):  # "." names no folder itself
        with pytest.raises(ValueError, match=r"benign/ is itself a class folder; give the "
                           f"folder that holds it, {re.escape(str(benign.parent))}$"):
            load_samples(given)


def test_two_spellings_of_one_class_are_still_refused(synthetic_busi, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_busi[0], root)
    shutil.copytree(root / "benign", root / "benign ")
    with pytest.raises(ValueError, match="both"):
        load_samples(root)


def test_index_csv_images_missing_from_the_folder_are_said(synthetic_busi, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_busi[0], root)
    for cls in ("normal", "malignant"):  # a whole class folder lost, and one image
        shutil.rmtree(root / cls) if cls == "normal" else (root / cls / f"{cls} (3).png").unlink()
    problems = []
    load_samples(root, problems)
    assert problems[-1].startswith("index.csv lists 7 image(s) the folder does not hold")
    assert "malignant/malignant (3)" in problems[-1] and "normal/normal (6)" in problems[-1]
    (root / "index.csv").write_text("class,name\n" + "".join(
        f"benign,extra ({i})\n" for i in range(12)))
    problems = []
    load_samples(root, problems)
    assert problems[-1].endswith("benign/extra (9) and 2 more")
    (root / "index.csv").unlink()
    problems = []
    load_samples(root, problems)
    assert not any("index.csv" in p for p in problems)


def test_a_short_index_csv_row_is_passed_over(synthetic_busi, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_busi[0], root)
    # "class" last: a row of one cell has no class at all.
    (root / "index.csv").write_text("name,duplicate_group,class\nbenign (1),7,benign\n"
                                    "benign (2)\n")
    by_key = {(s.class_name, s.name): s for s in load_samples(root)}
    assert by_key[("benign", "benign (1)")].group == "7"
    assert by_key[("benign", "benign (2)")].group == "benign/benign (2)"


def test_the_empty_rows_a_spreadsheet_saves_name_no_missing_image(synthetic_busi, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_busi[0], root)
    index = root / "index.csv"
    # Excel saves the rows it formatted but left empty as commas; a row may lack a name.
    index.write_text(index.read_text() + ",,,\n , , , \nbenign,,,\n,normal (1),,\n")
    problems = []
    assert len(load_samples(root, problems)) == 18
    assert problems == []


def test_index_csv_headers_are_read_in_any_case_and_spacing(synthetic_busi, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_busi[0], root)
    index = root / "index.csv"
    lines = index.read_text().splitlines()
    assert lines[0] == "class,name,duplicate_group,masks"
    index.write_text("\n".join(["Class, Name ,Duplicate_Group,MASKS", *lines[1:],
                                "benign,benign (99),50,1"]) + "\n")
    problems = []
    by_key = {(s.class_name, s.name): s for s in load_samples(root, problems)}
    assert by_key[("benign", "benign (2)")].listed_masks == 2
    assert by_key[("benign", "benign (1)")].group == by_key[("benign", "benign (2)")].group
    assert problems == ["index.csv lists 1 image(s) the folder does not hold (or holds "
                        "unpaired): benign/benign (99)"]


def test_the_zone_identifiers_of_a_windows_copy_are_not_listed(synthetic_busi, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_busi[0], root)
    for p in list((root / "benign").iterdir()):  # as WSL shows a copy from Windows
        p.with_name(p.name + ":Zone.Identifier").write_text("[ZoneTransfer]\nZoneId=3\n")
    problems = []
    assert len(load_samples(root, problems)) == 18
    assert problems == []


def test_index_csv_mask_counts_are_read(synthetic_busi, tmp_path):
    by_key = {(s.class_name, s.name): s for s in load_samples(synthetic_busi[0])}
    assert by_key[("benign", "benign (2)")].listed_masks == 2
    assert by_key[("normal", "normal (1)")].listed_masks == 1
    root = tmp_path / "data"
    shutil.copytree(synthetic_busi[0], root)
    (root / "index.csv").write_text("class,name,masks\nbenign,benign (1), 2 \n"
                                    "benign,benign (2),two\n"
                                    "benign,benign (4),\u00b2\n")  # a digit int() refuses
    by_key = {(s.class_name, s.name): s for s in load_samples(root)}
    assert by_key[("benign", "benign (1)")].listed_masks == 2
    assert by_key[("benign", "benign (2)")].listed_masks is None
    assert by_key[("benign", "benign (4)")].listed_masks is None
    assert by_key[("benign", "benign (3)")].listed_masks is None


def test_a_macos_archive_folder_does_not_hide_the_wrapper(synthetic_busi, tmp_path):
    shutil.copytree(synthetic_busi[0], tmp_path / "Dataset_BUSI_with_GT")
    (tmp_path / "__MACOSX" / "Dataset_BUSI_with_GT").mkdir(parents=True)
    assert len(load_samples(tmp_path)) == len(load_samples(synthetic_busi[0]))


def test_files_not_scored_are_listed_with_the_reason(synthetic_busi, tmp_path):
    root, expected = synthetic_busi
    copy = tmp_path / "busi"
    shutil.copytree(root, copy)
    (copy / "benign" / "scan.gif").write_bytes(b"GIF89a")
    (copy / "benign" / "nested").mkdir()
    (copy / "malignant" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (copy / "malignant" / "Thumbs.db").write_bytes(b"\0")
    problems = []
    samples = load_samples(copy, problems)
    assert {(s.class_name, s.name) for s in samples} == set(expected)
    assert len(problems) == 3
    assert any(p.startswith("benign/scan.gif: not a file type scored here") for p in problems)
    assert any(p.startswith("benign/nested: a folder") for p in problems)
    assert any(p.startswith("malignant/gone.png: a link to nothing") for p in problems)


def test_an_image_and_its_mask_pair_whatever_the_unicode_form_of_their_name(tmp_path):
    folder = tmp_path / "benign"
    folder.mkdir()
    grey = np.full((16, 16), 90, np.uint8)
    Image.fromarray(grey).save(folder / "caf\u00e9 (1).png")  # é as one character
    lesion = np.zeros((16, 16), np.uint8)
    lesion[4:9, 5:12] = 255
    Image.fromarray(lesion).save(folder / "cafe\u0301 (1)_mask.png")  # e and an accent
    problems = []
    [sample] = load_samples(tmp_path, problems)
    assert problems == []
    assert sample.name == "caf\u00e9 (1)"
    assert np.array_equal(read_mask(sample.mask_paths, (16, 16)), lesion > 0)


def test_images_and_masks_are_read_upright_by_their_exif_orientation(tmp_path):
    # Stored on its side, with orientation 6 ("turn 90 degrees clockwise to view"):
    # a mask drawn on the upright view must match the image as read.
    upright = np.zeros((20, 32), np.uint8)
    upright[2:6, 3:20] = 200
    upright[10:18, 25:30] = 60
    stored = np.rot90(upright, 1)  # what a camera that was turned writes
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "img.png", exif=exif)
    assert np.array_equal(read_image(tmp_path / "img.png"), upright)
    Image.fromarray(np.rot90(upright > 100, 1).astype(np.uint8) * 255).save(
        tmp_path / "mask.png", exif=exif)
    assert np.array_equal(read_mask([tmp_path / "mask.png"], upright.shape), upright > 100)
    # Malformed EXIF is ignored, as a browser does.
    Image.fromarray(upright).save(tmp_path / "bad.png", exif=b"Exif\0\0garbage")
    assert np.array_equal(read_image(tmp_path / "bad.png"), upright)
    # An XMP orientation, which Pillow reads and browsers do not, leaves it as stored.
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
           '02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
           'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    Image.fromarray(upright).save(tmp_path / "xmp.jpg", xmp=xmp.encode(), quality=100)
    assert Image.open(tmp_path / "xmp.jpg").getexif().get(0x0112) == 6
    assert read_image(tmp_path / "xmp.jpg").shape == upright.shape


def test_a_float_mask_counts_every_value_above_zero(tmp_path):
    mask = np.zeros((12, 12), np.float32)
    mask[3:7, 2:9] = 0.4
    Image.fromarray(mask, mode="F").save(tmp_path / "m.tif")
    assert np.array_equal(read_mask([tmp_path / "m.tif"], (12, 12)), mask > 0)


@pytest.mark.parametrize("mask_name", ["benign (1)_mask1.png", "benign (1) mask.png",
                                       "benign (1)-mask.png", "benign (1)_mask (2).png",
                                       "BENIGN (1)_mask.png"])
def test_mask_names_a_copy_may_have_are_paired_not_scored_as_images(
        synthetic_busi, tmp_path, mask_name):
    root, expected = synthetic_busi
    copy = tmp_path / "busi"
    shutil.copytree(root, copy)
    (copy / "benign" / "benign (1)_mask.png").rename(copy / "benign" / mask_name)
    problems = []
    samples = load_samples(copy, problems)
    assert {(s.class_name, s.name) for s in samples} == set(expected)
    one = next(s for s in samples if s.name == "benign (1)")
    assert [p.name for p in one.mask_paths] == [mask_name]
    assert problems == []


def test_index_names_with_a_suffix_or_spaces_name_the_same_images(synthetic_busi, tmp_path):
    root, _ = synthetic_busi
    copy = tmp_path / "busi"
    shutil.copytree(root, copy)
    lines = (root / "index.csv").read_text().splitlines()
    head, rows = lines[0], [line.split(",") for line in lines[1:]]
    (copy / "index.csv").write_text(head + "\n" + "".join(
        f"{c},{' ' + n + '.png' if i % 2 else n + ' '},{rest}\n"
        for i, (c, n, rest) in enumerate((r[0], r[1], ",".join(r[2:])) for r in rows)))
    problems = []
    samples = load_samples(copy, problems)
    assert [s.group for s in samples] == [s.group for s in load_samples(root)]
    assert [s.listed_masks for s in samples] == [s.listed_masks for s in load_samples(root)]
    assert not any("index.csv" in p for p in problems)


def test_index_names_given_as_paths_name_the_same_images(synthetic_busi, tmp_path):
    root, _ = synthetic_busi
    copy = tmp_path / "busi"
    shutil.copytree(root, copy)
    lines = (root / "index.csv").read_text().splitlines()
    rows = [line.split(",", 2) for line in lines[1:]]
    # As a tool that lists files writes them: each image's path in the data set.
    paths = ("{c}/{n}.png", "Dataset_BUSI_with_GT/{c}/{n}.png", "{c}\\{n}.png")
    (copy / "index.csv").write_text(lines[0] + "\n" + "".join(
        f"{c},{paths[i % 3].format(c=c, n=n)},{rest}\n" for i, (c, n, rest) in enumerate(rows)))
    problems = []
    samples = load_samples(copy, problems)
    assert [s.group for s in samples] == [s.group for s in load_samples(root)]
    assert [s.listed_masks for s in samples] == [s.listed_masks for s in load_samples(root)]
    assert problems == []


def test_an_index_that_cannot_be_opened_is_left_aside(synthetic_busi, tmp_path, monkeypatch,
                                                      caplog):
    import builtins

    root, expected = synthetic_busi
    real_open = builtins.open

    def refuse_the_index(file, *args, **kwargs):
        if str(file).endswith("index.csv"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    # Tests may run as root, whom chmod does not stop.
    monkeypatch.setattr(builtins, "open", refuse_the_index)
    samples = load_samples(root)
    assert {(s.class_name, s.name) for s in samples} == set(expected)
    assert sorted(s.group for s in samples) == sorted(f"{c}/{n}" for c, n in expected)
    assert "Permission denied" in caplog.text and "duplicate groups not read" in caplog.text


@pytest.mark.parametrize(("extra_rows", "extra_cols"), [(0, 1), (1, 0), (-1, 2), (-2, -2)])
def test_a_mask_a_pixel_or_two_off_keeps_its_outline_in_place(tmp_path, extra_rows,
                                                              extra_cols):
    lesion = np.zeros((40, 50), bool)
    lesion[8:30, 10:38] = True
    h, w = 40 + extra_rows, 50 + extra_cols
    off = np.zeros((h, w), bool)
    off[: min(h, 40), : min(w, 50)] = lesion[: min(h, 40), : min(w, 50)]
    notes = []
    got = read_mask([_save(tmp_path / "off.png", off)], lesion.shape, notes=notes)
    # Not one pixel of the outline moves (a resize would shift half of it by one).
    assert np.array_equal(got, lesion)
    assert len(notes) == 1 and "cropped or padded" in notes[0]
    # Further off, the files are likely paired wrongly: resized, as before, and said.
    notes = []
    big = np.kron(lesion, np.ones((2, 2), bool))
    assert np.array_equal(read_mask([_save(tmp_path / "big.png", big)], lesion.shape,
                                    notes=notes), lesion)
    assert "resized to it" in notes[0]


def test_an_animated_png_whose_default_image_is_hidden_is_refused_as_the_server_does(tmp_path):
    from models.data import UnreadableFileError

    frames = [Image.fromarray(np.full((20, 30), v, np.uint8) + np.eye(20, 30, dtype=np.uint8))
              for v in (40, 200)]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:],
                   default_image=True)
    with pytest.raises(UnreadableFileError, match="default image is not part of its animation"):
        read_image(tmp_path / "a.png")
    frames[0].save(tmp_path / "b.png", save_all=True, append_images=frames[1:])
    assert read_image(tmp_path / "b.png").shape == (20, 30)  # the default image, frame 1
    # An acTL with no frame at all (no fcTL): Chromium draws it blank (audit 805 F5).
    frames[0].save(tmp_path / "still.png")
    png = (tmp_path / "still.png").read_bytes()
    actl = b"acTL" + (1).to_bytes(4, "big") + (0).to_bytes(4, "big")
    (tmp_path / "c.png").write_bytes(png[:33] + (8).to_bytes(4, "big") + actl
                                     + zlib.crc32(actl).to_bytes(4, "big") + png[33:])
    with pytest.raises(UnreadableFileError, match="default image is not part of its animation"):
        read_image(tmp_path / "c.png")
