"""The canary state shared by the gateway and ``deploy_model``: which version is champion, which is the canary
and the share of users it serves. A JSON file replaced atomically (the default), or one Redis key.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from flywheel.config import Settings

#: The Redis key holding the state when ``FLYWHEEL_CANARY_STATE`` is a ``redis://`` URL.
REDIS_KEY = "flywheel:canary_state"
#: How stale the gateway's copy of the state may be (seconds): a rollback reaches it within this.
REFRESH_SECONDS = 0.5


class StateError(RuntimeError):
    """The state cannot be read or written; the message names the store and what to fix."""


@dataclass(frozen=True)
class CanaryState:
    """Who serves: ``champion`` everyone, except the ``weight`` share of users (0..1) the ``canary`` gets."""

    champion: str | None = None
    canary: str | None = None
    weight: float = 0.0
    step: int = 0
    deployment_id: str | None = None
    updated_at: str = ""  # ISO time of the write (naive UTC), for people reading the state

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not isinstance(self.weight, int | float):
            raise StateError(f"canary weight {self.weight!r} is not a number between 0 and 1")
        if not (math.isfinite(self.weight) and 0.0 <= self.weight <= 1.0):
            raise StateError(f"canary weight {self.weight!r} is outside [0, 1] (a share of users)")
        for name in ("champion", "canary", "deployment_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise StateError(f"canary state field {name} is {value!r}: a non-empty string or null")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> CanaryState:
        """Parse a stored state; unknown keys are ignored (a newer writer), missing ones take defaults."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StateError(
                f"the canary state in {where} is not JSON ({exc}): rewrite or delete it"
            ) from exc
        if not isinstance(data, dict):
            raise StateError(f"the canary state in {where} is {type(data).__name__}, not a JSON object")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (StateError, TypeError) as exc:
            raise StateError(f"the canary state in {where} is invalid: {exc}") from exc


class StateStore(Protocol):
    """Where the state lives: :func:`open_state` returns one."""

    location: str

    def read(self) -> CanaryState: ...

    def write(self, state: CanaryState) -> None: ...


class FileStateStore:
    """A JSON file replaced with ``os.replace``: any number of readers see the old or the new state, whole."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)

    def read(self) -> CanaryState:
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return CanaryState()  # nothing deployed yet
        except OSError as exc:
            raise StateError(f"cannot read the canary state {self.path}: {exc}") from exc
        return CanaryState.from_json(text, str(self.path))

    def write(self, state: CanaryState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A scratch name of our own in the same folder: the rename is atomic, concurrent writers never mix.
        scratch = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with scratch.open("w") as handle:
                handle.write(state.to_json() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(scratch, self.path)
        finally:
            scratch.unlink(missing_ok=True)


class RedisStateStore:
    """One Redis key holding the state's JSON (``SET`` replaces it whole), for gateways on several hosts."""

    def __init__(self, url: str, key: str = REDIS_KEY) -> None:
        import redis

        self.url, self.key = url, key
        self.location = f"{_without_password(url)} key {key}"
        self._client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def _do(self, what: str, call: Any) -> Any:
        import redis

        try:
            return call()
        except redis.RedisError as exc:
            raise StateError(
                f"cannot {what} the canary state at {self.location}: {exc} (is Redis running? "
                "FLYWHEEL_CANARY_STATE names it)"
            ) from exc

    def read(self) -> CanaryState:
        raw = self._do("read", lambda: self._client.get(self.key))
        return CanaryState() if raw is None else CanaryState.from_json(raw, self.location)

    def write(self, state: CanaryState) -> None:
        self._do("write", lambda: self._client.set(self.key, state.to_json()))

    def delete(self) -> None:
        self._do("delete", lambda: self._client.delete(self.key))

    def close(self) -> None:
        self._client.close()


def open_state(settings: Settings) -> FileStateStore | RedisStateStore:
    """The store ``FLYWHEEL_CANARY_STATE`` names: a ``redis://`` URL, else a file path."""
    location = settings.serving.canary_state or str(settings.home / "serving" / "canary.json")
    if location.startswith(("redis://", "rediss://")):
        return RedisStateStore(location)
    return FileStateStore(location)


class CachedState:
    """The gateway's view of the state, re-read at most every ``refresh`` seconds (a small file or one GET:
    about 20 µs or one round trip). A store that fails keeps the last state; the error shows in /readyz."""

    def __init__(self, store: StateStore, refresh: float = REFRESH_SECONDS) -> None:
        self.store = store
        self.refresh = refresh
        self._lock = threading.Lock()
        self._state: CanaryState | None = None
        self._checked = -math.inf
        self.error: str | None = None

    def get(self, force: bool = False) -> CanaryState:
        """The current state; raises :class:`StateError` only when it was never read successfully."""
        now = time.monotonic()
        if not force and now - self._checked < self.refresh and self._state is not None:
            return self._state
        with self._lock:
            if not force and time.monotonic() - self._checked < self.refresh and self._state is not None:
                return self._state
            try:
                self._state = self.store.read()
                self.error = None
            except StateError as exc:
                self.error = str(exc)
                if self._state is None:
                    raise
            self._checked = time.monotonic()
            return self._state


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
