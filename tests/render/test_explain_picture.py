"""The "why it matched" picture: a real recognition's evidence drawn as PNG and SVG."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib.image import imread

from soundmark.fingerprint.params import FingerprintParams
from soundmark.match.explain import Explanation, explain_samples
from soundmark.match.recognizer import Recognizer
from soundmark.render.explain import caption, explain_figure
from soundmark.render.figure import figure_bytes, format_of, write_figure
from soundmark.store import Store
from support import PIECE_RATE, Piece, resample

SR = FingerprintParams().sample_rate
SVG = "{http://www.w3.org/2000/svg}"


def _clip(samples: np.ndarray, start: float, seconds: float, snr_db: float) -> np.ndarray:
    a = int(start * PIECE_RATE)
    x = resample(samples[a : a + int(seconds * PIECE_RATE)], PIECE_RATE, SR)
    noise = np.random.default_rng(3).standard_normal(len(x)).astype(np.float32)
    return (x + noise * np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))).astype(np.float32)


@pytest.fixture(scope="module")
def hit(built_store, pieces: list[Piece]) -> Explanation:  # type: ignore[no-untyped-def]
    with Store(built_store, FingerprintParams()) as store:
        return explain_samples(Recognizer(store), _clip(pieces[2].samples, 14.0, 8.0, snr_db=5.0))


@pytest.fixture(scope="module")
def miss(built_store, unknown_piece: np.ndarray) -> Explanation:  # type: ignore[no-untyped-def]
    with Store(built_store, FingerprintParams()) as store:
        return explain_samples(Recognizer(store), _clip(unknown_piece, 6.0, 8.0, snr_db=20.0))


def _ids(svg: bytes) -> set[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return {el.attrib["id"] for el in root.iter() if "id" in el.attrib}


def _pixels(png: bytes) -> np.ndarray:
    img = imread(io.BytesIO(png), format="png")
    assert img.ndim == 3 and img.shape[0] >= 500 and img.shape[1] >= 800
    return img


def test_png_of_a_match_decodes_to_a_drawn_picture(hit: Explanation, pieces: list[Piece]) -> None:
    assert hit.matched and hit.best is not None and hit.best.title == pieces[2].title
    png = figure_bytes(explain_figure(hit), "png", title="why it matched")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
    img = _pixels(png)
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # not blank
    # The agreeing peaks' red is drawn (the highlight colour #d93025).
    red = (rgb[..., 0] > 0.75) & (rgb[..., 1] < 0.3) & (rgb[..., 2] < 0.3)
    assert red.sum() > 50


def test_svg_of_a_match_holds_every_layer(hit: Explanation, pieces: list[Piece]) -> None:
    svg = figure_bytes(explain_figure(hit), "svg", title=pieces[2].title)
    ids = _ids(svg)
    for gid in ("query-peaks", "reference-peaks", "agreeing-peaks", "offset-histogram", "winning-bin", "caption"):
        assert gid in ids, gid
    root = ET.fromstring(svg)
    agreeing = next(el for el in root.iter() if el.attrib.get("id") == "agreeing-peaks")
    assert hit.best is not None
    assert len(list(agreeing.iter(f"{SVG}use"))) == hit.best.agreeing  # one marker per agreeing peak
    title, sub = caption(hit)
    assert pieces[2].title in title and "score" in sub and "00:00:14" in sub


def test_a_miss_is_drawn_with_its_candidates(miss: Explanation) -> None:
    assert not miss.matched and miss.candidates
    title, sub = caption(miss)
    assert title.startswith("No match") and miss.candidates[0].verdict in sub
    ids = _ids(figure_bytes(explain_figure(miss), "svg"))
    assert {"candidates", "offset-histogram", "winning-bin", "caption"} <= ids
    assert _pixels(figure_bytes(explain_figure(miss), "png"))[..., :3].std() > 0.05


def test_write_figure_picks_the_format_by_extension(hit: Explanation, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert write_figure(explain_figure(hit), tmp_path / "m.SVG") == "svg"
    assert (tmp_path / "m.SVG").read_bytes().lstrip().startswith(b"<?xml")
    assert write_figure(explain_figure(hit), tmp_path / "m.png") == "png"
    with pytest.raises(ValueError, match=r"must end in \.png or \.svg"):
        format_of(tmp_path / "m.jpg")
