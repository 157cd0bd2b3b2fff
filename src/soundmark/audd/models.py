"""AudD's responses as pydantic models: the song objects, every method's ``result``, the success and
error envelopes, the stream callbacks and longpoll answers.

Field names, types and order are the wire format: ``wire(model)`` is the JSON a client receives.
Every field a builder (presenter.py) does not set is left out of the answer (``exclude_unset``),
so one model serves the shapes AudD varies by context (a custom-catalog match is only
``{timecode, audio_id}``); a field set to ``None`` is sent as ``null``. The OpenAPI schema of the
API is generated from these models (audd/schema.py, api/routes/method_paths.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SerializerFunctionWrapHandler, model_serializer

from soundmark.audd.blocks import AppleMusic, Deezer, DocumentedAs, JsonObject, MusicBrainzEntry, Napster, Spotify

PROVIDERS = ("apple_music", "spotify", "deezer", "napster", "musicbrainz")


class Wire(BaseModel):
    """Base of every response model: unknown fields are refused (a fixture with a field soundmark
    does not model fails its test), JSON names are the aliases (``see api documentation``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def wire(value: Any) -> Any:
    """The JSON value of ``value``: models (also inside lists) become what is sent, anything else
    is returned as it is."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


# --- provider blocks, as a song carries them: verbatim JSON, documented by the typed models ----
AppleMusicBlock = Annotated[JsonObject, DocumentedAs(AppleMusic)]
SpotifyBlock = Annotated[JsonObject, DocumentedAs(Spotify)]
DeezerBlock = Annotated[JsonObject, DocumentedAs(Deezer)]
NapsterBlock = Annotated[JsonObject, DocumentedAs(Napster)]
MusicBrainzBlock = Annotated[list[JsonObject], DocumentedAs(list[MusicBrainzEntry])]


class LyricsHit(Wire):
    """One ``findLyrics`` hit (and a song's ``lyrics`` block): Genius-like fields."""

    song_id: int
    artist_id: int
    title: str
    title_with_featured: str | None = None
    full_title: str | None = None
    artist: str
    lyrics: str | None = None
    media: str | None = None
    song_link: str | None = None


class _WithBlocks(Wire):
    """A song that may carry provider blocks, sent in the order ``return`` asked for them."""

    _block_order: tuple[str, ...] = PrivateAttr(default=())

    def order_blocks(self, names: tuple[str, ...]) -> None:
        self._block_order = names

    # No return annotation: the JSON schema stays the fields' (an annotation would replace it).
    @model_serializer(mode="wrap")
    def _blocks_in_asked_order(self, handler: SerializerFunctionWrapHandler):
        out = handler(self)
        if not self._block_order or not isinstance(out, dict):
            return out
        keys = list(out)
        present = [k for k in keys if k in PROVIDERS]
        if not present:
            return out
        first = keys.index(present[0])
        ordered = [k for k in self._block_order if k in present] + [k for k in present if k not in self._block_order]
        rest = [k for k in keys[first:] if k not in PROVIDERS]
        return {**{k: out[k] for k in keys[:first]}, **{k: out[k] for k in ordered}, **{k: out[k] for k in rest}}


class Song(_WithBlocks):
    """AudD's song object, as ``recognize`` answers it (and stream callbacks carry it).

    A catalog match has the metadata fields (``""`` when unknown), ``song_link``, the ids the
    catalog knows and the provider blocks ``return`` asks for; a custom-catalog track with no
    metadata is ``{timecode, audio_id, score}``. ``score``, ``offset``, ``speed`` and ``pitch`` are
    soundmark's additions (speed/pitch only when the query was played off speed)."""

    artist: str | None = None
    title: str | None = None
    album: str | None = None
    release_date: str | None = None
    label: str | None = None
    timecode: str = Field(description="position in the song (MM:SS, HH:MM:SS past an hour)")
    song_link: str | None = None
    isrc: str | None = None
    upc: str | None = None
    audio_id: int | None = Field(None, description="the custom-catalog id (upload's audio_id)")
    score: int | float | None = Field(None, description="recognize: -log10 of a random match's chance")
    offset: float | None = Field(None, description="seconds into the song")
    speed: float | None = None
    pitch: float | None = None
    apple_music: AppleMusicBlock | None = None
    spotify: SpotifyBlock | None = None
    deezer: DeezerBlock | None = None
    napster: NapsterBlock | None = None
    musicbrainz: MusicBrainzBlock | None = None
    lyrics: LyricsHit | None = None


class StreamSong(Song):
    """A song of a stream callback: ``score`` is AudD's 0-100 integer; AudD's own callbacks carry
    no ``timecode``."""

    timecode: str | None = None  # type: ignore[assignment]
    score: int | None = None


class EnterpriseSong(_WithBlocks):
    """A song playing in one 12-second chunk of an enterprise answer. ``start_offset`` and
    ``end_offset`` (with ``accurate_offsets``): milliseconds from the chunk's start."""

    artist: str | None = None
    title: str | None = None
    album: str | None = None
    release_date: str | None = None
    label: str | None = None
    isrc: str | None = None
    upc: str | None = None
    song_link: str | None = None
    audio_id: int | None = None
    score: int = Field(ge=0, le=100)
    timecode: str
    start_offset: int | None = None
    end_offset: int | None = None
    speed: float | None = None
    apple_music: AppleMusicBlock | None = None
    spotify: SpotifyBlock | None = None
    deezer: DeezerBlock | None = None
    napster: NapsterBlock | None = None
    musicbrainz: MusicBrainzBlock | None = None


class EnterpriseChunk(Wire):
    offset: str = Field(description="where the chunk starts in the file (MM:SS, HH:MM:SS past an hour)")
    songs: list[EnterpriseSong]


class EnterpriseTicket(Wire):
    """The answer of ``enterprise`` with ``async=true``: the job to poll."""

    job_id: str
    status: str
    status_url: str


class TracklistEntry(Wire):
    """One track of a long recording's tracklist (``soundmark scan``, ``GET /jobs/<id>``): where
    it plays (seconds, and ``HH:MM:SS``), where in the song, and the track's metadata."""

    start_time: str
    end_time: str
    track_id: int
    start: float
    end: float
    ref_start: float
    ref_end: float
    speed: float
    score: float
    windows: int
    artist: str | None = None
    title: str | None = None
    album: str | None = None
    release_date: str | None = None
    label: str | None = None
    isrc: str | None = None
    upc: str | None = None
    audio_id: int | None = None
    song_link: str | None = None


class ErrorDetail(Wire):
    error_code: int
    error_message: str


class JobError(Wire):
    """Why a job failed: an AudD error code and message (``null`` when not recorded)."""

    error_code: int | None
    error_message: str | None


class JobView(Wire):
    """``GET /jobs/<id>``: a long-recording job's status, progress and (when done) its result."""

    job_id: str
    status: str
    progress: float
    audio_seconds: float | None = None
    created_at: float
    updated_at: float
    error: JobError | None = None
    duration: float | None = None
    tracklist: list[TracklistEntry] | None = None
    result: list[EnterpriseChunk] | None = None


class MatchRecord(Wire):
    """A match as ``soundmark recognize --json`` prints it (the benchmark's contract): the
    metadata (``null`` when unknown), the engine's figures and the catalog's track id."""

    artist: str | None = None
    title: str | None = None
    album: str | None = None
    release_date: str | None = None
    label: str | None = None
    timecode: str
    offset: float
    score: float
    track_id: int
    speed: float
    pitch: float
    isrc: str | None = None
    upc: str | None = None
    audio_id: int | None = None
    alternatives: list[MatchRecord] | None = None


# --- streams -------------------------------------------------------------------------------------
class Stream(Wire):
    """One stream of ``getStreams``."""

    radio_id: int
    url: str
    stream_running: bool
    longpoll_category: str


class CallbackResult(Wire):
    radio_id: int
    timestamp: str = Field(description="when the song was first heard, YYYY-MM-DD HH:MM:SS")
    play_length: int | None = Field(None, description="seconds heard; absent with callbacks=before")
    results: list[StreamSong]


class CallbackResultBody(Wire):
    """What a stream's callback URL receives when a song was recognized."""

    status: Literal["success"]
    result: CallbackResult


class Notification(Wire):
    radio_id: int
    stream_running: bool
    notification_code: int
    notification_message: str


class CallbackNotificationBody(Wire):
    """What a stream's callback URL receives when the stream's state changes."""

    status: Literal["-"]
    notification: Notification
    time: int = Field(description="Unix time, seconds")


class LongpollEvent(Wire):
    timestamp: int
    category: str
    data: CallbackResultBody | CallbackNotificationBody
    id: str


class LongpollEvents(Wire):
    """A longpoll answer with an event: golongpoll's ``events`` and, at the top level, the event's
    callback body (what AudD's SDKs read)."""

    events: list[LongpollEvent]
    timestamp: int = Field(description="milliseconds; the next request's since_time")
    status: str | None = None
    result: CallbackResult | None = None
    notification: Notification | None = None
    time: int | None = None


class LongpollTimeout(Wire):
    timeout: Literal["no events before timeout"]
    timestamp: int = Field(description="milliseconds; the next request's since_time")


# --- envelopes -----------------------------------------------------------------------------------
R = TypeVar("R")


class Success(Wire, Generic[R]):
    status: Literal["success"]
    result: R


class RecognizeSuccess(Success[Song | list[Song] | None]):
    """``recognize``: the best match, ``null`` for none, every match (a list) with ``all=true``."""


class FindLyricsSuccess(Success[list[LyricsHit]]):
    pass


class EnterpriseSuccess(Success[list[EnterpriseChunk] | EnterpriseTicket]):
    execution_time: str | None = None


class GetStreamsSuccess(Success[list[Stream]]):
    pass


class GetCallbackUrlSuccess(Success[str]):
    pass


class EmptySuccess(Success[None]):
    """``upload``, ``setCallbackUrl``, ``addStream``, ``setStreamUrl``, ``deleteStream``."""


class JobSuccess(Success[JobView]):
    pass


class ErrorEnvelope(Wire):
    """Every failed method: the code and message, the request echoed with its token masked, and
    where to read and whom to ask. The enterprise host echoes ``requested_params`` instead of
    ``request_params``/``request_api_method``/``request_http_method`` and adds ``execution_time``."""

    status: Literal["error"]
    error: ErrorDetail
    request_params: dict[str, str] | None = None
    requested_params: dict[str, str] | None = None
    request_api_method: str | None = None
    request_http_method: str | None = None
    see_api_documentation: str | None = Field(None, alias="see api documentation")
    contact_us: str | None = Field(None, alias="contact us")
    execution_time: str | None = None
