"""The CLI's side of the producer desk: ``stagectl book|farm ... --server URL``.

With ``--server`` (or ``STAGECTL_DESK_URL``) a command asks the desk's HTTP API
(docs/desk-api.md) with ``Authorization: Bearer $STAGECTL_DESK_TOKEN`` instead of opening
the SQLite file, and turns the JSON it gets back into the same structures the local path
shows (``Record``, ``Stage``, plan documents), so the tables and ``--json`` read the same.

Errors are one line each and an exit code: no desk answering, a refused token (401), a role
that may not (403), a lifecycle refusal (409, with the desk's explanation), bad input (400,
422: exit 2).
"""

from __future__ import annotations

import json
import os
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import unquote

import typer

from scheduler.booking.model import Booking, Stage, Status
from scheduler.booking.store import Record

TOKEN_ENV = "STAGECTL_DESK_TOKEN"
URL_ENV = "STAGECTL_DESK_URL"
TIMEOUT_S = 30.0
MAX_REPLY_BYTES = 64 * 1024 * 1024

ServerOpt = Annotated[str | None, typer.Option(
    "--server", envvar=URL_ENV,
    help="The producer desk's address (http://host:8470): go through its API with "
         f"${TOKEN_ENV} instead of --db.")]
FarmServerOpt = Annotated[str | None, typer.Option(
    "--server", envvar=URL_ENV,
    help="The producer desk's address (http://host:8470): go through its API with "
         f"${TOKEN_ENV} instead of asking a controller.")]


class DeskCallFailed(Exception):
    """A desk call that did not succeed: ``lines`` to print, ``exit_code`` to exit with."""

    def __init__(self, lines: list[str], exit_code: int, status: int | None = None,
                 code: str = "") -> None:
        super().__init__("; ".join(lines))
        self.lines = lines
        self.exit_code = exit_code
        self.status = status
        self.code = code


def _error_doc(content: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(content)
    except ValueError:
        return {}
    err = doc.get("error") if isinstance(doc, dict) else None
    return err if isinstance(err, dict) else {}


_API_ACTION = re.compile(r"POST /api/v1/bookings/([^/\s]+)/(\w+)")


def _cli_words(sentence: str) -> str:
    """An explanation's API hint as the command to type (``stagectl book challenge B2``)."""
    return _API_ACTION.sub(lambda m: f"`stagectl book {m.group(2)} {unquote(m.group(1))}`",
                           sentence)


def _explain(url: str, method: str, path: str, status: int, phrase: str,
             content: bytes) -> DeskCallFailed:
    """The one-line (plus explanation) message for a desk error reply."""
    err = _error_doc(content)
    code = str(err.get("code") or "")
    message = str(err.get("message") or phrase or f"HTTP {status}")[:2000]
    raw = err.get("details")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if status == 401:
        return DeskCallFailed(
            [f"the desk at {url} refused the token (HTTP 401: {message}): set {TOKEN_ENV} to "
             "a token from `stagectl desk token create NAME --config F` (tokens end when "
             "their user is disabled)"], 1, status, code)
    if status == 403:
        return DeskCallFailed(
            [f"the desk refused {method} {path} (HTTP 403 {code or 'forbidden'}): {message}"],
            1, status, code)
    if status == 409:
        given = details.get("explanation")
        explanation = [_cli_words(str(x)[:2000]) for x in given[:20] if str(x)] \
            if isinstance(given, list) else []
        if not explanation:
            explanation = [_cli_words(message.removeprefix("refused: "))]
        lines = [f"refused: {explanation[0]}", *(f"  {x}" for x in explanation[1:])]
        return DeskCallFailed(lines, 1, status, code)
    if status in (400, 413, 422):
        field = details.get("field")
        where = f"{field}: " if field else ""
        return DeskCallFailed([f"the desk refused the input (HTTP {status} {code}): "
                               f"{where}{message}"], 2, status, code)
    if status == 404:
        return DeskCallFailed([f"{message} (HTTP 404 from {url})"], 1, status, code)
    if status == 503:
        return DeskCallFailed([f"{message} (HTTP 503 from {url})"], 1, status, code)
    return DeskCallFailed([f"the desk at {url} answered HTTP {status} to {method} {path}"
                           + (f": {message}" if message else "")], 1, status, code)


@dataclass
class Desk:
    """A blocking client of the desk API for one CLI command."""

    url: str
    token: str
    timeout_s: float = TIMEOUT_S

    def __post_init__(self) -> None:
        import httpx  # here, so commands without --server start without it

        self.url = self.url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=self.timeout_s,
                                  headers={"Authorization": f"Bearer {self.token}",
                                           "Accept": "application/json",
                                           "Accept-Encoding": "identity"},
                                  follow_redirects=False, trust_env=False,
                                  # the system's CAs and $SSL_CERT_FILE (a studio's own CA),
                                  # not only httpx's bundle; proxies stay ignored
                                  verify=ssl.create_default_context())

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Desk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             body: Any = None, wait_s: float = 0.0) -> Any:
        """One request under ``/api/v1``; the decoded JSON reply.

        Args:
            method: GET or POST.
            path: under ``/api/v1``.
            params: query parameters.
            body: sent as JSON.
            wait_s: extra seconds the desk may take (a solve's time limit).

        Raises:
            DeskCallFailed: no desk answered, it answered an error, more than
                :data:`MAX_REPLY_BYTES`, something not JSON, or not within the time allowed.
        """
        import httpx

        full = "/api/v1" + path
        allowed = self.timeout_s + wait_s
        deadline = time.monotonic() + allowed
        late = DeskCallFailed([f"the desk at {self.url} did not answer {method} {full} within "
                               f"{allowed:g} s"], 1)
        try:
            with self._http.stream(method, full, params=params, json=body,
                                   timeout=httpx.Timeout(allowed, connect=self.timeout_s)) \
                    as resp:
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_raw():
                    size += len(chunk)
                    if size > MAX_REPLY_BYTES:
                        raise DeskCallFailed([f"the desk at {self.url} answered more than "
                                              f"{MAX_REPLY_BYTES >> 20} MiB to {method} "
                                              f"{full}; not read"], 1)
                    if time.monotonic() > deadline:
                        raise late
                    chunks.append(chunk)
                status, phrase = resp.status_code, resp.reason_phrase
                encoding = resp.headers.get("content-encoding", "identity")
        except httpx.TimeoutException as exc:
            raise late from exc
        except httpx.ConnectError as exc:
            raise DeskCallFailed([f"no desk answered at {self.url} ({exc}): is `stagectl desk "
                                  "serve` running there, and is --server (or "
                                  f"{URL_ENV}) right?"], 1) from exc
        except httpx.HTTPError as exc:
            raise DeskCallFailed([f"the desk at {self.url} broke off {method} {full}: "
                                  f"{exc or type(exc).__name__}"], 1) from exc
        content = b"".join(chunks)
        if encoding not in ("identity", ""):
            raise DeskCallFailed([f"the desk at {self.url} answered {method} {full} "
                                  f"compressed ({encoding}), which was not asked for"], 1)
        if status >= 400:
            raise _explain(self.url, method, full, status, phrase, content)
        try:
            return json.loads(content)
        except ValueError as exc:
            raise DeskCallFailed([f"{self.url} answered {method} {full} with something that "
                                  "is not JSON (is it the desk?)"], 1) from exc

    def get(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1{path}``; ``None`` parameters are left out."""
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None, wait_s: float = 0.0) -> Any:
        """POST ``/api/v1{path}`` with a JSON body (``wait_s``: see :meth:`call`)."""
        return self.call("POST", path, body={} if body is None else body, wait_s=wait_s)


def open_desk(url: str) -> Desk:
    """A client for ``url`` with the token from ``$STAGECTL_DESK_TOKEN``.

    Raises:
        DeskCallFailed: no token, or an address that is not http(s).
    """
    if not url.startswith(("http://", "https://")):
        raise DeskCallFailed([f"--server: expected the desk's address such as "
                              f"http://127.0.0.1:8470, got {url!r}"], 2)
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise DeskCallFailed([f"--server {url}: set {TOKEN_ENV} to your API token (an admin "
                              "makes one: `stagectl desk token create NAME --config F`)"], 2)
    return Desk(url, token, TIMEOUT_S)


# --- the desk's JSON as the CLI's structures ----------------------------------------------


def _dt(text: Any) -> datetime | None:
    if text is None or text == "":
        return None
    return datetime.fromisoformat(str(text))


def stage_from_json(doc: Mapping[str, Any]) -> Stage:
    """A ``GET /stages`` entry as the model's ``Stage`` (what the tables need of it)."""
    return Stage(
        id=str(doc["id"]),
        capabilities=frozenset(str(c) for c in doc.get("capabilities") or ()),
        changeover_minutes=int(doc.get("changeover_minutes") or 0),
        site=str(doc.get("site") or ""),
        timezone=str(doc.get("timezone") or "Asia/Shanghai"),
        day_rate_cny=float(doc.get("day_rate_cny") or 0.0),
    )


def record_from_json(doc: Mapping[str, Any]) -> Record:
    """A desk ``booking`` as the store's ``Record`` (the shape the tables and --json read)."""
    status = Status(str(doc["status"]))
    earliest = _dt(doc.get("earliest_start"))
    latest = _dt(doc.get("latest_end"))
    created = _dt(doc.get("created_at"))
    updated = _dt(doc.get("updated_at"))
    assert earliest is not None and latest is not None
    pools = doc.get("pools") or doc.get("pool") or {}
    booking = Booking(
        id=str(doc["id"]),
        priority=int(doc.get("priority") or 1),
        duration_minutes=int(doc["duration_minutes"]),
        earliest_start=earliest,
        latest_end=latest,
        status=status,
        hold_rank=doc.get("hold_rank") if status is Status.HOLD else None,
        requires=frozenset(str(c) for c in doc.get("requires") or ()),
        stages=tuple(str(s) for s in doc.get("stages") or ()),
        pools=tuple(sorted((str(k), int(v)) for k, v in pools.items()))
        if isinstance(pools, dict) else (),
        stage=doc.get("stage"),
        start=_dt(doc.get("start")),
        production=str(doc.get("production") or ""),
        contact=str(doc.get("contact") or ""),
    )
    return Record(
        booking=booking,
        sequence=int(doc.get("sequence") or 0),
        created_at=created or earliest,
        updated_at=updated or created or earliest,
        hold_expires=_dt(doc.get("hold_expires")),
        challenged_by=doc.get("challenged_by"),
        challenge_deadline=_dt(doc.get("challenge_deadline")),
    )


def stages_of(desk: Desk) -> dict[str, Stage]:
    """``GET /stages`` as ``{id: Stage}``."""
    return {s.id: s for s in (stage_from_json(d) for d in desk.get("/stages"))}


def bad_reply(url: str, what: str, exc: Exception) -> DeskCallFailed:
    """A reply that does not have the contract's shape (an older or a different server)."""
    return DeskCallFailed([f"the desk at {url} answered {what} in a shape this stagectl does "
                           f"not read ({exc!r}); are both the same version?"], 1)
