"""A private PulseAudio daemon with one null sink, for `soundmark listen` tests.

The daemon runs as the test's user (root in CI: ``--system=false`` keeps it a per-user daemon)
with its own runtime directory and socket; ``env`` points clients — ``paplay``, and PortAudio in
the listen subprocess through ALSA's ``pulse`` plugin — at it, with ``PULSE_SOURCE`` naming the
sink's monitor: what is played into the sink is what the device ``pulse`` records.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SINK = "soundmark_test"


class PulseUnavailable(RuntimeError):
    pass


@dataclass
class Pulse:
    root: Path
    env: dict[str, str]  # the environment of every client of this daemon
    proc: subprocess.Popen[bytes]
    players: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def log(self) -> str:
        return (self.root / "pulse.log").read_text(errors="replace")

    def play(self, wav: Path) -> subprocess.Popen[bytes]:
        """Start playing ``wav`` into the null sink (returns at once)."""
        p = subprocess.Popen(["paplay", f"--device={SINK}", str(wav)], env=self.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        self.players.append(p)
        return p

    def stop_players(self) -> None:
        for p in self.players:
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stderr is not None:
                p.stderr.close()
        self.players.clear()


def _wait_ready(env: dict[str, str], proc: subprocess.Popen[bytes], root: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PulseUnavailable(f"pulseaudio exited ({proc.returncode}): {(root / 'pulse.log').read_text()[-2000:]}")
        out = subprocess.run(["pactl", "list", "short", "sources"], env=env, capture_output=True, text=True)
        if out.returncode == 0 and f"{SINK}.monitor" in out.stdout:
            return
        time.sleep(0.2)
    raise PulseUnavailable(f"pulseaudio did not come up in {timeout:g} s: {(root / 'pulse.log').read_text()[-2000:]}")


@contextmanager
def private_pulse() -> Iterator[Pulse]:
    """Start the daemon; stop it and every player at exit. Raises PulseUnavailable with the reason."""
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            raise PulseUnavailable(f"{tool} is not installed (Debian: pulseaudio pulseaudio-utils)")
    root = Path(tempfile.mkdtemp(prefix="smpa-"))  # short: a unix socket path has at most 107 bytes
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    socket = runtime / "native"
    env = {
        **os.environ,
        "HOME": str(root),  # the daemon's and clients' ~/.config/pulse: never the user's own
        "XDG_RUNTIME_DIR": str(runtime),
        "PULSE_RUNTIME_PATH": str(runtime),
        "PULSE_SERVER": f"unix:{socket}",
        "PULSE_SOURCE": f"{SINK}.monitor",
    }
    cmd = ["pulseaudio", "-n", "--daemonize=no", "--system=false", "--exit-idle-time=-1", "--use-pid-file=no",
           "--disallow-exit", "--log-target=stderr",
           "-L", f"module-native-protocol-unix socket={socket} auth-anonymous=1",
           "-L", f"module-null-sink sink_name={SINK} rate=44100"]  # fmt: skip
    log = open(root / "pulse.log", "wb")  # noqa: SIM115 - the daemon writes it until it stops
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    pulse = Pulse(root, env, proc)
    try:
        _wait_ready(env, proc, root)
        yield pulse
    finally:
        pulse.stop_players()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)
