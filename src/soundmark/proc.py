"""Worker processes that die with their parent.

A worker pool's children block on a pipe whose write end they hold themselves, so a parent
killed with SIGKILL leaves them running for ever (and the multiprocessing resource tracker with
them: it exits only when every process holding its pipe is gone). ``die_with_parent`` is the
initializer every pool passes to its workers:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` has the kernel kill the worker the moment its
  parent goes. The kernel sends it when the *thread* that started the worker ends; soundmark's
  pools start workers from threads that outlive the pool (the event loop, the thread running a
  scan or an ingest), so this only fires when the process is gone;
- everywhere, a daemon thread polls ``os.getppid()``: an orphan is re-parented, so a changed
  parent id means the parent died, whatever the platform and even if it died before the
  initializer ran.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_SECONDS = 0.5  # how often a worker checks that its parent is alive


def die_with_parent(parent_pid: int, then: Callable[..., object] | None = None, *args: object) -> None:
    """Worker initializer: end this process when ``parent_pid`` is no longer its parent.

    ``then(*args)`` runs afterwards, for a pool that has its own initializer.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="parent-watch", daemon=True).start()
    if then is not None:
        then(*args)


def _watch(parent_pid: int) -> None:
    stop = threading.Event()
    while not stop.wait(WATCH_SECONDS):
        if os.getppid() != parent_pid:
            os._exit(1)
