"""The provider blocks of a song object (``apple_music``, ``spotify``, ``deezer``, ``napster``,
``musicbrainz``), typed as AudD documents them.

AudD passes each provider's own track object through verbatim, and so does soundmark (metadata.py
builds or parses them): a block is a JSON object that keeps every key, in its order, whatever the
provider put in it. So a song carries its blocks as plain JSON objects (``Block`` below); the models
here give their documented fields and types — the OpenAPI schema shows them, and a block can be
checked against them (``model_validate``) — and allow any other key.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, TypeAdapter
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

JsonObject = dict[str, Any]


class ProviderBlock(BaseModel):
    """A provider's track object: the documented fields are typed, any other key is kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=True)


class AppleMusic(ProviderBlock):
    previews: list[JsonObject] | None = None
    artwork: JsonObject | None = None
    artistName: str | None = None
    url: str | None = None
    discNumber: int | None = None
    genreNames: list[str] | None = None
    durationInMillis: int | None = None
    releaseDate: str | None = None
    name: str | None = None
    isrc: str | None = None
    albumName: str | None = None
    playParams: JsonObject | None = None
    trackNumber: int | None = None
    composerName: str | None = None


class Spotify(ProviderBlock):
    album: JsonObject | None = None
    artists: list[JsonObject] | None = None
    available_markets: list[str] | None = None
    disc_number: int | None = None
    duration_ms: int | None = None
    explicit: bool | None = None
    external_ids: JsonObject | None = None
    external_urls: JsonObject | None = None
    href: str | None = None
    id: str | None = None
    is_local: bool | None = None
    is_playable: bool | None = None
    linked_from: JsonObject | None = None
    name: str | None = None
    popularity: int | None = None
    track_number: int | None = None
    type: str | None = None
    uri: str | None = None


class Deezer(ProviderBlock):
    id: int | None = None
    readable: bool | None = None
    title: str | None = None
    title_short: str | None = None
    title_version: str | None = None
    link: str | None = None
    duration: int | None = None
    rank: int | None = None
    explicit_lyrics: bool | None = None
    explicit_content_lyrics: int | None = None
    explicit_content_cover: int | None = None
    preview: str | None = None
    md5_image: str | None = None
    artist: JsonObject | None = None
    album: JsonObject | None = None
    type: str | None = None


class Napster(ProviderBlock):
    type: str | None = None
    id: str | None = None
    index: int | None = None
    disc: int | None = None
    href: str | None = None
    playbackSeconds: int | None = None
    isExplicit: bool | None = None
    isStreamable: bool | None = None
    isAvailableInHiRes: bool | None = None
    name: str | None = None
    isrc: str | None = None
    shortcut: str | None = None
    blurbs: list[str] | None = None
    artistId: str | None = None
    artistName: str | None = None
    albumId: str | None = None
    albumName: str | None = None
    formats: list[JsonObject] | None = None
    previewURL: str | None = None
    contributors: JsonObject | None = None
    links: JsonObject | None = None


class MusicBrainzEntry(ProviderBlock):
    """One MusicBrainz recording; ``musicbrainz`` is a list of them."""

    id: str
    score: int | str | None = None
    title: str | None = None
    length: int | None = None
    disambiguation: str | None = None
    video: bool | None = None
    artist_credit: list[JsonObject] | None = Field(None, alias="artist-credit")
    releases: list[JsonObject] | None = None
    isrcs: list[str] | None = None
    tags: list[JsonObject] | None = None


PROVIDER_MODELS: dict[str, type[ProviderBlock]] = {
    "apple_music": AppleMusic,
    "spotify": Spotify,
    "deezer": Deezer,
    "napster": Napster,
    "musicbrainz": MusicBrainzEntry,
}


class DocumentedAs:
    """Marks a JSON value (``Annotated[JsonObject, DocumentedAs(Spotify)]``) as kept verbatim at
    run time but shown in the JSON schema as ``shape`` (a model, ``list[Model]`` …)."""

    def __init__(self, shape: Any) -> None:
        self.shape = TypeAdapter(shape).core_schema

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return handler(source)

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return handler(self.shape)
