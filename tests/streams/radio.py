"""Loopback radio for stream tests and the capacity benchmark: real-time MP3 encoding with PyAV, an
Icecast 2 server with a Python source client, a Python Icecast-like server with many mounts, an
HLS stream written by FFmpeg's HLS muxer, and a callback receiver that can be switched off."""

from __future__ import annotations

import base64
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

RATE = 22050
PACKET = 576  # samples per MP3 frame at 22.05 kHz (MPEG-2 layer III)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Item:
    label: str  # a catalog title, or "" for audio that is not in the catalog
    samples: np.ndarray  # mono float32 at RATE


def encode_mp3(samples: np.ndarray, rate: int = RATE, bitrate: int = 128_000) -> list[bytes]:
    """MP3 frames (one packet each, PACKET samples long) of ``samples``."""
    codec = av.CodecContext.create("libmp3lame", "w")
    codec.sample_rate, codec.layout, codec.format, codec.bit_rate = rate, "mono", "s16p", bitrate
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(pcm, format="s16p", layout="mono")
    frame.sample_rate = rate
    packets = [bytes(p) for p in codec.encode(frame)] + [bytes(p) for p in codec.encode(None)]
    assert codec.frame_size == PACKET, codec.frame_size
    return [p for p in packets if p]


@dataclass
class Schedule:
    """A playlist encoded once; ``starts[i]`` is item i's start in seconds from the playlist start."""

    items: list[Item]
    packets: list[bytes] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.packets = encode_mp3(np.concatenate([i.samples for i in self.items]))
        t = 0.0
        for item in self.items:
            self.starts.append(t)
            t += len(item.samples) / RATE

    @property
    def seconds(self) -> float:
        return len(self.packets) * PACKET / RATE


def paced(packets: list[bytes], t0: float, stop: threading.Event, first: int = 0) -> Iterator[bytes]:
    """``packets`` from index ``first`` at real-time pace, packet i due at ``t0 + i * PACKET / RATE``."""
    dt = PACKET / RATE
    for i in range(first, len(packets)):
        wait = t0 + i * dt - time.time()
        if wait > 0 and stop.wait(wait):
            return
        yield packets[i]


# --- Icecast 2 --------------------------------------------------------------------------------
ICECAST = shutil.which("icecast2") or shutil.which("icecast")
PASSWORD = "hackme"


class Icecast:
    """An icecast2 process on a loopback port, configured in ``root`` (runs as root via changeowner)."""

    def __init__(self, root: Path, port: int | None = None):
        import os

        assert ICECAST is not None
        self.root, self.port = root, port or free_port()
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o777)
        owner = ""
        if os.geteuid() == 0:  # icecast refuses to run as root unless it can drop privileges
            user = next((u for u in ("icecast2", "icecast", "nobody") if _has_user(u)), "nobody")
            group = _group_of(user)
            owner = f"<changeowner><user>{user}</user><group>{group}</group></changeowner>"
        share = next(
            (p for p in ("/usr/share/icecast2", "/usr/share/icecast") if Path(p).exists()), "/usr/share/icecast2"
        )
        self.config = root / "icecast.xml"
        self.config.write_text(f"""<icecast>
  <limits><clients>500</clients><sources>200</sources><queue-size>1048576</queue-size>
    <burst-size>16384</burst-size><source-timeout>5</source-timeout><header-timeout>5</header-timeout></limits>
  <authentication><source-password>{PASSWORD}</source-password><admin-user>admin</admin-user>
    <admin-password>{PASSWORD}</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{self.port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>0</fileserve>
  <paths><basedir>{share}</basedir><logdir>{root}</logdir><webroot>{share}/web</webroot>
    <adminroot>{share}/admin</adminroot></paths>
  <logging><accesslog>-</accesslog><errorlog>-</errorlog><loglevel>3</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>
""")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Logs go to stderr (written by us): icecast drops to an unprivileged user that may not
        # reach the test's temporary folder.
        with open(self.root / "icecast.log", "ab") as log:
            self.proc = subprocess.Popen([str(ICECAST), "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"icecast exited: {(self.root / 'icecast.log').read_text(errors='replace')}"
                    ) from None
                time.sleep(0.05)
        raise RuntimeError("icecast did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _group_of(user: str) -> str:
    import grp
    import pwd

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


class IcecastSource:
    """A source client: PUTs MP3 packets to an Icecast mount at real-time pace, reconnecting when
    the server goes away. ``played`` records (label, wall-clock start) of every item actually sent."""

    def __init__(self, server_port: int, mount: str, schedule: Schedule):
        self.port, self.mount, self.schedule = server_port, mount, schedule
        self.stop = threading.Event()
        self.played: list[tuple[str, float]] = []
        self.connected = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, t0: float | None = None) -> None:
        self.t0 = t0 or time.time() + 0.5
        self._thread.start()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        auth = base64.b64encode(f"source:{PASSWORD}".encode()).decode()
        try:
            sock.sendall(
                f"PUT {self.mount} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAuthorization: Basic {auth}\r\n"
                "Content-Type: audio/mpeg\r\nIce-Public: 0\r\nIce-Name: soundmark test\r\n"
                "Expect: 100-continue\r\n\r\n".encode()
            )
            status = sock.recv(1024).split(b"\r\n", 1)[0]
        except OSError:
            sock.close()
            raise
        if b" 100 " not in status and b" 200 " not in status:
            sock.close()
            raise OSError(f"icecast refused the source: {status!r}")
        return sock

    def _run(self) -> None:
        packets, dt = self.schedule.packets, PACKET / RATE
        item_at = [round(s / dt) for s in self.schedule.starts]
        i, sock = 0, None
        while i < len(packets) and not self.stop.is_set():
            if sock is None:
                try:
                    sock = self._connect()
                    self.connected.set()
                except OSError:
                    sock = None
                    if self.stop.wait(0.2):
                        break
                    # Time passes while the server is down: the source keeps its schedule.
                    i = max(i, int((time.time() - self.t0) / dt))
                    continue
            wait = self.t0 + i * dt - time.time()
            if wait > 0 and self.stop.wait(wait):
                break
            try:
                if i in item_at:
                    k = item_at.index(i)
                    self.played.append((self.schedule.items[k].label, time.time()))
                sock.sendall(packets[i])
                i += 1
            except OSError:
                sock.close()
                sock = None
                self.connected.clear()
        if sock is not None:
            sock.close()
        self.done.set()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=5)


# --- a Python Icecast-like server: many mounts, one virtual clock ---------------------------
class VirtualRadio:
    """``GET /<k>.mp3`` streams mount k: the schedule looped, shifted by ``k * shift`` seconds, at
    real-time pace from a shared clock, with a small burst on connect (as Icecast does)."""

    def __init__(self, schedule: Schedule, shift: float = 0.0, burst_packets: int = 20):
        self.schedule, self.shift, self.burst = schedule, shift, burst_packets
        self.t0 = time.time()
        self.stop = threading.Event()
        radio = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    mount = int(self.path.strip("/").split(".")[0])
                except ValueError:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.send_header("icy-br", "128")
                self.end_headers()
                try:
                    for chunk in radio.listen(mount):
                        self.wfile.write(chunk)
                except OSError:
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def position(self, mount: int, t: float) -> float:
        """Seconds into the (looped) schedule that mount ``mount`` plays at wall time ``t``."""
        return (t - self.t0 + mount * self.shift) % self.schedule.seconds

    def song_starts(self, mount: int, t_from: float, t_to: float) -> list[tuple[str, float]]:
        """(label, wall-clock start) of the items mount ``mount`` starts playing in [t_from, t_to]."""
        out = []
        loop = self.schedule.seconds
        base = self.t0 - mount * self.shift
        k = int((t_from - base) // loop) - 1
        while base + k * loop <= t_to:
            for item, s in zip(self.schedule.items, self.schedule.starts, strict=True):
                t = base + k * loop + s
                if t_from <= t <= t_to:
                    out.append((item.label, t))
            k += 1
        return out

    def listen(self, mount: int) -> Iterator[bytes]:
        packets, dt = self.schedule.packets, PACKET / RATE
        n = len(packets)
        i = int((time.time() - self.t0 + mount * self.shift) / dt) - self.burst
        while not self.stop.is_set():
            now_i = int((time.time() - self.t0 + mount * self.shift) / dt)
            if i < now_i:
                yield b"".join(packets[j % n] for j in range(i, now_i))
                i = now_i
            self.stop.wait(0.1)

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# --- HLS ---------------------------------------------------------------------------------------
class HlsWriter:
    """Writes ``items`` as a live HLS stream (AAC in MPEG-TS, 2 s segments) into ``folder`` at
    real-time pace, with FFmpeg's HLS muxer. ``played`` holds (label, wall-clock start)."""

    def __init__(self, folder: Path, items: list[Item], segment: float = 2.0):
        self.folder, self.items, self.segment = folder, items, segment
        self.played: list[tuple[str, float]] = []
        self.stop = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def playlist(self) -> Path:
        return self.folder / "live.m3u8"

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        options = {"hls_time": str(self.segment), "hls_list_size": "6", "hls_flags": "delete_segments"}
        out = av.open(str(self.playlist), "w", format="hls", options=options)
        stream = out.add_stream("aac", rate=RATE)
        stream.layout = "mono"
        stream.bit_rate = 96_000
        block = 1024
        t0 = time.time() + 0.2
        pos = 0
        try:
            for item in self.items:
                pcm = item.samples.astype(np.float32)
                self.played.append((item.label, t0 + pos / RATE))
                for j in range(0, len(pcm), block):
                    chunk = pcm[j : j + block]
                    wait = t0 + (pos + len(chunk)) / RATE - time.time()
                    if wait > 0 and self.stop.wait(wait):
                        return
                    frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
                    frame.sample_rate = RATE
                    frame.pts = pos
                    for packet in stream.encode(frame):
                        out.mux(packet)
                    pos += len(chunk)
            for packet in stream.encode(None):
                out.mux(packet)
        finally:
            out.close()
            self.done.set()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=5)


# --- callback receiver -------------------------------------------------------------------------
class CallbackReceiver:
    """Collects JSON POSTs on a loopback port; ``down()`` closes the port, ``up()`` opens it again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bodies: list[dict[str, object]] = []
        self.paths: list[str] = []
        self.times: list[float] = []  # when each body arrived
        self._lock = threading.Lock()
        self.httpd: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?secret=s3"

    def up(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver.bodies.append(json.loads(body))
                    receiver.paths.append(self.path)
                    receiver.times.append(time.time())
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def snapshot(self) -> list[dict[str, object]]:
        with self._lock:
            return list(self.bodies)
