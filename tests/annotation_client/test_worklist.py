import hashlib
import os
from pathlib import Path

import pytest

from annotation_client import AnnotationStore, _worklist
from annotation_client._imageio import ImageDecodeError
from annotation_client._worklist import (
    HashCache,
    WorklistEntry,
    list_images,
    next_unannotated,
    read_entry,
    resolve_entry,
)


def _write(root: Path, relative: str, data: bytes = b"") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    # Distinct bytes per file by default, so each has its own hash.
    path.write_bytes(data or relative.encode())
    return path


def _paths(listing) -> list[str]:
    return [e.path for e in listing.entries]


def _save(store: AnnotationStore, sha: str) -> int:
    return store.save(sha, svg="<svg/>", mask_png=b"png", record={"test": True}).version


@pytest.fixture
def store(tmp_path) -> AnnotationStore:
    return AnnotationStore(tmp_path / "annotations")


@pytest.fixture
def root(tmp_path) -> Path:
    folder = tmp_path / "worklist"
    folder.mkdir()
    return folder


# --------------------------------------------------------------------------- listing


def test_lists_images_of_every_kind_in_every_folder_sorted_by_path(root, store):
    for name in [
        "sub/z.png",
        "c.jpeg",
        "a.png",
        "B.JPG",
        "sub/deeper/y.Jpeg",
        "d.DCM",
        "e.dicom",
        "sub2/a.png",
        "a b/x.png",
        "a/x.png",
        # not images by their ending
        "notes.txt",
        "a.png.bak",
        "scan.tiff",
        "png",
        # hidden files and folders
        ".hidden.png",
        ".cache/x.png",
        "sub/.thumbs/t.png",
    ]:
        _write(root, name)
    listing = list_images(root, store)
    # Compared folder by folder: "a/x.png" before "a b/x.png", though " " sorts before "/".
    assert _paths(listing) == [
        "B.JPG",
        "a/x.png",
        "a b/x.png",
        "a.png",
        "c.jpeg",
        "d.DCM",
        "e.dicom",
        "sub/deeper/y.Jpeg",
        "sub/z.png",
        "sub2/a.png",
    ]
    assert listing.found == 10 and not listing.truncated and listing.note is None
    assert listing.root == root.resolve()
    entry = listing.entries[3]
    assert entry.path == "a.png"
    assert entry.sha256 == hashlib.sha256(b"a.png").hexdigest()
    assert entry.size_bytes == len(b"a.png")
    assert (entry.version, entry.too_large, entry.status) == (0, False, "not annotated")


def test_an_empty_folder_lists_nothing(root, store):
    listing = list_images(root, store)
    assert listing.entries == () and listing.found == 0


def test_the_data_directory_inside_the_worklist_is_not_listed(root):
    _write(root, "scan.png")
    store = AnnotationStore(root / "annotations")
    _save(store, hashlib.sha256(b"scan.png").hexdigest())  # writes v001_mask.png there
    assert any((root / "annotations").rglob("*.png"))
    assert _paths(list_images(root, store)) == ["scan.png"]


def test_status_follows_real_saves(root, store):
    a = _write(root, "a.png")
    _write(root, "b.png")
    sha = hashlib.sha256(a.read_bytes()).hexdigest()
    assert _save(store, sha) == 1
    listing = list_images(root, store)
    assert [(e.path, e.status) for e in listing.entries] == [
        ("a.png", "saved v1"),
        ("b.png", "not annotated"),
    ]
    assert listing.entries[0].annotated and not listing.entries[1].annotated
    assert _save(store, sha) == 2
    assert list_images(root, store).entries[0].status == "saved v2"


def test_with_an_annotator_the_status_is_that_annotators_own(root, store):
    # Blinded reading: each reader's worklist says what they have read, not the team.
    a, b = _write(root, "a.png"), _write(root, "b.png")
    sha_a, sha_b = (hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b))
    for sha, name in [(sha_a, "Dr Ada"), (sha_a, "Dr Bo"), (sha_b, "Dr Bo"), (sha_a, "Dr Bo")]:
        store.save(sha, svg="<svg/>", mask_png=b"png", record={"annotator": name})

    def status(annotator):
        listing = list_images(root, store, annotator=annotator)
        return [(e.path, e.status) for e in listing.entries], next_unannotated(listing.entries)

    assert status(None) == ([("a.png", "saved v3"), ("b.png", "saved v1")], None)
    ada, ada_next = status("Dr Ada")
    assert ada == [("a.png", "saved v1"), ("b.png", "not annotated")] and ada_next.path == "b.png"
    assert status("Dr Bo") == ([("a.png", "saved v3"), ("b.png", "saved v1")], None)
    cy, cy_next = status("Dr Cy")
    assert cy == [("a.png", "not annotated"), ("b.png", "not annotated")]
    assert cy_next.path == "a.png"


def test_the_same_bytes_under_two_names_share_their_status(root, store):
    _write(root, "one.png", b"same image")
    _write(root, "copy/two.png", b"same image")
    _save(store, hashlib.sha256(b"same image").hexdigest())
    assert [e.status for e in list_images(root, store).entries] == ["saved v1", "saved v1"]


def test_a_file_over_the_limit_is_listed_as_too_large_and_not_read(root, store):
    _write(root, "big.png", b"x" * 100)
    _write(root, "small.png", b"y" * 10)
    cache = HashCache()
    listing = list_images(root, store, max_bytes=50, cache=cache)
    big, small = listing.entries
    assert (big.too_large, big.sha256, big.status, big.size_bytes) == (True, None, "too large", 100)
    assert (small.too_large, small.status) == (False, "not annotated")
    assert cache.reads == 1  # only the small file was hashed


def test_the_listing_is_capped_with_a_note(root, store):
    for n in range(7):
        _write(root, f"img{n}.png")
    listing = list_images(root, store, limit=3)
    assert _paths(listing) == ["img0.png", "img1.png", "img2.png"]
    assert listing.found == 7 and listing.truncated
    assert "first 3 of 7" in listing.note
    assert _worklist.MAX_ENTRIES == 5000


# --------------------------------------------------------------------------- the hash cache


def test_listing_again_reads_only_changed_files(root, store):
    for name in ("a.png", "b.png", "c.png"):
        _write(root, name)
    cache = HashCache()
    first = list_images(root, store, cache=cache)
    assert cache.reads == 3
    assert list_images(root, store, cache=cache) == first
    assert cache.reads == 3  # nothing read the second time

    # b.png is annotated, then replaced by another image: the new bytes have no save.
    _save(store, first.entries[1].sha256)
    assert list_images(root, store, cache=cache).entries[1].status == "saved v1"
    changed = root / "b.png"
    changed.write_bytes(b"another image")
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = list_images(root, store, cache=cache)
    assert cache.reads == 4
    assert again.entries[1].sha256 == hashlib.sha256(b"another image").hexdigest()
    assert again.entries[1].status == "not annotated"
    assert again.entries[0] == first.entries[0] and again.entries[2] == first.entries[2]


def test_same_size_new_content_is_read_again_when_the_time_changes(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"aaaa")
    cache = HashCache()
    before = cache.sha256(path)
    stat = path.stat()
    path.write_bytes(b"bbbb")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cache.sha256(path) == hashlib.sha256(b"bbbb").hexdigest() != before
    assert cache.reads == 2


def test_the_cache_keeps_at_most_max_items(tmp_path):
    cache = HashCache(max_items=2)
    files = [_write(tmp_path, f"{n}.png") for n in range(3)]
    for path in files:
        cache.sha256(path)
    cache.sha256(files[2])
    cache.sha256(files[1])
    assert cache.reads == 3
    cache.sha256(files[0])  # the oldest one was dropped
    assert cache.reads == 4


# ----------------------------------------------------------------------- paths out of the folder


@pytest.mark.parametrize(
    "relative",
    [
        "",
        "   ",
        "..",
        "../outside.png",
        "sub/../../outside.png",
        "sub/../a.png",  # stays inside, but ".." is refused outright
        "/etc/passwd",
        "C:\\outside.png",
        "sub\\..\\a.png",
        ".hidden.png",
        ".cache/x.png",
        "notes.txt",
        "a.png\x00.txt",
    ],
)
def test_paths_out_of_the_folder_or_not_listed_are_refused(root, tmp_path, relative):
    _write(root, "a.png")
    _write(root, "sub/b.png")
    _write(root, ".hidden.png")
    _write(root, ".cache/x.png")
    _write(root, "notes.txt")
    _write(tmp_path, "outside.png")
    with pytest.raises(ValueError, match="relative"):
        resolve_entry(root, relative)


def test_an_absolute_path_is_refused_even_inside_the_folder(root):
    inside = _write(root, "a.png")
    with pytest.raises(ValueError, match="absolute"):
        resolve_entry(root, str(inside))


def test_symbolic_links_out_of_the_folder_are_refused_and_not_listed(root, tmp_path, store):
    outside = tmp_path / "private"
    secret = _write(outside, "secret.png")
    _write(root, "a.png")
    (root / "leak.png").symlink_to(secret)
    (root / "elsewhere").symlink_to(outside, target_is_directory=True)
    (root / "alias.png").symlink_to(root / "a.png")  # a link inside the folder is fine
    with pytest.raises(ValueError, match="out of the worklist"):
        resolve_entry(root, "leak.png")
    with pytest.raises(ValueError, match="out of the worklist"):
        resolve_entry(root, "elsewhere/secret.png")
    with pytest.raises(ValueError, match="out of the worklist"):
        read_entry(root, "leak.png")
    assert resolve_entry(root, "alias.png") == (root / "a.png").resolve()
    assert _paths(list_images(root, store)) == ["a.png", "alias.png"]
    # A file out there that does not exist gets the same answer as one that does:
    # the worklist tells nothing of what lies outside it.
    with pytest.raises(ValueError, match="out of the worklist"):
        resolve_entry(root, "elsewhere/no-such.png")


def test_a_symbolic_link_loop_is_refused(root):
    (root / "loop.png").symlink_to(root / "loop.png")
    with pytest.raises(ValueError):
        resolve_entry(root, "loop.png")


def test_resolve_and_read_an_entry(root):
    path = _write(root, "sub/deeper/scan.dcm", b"DICOM bytes")
    assert resolve_entry(root, "sub/deeper/scan.dcm") == path.resolve()
    assert read_entry(root, "sub/deeper/scan.dcm") == b"DICOM bytes"
    with pytest.raises(FileNotFoundError):
        resolve_entry(root, "sub/missing.png")


def test_read_entry_refuses_a_file_over_the_limit_like_an_upload(root):
    _write(root, "big.png", b"x" * (3 * 2**20))
    with pytest.raises(ImageDecodeError, match=r"big.png is 3.0 MB; the limit is 2 MB"):
        read_entry(root, "big.png", max_bytes=2 * 2**20)
    assert len(read_entry(root, "big.png", max_bytes=4 * 2**20)) == 3 * 2**20


def test_bad_arguments_are_refused_by_name(root, store, tmp_path):
    with pytest.raises(ValueError, match="root"):
        list_images(tmp_path / "missing", store)
    with pytest.raises(ValueError, match="root"):
        resolve_entry(_write(tmp_path, "file.png"), "a.png")
    with pytest.raises(TypeError, match="store"):
        list_images(root, str(tmp_path))
    with pytest.raises(ValueError, match="limit"):
        list_images(root, store, limit=0)
    with pytest.raises(ValueError, match="max_bytes"):
        list_images(root, store, max_bytes=-1)
    with pytest.raises(TypeError, match="relative"):
        resolve_entry(root, Path("a.png"))
    with pytest.raises(TypeError, match="root"):
        list_images(None, store)


# --------------------------------------------------------------------------- next not annotated


def _entry(path, version=0, too_large=False):
    return WorklistEntry(path=path, size_bytes=1, sha256=None, version=version, too_large=too_large)


def test_next_unannotated_starts_after_the_current_entry_and_wraps():
    entries = [
        _entry("a.png"),
        _entry("b.png", version=1),
        _entry("c.png"),
        _entry("d.png", too_large=True),
        _entry("e.png", version=3),
    ]
    assert next_unannotated(entries).path == "a.png"
    assert next_unannotated(entries, "a.png").path == "c.png"
    assert next_unannotated(entries, "b.png").path == "c.png"
    assert next_unannotated(entries, "c.png").path == "a.png"  # wrapped round
    assert next_unannotated(entries, "not/listed.png").path == "a.png"
    done = [_entry("a.png", version=1), _entry("b.png")]
    assert next_unannotated(done, "b.png") is None  # the open one does not count
    assert next_unannotated([]) is None


@pytest.mark.parametrize("where", ["", "sub"])
def test_a_worklist_that_is_the_data_folder_or_in_it_lists_no_saved_file(root, where):
    # The client refuses such settings at start (_config); the walk holds its own line.
    store = AnnotationStore(root)
    data = b"\x89PNG kept upload"
    sha = hashlib.sha256(data).hexdigest()
    store.save(sha, svg="<svg/>", mask_png=b"m", record={}, source=data, source_name="u.png")
    _write(root, "sub/scan.png")
    assert (root / sha / "v001_mask.png").exists() and (root / sha / "source.png").exists()
    assert _paths(list_images(root / where, store)) == []


def test_the_data_folder_is_skipped_wherever_it_sits_in_the_worklist(root):
    _write(root, "scan.png")
    store = AnnotationStore(root / "deep" / "er" / "annotations")
    sha = _save(store, hashlib.sha256(b"scan.png").hexdigest()) and hashlib.sha256(
        b"scan.png").hexdigest()
    mask = f"deep/er/annotations/{sha}/v001_mask.png"
    assert (root / mask).exists()
    # A link in the worklist to a saved mask is no entry either.
    os.symlink(root / mask, root / "link.png")
    assert _paths(list_images(root, store)) == ["scan.png"]
    # Nor can a saved file be opened as an entry by its path.
    with pytest.raises(ValueError, match="in the data folder"):
        read_entry(root, mask, data_dir=store.root)
    with pytest.raises(ValueError, match="in the data folder"):
        resolve_entry(root, "link.png", data_dir=store.root)
    assert read_entry(root, "scan.png", data_dir=store.root) == b"scan.png"


def test_an_unreadable_entry_is_logged_by_the_hash_of_its_path(root, store, caplog):
    # Scanners put the patient's name in file names: neither the path nor the
    # error's text (which repeats it) reaches the log.
    _write(root, "DOE^JANE/DOE^JANE 1965.png")
    _write(root, "b.png")
    wanted = "DOE^JANE/DOE^JANE 1965.png"

    class Unreadable(HashCache):
        def sha256(self, path, stat):
            if path.name.startswith("DOE"):
                raise PermissionError(13, "Permission denied", str(path))
            return super().sha256(path, stat)

    with caplog.at_level("WARNING", logger="annotation_client._worklist"):
        listing = list_images(root, store, cache=Unreadable())
    assert _paths(listing) == ["b.png"]
    ref = hashlib.sha256(wanted.encode()).hexdigest()[:12]
    assert f"worklist: skipping entry path#{ref}: Permission denied" in caplog.text
    assert "JANE" not in caplog.text and "DOE" not in caplog.text


# --------------------------------------------------------------------------- locate


def test_locate_finds_a_renamed_image_by_its_hash_and_reads_only_what_changed(root, store):
    kept = _write(root, "kept.png")
    _write(root, "study/renamed-b1.png", b"the annotated bytes")
    _write(root, "benign (1).png", b"a re-export under the old name")
    kept_sha = hashlib.sha256(kept.read_bytes()).hexdigest()
    moved_sha = hashlib.sha256(b"the annotated bytes").hexdigest()
    gone_sha = hashlib.sha256(b"in no file").hexdigest()
    cache = HashCache()
    wanted = {kept_sha: "kept.png", moved_sha: "benign (1).png", gone_sha: "gone.png"}
    found = _worklist.locate(root, wanted, data_dir=store.root, cache=cache)
    # The recorded path when it still holds the bytes; else the file that does; an image
    # that no file holds is left out, whatever its recorded path holds now.
    assert found == {kept_sha: "kept.png", moved_sha: "study/renamed-b1.png"}
    assert cache.reads == 3
    # Asked again, nothing that did not change is read again.
    assert _worklist.locate(root, wanted, data_dir=store.root, cache=cache) == found
    assert cache.reads == 3
    # Every recorded path holding its image: the folder is not walked, nor hashed.
    only_kept = {kept_sha: "kept.png"}
    _write(root, "new.png")
    assert _worklist.locate(root, only_kept, data_dir=store.root, cache=cache) == only_kept
    assert cache.reads == 3


def test_locate_keeps_what_a_walk_found_while_no_folder_changes(root, store, monkeypatch):
    """An image no file holds is not looked for again while the folders keep their
    times; one found is checked where it was found. A file rewritten in place (its
    folder's time unchanged) is looked at once ``SEARCH_KEPT_S`` has passed."""
    import os
    import time

    held = _write(root, "sub/held.png", b"held bytes")
    other = _write(root, "sub/other.png", b"other bytes")
    when = time.time() - 60  # not changed in the last seconds (_worklist._RACY_NS)
    for folder in (root / "sub", root):
        os.utime(folder, (when, when))
    held_sha, lost_sha = (hashlib.sha256(b).hexdigest() for b in (b"held bytes", b"lost"))
    cache = HashCache()
    wanted = {held_sha: None, lost_sha: None}
    assert _worklist.locate(root, wanted, data_dir=store.root, cache=cache) == {
        held_sha: "sub/held.png"}
    walked = {"count": 0}
    real = _worklist._image_paths

    def counted(*args):
        walked["count"] += 1
        return real(*args)

    monkeypatch.setattr(_worklist, "_image_paths", counted)
    assert _worklist.locate(root, wanted, data_dir=store.root, cache=cache) == {
        held_sha: "sub/held.png"}
    assert walked["count"] == 0
    # Rewritten in place: the file found no longer holds it, so the folder is walked.
    stamp = _worklist._stamp(os.fspath(root / "sub"))
    held.write_bytes(b"new bytes")
    other.write_bytes(b"lost")
    assert _worklist._stamp(os.fspath(root / "sub")) == stamp
    assert _worklist.locate(root, {held_sha: None}, data_dir=store.root, cache=cache) == {}
    assert walked["count"] == 1
    # The one that now holds the lost image is not looked at before SEARCH_KEPT_S...
    assert _worklist.locate(root, {lost_sha: None}, data_dir=store.root, cache=cache) == {}
    assert walked["count"] == 1
    monkeypatch.setattr(_worklist, "SEARCH_KEPT_S", 0.0)  # ...then it is
    assert _worklist.locate(root, {lost_sha: None}, data_dir=store.root, cache=cache) == {
        lost_sha: "sub/other.png"}


def test_locate_never_takes_a_file_out_of_the_folder_or_in_the_data_folder(root, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"outside")
    (root / "link.png").symlink_to(outside)
    # A data folder inside the worklist (the client refuses it at start, locate is asked
    # anyway): a saved mask there is a .png the walk would otherwise take.
    store = AnnotationStore(root / "annotations")
    _save(store, "a" * 64)
    mask = store.mask_path("a" * 64, 1)
    sha = hashlib.sha256(b"outside").hexdigest()
    mask_sha = hashlib.sha256(mask.read_bytes()).hexdigest()
    relative = mask.relative_to(root).as_posix()
    for recorded in (None, relative):  # walked for, and by the path a record names
        found = _worklist.locate(root, {sha: "../outside.png", mask_sha: recorded},
                                 data_dir=store.root, cache=HashCache())
        assert found == {}
    # With another data folder the mask is an image of the worklist like any other.
    assert _worklist.locate(root, {mask_sha: None}, data_dir=tmp_path / "elsewhere",
                            cache=HashCache()) == {mask_sha: relative}


def test_locate_now_falls_back_on_the_recorded_paths_when_the_worklist_cannot_be_read(
        root, store, tmp_path, caplog):
    from types import SimpleNamespace

    _write(root, "study/renamed.png", b"the annotated bytes")
    sha = hashlib.sha256(b"the annotated bytes").hexdigest()
    wanted = {sha: "old name.png"}
    config = SimpleNamespace(worklist_dir=root, data_dir=store.root, max_upload_bytes=None)
    assert _worklist.locate_now(config, wanted, context="test") == {sha: "study/renamed.png"}
    # No worklist, or nothing recorded: nothing is walked.
    assert _worklist.locate_now(SimpleNamespace(**{**vars(config), "worklist_dir": None}), wanted,
                                context="test") == {}
    assert _worklist.locate_now(config, {sha: None}, context="test") == {}
    # An unmounted share: logged, and no error for the page to show.
    gone = SimpleNamespace(**{**vars(config), "worklist_dir": tmp_path / "unmounted"})
    with caplog.at_level("WARNING", logger="annotation_client._worklist"):
        assert _worklist.locate_now(gone, wanted, context="Saved page") == {}
    assert "Saved page: worklist images not located" in caplog.text
