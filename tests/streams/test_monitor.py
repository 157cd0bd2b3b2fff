"""A StreamWorker against a real (virtual) radio: windows reach the recognizer as their peaks.

The worker reads a 128 kbps MP3 mount of ``radio.VirtualRadio`` at real-time pace, its reader
thread feeding the ``QueryStream``; what the task hands to ``recognize`` must be the window's
peaks (``WindowPeaks``, a few KB), never audio, and they must recognise the song playing. Silence
before the song is told from the window's running sum of squares (651, then 0 when music comes).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from radio import RATE, Item, Schedule, VirtualRadio

from soundmark.fingerprint.windows import WindowPeaks
from soundmark.match.recognizer import MatchSettings, Recognizer
from soundmark.services.recognition_pool import WorkerMatch
from soundmark.settings import Settings
from soundmark.store import Store, recorded_params
from soundmark.streams.monitor import CODE_NOISE, CODE_OK, MonitorConfig, StreamJob, StreamWorker
from soundmark.streams.tracker import Play
from support import Piece


class Collect:
    """A sink that keeps what the worker reports."""

    def __init__(self) -> None:
        self.songs: list[tuple[int, bool]] = []
        self.codes: list[int] = []

    async def song(self, job: StreamJob, play: Play, final: bool) -> None:
        self.songs.append((play.track_id, final))

    async def notify(self, job: StreamJob, code: int, message: str, running: bool) -> None:
        self.codes.append(code)

    async def status(self, job: StreamJob, running: bool) -> None:
        pass


def test_config_takes_every_value_from_settings(built_store: Path) -> None:
    params = recorded_params(built_store)
    s = Settings(stream_window_seconds=9.0, stream_hop_seconds=3.0, stream_silence_seconds=7.0)
    cfg = MonitorConfig.from_settings(s, params)
    assert (cfg.window, cfg.hop, cfg.silence, cfg.sample_rate) == (9.0, 3.0, 7.0, params.sample_rate)
    default = MonitorConfig.from_settings(Settings(), params)
    assert (default.window, default.hop) == (Settings().stream_window_seconds, Settings().stream_hop_seconds)
    with pytest.raises(TypeError):
        MonitorConfig(params)  # type: ignore[call-arg]  # no defaults of its own


def test_a_stream_is_recognised_from_window_peaks(built_store: Path, pieces: list[Piece]) -> None:
    piece = pieces[1]
    silence = np.zeros(10 * RATE, dtype=np.float32)
    radio = VirtualRadio(Schedule([Item("", silence), Item(piece.title, piece.samples)]), burst_packets=0)
    store = Store(built_store, recorded_params(built_store))
    recognizer = Recognizer(store, MatchSettings())
    track = next(t for t in store.catalog.list_tracks() if t.meta.title == piece.title)
    seen: list[object] = []

    async def recognize(window: WindowPeaks) -> list[WorkerMatch]:
        seen.append(window)
        found = await asyncio.to_thread(recognizer.recognize_print, window.query_print(store.params))
        return [WorkerMatch(m.track.id, m.offset_seconds, m.score, m.time_rate, m.freq_rate) for m in found]

    settings = Settings(stream_silence_seconds=6.0, allow_private_urls=True)  # the radio is on loopback
    config = MonitorConfig.from_settings(settings, store.params)
    sink = Collect()

    async def duration(track_id: int) -> float | None:
        found = await asyncio.to_thread(store.catalog.get_track, track_id)
        return None if found is None else found.duration

    worker = StreamWorker(StreamJob(1, 1, f"{radio.url}/0.mp3", before=True), config, recognize, duration, sink)

    async def main() -> None:
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 45
        while not sink.songs and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.2)
        worker.stop()
        await asyncio.wait_for(task, 20)

    try:
        asyncio.run(main())
    finally:
        radio.close()
        store.close()
    assert sink.songs and sink.songs[0] == (track.id, False), sink.songs  # announced (callbacks=before)
    window_frames = worker.stage.window_frames
    assert seen and all(isinstance(x, WindowPeaks) and x.frames <= window_frames for x in seen)
    assert all(x.peaks.nbytes < 8 * window_frames * 8 for x in seen)  # peaks only: a few KB, not 256 KB of audio
    # Silence was never sent for recognition: it was told from the energy, and reported once.
    assert sink.codes[:2] == [CODE_NOISE, CODE_OK], sink.codes
    assert worker.windows == len(seen)
    # What the worker holds is the window's, not the stream's.
    assert worker.stage.state_size() < 200_000
