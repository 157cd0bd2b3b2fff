"""Tests for soundmark.catalog.tags: real files written with PyAV, tagged with mutagen as Picard does."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import mutagen
import numpy as np
import pytest
from mutagen.id3 import ID3, TALB, TDRC, TIT2, TPE1, TPUB, TSRC, TXXX, UFID, USLT
from mutagen.mp4 import MP4, MP4FreeForm
from mutagen.wave import WAVE

from soundmark.catalog.models import TrackMeta
from soundmark.catalog.tags import read_tags

# extension -> (encoder, sample rate)
FORMATS = {
    "mp3": ("libmp3lame", 44100),
    "flac": ("flac", 44100),
    "ogg": ("vorbis", 44100),  # FFmpeg's native (experimental) Vorbis encoder; no libvorbis in the wheel
    "opus": ("libopus", 48000),
    "m4a": ("aac", 44100),
    "wav": ("pcm_s16le", 44100),
}

RECORDING = "b1a9c0e9-d987-4042-ae91-78d6a3267d69"
RELEASE = "0d1d2e3f-0000-4000-8000-000000000001"
ARTIST = "a74b1b7f-71a5-4011-9441-d0b5e4122711"
ARTIST2 = "0383dadf-2a4e-4d10-a46a-e9e041da8eb3"
GROUP = "f5093c06-23e3-404f-aeaa-40f72885ee3a"
LYRICS = "First line\nSecond line"

EXPECTED = TrackMeta(
    title="Song Title",
    artist="Some Artist feat. Other",
    album="The Album",
    release_date="2003-05-01",
    label="Parlophone",
    isrc="GBAYE0300801",
    upc="724358480726",
    lyrics=LYRICS,
    external={
        "musicbrainz_recording_id": RECORDING,
        "musicbrainz_release_id": RELEASE,
        "musicbrainz_artist_id": ARTIST,
        "musicbrainz_releasegroup_id": GROUP,
    },
)


def _encode(path: Path, codec: str, rate: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        fmt = stream.codec_context.codec.audio_formats[0].name
        t = np.arange(rate) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=fmt, layout="stereo", rate=rate)
        for out in resampler.resample(frame) + resampler.resample(None):
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("audio")
    paths = {}
    for ext, (codec, rate) in FORMATS.items():
        paths[ext] = folder / f"tone.{ext}"
        _encode(paths[ext], codec, rate)
    return paths


@pytest.fixture
def audio(originals: dict[str, Path], tmp_path: Path):
    def copy(ext: str) -> Path:
        dest = tmp_path / f"track.{ext}"
        shutil.copyfile(originals[ext], dest)
        return dest

    return copy


def _tag_id3(tags: ID3) -> None:
    """Frames as Picard writes them (ID3v2.4; mutagen converts to v2.3 on save if asked)."""
    tags.add(TIT2(encoding=3, text=["Song Title"]))
    tags.add(TPE1(encoding=3, text=["Some Artist feat. Other"]))
    tags.add(TALB(encoding=3, text=["The Album"]))
    tags.add(TDRC(encoding=3, text=["2003-05-01"]))
    tags.add(TPUB(encoding=3, text=["Parlophone"]))
    tags.add(TSRC(encoding=3, text=["GBAYE0300801"]))
    tags.add(TXXX(encoding=3, desc="BARCODE", text=["724358480726"]))
    tags.add(USLT(encoding=3, lang="eng", desc="", text=LYRICS))
    tags.add(UFID(owner="http://musicbrainz.org", data=RECORDING.encode("ascii")))
    tags.add(TXXX(encoding=3, desc="MusicBrainz Album Id", text=[RELEASE]))
    tags.add(TXXX(encoding=3, desc="MusicBrainz Artist Id", text=[ARTIST, ARTIST2]))
    tags.add(TXXX(encoding=3, desc="MusicBrainz Release Group Id", text=[GROUP]))


@pytest.mark.parametrize("version", [3, 4])
def test_mp3_id3(audio, version: int) -> None:
    path = audio("mp3")
    tags = ID3()
    _tag_id3(tags)
    tags.save(path, v2_version=version)
    assert read_tags(path) == EXPECTED


def test_wav_with_id3_chunk(audio) -> None:
    path = audio("wav")
    wave = WAVE(path)
    wave.add_tags()
    _tag_id3(wave.tags)
    wave.save()
    assert read_tags(path) == EXPECTED


@pytest.mark.parametrize("ext", ["flac", "ogg", "opus"])
def test_vorbis_comments(audio, ext: str) -> None:
    path = audio(ext)
    f = mutagen.File(path)
    if f.tags is None:
        f.add_tags()
    f.tags.update(
        {
            "TITLE": "Song Title",
            "ARTIST": "Some Artist feat. Other",
            "ALBUM": "The Album",
            "DATE": "2003-05-01",
            "LABEL": "Parlophone",
            "ISRC": "GBAYE0300801",
            "BARCODE": "724358480726",
            "LYRICS": LYRICS,
            "MUSICBRAINZ_TRACKID": RECORDING,
            "MUSICBRAINZ_ALBUMID": RELEASE,
            "MUSICBRAINZ_ARTISTID": [ARTIST, ARTIST2],
            "MUSICBRAINZ_RELEASEGROUPID": GROUP,
        }
    )
    f.save()
    assert read_tags(path) == EXPECTED


def test_vorbis_alternative_names(audio) -> None:
    path = audio("ogg")
    f = mutagen.File(path)
    f.tags.update({"title": "x", "date": "1999-12-31T23:59:59", "organization": "Label", "unsyncedlyrics": "la"})
    f.save()
    assert read_tags(path) == TrackMeta(title="x", release_date="1999-12-31", label="Label", lyrics="la")


def test_mp4_atoms(audio) -> None:
    path = audio("m4a")
    f = MP4(path)
    if f.tags is None:
        f.add_tags()
    itunes = "----:com.apple.iTunes:"
    f.tags.update(
        {
            "©nam": ["Song Title"],
            "©ART": ["Some Artist feat. Other"],
            "©alb": ["The Album"],
            "©day": ["2003-05-01T07:00:00Z"],
            "©lyr": [LYRICS],
            "trkn": [(1, 10)],
            itunes + "LABEL": [MP4FreeForm(b"Parlophone")],
            itunes + "ISRC": [MP4FreeForm(b"GBAYE0300801")],
            itunes + "BARCODE": [MP4FreeForm(b"724358480726")],
            itunes + "MusicBrainz Track Id": [MP4FreeForm(RECORDING.encode())],
            itunes + "MusicBrainz Album Id": [MP4FreeForm(RELEASE.encode())],
            itunes + "MusicBrainz Artist Id": [MP4FreeForm(ARTIST.encode()), MP4FreeForm(ARTIST2.encode())],
            itunes + "MusicBrainz Release Group Id": [MP4FreeForm(GROUP.encode())],
        }
    )
    f.save()
    assert read_tags(path) == EXPECTED


@pytest.mark.parametrize(("written", "read"), [("2003", "2003"), ("2003-05", "2003-05"), ("03/05/2003", None)])
def test_partial_dates(audio, written: str, read: str | None) -> None:
    path = audio("flac")
    f = mutagen.File(path)
    f.tags["DATE"] = written
    f.save()
    assert read_tags(path).release_date == read


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_untagged_files_give_empty_meta(audio, ext: str) -> None:
    # PyAV's muxers may write an encoder tag; nothing that maps to TrackMeta.
    assert read_tags(audio(ext)) == TrackMeta()


def test_text_file_named_mp3(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("this is not audio\n" * 50)
    assert read_tags(path) == TrackMeta()


def test_truncated_and_missing_files(audio, tmp_path: Path) -> None:
    path = audio("flac")
    path.write_bytes(path.read_bytes()[:10])
    assert read_tags(path) == TrackMeta()
    assert read_tags(tmp_path / "does-not-exist.ogg") == TrackMeta()
    assert read_tags(tmp_path) == TrackMeta()  # a directory
