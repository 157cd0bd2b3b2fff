"""The process role of a server (``soundmark serve --role``, ``SOUNDMARK_ROLE``): which of the
API, the stream monitor and the job runner this process runs. One place says what each role
means; the app, the feature lifespans and the CLI's help read it from here."""

from __future__ import annotations

from dataclasses import dataclass

from soundmark.settings import Settings

# What each role runs, as ``serve --help`` and the README tell it.
ROLES: dict[str, str] = {
    "api": "the HTTP/WebSocket API, without background work",
    "monitor": "live stream monitoring + callback delivery (/healthz, /metrics)",
    "jobs": "enterprise jobs: resumes interrupted ones, runs queued ones (/healthz, /metrics)",
    "all": "everything in one process (the default)",
}


@dataclass(frozen=True)
class Role:
    name: str

    @classmethod
    def of(cls, settings: Settings) -> Role:
        return cls(settings.role)

    @property
    def serves_api(self) -> bool:
        """The AudD methods, WebSocket, longpoll and pages (else only /healthz and /metrics)."""
        return self.name in ("api", "all")

    @property
    def monitors(self) -> bool:
        """The stream monitor and the callback deliverer."""
        return self.name in ("monitor", "all")

    @property
    def runs_jobs(self) -> bool:
        """The enterprise job runner, its recovery at start and the pick-up of queued jobs."""
        return self.name in ("jobs", "all")
