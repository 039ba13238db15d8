import fcntl
import hashlib
import json
import os
import threading
import time

import pytest
from _saved_data import synced

from annotation_client import AnnotationStore, _storage

SHA = "0123456789abcdef" * 4


def _save(store, n=0, ai=True):
    return store.save(
        SHA,
        svg=f"<svg>{n}</svg>",
        mask_png=f"mask{n}".encode(),
        ai_mask_png=b"ai" if ai else None,
        record={"n": n},
    )


def test_each_save_is_a_new_version_and_nothing_is_overwritten(tmp_path):
    store = AnnotationStore(tmp_path)
    first = _save(store, 1)
    second = _save(store, 2, ai=False)
    assert (first.version, second.version) == (1, 2)
    folder = tmp_path / SHA
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "v001.json",
        "v001.svg",
        "v001_ai_mask.png",
        "v001_mask.png",
        "v002.json",
        "v002.svg",
        "v002_mask.png",
    ]
    assert (folder / "v001.svg").read_text() == "<svg>1</svg>"
    assert (folder / "v002_mask.png").read_bytes() == b"mask2"
    record = json.loads((folder / "v002.json").read_text())
    assert record["n"] == 2 and record["version"] == 2
    assert record["files"]["ai_mask"] is None
    assert store.versions(SHA) == [1, 2]
    assert store.load_record(SHA, 1)["files"]["svg"] == "v001.svg"


def test_no_temporary_files_are_left_behind(tmp_path):
    store = AnnotationStore(tmp_path)
    _save(store)
    leftovers = [p.name for p in (tmp_path / SHA).iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_write_atomic_refuses_to_overwrite(tmp_path):
    target = tmp_path / "x.json"
    _storage.write_atomic(target, b"one")
    with pytest.raises(FileExistsError):
        _storage.write_atomic(target, b"two")
    assert target.read_bytes() == b"one"


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "y.svg"

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        _storage.write_atomic(target, b"data")
    assert list(tmp_path.iterdir()) == []


def _disk_events(monkeypatch):
    """What reaches the disk, in order: ("replace", name) and ("fsync", folder inode)."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        stat = os.fstat(fd)
        if (stat.st_mode & 0o170000) == 0o040000:  # a folder
            events.append(("fsync", stat.st_ino))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.basename(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_a_save_flushes_its_folder_after_its_last_rename(tmp_path, monkeypatch):
    # A file's own fsync leaves its name in the folder's unwritten metadata: after a
    # power cut "Saved. Version 3" could be gone, or an outline left without a record.
    data = tmp_path / "data"
    data.mkdir()
    store = AnnotationStore(data)
    events = _disk_events(monkeypatch)
    _save(store)
    folder, root = (data / SHA).stat().st_ino, data.stat().st_ino
    # The data folder first (the new image folder's name), then after every rename the
    # image's folder.
    assert events[0] == ("fsync", root)
    assert ("replace", "v001.json") in events and events[-1] == ("fsync", folder)
    # The high-water mark is on disk before any of the version's files.
    mark = events.index(("replace", ".last_version"))
    assert events[mark + 1] == ("fsync", folder)
    events.clear()
    _save(store, 2)  # an image folder already there: the data folder is not flushed again
    assert ("fsync", root) not in events and events[-1] == ("fsync", folder)
    events.clear()
    _storage.write_atomic(tmp_path / "one.json", b"{}")
    assert events == [("replace", "one.json"), ("fsync", tmp_path.stat().st_ino)]
    events.clear()
    (tmp_path / "new").mkdir()
    _storage.mark_data_folder(tmp_path / "new")  # the data folder's mark, linked in
    assert events == [("fsync", (tmp_path / "new").stat().st_ino)]


def test_a_folder_that_cannot_be_flushed_fails_the_save_and_leaves_nothing(tmp_path,
                                                                           monkeypatch):
    import errno

    store = AnnotationStore(tmp_path)
    _save(store)
    real_fsync = os.fsync

    def fsync(fd):
        if (os.fstat(fd).st_mode & 0o170000) == 0o040000:
            raise OSError(errno.EIO, "Input/output error")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):
        _save(store, 2)
    monkeypatch.undo()
    assert store.versions(SHA) == [1]
    assert _storage._read_mark(tmp_path / SHA) == 1
    # A folder a file system cannot fsync (EINVAL) is no failure.
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(
        OSError(errno.EINVAL, "Invalid argument")) if (
        os.fstat(fd).st_mode & 0o170000) == 0o040000 else real_fsync(fd))
    assert _save(store, 3).version == 2


def test_an_interrupted_save_does_not_get_its_number_reused(tmp_path):
    store = AnnotationStore(tmp_path)
    _save(store)
    # A crash after the SVG of version 2 but before its record:
    (tmp_path / SHA / "v002.svg").write_text("<svg/>")
    assert store.versions(SHA) == [1]
    assert _save(store).version == 3


def test_concurrent_saves_get_distinct_versions(tmp_path):
    store = AnnotationStore(tmp_path)
    versions, errors = [], []

    def worker(n):
        try:
            versions.append(_save(store, n).version)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(versions) == list(range(1, 9))


@pytest.mark.parametrize("sha", ["../etc", "ABC", "0" * 63, SHA.upper()])
def test_folder_names_must_be_hashes(tmp_path, sha):
    with pytest.raises(ValueError, match="image_sha256"):
        AnnotationStore(tmp_path).save(sha, svg="", mask_png=b"", record={})


def test_bad_payload_types(tmp_path):
    store = AnnotationStore(tmp_path)
    with pytest.raises(TypeError, match="svg"):
        store.save(SHA, svg=b"x", mask_png=b"", record={})
    with pytest.raises(TypeError, match="mask_png"):
        store.save(SHA, svg="x", mask_png="x", record={})
    with pytest.raises(TypeError, match="record"):
        store.save(SHA, svg="x", mask_png=b"x", record=[])


# --- the database index -------------------------------------------------------------


def _record(when="2024-03-04T05:06:07"):
    import datetime as dt

    import numpy as np

    from annotation_client import build_record

    final = np.zeros((4, 6), bool)
    final[1:3, 2:5] = True
    return build_record(
        image={"sha256": SHA, "name": "scan.png", "width": 6, "height": 4},
        annotator="Ada",
        final_mask=final,
        final_label="benign",
        saved_at=dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC),
    )


def _save_record(store, record):
    return store.save(SHA, svg="<svg/>", mask_png=b"mask", ai_mask_png=b"ai", record=record)


def test_the_data_folder_mark_is_made_once_and_read_after(tmp_path):
    made = _storage.mark_data_folder(tmp_path)
    assert len(made) == 32 and int(made, 16) >= 0
    assert _storage.mark_data_folder(tmp_path) == made  # a second client, or a restart
    assert (tmp_path / _storage.DATA_MARK).read_text() == made + "\n"
    assert oct((tmp_path / _storage.DATA_MARK).stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("gone", ["unmounted", "moved", "mark removed", "another folder"])
def test_a_store_with_a_mark_saves_only_into_the_folder_it_started_on(tmp_path, gone):
    import shutil

    root = tmp_path / "data"
    root.mkdir()
    store = AnnotationStore(root, mark=_storage.mark_data_folder(root))
    assert _save_record(store, _record()).version == 1
    if gone == "unmounted":  # the volume's files go; its mount point stays, empty
        shutil.rmtree(root)
        root.mkdir()
    elif gone == "moved":
        root.rename(tmp_path / "moved")
    elif gone == "mark removed":
        (root / _storage.DATA_MARK).unlink()
    else:
        shutil.rmtree(root)
        root.mkdir()
        _storage.mark_data_folder(root)  # another folder's own mark
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(_storage.DataFolderChanged) as refused:
        _save_record(store, _record("2024-03-05T00:00:00"))
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, no folder made
    message = str(refused.value)
    assert "Nothing was saved" in message and str(tmp_path) not in message
    assert ("is missing" if gone == "moved" else "is not the folder this client started on"
            ) in message
    assert isinstance(refused.value, OSError)  # a save's failure to write, as any other


def test_a_store_without_a_mark_makes_its_folder(tmp_path):
    store = AnnotationStore(tmp_path / "new" / "data")
    store.check_folder()  # nothing to check
    assert _save_record(store, _record()).version == 1


def test_missing_files_names_a_versions_outline_or_mask_gone(tmp_path):
    store = AnnotationStore(tmp_path)
    _save_record(store, _record())
    assert store.missing_files(SHA, 1) == []
    (tmp_path / SHA / "v001_mask.png").unlink()
    assert store.missing_files(SHA, 1) == ["v001_mask.png"]
    (tmp_path / SHA / "v001.svg").unlink()
    assert store.missing_files(SHA, 1) == ["v001.svg", "v001_mask.png"]


def test_a_store_with_an_index_indexes_each_save(tmp_path):
    from annotation_client._database import AnnotationIndex

    index = AnnotationIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    store = AnnotationStore(tmp_path / "data", index=index)
    first = _save_record(store, _record("2024-03-04T05:06:07"))
    second = _save_record(store, _record("2024-03-05T05:06:07"))
    assert (first.indexed, second.indexed) == (True, True)
    rows = index.query()
    assert [(r["image_sha256"], r["version"]) for r in rows] == [(SHA, 2), (SHA, 1)]
    assert rows[1]["record_path"] == str(tmp_path / "data" / SHA / "v001.json")
    assert rows[1]["saved_at"] == "2024-03-04T05:06:07Z"
    assert rows[1]["final_label"] == "benign"
    # The row is the saved record's: syncing the files finds nothing new.
    assert index.sync(tmp_path / "data") == synced(0)


def test_a_store_without_an_index_says_none(tmp_path):
    saved = _save_record(AnnotationStore(tmp_path), _record())
    assert saved.indexed is None
    assert saved.version == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [SHA]  # no database file


def test_the_index_must_be_an_annotation_index(tmp_path):
    with pytest.raises(TypeError, match="index"):
        AnnotationStore(tmp_path, index=f"sqlite:///{tmp_path / 'index.sqlite3'}")


def test_a_save_stands_when_the_index_cannot_be_written(tmp_path, caplog):
    from annotation_client._database import AnnotationIndex

    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the database folder should be")
    store = AnnotationStore(tmp_path / "data", index=AnnotationIndex(f"sqlite:///{blocker}/i.db"))
    saved = _save_record(store, _record())
    assert saved.indexed is False
    assert saved.version == 1
    folder = tmp_path / "data" / SHA
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "v001.json",
        "v001.svg",
        "v001_ai_mask.png",
        "v001_mask.png",
    ]
    assert (folder / "v001_mask.png").read_bytes() == b"mask"
    assert (folder / "v001_ai_mask.png").read_bytes() == b"ai"
    assert store.load_record(SHA, 1) == json.loads(json.dumps(_record())) | {
        "version": 1,
        "files": saved.files,
    }
    assert any("could not index" in r.getMessage() for r in caplog.records)
    # The next save still gets the next number, and a working index picks both up later.
    assert _save_record(store, _record("2024-03-05T00:00:00")).version == 2
    later = AnnotationIndex(f"sqlite:///{tmp_path / 'ok.sqlite3'}")
    assert later.sync(tmp_path / "data") == synced(2)


def _saved_while_the_index_is_away(tmp_path):
    """An index whose database is away (its folder is a file: an unmounted volume, say),
    a version saved meanwhile, and the function that brings the database back."""
    from annotation_client._database import AnnotationIndex

    where = tmp_path / "db"
    where.write_text("not a folder")
    index = AnnotationIndex(f"sqlite:///{where}/index.sqlite3")
    assert _save_record(AnnotationStore(tmp_path / "data", index=index),
                        _record()).indexed is False

    def back():
        where.unlink()
        where.mkdir()

    return index, back


def test_versions_saved_while_the_index_was_away_are_listed_once_it_is_back(tmp_path):
    index, back = _saved_while_the_index_is_away(tmp_path)
    back()
    assert index.query() == []  # not listed yet: its row was never written
    # The next listing catches up, without a restart.
    assert index.recheck_damaged(tmp_path / "data") == {"read": 0, "restored": 0}
    assert [(row["image_sha256"], row["version"]) for row in index.query()] == [(SHA, 1)]


def test_a_catch_up_that_fails_is_tried_again(tmp_path, caplog):
    index, back = _saved_while_the_index_is_away(tmp_path)
    index.recheck_damaged(tmp_path / "data")  # still away: logged, never raised
    # Said as what it is, where an engineer looks for the saves missing from the page.
    assert ("annotation index: could not catch up with the saves it missed (tried again at "
            "the next listing): the annotation index could not be read") in caplog.text
    assert "damaged records not read again" not in caplog.text
    back()
    index.recheck_damaged(tmp_path / "data")
    assert len(index.query()) == 1


def _indexed_store(data):
    from annotation_client._database import AnnotationIndex, default_url

    data.mkdir(exist_ok=True)
    store = AnnotationStore(data, index=AnnotationIndex(default_url(data)),
                            mark=_storage.mark_data_folder(data))
    return store, store.index


def _listed(index, data):
    index.recheck_damaged(data)  # what each listing does first
    return sorted((row["image_sha256"], row["version"]) for row in index.query())


def test_an_index_file_deleted_while_the_client_runs_is_started_again(tmp_path, caplog):
    # The pooled connections held the deleted file: every write failed ("attempt to
    # write a readonly database") and the Saved page listed the old rows until a restart.
    data = tmp_path / "data"
    store, index = _indexed_store(data)
    for n in range(2):
        assert _save_record(store, _record(f"2024-03-0{n + 1}T00:00:00")).indexed is True
    (data / "index.sqlite3").unlink()
    saved = _save_record(store, _record("2024-03-05T00:00:00"))
    assert saved.indexed is True and (data / "index.sqlite3").is_file()
    assert "index.sqlite3 was replaced or removed while the client runs" in caplog.text
    # The next listing catches up with the versions saved before.
    assert _listed(index, data) == [(SHA, 1), (SHA, 2), (SHA, 3)]


def test_a_data_folder_restored_from_a_copy_is_indexed_again_without_a_restart(tmp_path):
    import shutil

    data = tmp_path / "data"
    store, index = _indexed_store(data)
    _save_record(store, _record("2024-03-01T00:00:00"))
    shutil.copytree(data, tmp_path / "backup")
    _save_record(store, _record("2024-03-02T00:00:00"))
    assert _listed(index, data) == [(SHA, 1), (SHA, 2)]
    # Lost, then restored from the backup: new files, the index's older than the records.
    shutil.rmtree(data)
    shutil.copytree(tmp_path / "backup", data)
    (data / SHA / "v007.json").write_bytes((tmp_path / "backup" / SHA / "v001.json")
                                           .read_bytes().replace(b'"version": 1', b'"version": 7'))
    assert _listed(index, data) == [(SHA, 1), (SHA, 7)]  # the restored folder as it is
    assert _save_record(store, _record("2024-03-03T00:00:00")).indexed is True
    assert _listed(index, data) == [(SHA, 1), (SHA, 7), (SHA, 8)]
    # Replaced by hand (an older copy of the file put back): read anew too.
    shutil.copy(tmp_path / "backup" / "index.sqlite3", data / "index.sqlite3.new")
    os.replace(data / "index.sqlite3.new", data / "index.sqlite3")
    assert sorted((r["image_sha256"], r["version"]) for r in index.query()) == [(SHA, 1)]
    assert _listed(index, data) == [(SHA, 1), (SHA, 7), (SHA, 8)]


def test_a_write_on_a_moved_file_is_done_again_on_the_file_there_now(tmp_path):
    # SQLite's own word for it (SQLITE_READONLY_DBMOVED) when the file changed between
    # the index's check and its write.
    data = tmp_path / "data"
    store, index = _indexed_store(data)
    _save_record(store, _record("2024-03-01T00:00:00"))
    (data / "index.sqlite3").unlink()
    real, index._replaced = index._replaced, lambda: False  # the check sees nothing
    assert _save_record(store, _record("2024-03-02T00:00:00")).indexed is True
    index._replaced = real
    assert _listed(index, data) == [(SHA, 1), (SHA, 2)]


def test_no_index_file_is_started_in_an_empty_mount_point_or_a_folder_moved_away(tmp_path):
    from annotation_client._database import IndexUnavailable

    data = tmp_path / "data"
    store, index = _indexed_store(data)
    _save_record(store, _record())
    (data).rename(tmp_path / "away")
    with pytest.raises(IndexUnavailable, match="could not be opened"):
        index.query()
    assert not data.exists()  # not made again for a file of its own
    data.mkdir()  # an empty mount point
    with pytest.raises(IndexUnavailable) as caught:
        index.query()
    assert "no new file is started there" in caught.value.logged()
    assert list(data.iterdir()) == []
    data.rmdir()
    (tmp_path / "away").rename(data)  # back: as it was
    assert _listed(index, data) == [(SHA, 1)]


def test_a_record_the_index_cannot_read_is_saved_unindexed(tmp_path):
    from annotation_client._database import AnnotationIndex

    index = AnnotationIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    store = AnnotationStore(tmp_path / "data", index=index)
    saved = _save(store, 1)  # the record {"n": 1} has no image, annotator or saved_at
    assert saved.indexed is False
    assert store.versions(SHA) == [1]
    assert index.query() == []
    # Readable, it loads; the index lists it as damaged then, as its next sync would.
    assert store.load_record(SHA, 1)["n"] == 1
    assert [row["damaged"] for row in index.query()] == [
        "record is missing or mistypes a field: KeyError('image')"]


def test_a_save_stands_when_the_index_overflows(tmp_path):
    from annotation_client._database import AnnotationIndex

    index = AnnotationIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    store = AnnotationStore(tmp_path / "data", index=index)
    record = _record()
    record["final"]["regions"] = 2**70
    saved = _save_record(store, record)
    assert saved.indexed is False
    assert store.versions(SHA) == [1]


# --------------------------------------------------------------------------- load_svg


def test_load_svg_reads_back_exactly_what_each_save_wrote(tmp_path):
    store = AnnotationStore(tmp_path)
    first = '<svg width="8" height="6">\n  <!-- Dr Müller, 2 µm -->\n</svg>\n'
    store.save(SHA, svg=first, mask_png=b"m1", record={})
    _save(store, 2)
    assert store.load_svg(SHA, 1) == first
    assert store.load_svg(SHA, 2) == "<svg>2</svg>"


def test_load_svg_gives_the_bytes_of_a_file_that_is_not_utf8(tmp_path):
    # A file converted elsewhere: its XML says its encoding, and the SVG readers take
    # bytes, as the export's does (audit helper-502, 4: a raw UnicodeDecodeError).
    store = AnnotationStore(tmp_path)
    _save(store, 1)
    encoded = '<?xml version="1.0" encoding="UTF-16"?><svg/>'.encode("utf-16")
    next(tmp_path.glob(f"{SHA}/v001.svg")).write_bytes(encoded)
    assert store.load_svg(SHA, 1) == encoded


@pytest.mark.parametrize("version", [0, -1, True, 1.0, "1", None])
def test_load_svg_refuses_a_bad_version(tmp_path, version):
    store = AnnotationStore(tmp_path)
    _save(store)
    with pytest.raises(ValueError, match="version must be a positive int"):
        store.load_svg(SHA, version)


def test_load_svg_refuses_a_folder_name_that_is_not_a_hash(tmp_path):
    with pytest.raises(ValueError, match="image_sha256"):
        AnnotationStore(tmp_path).load_svg("../etc", 1)


def test_load_svg_of_a_missing_version_raises_file_not_found(tmp_path):
    store = AnnotationStore(tmp_path)
    with pytest.raises(FileNotFoundError):
        store.load_svg(SHA, 1)  # the image was never saved
    _save(store)
    with pytest.raises(FileNotFoundError, match="v002.svg"):
        store.load_svg(SHA, 2)
    (tmp_path / SHA / "v001.svg").unlink()
    with pytest.raises(FileNotFoundError, match="v001.svg"):
        store.load_svg(SHA, 1)


def test_next_version_counts_interrupted_saves(tmp_path):
    store = AnnotationStore(tmp_path)
    sha = "ef" * 32
    assert store.next_version(sha) == 1
    store.save(sha, svg="<svg/>", mask_png=b"png", record={"a": 1})
    assert store.next_version(sha) == 2
    (store.folder(sha) / "v002.svg").write_text("<svg/>")  # a save cut short after its SVG
    assert store.next_version(sha) == 3
    assert store.save(sha, svg="<svg/>", mask_png=b"png", record={"a": 2}).version == 3


# --------------------------------------------------------------------------- kept uploads


def _image_bytes(n=0):
    return b"\x89PNG fake image " + bytes([n])


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def test_the_upload_is_kept_once_beside_its_versions(tmp_path):
    store = AnnotationStore(tmp_path)
    data = _image_bytes()
    sha = _sha(data)
    assert store.source_path(sha) is None
    with pytest.raises(FileNotFoundError, match="no copy"):
        store.load_source(sha)
    for _ in range(2):
        store.save(sha, svg="<svg/>", mask_png=b"m", record={}, source=data,
                   source_name="Left Breast.PNG")
    # Kept once, named by the upload's suffix, and not taken for a version.
    assert sorted(p.name for p in (tmp_path / sha).glob("source*")) == ["source.png"]
    assert store.versions(sha) == [1, 2]
    assert store.next_version(sha) == 3
    assert store.load_source(sha) == data


@pytest.mark.parametrize("name, suffix", [
    ("scan.dcm", ".dcm"), ("a.JPEG", ".jpeg"), ("no suffix", ".bin"), (None, ".bin"),
    ("x.p n g", ".bin"), ("../../etc/passwd", ".bin"), ("evil.png/..", ".bin"),
])
def test_the_kept_copy_takes_a_safe_suffix(tmp_path, name, suffix):
    store = AnnotationStore(tmp_path)
    data = _image_bytes(3)
    store.save(_sha(data), svg="<svg/>", mask_png=b"m", record={}, source=data,
               source_name=name)
    assert store.source_path(_sha(data)) == tmp_path / _sha(data) / f"source{suffix}"


def test_a_source_that_is_not_the_image_is_refused_and_nothing_is_written(tmp_path):
    store = AnnotationStore(tmp_path)
    sha = _sha(_image_bytes(1))
    with pytest.raises(ValueError, match="does not match"):
        store.save(sha, svg="<svg/>", mask_png=b"m", record={}, source=_image_bytes(2))
    assert store.versions(sha) == [] and store.source_path(sha) is None
    with pytest.raises(TypeError, match="source"):
        store.save(sha, svg="<svg/>", mask_png=b"m", record={}, source="text")


def test_a_damaged_copy_is_refused_on_load(tmp_path):
    store = AnnotationStore(tmp_path)
    data = _image_bytes()
    store.save(_sha(data), svg="<svg/>", mask_png=b"m", record={}, source=data,
               source_name="a.png")
    store.source_path(_sha(data)).write_bytes(data[:-1])
    with pytest.raises(ValueError, match="damaged"):
        store.load_source(_sha(data))
    with pytest.raises(ValueError, match="hex"):
        store.load_source("../" + "0" * 61)


def _kept(store, n, *, saved_at):
    """An upload saved once, its files dated ``saved_at`` (Unix time); its SHA-256."""
    data = _image_bytes(n)
    sha = _sha(data)
    store.save(sha, svg="<svg/>", mask_png=b"m", record={}, source=data, source_name="a.png")
    for path in (store.root / sha).iterdir():
        os.utime(path, (saved_at, saved_at))
    return sha


def test_prune_removes_only_copies_idle_for_longer_than_asked(tmp_path):
    store = AnnotationStore(tmp_path)
    now = 1_800_000_000.0
    old = _kept(store, 1, saved_at=now - 10 * 86400)
    recent = _kept(store, 2, saved_at=now - 2 * 86400)
    # An old image saved again today is still being worked on: its copy stays.
    busy = _kept(store, 3, saved_at=now - 30 * 86400)
    store.save(busy, svg="<svg/>", mask_png=b"m", record={})
    os.utime(store.record_path(busy, 2), (now - 60, now - 60))
    no_copy = _sha(_image_bytes(4))
    store.save(no_copy, svg="<svg/>", mask_png=b"m", record={})

    listed = store.prune_sources(7 * 86400, now=now, dry_run=True)
    assert listed == [tmp_path / old / "source.png"]
    assert store.source_path(old) is not None  # a dry run removes nothing

    assert store.prune_sources(7 * 86400, now=now) == listed
    assert store.source_path(old) is None
    assert store.source_path(recent) is not None and store.source_path(busy) is not None
    # The annotations stay: only the image file went.
    assert store.versions(old) == [1] and store.load_svg(old, 1) == "<svg/>"
    assert store.prune_sources(7 * 86400, now=now) == []
    # Uploaded and saved again, the image is kept again.
    store.save(old, svg="<svg/>", mask_png=b"m", record={}, source=_image_bytes(1),
               source_name="a.png")
    assert store.load_source(old) == _image_bytes(1) and store.versions(old) == [1, 2]


def test_prune_refuses_a_bad_age_and_needs_no_data_folder(tmp_path):
    store = AnnotationStore(tmp_path / "never-saved")
    assert store.prune_sources(0) == []
    for bad, error in [(-1, ValueError), (float("nan"), ValueError), ("7", TypeError),
                       (True, TypeError)]:
        with pytest.raises(error):
            store.prune_sources(bad)


# --------------------------------------------------------------------------- all or nothing


def _files(root):
    """Every file under ``root`` (temporaries and locks included), relative."""
    if not root.exists():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _save_with_source(store, record, source=b"the image"):
    return store.save(
        hashlib.sha256(source).hexdigest(),
        svg="<svg/>",
        mask_png=b"mask",
        ai_mask_png=b"ai",
        record=record,
        source=source,
        source_name="scan.dcm",
    )


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_a_record_that_is_not_json_writes_nothing(tmp_path, bad):
    store = AnnotationStore(tmp_path / "data")
    with pytest.raises(ValueError, match="JSON"):
        _save_with_source(store, {"measurements": {"area_mm2": bad}})
    assert _files(tmp_path / "data") == set()
    # Nothing half-saved blocks the image: the next save is its version 1, with its copy.
    saved = _save_with_source(store, {"measurements": {"area_mm2": 1.0}})
    assert saved.version == 1
    assert store.load_source(hashlib.sha256(b"the image").hexdigest()) == b"the image"


def _fail_on(monkeypatch, suffix):
    """Make ``os.replace`` fail when it would give a file a name ending in ``suffix``."""
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith(suffix):
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("suffix", [".json", "_ai_mask.png", ".svg", "source.dcm"])
def test_a_first_save_failing_at_any_file_leaves_no_trace(tmp_path, monkeypatch, suffix):
    store = AnnotationStore(tmp_path / "data")
    _fail_on(monkeypatch, suffix)
    with pytest.raises(OSError, match="disk full"):
        _save_with_source(store, {"n": 1})
    assert store.images() == []
    assert _files(tmp_path / "data") == set()
    monkeypatch.undo()
    assert _save_with_source(store, {"n": 1}).version == 1


def test_a_failed_later_save_leaves_the_earlier_versions_as_they_were(tmp_path, monkeypatch):
    store = AnnotationStore(tmp_path / "data")
    first = _save_with_source(store, {"n": 1})
    folder = first.folder
    before = {name: (folder / name).read_bytes() for name in _files(folder)}
    _fail_on(monkeypatch, ".json")
    with pytest.raises(OSError):
        _save_with_source(store, {"n": 2})
    assert {name: (folder / name).read_bytes() for name in _files(folder)} == before
    monkeypatch.undo()
    assert _save_with_source(store, {"n": 2}).version == 2


def test_a_failed_write_before_any_rename_leaves_no_temporaries(tmp_path, monkeypatch):
    store = AnnotationStore(tmp_path / "data")
    _save(store, 1)
    real = os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 3:  # the third file of the save: its SVG and mask are temporaries
            raise OSError("I/O error")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    before = _files(tmp_path / "data")
    with pytest.raises(OSError, match="I/O error"):
        _save(store, 2)
    assert _files(tmp_path / "data") == before


def test_a_failed_save_adds_nothing_to_the_index(tmp_path, monkeypatch):
    from annotation_client._database import AnnotationIndex

    index = AnnotationIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    store = AnnotationStore(tmp_path / "data", index=index)
    record = _record()
    record["measurements"] = {"area_mm2": float("inf")}
    with pytest.raises(ValueError):
        _save_record(store, record)
    _fail_on(monkeypatch, ".json")
    with pytest.raises(OSError):
        _save_record(store, _record())
    monkeypatch.undo()
    assert index.query() == []
    assert index.sync(tmp_path / "data") == synced(0)
    assert _save_record(store, _record()).indexed is True
    assert [row["version"] for row in index.query()] == [1]


def test_a_save_waiting_on_a_failed_first_save_still_saves(tmp_path, monkeypatch):
    # The failed save removes the folder and its lock file while the other waits on
    # that lock: the waiting save must take the lock again, not write into nothing.
    store = AnnotationStore(tmp_path / "data")
    real = os.replace
    started, release = threading.Event(), threading.Event()

    def replace(src, dst):
        if str(dst).endswith(".json") and threading.current_thread().name == "failing":
            started.set()
            release.wait(5)
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    real_flock, blocked = fcntl.flock, threading.Event()

    def flock(fd, operation):
        if threading.current_thread().name == "waiting" and operation == fcntl.LOCK_EX:
            blocked.set()
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    errors = []

    def failing():
        try:
            _save(store, 1)
        except OSError as exc:
            errors.append(exc)

    thread = threading.Thread(target=failing, name="failing")
    thread.start()
    assert started.wait(5)
    results = []
    waiting = threading.Thread(target=lambda: results.append(_save(store, 2)), name="waiting")
    waiting.start()
    assert blocked.wait(5)
    time.sleep(0.2)  # let it block on the lock the failing save holds
    release.set()
    thread.join(5)
    waiting.join(5)
    assert len(errors) == 1
    assert [r.version for r in results] == [1]
    assert store.versions(SHA) == [1]
    assert store.load_record(SHA, 1)["n"] == 2


# --------------------------------------------------------------------------- by annotator


def test_versions_of_one_annotator_are_those_whose_record_names_them(tmp_path):
    store = AnnotationStore(tmp_path)
    sha = "e5" * 32
    for name in ("Dr Ada", "Dr Bo", "Dr Ada", "dr ada"):
        store.save(sha, svg="<svg/>", mask_png=b"m", record={"annotator": name})
    assert store.versions(sha) == [1, 2, 3, 4]
    assert store.versions(sha, "Dr Ada") == [1, 3]  # exact name: "dr ada" is another
    assert store.versions(sha, "Dr Bo") == [2]
    assert store.versions(sha, "Dr Cy") == []
    assert store.versions("f6" * 32, "Dr Ada") == []  # never saved


def test_a_damaged_record_names_nobody_and_is_logged_once_until_it_changes(tmp_path, caplog):
    store = AnnotationStore(tmp_path)
    sha = "e5" * 32
    store.save(sha, svg="<svg/>", mask_png=b"m", record={"annotator": "Dr Ada"})
    store.save(sha, svg="<svg/>", mask_png=b"m", record={"annotator": "Dr Ada"})
    store.save(sha, svg="<svg/>", mask_png=b"m", record={"annotator": 7})
    second = store.record_path(sha, 2)
    good = second.read_bytes()
    second.write_bytes(good[: len(good) // 2])  # cut short
    assert store.versions(sha, "Dr Ada") == [1]
    assert store.versions(sha, "Dr Ada") == [1]
    assert caplog.text.count("cannot read the annotator") == 1
    second.write_bytes(good)  # repaired: a new size and time
    assert store.versions(sha, "Dr Ada") == [1, 2]


def test_a_record_rewritten_in_place_is_read_again(tmp_path):
    # Records are never rewritten by the client, but one restored from a backup or
    # edited by hand is: the size or the time tells, each on its own.
    store = AnnotationStore(tmp_path)
    sha = "e5" * 32
    store.save(sha, svg="<svg/>", mask_png=b"m", record={"annotator": "Dr Ada"})
    path = store.record_path(sha, 1)
    assert store.versions(sha, "Dr Ada") == [1]
    text = path.read_text()
    stat = path.stat()
    path.write_text(text.replace("Dr Ada", "Dr Bob"))  # same size, later time
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert store.versions(sha, "Dr Ada") == [] and store.versions(sha, "Dr Bob") == [1]
    stat = path.stat()
    path.write_text(text.replace("Dr Ada", "Dr Cyrus"))  # another size, the same time
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert store.versions(sha, "Dr Bob") == [] and store.versions(sha, "Dr Cyrus") == [1]


def test_load_mask_reads_a_versions_saved_mask_back(tmp_path):
    import numpy as np

    import vectorizer

    store = AnnotationStore(tmp_path)
    sha = "e5" * 32
    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:6] = True
    store.save(sha, svg="<svg/>", mask_png=vectorizer.mask_to_png(mask), record={})
    store.save(sha, svg="<svg/>", mask_png=b"not a png", record={})
    assert np.array_equal(store.load_mask(sha, 1), mask)
    with pytest.raises(ValueError, match="PNG"):
        store.load_mask(sha, 2)
    with pytest.raises(FileNotFoundError):
        store.load_mask(sha, 3)
    with pytest.raises(ValueError, match="positive int"):
        store.load_mask(sha, 0)


# --- temporary copies of saves killed mid-write --------------------------------------


def _killed_save_leftovers(folder, age_s):
    """What a save killed with kill -9 between writing and renaming leaves."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [".source.png.ab12cd.tmp", ".v002.svg.x1.tmp", ".v002.json.x2.tmp",
             ".v002_mask.png.x3.tmp", "..last_version.x4.tmp"]  # fmt: skip
    when = time.time() - age_s
    for name in names:
        (folder / name).write_bytes(b"partial")
        os.utime(folder / name, (when, when))
    return [folder / name for name in names]


def test_the_next_save_removes_the_stale_temporary_copies_of_a_killed_one(tmp_path):
    from annotation_client._storage import STALE_TEMP_S

    store = AnnotationStore(tmp_path)
    sha = "ab" * 32
    stale = _killed_save_leftovers(store.folder(sha), STALE_TEMP_S + 60)
    fresh = store.folder(sha) / ".v009.svg.zz.tmp"  # another save's, still being written
    fresh.write_bytes(b"now")
    saved = store.save(sha, svg="<svg/>", mask_png=b"m", record={})
    assert saved.version == 1
    assert not any(path.exists() for path in stale)
    assert fresh.exists()
    assert sorted(p.name for p in store.folder(sha).iterdir()) == sorted(
        [".last_version", ".lock", ".v009.svg.zz.tmp", "v001.json", "v001.svg",
         "v001_mask.png"]
    )


def test_prune_temps_removes_only_stale_temporary_copies(tmp_path):
    from annotation_client._storage import STALE_TEMP_S

    store = AnnotationStore(tmp_path)
    old_sha, new_sha = "ab" * 32, "cd" * 32
    store.save(old_sha, svg="<svg/>", mask_png=b"m", record={})
    stale = _killed_save_leftovers(store.folder(old_sha), STALE_TEMP_S + 60)
    recent = _killed_save_leftovers(store.folder(new_sha), 60)
    (store.folder(new_sha) / ".lock").touch()
    assert sorted(store.prune_temps(dry_run=True)) == sorted(stale)
    assert all(path.exists() for path in stale)
    assert sorted(store.prune_temps()) == sorted(stale)
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in recent)
    assert store.versions(old_sha) == [1]


def test_a_name_followed_by_a_newline_is_not_a_hash_nor_a_version(tmp_path):
    # re's "$" also matches before a final newline: "<sha>\n" (a ?saved= link) was taken
    # for a SHA-256, and a folder or file named so for one the store writes.
    store = AnnotationStore(tmp_path)
    for bad in (SHA + "\n", "\n" + SHA):
        for call in (store.folder, store.versions, store.load_source):
            with pytest.raises(ValueError, match="image_sha256"):
                call(bad)
    (tmp_path / (SHA + "\n")).mkdir()
    assert store.images() == []
    folder = tmp_path / SHA
    folder.mkdir()
    # Nor is a name with digits of another script (\d takes them) one of its versions.
    for name in ("v001.json\n", "v001_mask.png\n", "v\u0661\u0662\u0663.json"):
        (folder / name).write_text("{}")
    assert store.versions(SHA) == [] and store.next_version(SHA) == 1
    assert _storage._source_suffix("scan.png\n") == ".bin"
    (folder / ".v001.svg.k3j2.tmp\n").write_text("not ours")
    assert store.prune_temps(0.0, now=time.time() + 10) == []


def _move_version(folder, version, to):
    to.mkdir(exist_ok=True)
    for path in folder.glob(f"v{version:03d}*"):
        path.rename(to / path.name)


def test_a_removed_versions_number_is_not_reused_after_a_restart_or_a_rebuild(tmp_path):
    """The start-up sync drops the row of a version whose files were moved away, and a
    rebuilt index has none: the folder's own mark still holds the number."""
    import datetime as dt

    from _saved_data import save_version

    from annotation_client import create_app
    from annotation_client._app import INDEX_KEY

    data = tmp_path / "data"
    config = {"DATA_DIR": data, "MODEL_SERVER_URL": "http://127.0.0.1:9"}

    def save(index):
        when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
        path = save_version(data, SHA, saved_at=when, index=index)
        return int(os.path.basename(path)[1:4])

    index = create_app(config).server.config[INDEX_KEY]
    assert [save(index) for _ in range(3)] == [1, 2, 3]
    assert index.max_version(SHA) == 3
    _move_version(data / SHA, 3, tmp_path / "removed")
    index.dispose()
    # A restart: a new app, whose start-up sync removes v3's row.
    index = create_app(config).server.config[INDEX_KEY]
    assert index.max_version(SHA) == 2
    assert AnnotationStore(data, index=index).next_version(SHA) == 4
    assert save(index) == 4
    _move_version(data / SHA, 4, tmp_path / "removed")
    index.dispose()
    # The index deleted, and rebuilt from the files at the next start.
    (data / "index.sqlite3").unlink()
    index = create_app(config).server.config[INDEX_KEY]
    assert index.max_version(SHA) == 2
    assert save(index) == 5
    assert index.max_version(SHA) == 5
    index.dispose()
    # Without any index too.
    _move_version(data / SHA, 5, tmp_path / "removed")
    assert save(None) == 6
    assert (data / SHA / ".last_version").read_text() == "6\n"


def test_a_failed_save_leaves_the_mark_as_it_was(tmp_path, monkeypatch):
    store = AnnotationStore(tmp_path)
    _save(store)
    real = _storage._write_all

    def failing(folder, files):
        raise OSError("disk full")

    monkeypatch.setattr(_storage, "_write_all", failing)
    with pytest.raises(OSError):
        _save(store)
    assert (tmp_path / SHA / ".last_version").read_text() == "1\n"
    monkeypatch.setattr(_storage, "_write_all", real)
    assert _save(store).version == 2
    # A first save that fails leaves no folder behind, mark included.
    monkeypatch.setattr(_storage, "_write_all", failing)
    other = "f" * 64
    with pytest.raises(OSError):
        store.save(other, svg="<svg/>", mask_png=b"m", record={})
    assert not (tmp_path / other).exists()


def test_a_damaged_mark_does_not_stop_a_save(tmp_path, caplog):
    store = AnnotationStore(tmp_path)
    _save(store)
    (tmp_path / SHA / ".last_version").write_text("garbage")
    with caplog.at_level("WARNING"):
        assert _save(store).version == 2
    assert "not a number" in caplog.text
    assert (tmp_path / SHA / ".last_version").read_text() == "2\n"
