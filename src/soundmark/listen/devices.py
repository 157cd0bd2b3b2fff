"""Input devices through PortAudio (the ``sounddevice`` package): list them, pick one by name or
index, and read one as mono float32 blocks at the engine's rate.

On Linux PortAudio reaches PulseAudio (and PipeWire's Pulse server) through ALSA's ``pulse``
plugin: the devices ``pulse`` and ``default`` record the Pulse default source, or the source that
``PULSE_SOURCE`` names — e.g. ``<sink>.monitor``, what the machine plays on that sink.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import av
import numpy as np

from soundmark.listen.errors import DeviceError

BLOCK_SECONDS = 0.1  # audio PortAudio hands over at a time
STALL_SECONDS = 5.0  # a device that gives no audio for this long has stopped (unplugged, suspended)


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    input_channels: int
    default_rate: float  # Hz
    is_default: bool  # the system's default input


def _sounddevice() -> ModuleType:
    """The sounddevice module; it loads the PortAudio library when imported."""
    try:
        import sounddevice
    except OSError as exc:  # the shared library is missing
        raise DeviceError(
            f"PortAudio is not available ({exc}); on Debian/Ubuntu: apt-get install libportaudio2"
        ) from exc
    return sounddevice


def list_devices() -> list[Device]:
    """Every device that can record, in PortAudio's order."""
    sd = _sounddevice()
    default = _default_input(sd)
    found = []
    for d in sd.query_devices():
        if d["max_input_channels"] > 0:
            i = int(d["index"])
            found.append(Device(i, str(d["name"]), int(d["max_input_channels"]), float(d["default_samplerate"]),
                                i == default))  # fmt: skip
    return found


def _default_input(sd: Any) -> int:
    index = sd.default.device[0]
    if index is None or index < 0:
        try:
            index = sd.query_hostapis(0)["default_input_device"]
        except sd.PortAudioError:
            return -1
    return int(index)


def find_device(spec: str | None) -> Device:
    """The input device ``spec`` names: its index, its name, or a part of its name (any case);
    None is the default input. Raises DeviceError when none or several match."""
    devices = list_devices()
    hint = "`soundmark listen --list-devices` shows them"
    if not devices:
        raise DeviceError("no input device found (no microphone, no sound server reachable)")
    if spec is None or not spec.strip():
        for d in devices:
            if d.is_default:
                return d
        return devices[0]
    spec = spec.strip()
    if spec.isdigit():
        for d in devices:
            if d.index == int(spec):
                return d
        raise DeviceError(f"no input device has index {spec}; {hint}")
    low = spec.lower()
    exact = [d for d in devices if d.name.lower() == low]
    if exact:
        return exact[0]
    partial = [d for d in devices if low in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise DeviceError(f"no input device matches {spec!r}; {hint}")
    names = ", ".join(f"{d.index} {d.name!r}" for d in partial)
    raise DeviceError(f"several input devices match {spec!r} ({names}): give its index or its whole name")


class DeviceInput:
    """An opened input device: ``blocks()`` yields mono float32 at ``rate`` Hz as it records.

    Use it as a context manager: the device is opened on entry and closed on exit, whatever ends
    the reading (Ctrl-C included). PortAudio records at the device's own rate in its thread; the
    blocks are downmixed and resampled (FFmpeg's resampler, state kept across blocks) here.
    """

    def __init__(self, device: Device, rate: int, stall_seconds: float = STALL_SECONDS) -> None:
        self.device, self.rate, self.stall_seconds = device, rate, stall_seconds
        self.device_rate = int(device.default_rate) or 48000
        self.overflows = 0  # blocks PortAudio reported as overflowed (audio lost while busy)
        self._queue: queue.Queue[np.ndarray] = queue.Queue()
        self._stream: Any = None
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)

    def __enter__(self) -> DeviceInput:
        sd = _sounddevice()

        def callback(indata: np.ndarray, frames: int, when: object, status: Any) -> None:
            if status.input_overflow:
                self.overflows += 1
            self._queue.put(indata.mean(axis=1, dtype=np.float32))

        errors: list[str] = []
        # Mono first (PulseAudio downmixes); some hardware records only in stereo.
        for channels in dict.fromkeys((1, min(2, self.device.input_channels))):
            try:
                stream = sd.InputStream(device=self.device.index, channels=channels, samplerate=self.device_rate,
                                        dtype="float32", blocksize=round(self.device_rate * BLOCK_SECONDS),
                                        callback=callback)  # fmt: skip
                stream.start()
            except sd.PortAudioError as exc:
                errors.append(f"{channels} channel(s): {exc}")
                continue
            self._stream = stream
            return self
        raise DeviceError(f"cannot open input device {self.device.index} {self.device.name!r}: {'; '.join(errors)}")

    def __exit__(self, *exc: object) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()

    def blocks(self) -> Iterator[np.ndarray]:
        """Mono float32 blocks at ``rate`` Hz, as long as the device records."""
        if self._stream is None:
            raise DeviceError("the device is not open")
        while True:
            try:
                block = self._queue.get(timeout=self.stall_seconds)
            except queue.Empty:
                raise DeviceError(
                    f"input device {self.device.name!r} gave no audio for {self.stall_seconds:g} s"
                ) from None
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = self.device_rate
            for out in self._resampler.resample(frame):
                yield out.to_ndarray().reshape(-1)
