"""Tests for soundmark.catalog.manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundmark.catalog.manifest import ManifestEntry, ManifestError, read_manifest
from soundmark.catalog.models import TrackMeta


def _write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


@pytest.fixture
def refs(tmp_path: Path) -> Path:
    for name in ("t0001.ogg", "t0002.ogg"):
        _write(tmp_path / "refs" / name, "audio")
    return tmp_path


def test_benchmark_manifest(refs: Path) -> None:
    csv_path = _write(
        refs / "manifest.csv",
        "path,title,artist,album,release_date,label\n"
        "refs/t0001.ogg,t0001,wesnoth-1.16-music,music,,\n"
        "refs/t0002.ogg,t0002,wesnoth-1.16-music,music,2022-03,Wesnoth\n",
    )
    entries = read_manifest(csv_path)
    assert entries == [
        ManifestEntry(
            refs / "refs" / "t0001.ogg",
            TrackMeta(title="t0001", artist="wesnoth-1.16-music", album="music"),
        ),
        ManifestEntry(
            refs / "refs" / "t0002.ogg",
            TrackMeta(
                title="t0002",
                artist="wesnoth-1.16-music",
                album="music",
                release_date="2022-03",
                label="Wesnoth",
            ),
        ),
    ]
    assert entries[0].meta.release_date is None
    assert entries[0].meta.external == {}


def test_relative_paths_resolve_against_manifest_dir(refs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = refs / "lists"
    _write(sub / "m.csv", f"path\n../refs/t0001.ogg\n{refs / 'refs' / 't0002.ogg'}\n")
    monkeypatch.chdir(refs / "refs")  # the working directory must not matter
    entries = read_manifest(Path("../lists/m.csv"))
    assert [e.path.resolve() for e in entries] == [
        (refs / "refs" / "t0001.ogg").resolve(),
        (refs / "refs" / "t0002.ogg").resolve(),
    ]
    assert all(e.path.is_absolute() for e in entries)


def test_all_known_columns_and_extra_columns(refs: Path) -> None:
    csv_path = _write(
        refs / "m.csv",
        "path,title,isrc,upc,lyrics,audio_id,spotify_id,musicbrainz_recording_id,apple_music_url,empty\n"
        'refs/t0001.ogg,Song,USRC17607839,00602547,"la la\nla",42,4uLU6hMCjMI75M1A2tKUQC,'
        "b1a9c0e9-d987-4042-ae91-78d6a3267d69,https://music.apple.com/x,\n",
    )
    [entry] = read_manifest(csv_path)
    assert entry.meta == TrackMeta(
        title="Song",
        isrc="USRC17607839",
        upc="00602547",
        lyrics="la la\nla",
        audio_id=42,
        external={
            "spotify_id": "4uLU6hMCjMI75M1A2tKUQC",
            "musicbrainz_recording_id": "b1a9c0e9-d987-4042-ae91-78d6a3267d69",
            "apple_music_url": "https://music.apple.com/x",
        },
    )


def test_utf8_bom_and_non_ascii(refs: Path) -> None:
    csv_path = _write(refs / "m.csv", "path,title,artist\nrefs/t0001.ogg,Café,Björk\n", bom=True)
    [entry] = read_manifest(csv_path)
    assert entry.meta.title == "Café"
    assert entry.meta.artist == "Björk"


def test_blank_lines_are_skipped(refs: Path) -> None:
    csv_path = _write(refs / "m.csv", "path,title\n\nrefs/t0001.ogg,a\n,\n")
    assert [e.meta.title for e in read_manifest(csv_path)] == ["a"]


def test_missing_path_column(refs: Path) -> None:
    csv_path = _write(refs / "m.csv", "file,title\nrefs/t0001.ogg,a\n")
    with pytest.raises(ManifestError, match=r"m\.csv:1: missing required column 'path'"):
        read_manifest(csv_path)


def test_empty_manifest_has_no_path_column(refs: Path) -> None:
    with pytest.raises(ManifestError, match="missing required column 'path'"):
        read_manifest(_write(refs / "m.csv", ""))


def test_missing_audio_file_names_line(refs: Path) -> None:
    csv_path = _write(refs / "m.csv", "path,title\nrefs/t0001.ogg,a\nrefs/nope.ogg,b\n")
    with pytest.raises(ManifestError, match=r"m\.csv:3: audio file not found: .*nope\.ogg"):
        read_manifest(csv_path)


def test_empty_path_cell_names_line(refs: Path) -> None:
    csv_path = _write(refs / "m.csv", "path,title\n,b\n")
    with pytest.raises(ManifestError, match=r"m\.csv:2: empty 'path'"):
        read_manifest(csv_path)


@pytest.mark.parametrize("bad", ["abc", "1.5"])
def test_bad_audio_id_names_line(refs: Path, bad: str) -> None:
    csv_path = _write(refs / "m.csv", f"path,audio_id\nrefs/t0001.ogg,7\nrefs/t0002.ogg,{bad}\n")
    with pytest.raises(ManifestError, match=rf"m\.csv:3: audio_id must be an integer, got '{bad}'"):
        read_manifest(csv_path)


def test_manifest_error_is_value_error() -> None:
    assert issubclass(ManifestError, ValueError)


def test_not_utf8(refs: Path) -> None:
    csv_path = refs / "m.csv"
    csv_path.write_bytes(b"path,title\nrefs/t0001.ogg,caf\xe9\n")
    with pytest.raises(ManifestError, match="not UTF-8"):
        read_manifest(csv_path)
