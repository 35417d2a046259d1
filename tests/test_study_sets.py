"""The study and fresh sets (restore.training.study_sets, behind scripts/study_set.py): the fresh
test set's manifest is complete and disjoint from every image the
project has used, and the Qt resource reader that opens GCompris's photos reads a small archive
built here byte by byte from Qt's documented layout."""

import csv
import struct
import zlib
from pathlib import Path

import pytest

from restore.training import study_sets as ss

ROOT = Path(__file__).resolve().parent.parent


def test_fresh_manifest_is_complete_and_unused():
    rows = ss.read_manifest(ss.FRESH_SOURCES)
    assert len(rows) >= 60
    assert len({r["name"] for r in rows}) == len(rows)
    assert len({(r["package"], r["path"]) for r in rows}) == len(rows)
    for row in rows:
        assert row["name"] and row["package"] and row["path"] and row["licence"] and row["credit"], row
        assert row["registry"] in ("debian", "pypi"), row
        assert int(row["width"]) >= 256 and int(row["height"]) >= 256, row
    assert ss.used_elsewhere(rows) == []
    with open(ROOT / "data" / "train_sources.csv", newline="") as f:
        training = {row["path"] for row in csv.DictReader(f)}
    assert not training & {row["path"] for row in rows}


def test_used_elsewhere_catches_a_training_photo_and_a_held_out_one():
    with open(ROOT / "data" / "train_sources.csv", newline="") as f:
        trained = next(csv.DictReader(f))
    held = {"package": "opencv-doc", "path": "/usr/share/doc/opencv-doc/examples/data/messi5.jpg"}
    assert ss.used_elsewhere([trained, held]) == [trained["path"], held["path"]]


def _name(text: str) -> bytes:
    return struct.pack(">HI", len(text), 0) + text.encode("utf-16-be")


def _archive(files: dict[str, tuple[bytes, bool]], version: int = 2) -> bytes:
    """A Qt resource archive holding `files` (name -> (bytes, zlib-compressed?)) in one directory
    "dir" under the root: header, tree of fixed-size entries, payload, names."""
    names, offsets = b"", {}
    for text in ["dir", *files]:
        offsets[text] = len(names)
        names += _name(text)
    payload, data_at = b"", {}
    for text, (content, compressed) in files.items():
        blob = struct.pack(">I", len(content)) + zlib.compress(content) if compressed else content
        data_at[text] = len(payload)
        payload += struct.pack(">I", len(blob)) + blob
    stamp = b"\0" * 8 if version >= 2 else b""
    tree = struct.pack(">IHII", 0, 2, 1, 1) + stamp  # root: a directory with one child, entry 1
    tree += struct.pack(">IHII", offsets["dir"], 2, len(files), 2) + stamp
    for text, (_, compressed) in files.items():
        tree += struct.pack(">IHHHI", offsets[text], 1 if compressed else 0, 0, 0, data_at[text]) + stamp
    header = 20
    return (b"qres" + struct.pack(">4I", version, header, header + len(tree), header + len(tree) + len(payload))
            + tree + payload + names)


@pytest.mark.parametrize("version", [1, 2])
def test_rcc_member_reads_plain_and_compressed_files(tmp_path, version):
    files = {"a.png": (b"plain bytes \x00\x01", False), "b.webp": (bytes(range(256)) * 3, True)}
    archive = tmp_path / "x.rcc"
    archive.write_bytes(_archive(files, version))
    assert ss.rcc_member(archive, "/dir/a.png") == files["a.png"][0]
    assert ss.rcc_member(archive, "dir/b.webp") == files["b.webp"][0]
    with pytest.raises(KeyError):
        ss.rcc_member(archive, "/dir/missing.png")
    with pytest.raises(ValueError):
        ss.rcc_member(archive, "/dir")  # a directory, not a file
    (tmp_path / "bad.rcc").write_bytes(b"nope" + bytes(40))
    with pytest.raises(ValueError):
        ss.rcc_member(tmp_path / "bad.rcc", "/dir/a.png")


def test_a_missing_package_names_the_command_that_installs_it():
    rows = [dict(name="x", registry="pypi", package="nopkg", path="nopkg/a.jpg", version="1.0"),
            dict(name="y", registry="debian", package="nodeb", path="/usr/share/nodeb-none/a.jpg"),
            dict(name="z", registry="pypi", package="gradio", path="gradio/none.jpg", version="")]
    with pytest.raises(ss.SetError, match="3 of the set's photos are missing") as error:
        ss.photos(rows)
    assert ("`apt-get install -y --no-install-recommends nodeb && pip install gradio && "
            "pip install --no-deps nopkg==1.0`") in str(error.value)
