"""Provider metadata blocks (``apple_music``, ``spotify``, ``deezer``, ``napster``, ``musicbrainz``).

AudD returns, for each provider named in the ``return`` parameter, that provider's own track object.
soundmark builds these blocks from the catalog: from ``TrackMeta.external``, a flat ``dict[str, str]``
that the operator fills from tags, a manifest or the API. A block is built by one of two routes.

**Whole objects.** A provider's complete JSON object stored under the provider's name is returned as it
is (parsed)::

    spotify      '{"id": "5B9qVIyjqeWkeOAp2tJgqL", "name": "...", "album": {...}, ...}'
    apple_music  '{"url": "https://music.apple.com/...", "playParams": {...}, ...}'
    deezer       '{"id": 3135556, "link": "https://www.deezer.com/track/3135556", ...}'
    napster      '{"id": "Tra.5156528", "name": "...", ...}'
    musicbrainz  '[{"id": "<recording mbid>", "title": "...", ...}]'   (or one object)

``musicbrainz`` always comes back as a list: a single stored object is wrapped in one. A value that is
not valid JSON, or not an object (a list of objects for ``musicbrainz``), is ignored and logged at debug
level; the flat keys below are then used instead. A whole object wins over flat keys.

**Flat keys.** Without a whole object, these keys build a minimal but well-formed block, filled out with
the track's title, artist, album, release date, ISRC and duration:

==============================  ===========================================================================
key                             block
==============================  ===========================================================================
``spotify_id``                  ``spotify``: ``id``, ``uri``, ``href``, ``external_urls.spotify``,
``spotify_url``                 ``name``, ``artists[{name}]``, ``album{name, release_date}``,
``spotify_uri``                 ``external_ids{isrc}``, ``duration_ms``, ``type: "track"``. Any one of the
                                three keys is enough; the id is read from the URL or URI when not given.
``apple_music_id``              ``apple_music``: ``url``, ``playParams{id, kind: "song"}``, ``name``,
``apple_music_url``             ``artistName``, ``albumName``, ``isrc``, ``releaseDate``,
                                ``durationInMillis``. The id is read from the URL (``?i=`` or a
                                ``/song/`` path); with only an id, the URL is
                                ``https://music.apple.com/<market>/song/<id>``.
``deezer_id``                   ``deezer``: ``id`` (an integer), ``link``, ``title``, ``artist{name}``,
``deezer_url``                  ``album{title}``, ``duration``, ``type: "track"``.
``napster_id``                  ``napster``: ``id``, ``type: "track"``, ``name``, ``artistName``,
                                ``albumName``, ``isrc``, ``playbackSeconds``.
``musicbrainz_recording_id``    ``musicbrainz``: a one-item list ``[{id, title, length,
``musicbrainz_artist_id``       artist-credit[{name, artist{id, name}}], isrcs, releases[{id, title}]}]``;
``musicbrainz_release_id``      the artist and release ids are optional, ``isrcs`` is ``[isrc]`` or
                                ``null`` as MusicBrainz writes it.
==============================  ===========================================================================

**Markets.** Any key may carry a country suffix, ``<key>@<cc>`` (``apple_music_url@gb``,
``spotify_url@de``, ``apple_music@jp`` for a whole object). When the request's ``market`` (default
``us``) equals ``cc``, compared case-insensitively, the suffixed key is used instead of the plain one.
A market-specific link (``apple_music_url@gb``, ``spotify_url@gb``, ``deezer_url@gb``) also replaces the
link inside a whole stored object.

A provider with no data at all is left out of the answer: never ``null``, never a half-filled block.
Names in ``return`` that are not providers (``timecode``, ``lyrics``, ``media`` …) are ignored here.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import parse_qs, urlparse

from soundmark.catalog.models import Track

log = logging.getLogger(__name__)

DEFAULT_MARKET = "us"

_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_SPOTIFY_URL_ID = re.compile(r"/track/([0-9A-Za-z]{22})(?:[/?#]|$)")
_SPOTIFY_URI_ID = re.compile(r"^spotify:track:([0-9A-Za-z]{22})$")
_APPLE_SONG_ID = re.compile(r"/song/(?:[^/?#]+/)?(\d+)(?:[/?#]|$)")
_DEEZER_URL_ID = re.compile(r"/track/(\d+)(?:[/?#]|$)")


def parse_return(value: str | None) -> list[str]:
    """The items of AudD's comma-separated ``return`` parameter: trimmed, lowercased, deduplicated,
    in their first-seen order, empty items dropped."""
    if not value:
        return []
    out: list[str] = []
    for item in value.split(","):
        name = item.strip().lower()
        if name and name not in out:
            out.append(name)
    return out


def provider_blocks(track: Track, wanted: Iterable[str], market: str = DEFAULT_MARKET) -> dict[str, object]:
    """The provider blocks named in ``wanted`` that the catalog has data for, keyed by provider name,
    in the order asked. See the module docstring for the ``external`` key conventions."""
    view = _ExternalView(track.meta.external, market)
    out: dict[str, object] = {}
    for raw in wanted:
        name = raw.strip().lower()
        if name in out or name not in _BUILDERS:
            continue
        block = _whole_object(view, name)
        if block is None:
            block = _BUILDERS[name](track, view)
        if block:
            out[name] = block
    return out


class _ExternalView:
    """``TrackMeta.external`` as seen from one market: ``key@<market>`` shadows ``key``."""

    def __init__(self, external: Mapping[str, str], market: str | None) -> None:
        self.market = (market or "").strip().lower() or DEFAULT_MARKET
        self._plain: dict[str, str] = {}
        self._local: dict[str, str] = {}
        for key, value in external.items():
            if not isinstance(value, str) or not value.strip():
                continue
            base, sep, cc = key.rpartition("@")
            if not sep:
                self._plain[key] = value.strip()
            elif cc.strip().lower() == self.market:
                self._local[base] = value.strip()

    def get(self, key: str) -> str | None:
        return self._local.get(key) or self._plain.get(key)

    def local(self, key: str) -> str | None:
        """Only the value suffixed with this market."""
        return self._local.get(key)


def _whole_object(view: _ExternalView, provider: str) -> object | None:
    raw = view.get(provider)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        log.debug("external[%r] is not valid JSON, ignored: %s", provider, exc)
        return None
    if provider == "musicbrainz":
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            log.debug("external[%r] is not a JSON object or array, ignored", provider)
            return None
        entries = [entry for entry in value if isinstance(entry, dict) and entry]
        if len(entries) != len(value):
            log.debug("external[%r]: %d non-object entries dropped", provider, len(value) - len(entries))
        return entries or None
    if not isinstance(value, dict) or not value:
        log.debug("external[%r] is not a non-empty JSON object, ignored", provider)
        return None
    _apply_local_link(value, view, provider)
    return value


def _apply_local_link(block: dict[str, object], view: _ExternalView, provider: str) -> None:
    """Put a market-specific link (``<provider>_url@<market>``) into a whole stored object."""
    url = view.local(f"{provider}_url")
    if url is None:
        return
    if provider == "apple_music":
        block["url"] = url
    elif provider == "deezer":
        block["link"] = url
    elif provider == "spotify":
        urls = block.get("external_urls")
        block["external_urls"] = {**urls, "spotify": url} if isinstance(urls, dict) else {"spotify": url}


def _compact(d: dict[str, object]) -> dict[str, object]:
    """``d`` without its None values."""
    return {k: v for k, v in d.items() if v is not None}


def _date_precision(date: str) -> str | None:
    return {4: "year", 7: "month", 10: "day"}.get(len(date))


def _millis(track: Track) -> int | None:
    return round(track.duration * 1000) if track.duration > 0 else None


def _seconds(track: Track) -> int | None:
    return round(track.duration) if track.duration > 0 else None


def _spotify(track: Track, view: _ExternalView) -> dict[str, object] | None:
    track_id, url, uri = view.get("spotify_id"), view.get("spotify_url"), view.get("spotify_uri")
    if not (track_id or url or uri):
        return None
    if track_id is None and uri and (m := _SPOTIFY_URI_ID.match(uri)):
        track_id = m.group(1)
    if track_id is None and url and (m := _SPOTIFY_URL_ID.search(urlparse(url).path + "/")):
        track_id = m.group(1)
    if track_id is not None and not _SPOTIFY_ID.match(track_id):
        log.debug("spotify_id %r does not look like a Spotify id", track_id)
    if track_id:
        uri = uri or f"spotify:track:{track_id}"
        url = url or f"https://open.spotify.com/track/{track_id}"
    meta = track.meta
    album = _compact(
        {
            "name": meta.album,
            "release_date": meta.release_date,
            "release_date_precision": _date_precision(meta.release_date) if meta.release_date else None,
        }
    )
    return _compact(
        {
            "id": track_id,
            "uri": uri,
            "href": f"https://api.spotify.com/v1/tracks/{track_id}" if track_id else None,
            "external_urls": {"spotify": url} if url else None,
            "name": meta.title,
            "artists": [{"name": meta.artist}] if meta.artist else None,
            "album": album or None,
            "external_ids": {"isrc": meta.isrc} if meta.isrc else None,
            "duration_ms": _millis(track),
            "type": "track",
        }
    )


def _apple_music(track: Track, view: _ExternalView) -> dict[str, object] | None:
    song_id, url = view.get("apple_music_id"), view.get("apple_music_url")
    if not (song_id or url):
        return None
    if song_id is None and url:
        parsed = urlparse(url)
        song_id = parse_qs(parsed.query).get("i", [None])[0]
        if song_id is None and (m := _APPLE_SONG_ID.search(parsed.path + "/")):
            song_id = m.group(1)
    if url is None:
        url = f"https://music.apple.com/{view.market}/song/{song_id}"
    meta = track.meta
    return _compact(
        {
            "url": url,
            "playParams": {"id": song_id, "kind": "song"} if song_id else None,
            "name": meta.title,
            "artistName": meta.artist,
            "albumName": meta.album,
            "isrc": meta.isrc,
            "releaseDate": meta.release_date,
            "durationInMillis": _millis(track),
        }
    )


def _deezer(track: Track, view: _ExternalView) -> dict[str, object] | None:
    raw_id, link = view.get("deezer_id"), view.get("deezer_url")
    if not (raw_id or link):
        return None
    if raw_id is None and link and (m := _DEEZER_URL_ID.search(urlparse(link).path + "/")):
        raw_id = m.group(1)
    track_id: int | None = None
    if raw_id is not None:
        if raw_id.isdigit():
            track_id = int(raw_id)
        else:  # Deezer ids are integers; typed clients would drop anything else
            log.debug("deezer_id %r is not an integer, ignored", raw_id)
    if link is None:
        if track_id is None:
            return None
        link = f"https://www.deezer.com/track/{track_id}"
    meta = track.meta
    return _compact(
        {
            "id": track_id,
            "link": link,
            "title": meta.title,
            "artist": {"name": meta.artist} if meta.artist else None,
            "album": {"title": meta.album} if meta.album else None,
            "duration": _seconds(track),
            "type": "track",
        }
    )


def _napster(track: Track, view: _ExternalView) -> dict[str, object] | None:
    track_id = view.get("napster_id")
    if not track_id:
        return None
    meta = track.meta
    return _compact(
        {
            "type": "track",
            "id": track_id,
            "name": meta.title,
            "artistName": meta.artist,
            "albumName": meta.album,
            "isrc": meta.isrc,
            "playbackSeconds": _seconds(track),
        }
    )


def _musicbrainz(track: Track, view: _ExternalView) -> list[dict[str, object]] | None:
    recording_id = view.get("musicbrainz_recording_id")
    if not recording_id:
        return None
    meta = track.meta
    artist_id, release_id = view.get("musicbrainz_artist_id"), view.get("musicbrainz_release_id")
    credit = None
    if meta.artist or artist_id:
        artist = _compact({"id": artist_id, "name": meta.artist})
        credit = [_compact({"name": meta.artist, "artist": artist})]
    entry = _compact(
        {
            "id": recording_id,
            "title": meta.title,
            "length": _millis(track),
            "artist-credit": credit,
            "releases": [_compact({"id": release_id, "title": meta.album})] if release_id else None,
        }
    )
    entry["isrcs"] = [meta.isrc] if meta.isrc else None
    return [entry]


_BUILDERS: dict[str, Callable[[Track, _ExternalView], object | None]] = {
    "spotify": _spotify,
    "apple_music": _apple_music,
    "deezer": _deezer,
    "napster": _napster,
    "musicbrainz": _musicbrainz,
}
