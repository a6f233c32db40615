"""The desk's FastAPI application (docs/desk-api.md): ``create_app(config) -> FastAPI``.

Endpoints are plain (sync) functions: FastAPI runs them on its thread pool, and each checks a
store out of :class:`stagectl.desk.bookings.StorePool` for the request. Who is asking comes
from :func:`current_user` (a Bearer token, or the session cookie plus ``X-CSRF-Token`` on
unsafe methods); :func:`require` adds the role check. Every failure answers the contract's
error JSON (``{"error": {"code", "message", "message_zh", "details"}}``), and is counted in
``app.state.desk.counters``; a crash is logged with a reference and answered 500 ``internal``,
and the process keeps serving.

Other parts of the desk plug in by convention: ``stagectl/desk/static/`` is served at
``/static`` (and its ``index.html`` at ``/``), and a module ``stagectl.desk.ics`` that
defines ``router`` (an ``APIRouter``) is included. They reach the store through
``request.app.state.desk`` (a :class:`DeskState`: ``.pool.store()``, ``.config``).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sqlite3
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.booking.model import Booking, Status
from scheduler.booking.parse import BookingInputError
from scheduler.booking.report import utilisation
from scheduler.booking.solve import PlanCheckFailed, solve
from scheduler.booking.store import FILE as BOOKING_FILE
from scheduler.booking.store import BookingRefused, BookingStore, UnknownBooking
from scheduler.dbfile import DatabaseFileError, explain
from stagectl.cli.book import _booking_zone
from stagectl.cli.timefmt import iso
from stagectl.config import ConfigError
from stagectl.desk import DeskError
from stagectl.desk import auth as A
from stagectl.desk.bookings import (
    StorePool,
    booking_json,
    explain_refusal,
    history_json,
    input_error,
    placement_explanation,
    read_request,
    read_time,
    stage_json,
    stages_of,
    zone_for,
)
from stagectl.desk.config import DeskConfig
from stagectl.desk.farm import farm_call

__all__ = ["DeskState", "DeskUser", "create_app", "current_user", "require"]

log = logging.getLogger("stagectl.desk")
DeskUser = A.DeskUser
STATIC = Path(__file__).resolve().parent / "static"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_SOLVE_S = 60.0


@dataclass
class DeskState:
    """What every request of one app shares."""

    config: DeskConfig
    pool: StorePool
    clock: Callable[[], datetime]
    throttle: A.LoginThrottle = field(default_factory=A.LoginThrottle)
    tokens: A.TokenCache = field(default_factory=A.TokenCache)
    counters: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    swept_at: float = -1e9
    sweep_every_s: float = 1.0
    previews: OrderedDict[tuple[Any, ...], Any] = field(default_factory=OrderedDict)

    def remember(self, key: tuple[Any, ...], preview: Any) -> None:
        """Keep a solve or outage preview (the last 16) so that applying it stores the same.

        CP-SAT on several threads may return another of several equally good plans each
        run: "preview, then apply" must not show one plan and store another. The store
        applies a kept preview only while its version is unchanged.
        """
        with self.lock:
            self.previews[key] = preview
            self.previews.move_to_end(key)
            while len(self.previews) > 16:
                self.previews.popitem(last=False)

    def recall(self, key: tuple[Any, ...]) -> Any:
        """The preview kept under ``key``, if any."""
        with self.lock:
            return self.previews.get(key)

    def sweep(self, store: BookingStore) -> None:
        """Apply the store's deadlines (expired holds...) before a read, at most once a second.

        ``BookingStore.sweep`` takes SQLite's write lock; many readers at once need not each
        take it.
        """
        now = time.monotonic()
        with self.lock:
            if now - self.swept_at < self.sweep_every_s:
                return
            self.swept_at = now
        with self.pool.writing():
            store.sweep()

    def count(self, key: str) -> None:
        """Count an event (an error code, a crash)."""
        with self.lock:
            self.counters[key] += 1


def _state(request: Request) -> DeskState:
    state: DeskState = request.app.state.desk
    return state


# --------------------------------------------------------------------------- auth


def _token_user(state: DeskState, token: str) -> A.DeskUser | None:
    stamp = state.tokens.stamp()
    with state.pool.store() as s:
        user = A.token_user(s.conn, token)
    if user is not None:
        state.tokens.put(token, user, stamp)
    return user


def _session_user(state: DeskState, cookie: str) -> tuple[A.DeskUser, str] | None:
    with state.pool.store() as s:
        return A.session_user(s.conn, cookie, state.config.session_hours, state.clock)


async def current_user(request: Request) -> A.DeskUser:
    """Who makes the request: a Bearer token, or the session cookie (CSRF on unsafe methods).

    Runs on the event loop: a token seen in the last second is answered from
    ``DeskState.tokens`` (:class:`stagectl.desk.auth.TokenCache`) without a thread or a
    store; a lookup goes to the thread pool.

    Raises:
        DeskError: 401 ``unauthenticated``, 403 ``csrf``.
    """
    state = _state(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer":
            raise DeskError(401, "unauthenticated", template="bad_scheme",
                            scheme=scheme[:20] or "(none)")
        if not token:
            raise DeskError(401, "unauthenticated", template="bad_token")
        user = state.tokens.get(token)
        if user is None:
            user = await run_in_threadpool(_token_user, state, token)
        if user is None:
            raise DeskError(401, "unauthenticated", template="bad_token")
        request.state.user = user
        return user
    cookie = request.cookies.get(A.SESSION_COOKIE)
    if not cookie:
        raise DeskError(401, "unauthenticated")
    found = await run_in_threadpool(_session_user, state, cookie)
    if found is None:
        raise DeskError(401, "unauthenticated", template="session_expired")
    user, csrf = found
    if request.method in UNSAFE and not A.csrf_ok(csrf, request.headers.get(A.CSRF_HEADER)):
        raise DeskError(403, "csrf")
    request.state.user = user
    request.state.csrf = csrf
    return user


def require(role: str) -> Callable[..., Awaitable[A.DeskUser]]:
    """A dependency: the current user, who must have ``role`` (or a higher one)."""
    A.check_role(role)

    async def dependency(user: Annotated[A.DeskUser, Depends(current_user)]) -> A.DeskUser:
        if not user.has(role):
            raise DeskError(403, "forbidden", {"role": role}, role=role, user=user.name,
                            have=user.role)
        return user

    dependency.__name__ = f"require_{role}"
    return dependency


Viewer = Annotated[A.DeskUser, Depends(require("viewer"))]
Producer = Annotated[A.DeskUser, Depends(require("producer"))]
Engineer = Annotated[A.DeskUser, Depends(require("engineer"))]
Admin = Annotated[A.DeskUser, Depends(require("admin"))]


# --------------------------------------------------------------------------- bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Body):
    """``POST /session``."""

    user: str = Field(max_length=64)
    password: str = Field(max_length=A.MAX_PASSWORD)


class ReasonBody(_Body):
    """Optional body of confirm, release, cancel."""

    reason: str = Field(default="", max_length=500)


class HoldBody(_Body):
    """``POST /bookings/{id}/hold``: a slot (both or neither), optional expiry."""

    stage: str | None = Field(default=None, max_length=64)
    start: str | None = Field(default=None, max_length=100)
    expires: str | None = Field(default=None, max_length=100)
    reason: str = Field(default="", max_length=500)


class ChallengeBody(_Body):
    """``POST /bookings/{id}/challenge``: when the first hold must answer by."""

    deadline: str = Field(max_length=100)
    reason: str = Field(default="", max_length=500)


class SolveBody(_Body):
    """``POST /solve``."""

    time_limit_s: float = Field(default=5.0, gt=0, le=MAX_SOLVE_S)
    apply: bool = False


class OutageBody(_Body):
    """``POST /outages``."""

    stage: str = Field(max_length=64)
    start: str = Field(max_length=100)
    end: str = Field(max_length=100)
    reason: str = Field(default="", max_length=500)
    apply: bool = False
    time_limit_s: float = Field(default=5.0, gt=0, le=MAX_SOLVE_S)


class UserBody(_Body):
    """``POST /users``."""

    name: str = Field(max_length=64)
    role: str = Field(max_length=16)
    password: str = Field(max_length=A.MAX_PASSWORD)


class TokenBody(_Body):
    """``POST /tokens``: for ``user`` (default: the caller)."""

    user: str | None = Field(default=None, max_length=64)
    label: str = Field(default="", max_length=200)


# --------------------------------------------------------------------------- errors


@contextmanager
def _store_errors(store: BookingStore, booking_id: str | None = None,
                  tried: Any = None) -> Iterator[None]:
    """The store's exceptions as the contract's errors (refusals explained)."""
    try:
        yield
    except UnknownBooking:
        raise DeskError(404, "not_found", {"booking": booking_id},
                        what=f"booking {booking_id}") from None
    except BookingRefused as exc:
        raise refused(store, str(exc), tried, booking_id) from None
    except BookingInputError as exc:
        # a placement tried outside the booking's window: bad input, said in plain words
        # (in both languages) instead of the contract's "bookings[0].start: ..."
        sentences = placement_explanation(store, tried) if isinstance(tried, Booking) else []
        if not sentences:
            raise input_error(exc) from None
        err = DeskError(400, "invalid", {"field": "start", "errors": list(exc.errors),
                                         "explanation": [en for en, _ in sentences],
                                         "explanation_zh": [zh for _, zh in sentences]},
                        field="start", reason="; ".join(en for en, _ in sentences))
        err.params_zh = {"reason": "；".join(zh for _, zh in sentences)}
        raise err from None
    except PlanCheckFailed as exc:
        raise DeskError(500, "internal", {"violations": str(exc).splitlines()[:20]},
                        ref="plan-check") from None


def refused(store: BookingStore, message: str, tried: Any = None,
            booking_id: str | None = None) -> DeskError:
    """409 ``refused`` with the explanation in both languages.

    ``details.explanation`` (English) and ``details.explanation_zh`` list the same sentences;
    ``message`` and ``message_zh`` join them.
    """
    sentences = explain_refusal(store, message, tried, booking_id)
    err = DeskError(409, "refused", {"explanation": [en for en, _ in sentences],
                                     "explanation_zh": [zh for _, zh in sentences],
                                     "booking": booking_id},
                    reason="; ".join(en for en, _ in sentences))
    err.params_zh = {"reason": "；".join(zh for _, zh in sentences)}
    return err


#: pydantic error types in Chinese (the English is pydantic's own ``msg``).
_PYDANTIC_ZH = {
    "missing": "缺少此字段",
    "extra_forbidden": "未知字段（请检查拼写）",
    "string_type": "应为字符串",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "finite_number": "应为有限的数字",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "list_type": "应为列表",
    "string_too_long": "太长（最多 {max_length} 个字符）",
    "string_too_short": "太短（至少 {min_length} 个字符）",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应不小于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应不大于 {le}",
}


def _field_of(err: Any) -> str:
    return ".".join(str(p) for p in err.get("loc", ())
                    if p not in ("body", "query", "path")) or "body"


def _zh_reason(err: Any) -> str:
    template = _PYDANTIC_ZH.get(str(err.get("type", "")))
    if template is None:
        return str(err.get("msg", ""))
    try:
        return template.format(**(err.get("ctx") or {}))
    except (KeyError, IndexError, ValueError):
        return template.split("（")[0]


def _validation_error(exc: RequestValidationError) -> DeskError:
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            return DeskError(400, "bad_json", reason=str(err.get("ctx", {}).get("error", "")
                                                        or err.get("msg", "")))
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid", "type": ""}
    fld = _field_of(first)
    out = DeskError(422, "invalid", {"field": fld, "errors": [
        {"field": _field_of(e), "reason": str(e.get("msg", "")), "reason_zh": _zh_reason(e)}
        for e in errors[:20]]}, field=fld, reason=str(first.get("msg", "invalid")))
    out.params_zh = {"reason": _zh_reason(first)}
    return out


def _http_error(exc: StarletteHTTPException, method: str = "this method") -> DeskError:
    status = exc.status_code
    if status == 404:
        return DeskError(404, "not_found", what="no such resource")
    if status == 405:
        return DeskError(405, "method_not_allowed", method=method[:16])
    if status == 413:
        return DeskError(413, "too_large", limit=getattr(exc, "limit", "the"))
    if status == 400:
        return DeskError(400, "bad_json", reason=str(exc.detail))
    if status == 401:
        return DeskError(401, "unauthenticated")
    if status == 403:
        return DeskError(403, "forbidden", role="?", user="?", have="?")
    if status < 500:
        return DeskError(status, "invalid", field="request", reason=str(exc.detail))
    return DeskError(status, "internal", ref=str(exc.detail))


def _reply(state: DeskState | None, err: DeskError) -> JSONResponse:
    if state is not None:
        state.count(err.code)
    headers = {"Cache-Control": "no-store", **err.headers}
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


class TooLarge(StarletteHTTPException):
    """A body longer than ``max_body_bytes`` (raised while it is read)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "too large")
        self.limit = limit


class NulInBody(StarletteHTTPException):
    """A body carrying a NUL character (raw, or escaped in JSON as backslash-u0000)."""

    def __init__(self) -> None:
        super().__init__(400, "NUL in body")


_NUL_ESCAPE = re.compile(rb"\\u0000", re.IGNORECASE)
NUL_REASON = "text must not contain NUL (U+0000) characters"


def _has_nul(chunk: bytes) -> bool:
    return b"\x00" in chunk or _NUL_ESCAPE.search(chunk) is not None


class _Guard:
    """Outermost ASGI layer: body size limit, NUL refused, a crash catch-all, safe headers.

    No text the desk stores may hold a NUL character (PostgreSQL's text cannot, and no name,
    reason or token needs one), so a path, query or body carrying one is refused here, the
    same way on either backend.
    """

    def __init__(self, app: ASGIApp, max_body: int, state: DeskState) -> None:
        self.app = app
        self.max_body = max_body
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length < 0 or length > self.max_body:
                    err = DeskError(413, "too_large", limit=self.max_body) if length >= 0 \
                        else DeskError(400, "bad_json", reason="bad Content-Length")
                    await _reply(self.state, err)(scope, receive, send)
                    return
        query = bytes(scope.get("query_string", b""))
        nul_path = "\x00" in str(scope.get("path", ""))
        if nul_path or b"%00" in query or b"\x00" in query:
            self.state.count("nul")
            err = DeskError(404, "not_found", what="a path with a NUL character") if nul_path else \
                DeskError(422, "invalid", field="query", reason=NUL_REASON)
            await _reply(self.state, err)(scope, receive, send)
            return
        seen = 0
        tail = b""
        api = str(scope.get("path", "")).startswith("/api/")

        async def limited() -> Message:
            nonlocal seen, tail
            msg = await receive()
            if msg["type"] == "http.request":
                body = msg.get("body", b"")
                seen += len(body)
                if seen > self.max_body:
                    raise TooLarge(self.max_body)
                if _has_nul(tail + body):  # an escape split across two chunks too
                    raise NulInBody
                tail = (tail + body)[-5:]
            return msg

        async def sending(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
                headers = list(msg.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"x-frame-options", b"DENY"),
                            (b"referrer-policy", b"no-referrer")]
                if api and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))  # bookings are private
                msg = {**msg, "headers": headers}
            await send(msg)

        try:
            await self.app(scope, limited, sending)
        except Exception as exc:  # the catch-all: log, count, answer, keep serving
            ref = secrets.token_hex(4)
            log.exception("desk: unhandled error %s on %s %s", ref, scope.get("method"),
                          scope.get("path"))
            self.state.count("crash")
            if not started:
                if isinstance(exc, TooLarge):
                    err = DeskError(413, "too_large", limit=self.max_body)
                else:
                    err = DeskError(500, "internal", ref=ref)
                await _reply(self.state, err)(scope, receive, send)


# --------------------------------------------------------------------------- the app


def _seed(pool: StorePool, config: DeskConfig) -> None:
    with pool.store() as s:
        A.ensure_schema(s.conn)
        n = s.conn.execute("SELECT COUNT(*) FROM stages").fetchone()[0]
        if n == 0 and config.seed is not None:
            try:
                doc = json.loads(config.seed.read_text(encoding="utf-8"))
                if not isinstance(doc, dict) or not doc.get("stages"):
                    raise ConfigError(config.seed, ["lists no stages (expected an object with "
                                                    "slot_minutes, stages and pools)"])
                s.setup(doc, actor="desk-seed")
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ConfigError(config.seed, [f"cannot read the seed: {exc}"]) from None
            except BookingInputError as exc:
                raise ConfigError(config.seed, exc.errors) from None


def open_pool(config: DeskConfig, clock: Callable[[], datetime] | None = None) -> StorePool:
    """The store pool for ``config`` with the desk tables made and the seed loaded."""
    pool = StorePool(config.db, clock=clock or (lambda: datetime.now(UTC)))
    try:
        _seed(pool, config)
    except BaseException:
        pool.close()
        raise
    return pool


def create_app(config: DeskConfig, *, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The desk's ASGI app on ``config.db`` (created and seeded when new).

    Args:
        config: the desk's configuration.
        clock: "now" for the store and sessions (tests inject one).

    Raises:
        scheduler.dbfile.DatabaseFileError: the database cannot be used.
        stagectl.config.ConfigError: the seed cannot be read or is invalid (file, problems).
    """
    now = clock or (lambda: datetime.now(UTC))
    pool = open_pool(config, now)
    state = DeskState(config=config, pool=pool, clock=now)
    app = FastAPI(title="stagectl producer desk", version="1",
                  description="Stage bookings and the render farm (docs/desk-api.md).")
    app.state.desk = state

    async def desk_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DeskError)
        return _reply(state, exc)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _reply(state, _validation_error(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc, TooLarge):
            return _reply(state, DeskError(413, "too_large", limit=exc.limit))
        if isinstance(exc, NulInBody):
            state.count("nul")
            return _reply(state, DeskError(400, "bad_json", reason=NUL_REASON))
        return _reply(state, _http_error(exc, request.method))

    async def crash(request: Request, exc: Exception) -> Response:
        ref = secrets.token_hex(4)
        log.error("desk: unhandled error %s on %s %s", ref, request.method, request.url.path,
                  exc_info=exc)
        state.count("crash")
        return _reply(state, DeskError(500, "internal", ref=ref))

    async def store_down(request: Request, exc: Exception) -> Response:
        if isinstance(exc, sqlite3.ProgrammingError):  # misuse of a connection: a bug
            return await crash(request, exc)
        if isinstance(exc, sqlite3.Error) and isinstance(config.db, Path):
            exc = explain(config.db, exc, BOOKING_FILE)
        log.warning("desk: store error on %s %s: %s", request.method, request.url.path, exc)
        return _reply(state, DeskError(503, "store_unavailable", reason=str(exc)[:300]))

    app.add_exception_handler(DeskError, desk_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DatabaseFileError, store_down)
    app.add_exception_handler(sqlite3.DatabaseError, store_down)
    app.add_exception_handler(Exception, crash)

    app.include_router(_api_router())
    try:
        from stagectl.desk import ics
    except ModuleNotFoundError as exc:
        if exc.name != "stagectl.desk.ics":
            raise
    else:
        if hasattr(ics, "router"):
            app.include_router(ics.router)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        page = STATIC / "index.html"
        if page.is_file():
            return FileResponse(page, media_type="text/html; charset=utf-8",
                                headers={"Cache-Control": "no-cache"})
        return HTMLResponse("<!doctype html><title>stagectl desk</title>"
                            "<p>stagectl producer desk: the API is at <a href='/docs'>/docs</a>"
                            "</p>")

    from stagectl.desk.docs import mount_docs

    mount_docs(app)  # /docs and /redoc from local files: a studio network may reach no CDN
    app.add_middleware(_Guard, max_body=config.max_body_bytes, state=state)
    return app


def close_app(app: FastAPI) -> None:
    """Close the app's store connections (the server calls this after it stops)."""
    state: DeskState | None = getattr(app.state, "desk", None)
    if state is not None:
        state.pool.close()


# --------------------------------------------------------------------------- resources


def _me(user: A.DeskUser) -> dict[str, Any]:
    return {"user": user.name, "role": user.role}


def _api_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1")

    # --- session ---------------------------------------------------------------------
    @r.post("/session", tags=["session"])
    def login(body: LoginBody, request: Request, response: Response) -> dict[str, Any]:
        state = _state(request)
        addr = request.client.host if request.client else "?"
        keys = (f"user:{body.user}", f"addr:{addr}")
        wait = state.throttle.wait_s(*keys)
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            raise DeskError(429, "slow_down", {"retry_after_s": seconds},
                            headers={"Retry-After": str(seconds)}, seconds=seconds)
        with state.pool.store() as s:
            user = A.verify_login(s.conn, body.user, body.password)
            if user is None:
                state.throttle.failed(*keys)
                state.count("login_failed")
                raise DeskError(401, "unauthenticated", template="bad_login")
            cookie, csrf = A.create_session(s.conn, user, state.clock)
        state.throttle.succeeded(keys[0])
        response.set_cookie(A.SESSION_COOKIE, cookie, httponly=True, samesite="strict",
                            path="/",
                            secure=state.config.secure_cookies or request.url.scheme == "https")
        # no Max-Age: the session ends when it is idle (server side) or the browser closes
        response.headers["Cache-Control"] = "no-store"
        return {"user": user.name, "role": user.role, "csrf": csrf}

    @r.delete("/session", tags=["session"])
    def logout(request: Request, response: Response,
               user: Annotated[A.DeskUser, Depends(current_user)]) -> dict[str, Any]:
        cookie = request.cookies.get(A.SESSION_COOKIE)
        if cookie:
            with _state(request).pool.store() as s:
                A.delete_session(s.conn, cookie)
        response.delete_cookie(A.SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return {"user": user.name, "logged_out": True}

    @r.get("/me", tags=["session"])
    def me(request: Request, user: Annotated[A.DeskUser, Depends(current_user)],
           response: Response) -> dict[str, Any]:
        # a session also gets its csrf token back: a new tab of the page needs it, and only
        # this origin can read the reply (no CORS; the cookie is SameSite=Strict)
        csrf = getattr(request.state, "csrf", None)
        response.headers["Cache-Control"] = "no-store"
        return {**_me(user), "csrf": csrf} if csrf else _me(user)

    # --- stages ----------------------------------------------------------------------
    @r.get("/sites", tags=["stages"])
    def sites(request: Request, user: Viewer) -> list[dict[str, Any]]:
        with _state(request).pool.store() as s:
            stages = stages_of(s)
        out: dict[str, dict[str, Any]] = {}
        for st in stages.values():
            site = out.setdefault(st.site or st.id, {"site": st.site or st.id,
                                                     "timezone": st.timezone, "stages": []})
            site["stages"].append(st.id)
        return list(out.values())

    @r.get("/stages", tags=["stages"])
    def stages(request: Request, user: Viewer) -> list[dict[str, Any]]:
        with _state(request).pool.store() as s:
            found = stages_of(s)
            outages = s.outages()
        return [stage_json(st, outages) for st in found.values()]

    @r.get("/stages/{stage_id}", tags=["stages"])
    def stage(stage_id: str, request: Request, user: Viewer) -> dict[str, Any]:
        with _state(request).pool.store() as s:
            found = stages_of(s)
            outages = s.outages()
        if stage_id not in found:
            raise DeskError(404, "not_found", {"stage": stage_id}, what=f"stage {stage_id}")
        return stage_json(found[stage_id], outages)

    @r.get("/pools", tags=["stages"])
    def pools(request: Request, user: Viewer) -> list[dict[str, Any]]:
        with _state(request).pool.store() as s:
            problem = s.configuration()
        return [{"id": p.id, "capacity": p.capacity, "kind": p.kind} for p in problem.pools]

    # --- bookings --------------------------------------------------------------------
    @r.get("/bookings", tags=["bookings"])
    def bookings(
        request: Request, user: Viewer,
        start: Annotated[str | None, Query(alias="from", max_length=100)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=100)] = None,
        stage: Annotated[str | None, Query(max_length=64)] = None,
        production: Annotated[str | None, Query(max_length=200)] = None,
        status: Annotated[str | None, Query(max_length=200)] = None,
    ) -> list[dict[str, Any]]:
        statuses = None
        if status:
            try:
                statuses = frozenset(Status(x.strip()) for x in status.split(",") if x.strip())
            except ValueError:
                raise DeskError(400, "invalid", {"field": "status"}, field="status",
                                reason=f"expected a comma-separated list of "
                                       f"{', '.join(x.value for x in Status)}") from None
        state = _state(request)
        with state.pool.store() as s:
            state.sweep(s)
            st = stages_of(s)
            if stage is not None and stage not in st:
                raise DeskError(404, "not_found", {"stage": stage}, what=f"stage {stage}")
            zones = [zone_for(st, stage)]
            lo = read_time(start, zones, "from") if start else None
            hi = read_time(end, zones, "to", end_of_day=True) if end else None
            records = s.records(statuses, stage, production)
        out = []
        for rec in records:
            b = rec.booking
            a, z = (b.start, b.end) if b.start is not None else (b.earliest_start,
                                                                 b.latest_end)
            if lo is not None and z is not None and z <= lo:
                continue
            if hi is not None and a is not None and a >= hi:
                continue
            out.append(booking_json(rec, st))
        return out

    @r.post("/bookings", tags=["bookings"], status_code=201)
    def request_booking(
        request: Request, user: Producer,
        body: Annotated[dict[str, Any], Body(examples=[{
            "production": "Dune 3", "duration_minutes": 480, "priority": 3,
            "earliest_start": "2031-03-04 08:00", "latest_end": "2031-03-06",
            "requires": ["led_8k"]}])],
    ) -> dict[str, Any]:
        spec = dict(body)
        reason = spec.pop("reason", "")
        if not isinstance(reason, str) or len(reason) > 500:
            raise DeskError(400, "invalid", {"field": "reason"}, field="reason",
                            reason="a string of at most 500 characters")
        with _state(request).pool.store(write=True) as s:
            st = stages_of(s)
            spec, notes = read_request(spec, st)
            with _store_errors(s, spec.get("id") if isinstance(spec.get("id"), str) else None):
                rec = s.request(spec, user.name, reason)
            return {**booking_json(rec, st), "notes": notes}

    @r.get("/bookings/{booking_id}", tags=["bookings"])
    def get_booking(booking_id: str, request: Request, user: Viewer) -> dict[str, Any]:
        state = _state(request)
        with state.pool.store() as s, _store_errors(s, booking_id):
            state.sweep(s)
            return booking_json(s.get(booking_id), stages_of(s))

    @r.get("/bookings/{booking_id}/history", tags=["bookings"])
    def booking_history(booking_id: str, request: Request,
                        user: Viewer) -> list[dict[str, Any]]:
        with _state(request).pool.store() as s, _store_errors(s, booking_id):
            st = stages_of(s)
            return history_json(s, s.get(booking_id), st)

    @r.post("/bookings/{booking_id}/hold", tags=["lifecycle"])
    def hold(booking_id: str, request: Request, user: Producer,
             body: HoldBody | None = None) -> dict[str, Any]:
        body = body or HoldBody()
        if (body.stage is None) != (body.start is None):
            raise DeskError(400, "invalid", {"field": "start" if body.stage else "stage"},
                            field="stage/start",
                            reason="give both stage and start, or neither (then the wished-for "
                                   "slot, else the earliest free one, is held)")
        notes: list[str] = []
        with _state(request).pool.store(write=True) as s:
            st = stages_of(s)
            with _store_errors(s, booking_id):
                rec = s.get(booking_id)
            if body.stage is not None and body.stage not in st:
                raise DeskError(400, "invalid", {"field": "stage"}, field="stage",
                                reason=f"unknown stage {body.stage!r}")
            zones = [st[body.stage].timezone] if body.stage else [_booking_zone(rec, st)]
            start = read_time(body.start, zones, "start", notes=notes) if body.start else None
            expires = read_time(body.expires, zones, "expires", notes=notes) \
                if body.expires else None
            if expires is not None and expires <= _state(request).clock():
                raise DeskError(400, "invalid", {"field": "expires"}, field="expires",
                                reason="must be in the future")
            tried = rec.booking
            if body.stage is not None and start is not None:
                tried = replace(tried, stage=body.stage, start=start)
            with _store_errors(s, booking_id, tried):
                rec = s.hold(booking_id, user.name, body.stage, start, expires, body.reason)
            return {**booking_json(rec, st), "notes": notes}

    def change(name: str, booking_id: str, request: Request, user: A.DeskUser,
               body: ReasonBody | None) -> dict[str, Any]:
        with _state(request).pool.store(write=True) as s:
            st = stages_of(s)
            with _store_errors(s, booking_id):
                before = s.get(booking_id)
            with _store_errors(s, booking_id, before.booking):
                rec = getattr(s, name)(booking_id, user.name, (body or ReasonBody()).reason)
            return {**booking_json(rec, st), "notes": []}

    @r.post("/bookings/{booking_id}/confirm", tags=["lifecycle"])
    def confirm(booking_id: str, request: Request, user: Producer,
                body: ReasonBody | None = None) -> dict[str, Any]:
        return change("confirm", booking_id, request, user, body)

    @r.post("/bookings/{booking_id}/release", tags=["lifecycle"])
    def release(booking_id: str, request: Request, user: Producer,
                body: ReasonBody | None = None) -> dict[str, Any]:
        return change("release", booking_id, request, user, body)

    @r.post("/bookings/{booking_id}/cancel", tags=["lifecycle"])
    def cancel(booking_id: str, request: Request, user: Producer,
               body: ReasonBody | None = None) -> dict[str, Any]:
        return change("cancel", booking_id, request, user, body)

    @r.post("/bookings/{booking_id}/challenge", tags=["lifecycle"])
    def challenge(booking_id: str, body: ChallengeBody, request: Request,
                  user: Producer) -> dict[str, Any]:
        notes: list[str] = []
        state = _state(request)
        with state.pool.store(write=True) as s:
            st = stages_of(s)
            with _store_errors(s, booking_id):
                rec = s.get(booking_id)
            deadline = read_time(body.deadline, [_booking_zone(rec, st)], "deadline",
                                 notes=notes)
            if deadline <= state.clock():
                raise DeskError(400, "invalid", {"field": "deadline"}, field="deadline",
                                reason="must be in the future")
            with _store_errors(s, booking_id):
                first = s.challenge(booking_id, user.name, deadline, body.reason)
                rec = s.get(booking_id)
            return {**booking_json(rec, st), "challenged": booking_json(first, st),
                    "notes": notes}

    # --- plans -----------------------------------------------------------------------
    @r.post("/solve", tags=["plans"])
    def solve_(request: Request, user: Producer, body: SolveBody | None = None
               ) -> dict[str, Any]:
        body = body or SolveBody()
        if body.apply and not user.has("engineer"):
            raise DeskError(403, "forbidden", {"role": "engineer"}, role="engineer",
                            user=user.name, have=user.role)
        state = _state(request)
        with state.pool.store() as s, _store_errors(s):
            version = s.version()  # (before the read: a change after it makes a plan stale)
            problem = s.problem()
            if body.apply:
                kept = state.recall(("solve",))
                plan = None
                if kept is not None and kept[0] == version:  # apply what the preview showed
                    try:
                        s.apply_plan(kept[1], kept[2], user.name, "solve", version)
                        problem, plan = kept[1], kept[2]
                    except BookingRefused:  # changed in between after all: plan again
                        plan = None
                if plan is None:
                    plan = s.solve(body.time_limit_s, user.name, apply=True)
            else:  # preview: a pure computation on what was read; nothing is written
                plan = solve(problem, body.time_limit_s)
                state.remember(("solve",), (version, problem, plan))
            st = problem.stage_by_id()
            by_id = problem.booking_by_id()
            now = {r.id: r.status.value for r in s.records()} if body.apply else {}
        return {
            "assignments": [
                {"booking": a.id, "production": by_id[a.id].production if a.id in by_id else "",
                 "stage": a.stage, "start": iso_in(a.start, st, a.stage),
                 "end": iso_in(a.end, st, a.stage), "timezone": zone_for(st, a.stage),
                 **({"status": now.get(a.id)} if body.apply else {})}
                for a in plan.assignments],
            "rejected": [{"booking": x.id, "production": by_id[x.id].production
                          if x.id in by_id else "", "explanation": [x.reason]}
                         for x in plan.rejected],
            "applied": body.apply,
            "stats": {"status": plan.status, "objective": round(plan.objective, 4),
                      "bound": round(plan.bound, 4),
                      "greedy_objective": round(plan.greedy_objective, 4),
                      "solve_seconds": round(plan.solve_seconds, 3), "source": plan.source,
                      "placed": len(plan.assignments), "rejected": len(plan.rejected)},
        }

    @r.post("/outages", tags=["plans"])
    def outage(body: OutageBody, request: Request, user: Producer) -> dict[str, Any]:
        if body.apply and not user.has("engineer"):
            raise DeskError(403, "forbidden", {"role": "engineer"}, role="engineer",
                            user=user.name, have=user.role)
        notes: list[str] = []
        moved: list[dict[str, Any]]
        unplaced: list[dict[str, Any]]
        state = _state(request)
        with state.pool.store() as s:
            st = stages_of(s)
            if body.stage not in st:
                raise DeskError(400, "invalid", {"field": "stage"}, field="stage",
                                reason=f"unknown stage {body.stage!r} (stages: "
                                       f"{', '.join(sorted(st))})")
            tz = st[body.stage].timezone
            start = read_time(body.start, [tz], "start", notes=notes)
            end = read_time(body.end, [tz], "end", end_of_day=True, notes=notes)
            if end <= start:
                raise DeskError(400, "invalid", {"field": "end"}, field="end",
                                reason="must be after start")
            if end - start > timedelta(days=366):
                raise DeskError(400, "invalid", {"field": "end"}, field="end",
                                reason="an outage of at most a year")
            key = ("outage", body.stage, start, end)
            with _store_errors(s):
                if body.apply:  # what the preview showed, if nothing changed since
                    rep = s.outage(body.stage, start, end, user.name, body.reason,
                                   body.time_limit_s, previewed=state.recall(key))
                else:  # the same re-plan, the outage added in memory only: nothing stored
                    rep = s.outage_plan(body.stage, start, end, body.time_limit_s)
                    state.remember(key, rep)
                moved = [dict(m, from_start=datetime.fromisoformat(m["from_start"])
                              if m["from_start"] else None,
                              to_start=datetime.fromisoformat(m["to_start"]))
                         for m in rep.moved]
                unplaced, kept = rep.unplaced, rep.kept
                prods = {r.id: r.booking.production for r in s.records()}
        return {
            "stage": body.stage, "start": iso_in(start, st, body.stage),
            "end": iso_in(end, st, body.stage), "timezone": tz, "reason": body.reason,
            "moved": [{"booking": m["id"], "production": prods.get(m["id"], ""),
                       "from_stage": m["from_stage"],
                       "from_start": iso_in(m["from_start"], st, m["from_stage"]),
                       "to_stage": m["to_stage"],
                       "to_start": iso_in(m["to_start"], st, m["to_stage"]),
                       "timezone": zone_for(st, m["to_stage"])} for m in moved],
            "unplaced": [{"booking": u["id"], "production": prods.get(u["id"], ""),
                          "explanation": [u["reason"]]} for u in unplaced],
            "kept": kept, "applied": body.apply, "notes": notes,
            "solve_seconds": rep.solve_seconds, "source": rep.source,
        }

    # --- reports ---------------------------------------------------------------------
    @r.get("/reports", tags=["reports"])
    def reports(
        request: Request, user: Viewer,
        start: Annotated[str | None, Query(alias="from", max_length=100)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=100)] = None,
    ) -> dict[str, Any]:
        state = _state(request)
        notes: list[str] = []
        with state.pool.store() as s:
            state.sweep(s)
            st = stages_of(s)
            tz = zone_for(st)
            if start:
                lo = read_time(start, [tz], "from", notes=notes)
            else:
                lo = state.clock().astimezone(_zone(tz)).replace(hour=0, minute=0, second=0,
                                                                 microsecond=0)
            hi = read_time(end, [tz], "to", end_of_day=True, notes=notes) if end \
                else lo + timedelta(days=30)
            if hi <= lo:
                raise DeskError(400, "invalid", {"field": "to"}, field="to",
                                reason="must be after from")
            if hi - lo > timedelta(days=3660):
                raise DeskError(400, "invalid", {"field": "to"}, field="to",
                                reason="a report of at most ten years")
            rows, site_rows = utilisation(list(st.values()), s.records(), lo, hi)
            holds = [booking_json(x, st) for x in s.records(frozenset({Status.HOLD}))]
        return {"from": iso_in(lo, st), "to": iso_in(hi, st), "timezone": tz,
                "stages": [x.to_json() for x in rows], "sites": [x.to_json() for x in site_rows],
                "revenue_cny": round(sum(x.revenue_cny for x in rows), 2),
                "holds": holds, "notes": notes}

    # --- farm ------------------------------------------------------------------------
    def farm(what: str, request: Request) -> dict[str, Any]:
        state = _state(request)
        with state.pool.store() as s:
            tz = zone_for(stages_of(s))
        return farm_call(state.config, what, tz)

    @r.get("/farm/jobs", tags=["farm"])
    def farm_jobs(request: Request, user: Viewer) -> dict[str, Any]:
        return farm("jobs", request)

    @r.get("/farm/nodes", tags=["farm"])
    def farm_nodes(request: Request, user: Viewer) -> dict[str, Any]:
        return farm("nodes", request)

    @r.get("/farm/cost", tags=["farm"])
    def farm_cost(request: Request, user: Viewer) -> dict[str, Any]:
        return farm("cost", request)

    # --- users and tokens ------------------------------------------------------------
    @r.get("/users", tags=["admin"])
    def users(request: Request, user: Admin) -> list[dict[str, Any]]:
        with _state(request).pool.store() as s:
            return A.list_users(s.conn)

    @r.post("/users", tags=["admin"], status_code=201)
    def add_user(body: UserBody, request: Request, user: Admin) -> dict[str, Any]:
        state = _state(request)
        with state.pool.store() as s:
            try:
                made = A.add_user(s.conn, body.name, body.role, body.password, state.clock)
                A.audit(s.conn, user.name, "user add", made.name, state.clock, role=made.role)
            except A.UserError as exc:
                text = str(exc)
                fld = text.split(" ", 1)[0].rstrip(":") \
                    if text.startswith(("role", "password")) else "name"
                if "already exists" in text:
                    zh = f"用户 {body.name} 已存在"
                    err = DeskError(409, "refused", {"explanation": [text],
                                                     "explanation_zh": [zh]}, reason=text)
                    err.params_zh = {"reason": zh}
                    raise err from None
                raise DeskError(400, "invalid", {"field": fld}, field=fld,
                                reason=str(exc)) from None
        log.info("desk: %s added user %s (%s)", user.name, made.name, made.role)
        return {"name": made.name, "role": made.role, "disabled": False}

    @r.post("/users/{name}/disable", tags=["admin"])
    def disable(name: str, request: Request, user: Admin) -> dict[str, Any]:
        state = _state(request)
        with state.pool.store() as s:
            if not A.disable_user(s.conn, name, state.clock):
                raise DeskError(404, "not_found", {"user": name}, what=f"user {name}")
            state.tokens.forget_user(name)  # its tokens stop working at once
            A.audit(s.conn, user.name, "user disable", name, state.clock)
            found = [u for u in A.list_users(s.conn) if u["name"] == name]
        log.info("desk: %s disabled user %s", user.name, name)
        return found[0]

    @r.post("/tokens", tags=["admin"], status_code=201)
    def token(request: Request, user: Admin, body: TokenBody | None = None) -> dict[str, Any]:
        body = body or TokenBody()
        state = _state(request)
        name = body.user or user.name
        with state.pool.store() as s:
            try:
                made = A.create_token(s.conn, name, body.label, state.clock)
            except A.UserError as exc:
                raise DeskError(404, "not_found", {"user": name}, what=str(exc)) from None
            A.audit(s.conn, user.name, "token create", name, state.clock, label=body.label)
        return {"user": name, "label": body.label, "token": made,
                "note": "shown once: only its hash is stored"}

    # --- feeds -----------------------------------------------------------------------
    @r.get("/feeds", tags=["feeds"])
    def feeds(request: Request, user: Viewer) -> dict[str, Any]:
        with _state(request).pool.store() as s:
            tok = A.feed_token(s.conn, user.name)
            st = stages_of(s)
            productions = sorted({x.booking.production for x in s.records()
                                  if x.booking.production})
        base = str(request.base_url).rstrip("/")
        q = f"?token={quote(tok or '', safe='')}"
        return {
            "stages": [{"stage": sid, "url": f"{base}/ics/stage/{quote(sid, safe='')}.ics{q}"}
                       for sid in st],
            "productions": [{"production": p,
                             "url": f"{base}/ics/production/{quote(p, safe='')}.ics{q}"}
                            for p in productions],
        }

    @r.get("/audit", tags=["admin"])
    def audit(request: Request, user: Admin) -> list[dict[str, Any]]:
        state = _state(request)
        with state.pool.store() as s:
            rows = A.audit_log(s.conn)
            tz = zone_for(stages_of(s))
        for row in rows:
            row["at"] = iso(datetime.fromisoformat(row["at"]), tz)
        return rows

    @r.get("/stats", tags=["admin"])
    def stats(request: Request, user: Admin) -> dict[str, Any]:
        state = _state(request)
        with state.lock:
            counts = dict(state.counters)
        return {"errors": counts, "login_refused": state.throttle.refused}

    return r


def _zone(tz: str) -> Any:
    from zoneinfo import ZoneInfo
    return ZoneInfo(tz)


def iso_in(dt: datetime | None, stages: dict[str, Any], stage: str | None = None) -> str | None:
    """ISO 8601 with the offset of the stage's zone (else the main zone)."""
    return iso(dt, zone_for(stages, stage))

