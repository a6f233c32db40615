"""What the vendor HTTP drivers (Tessera, HELIOS, NovaStar) share: requests, polling, writes.

A vendor driver subclasses :class:`HttpLedProcessor` and supplies four coroutines:

- ``_poll()``: read the processor's state (one or a few requests) and :meth:`_report` it;
- ``_write(values)``: send desired-state values (already validated) and report the echo;
- ``_recall(number)``: recall a preset;
- optionally ``_connect()``: learn the processor once per (re)connection (topology, identity).

Every request goes through :meth:`HttpLedProcessor.request`, which turns whatever came back
into parsed JSON or a :class:`ReplyError` carrying a :class:`~drivers.device.Problem` with a
code from the problems table (``http_timeout``, ``http_unreachable``, ``http_redirect``,
``http_html``, ``http_malformed``, ``http_status``, ``http_auth``, ``http_too_large``,
``vendor_error``). Nothing a processor (or anything pretending to be one) sends can raise
anything else.

The link: the device is *online* from the first good poll. A failed poll or write counts; two
failures in a row, or no good reply for ``timeout_s``, take it *offline* with the reason of the
last failure; when it answers properly again the desired state is re-applied
(:meth:`drivers.device.Device._link_up`). A processor restart seen by the vendor driver
(uptime going backwards) is handled the same way (:meth:`_restarted`).

One request at a time per processor (``_lock``): writes go before the next poll, a poll never
overlaps another, and the next poll starts one interval after the last one *finished*. If a
round trip takes more than half the interval, the interval doubles (up to
:data:`MAX_POLL_INTERVAL_S`) and comes back when replies are fast again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from abc import abstractmethod
from typing import Any

import aiohttp

from drivers.device import Backoff, CommandError, Health, Problem, problem_dicts
from drivers.led.model import LedDevice, wall_problems
from drivers.messages import message

MAX_POLL_INTERVAL_S = 5.0
MAX_REPLY_BYTES = 8 * 1024 * 1024  # a Tessera whole tree with 2,200 panels is well under this
OFFLINE_AFTER_FAILURES = 2
WRITE_RETRY_S = 0.1  # a write that was not answered is sent again after this
SIM_FAULT_PATH = "/__sim__/fault"  # every vendor simulator's fault-injection endpoint
TEXT_CHARS = 200  # what of a processor's own text goes into a message


class ReplyError(Exception):
    """A request that did not give a usable answer.

    Attributes:
        problem: the reason, machine-readable (its ``code`` is in the problems table).
        refusal: True when the processor answered and said no (a vendor error, an echo that
            kept the old value): the link is fine, the command is not. False for transport
            and protocol failures (no answer, HTML, malformed JSON, a redirect, a 5xx).
    """

    def __init__(self, problem: Problem, refusal: bool = False) -> None:
        self.problem = problem
        self.refusal = refusal
        super().__init__(str(problem))


def clip(text: object, limit: int = TEXT_CHARS) -> str:
    """A processor's text, made safe to show: printable, one line, bounded."""
    out = "".join(c if c.isprintable() else " " for c in str(text))[:limit]
    return out.strip()


def decode_json(body: bytes, where: str) -> Any:
    """Parse a reply body as JSON, or raise :class:`ReplyError` (``http_malformed``/``http_html``).

    An HTML page (a captive portal or a login page in front of the processor) is named as
    such, not as malformed JSON. An empty body is malformed (an empty 200 is "not there" on
    some NovaStar units; the caller decides what that means).
    """
    stripped = body.lstrip()[:64].lower()
    if stripped.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        raise ReplyError(Problem(f"{where} answered a web page, not JSON (a login or captive "
                                 "page in front of the processor?)", "http_html", address=where))
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ReplyError(Problem(f"{where} answered malformed JSON ({clip(exc, 80)})",
                                 "http_malformed", address=where)) from None


def read_credentials(file: str | None, env: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from a file or an environment variable holding ``user:password``.

    The TOML names where the secret is, never the secret. A file's first line is used.

    Raises:
        ValueError: the file or variable is missing, empty, or has no ``:`` (the message names
            the file or variable, never its contents).
    """
    import os

    if file:
        try:
            with open(file, encoding="utf-8") as fh:
                text = fh.readline().strip()
        except OSError as exc:
            raise ValueError(f"credentials file {file}: {exc.strerror or exc}") from None
        where = f"credentials file {file}"
    elif env:
        text = os.environ.get(env, "").strip()
        where = f"environment variable {env}"
    else:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise ValueError(f"{where}: expected one line 'user:password'")
    return user, password


class HttpLedProcessor(LedDevice):
    """An LED processor reached over its vendor's HTTP API (see the module doc).

    Args:
        name: device name from the stage config.
        base_url: ``http://host:port`` (no path; each driver knows its API root).
        max_brightness_nits: the wall's limit (and, for percent APIs, the nits at 100 %).
        poll_interval_s: time between the end of one poll and the start of the next.
        timeout_s: no good reply for this long takes the device offline.
        request_timeout_s: limit on one request, connect to last byte.
        credentials: ``(user, password)`` for Basic or Digest auth (HELIOS), or None.
        auth: ``basic`` or ``digest``.
    """

    def __init__(self, name: str, base_url: str, *, max_brightness_nits: float = 1500.0,
                 poll_interval_s: float = 1.0, timeout_s: float = 3.0,
                 request_timeout_s: float = 2.0, credentials: tuple[str, str] | None = None,
                 auth: str = "basic", backoff: Backoff | None = None) -> None:
        super().__init__(name, backoff or Backoff(initial_s=0.5, max_s=5.0))
        self.base_url = base_url.rstrip("/")
        self.max_brightness_nits = max_brightness_nits
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s
        self.request_timeout_s = min(request_timeout_s, timeout_s)
        self._credentials = credentials
        self._auth = auth
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self._pending: dict[str, Any] = {}
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._polling = False  # a poll holds the lock (a write may preempt it)
        self._last_ok = 0.0
        self._failures = 0
        self._last_problem: Problem | None = None
        self._interval = poll_interval_s
        self._vendor_problems: list[Problem] = []
        self.info: dict[str, Any] = {}

    # ---- requests ---------------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: Any = None,
                      body: Any = None, raw_body: bytes | None = None,
                      headers: dict[str, str] | None = None,
                      allow_empty: bool = False) -> tuple[Any, dict[str, str]]:
        """One request; returns ``(parsed JSON, response headers)`` or raises :class:`ReplyError`.

        Args:
            method: HTTP method.
            path: path below :attr:`base_url` (``/api/override/freeze/enabled``).
            params: query parameters (a dict, or a list of pairs; a bare key is ``(key, "")``).
            body: a JSON-ready value sent as ``application/json``.
            raw_body: bytes sent as they are (with ``headers``), instead of ``body``.
            headers: extra request headers.
            allow_empty: an empty 2xx body is returned as ``None`` instead of refused.
        """
        if self._session is None or self._session.closed:
            raise ReplyError(Problem("not started", "not_started"))
        url = self.base_url + path
        where = f"{self.base_url}"
        data: bytes | None = raw_body
        send_headers = dict(headers or {})
        if body is not None and raw_body is None:
            data = json.dumps(body, separators=(",", ":")).encode()
            send_headers.setdefault("Content-Type", "application/json")
        self.counters["http_requests"] += 1
        try:
            async with self._session.request(
                    method, url, params=params, data=data, headers=send_headers,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self.request_timeout_s)) as resp:
                status = resp.status
                reply_headers = {k.lower(): v for k, v in resp.headers.items()}
                if 300 <= status < 400:
                    target = clip(resp.headers.get("Location", "?"), 120)
                    raise ReplyError(Problem(f"{where} redirected to {target} (HTTP {status}; "
                                             "a login page in front of the processor?)",
                                             "http_redirect", address=where, status=status,
                                             location=target))
                if status == 401 or (status == 403 and self._credentials is not None):
                    # without credentials a 403 is the processor's own refusal (Tessera's
                    # "Access denied"): read on below, with its body
                    raise ReplyError(Problem(f"{where} refused the credentials (HTTP {status}); "
                                             "check the credentials file or variable",
                                             "http_auth", address=where, status=status))
                body_bytes = await resp.content.read(MAX_REPLY_BYTES + 1)
                if len(body_bytes) > MAX_REPLY_BYTES:
                    raise ReplyError(Problem(f"{where} answered more than "
                                             f"{MAX_REPLY_BYTES // 1048576} MiB",
                                             "http_too_large", address=where))
        except ReplyError:
            raise
        except TimeoutError:
            raise ReplyError(Problem(f"no reply from {where} within {self.request_timeout_s:g} s",
                                     "http_timeout", address=where,
                                     seconds=self.request_timeout_s)) from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error = clip(exc, 120) or type(exc).__name__
            raise ReplyError(Problem(f"cannot reach {where}: {error}", "http_unreachable",
                                     address=where, error=error)) from None
        self.counters["http_replies"] += 1
        if status >= 400:
            text = ""
            with contextlib.suppress(Exception):
                text = clip(body_bytes.decode("utf-8", "replace"), 120)
            sentence = f"{where} answered HTTP {status}" + (f": {text}" if text else "")
            raise ReplyError(Problem(sentence, "http_status", address=where, status=status,
                                     body=text),
                             refusal=400 <= status < 500 and status not in (404, 406))
        if not body_bytes.strip():
            if allow_empty:
                return None, reply_headers
            raise ReplyError(Problem(f"{where} answered an empty body (HTTP {status})",
                                     "http_malformed", address=where))
        ctype = reply_headers.get("content-type", "")
        if "html" in ctype:
            raise ReplyError(Problem(f"{where} answered a web page, not JSON (a login or captive "
                                     "page in front of the processor?)", "http_html",
                                     address=where))
        return decode_json(body_bytes, where), reply_headers

    # ---- Device hooks -----------------------------------------------------------------

    async def _open(self) -> None:
        headers = {"User-Agent": "stagectl"}
        middlewares: tuple[Any, ...] = ()
        if self._credentials is not None:
            user, password = self._credentials
            if self._auth == "digest":
                middlewares = (aiohttp.DigestAuthMiddleware(user, password),)
            else:  # RFC 7617; the header lives only in this session, never in a message
                token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
                headers["Authorization"] = f"Basic {token}"
        connector = aiohttp.TCPConnector(limit=2, force_close=False, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(connector=connector, middlewares=middlewares,
                                              headers=headers)
        self._writer = asyncio.create_task(self._write_loop(), name=f"led-writer-{self.name}")

    async def _close(self) -> None:
        for task in (self._writer, self._poller):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._writer = self._poller = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _probe(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_cycle(), name=f"led-poll-{self.name}")

    def _keepalive_interval(self) -> float:
        return self._interval

    def _link_alive(self) -> bool:
        return time.monotonic() - self._last_ok < self.timeout_s

    def _silence_reason(self) -> str:
        if self._last_problem is not None:
            return self._last_problem
        return Problem(f"no reply from {self.base_url} for {self.timeout_s:g} s", "no_reply",
                       address=self.base_url, seconds=self.timeout_s)

    def _send_desired(self, values: dict[str, Any]) -> None:
        self._pending.update(values)
        self._wake.set()
        poller = self._poller
        if self._polling and poller is not None and not poller.done():
            # a command never waits behind a poll (a whole Tessera tree can take tens of ms):
            # the poll in flight is dropped, its connection closed, and the next one follows
            poller.cancel()
            self.counters["polls_preempted"] += 1

    async def safe_shutdown(self) -> None:
        """An LED wall is safe when it holds its picture: nothing is changed on exit."""
        self.event(message("led_stopping"))

    def _problems(self) -> list[str]:
        return [*self._vendor_problems, *wall_problems(self.reported)]

    def set_vendor_problems(self, problems: list[Problem]) -> None:
        """Degrade (or not) for processor-specific reasons (no project loaded, locked by VMP)."""
        if [str(x) for x in problems] != [str(x) for x in self._vendor_problems]:
            self._vendor_problems = list(problems)
            self._update_health()

    # ---- polling ----------------------------------------------------------------------

    async def _poll_cycle(self) -> None:
        if self._pending:
            return  # the writer goes first; its echo is fresher than a poll
        started = time.monotonic()
        try:
            async with self._lock:
                self._polling = True
                try:
                    if not self._connected.is_set():
                        await self._connect()
                    await self._poll()
                finally:
                    self._polling = False
        except asyncio.CancelledError:
            return  # preempted by a write, or the device is closing
        except ReplyError as exc:
            self._failed(exc.problem, "poll")
            return
        except Exception as exc:  # a vendor parser bug must not stop the device
            self.counters["parser_errors"] += 1
            self._failed(Problem(f"{self.base_url}: unreadable reply ({type(exc).__name__})",
                                 "http_malformed", address=self.base_url), "poll")
            return
        self._succeeded()
        rtt = time.monotonic() - started
        if rtt > self._interval / 2 and self._interval < MAX_POLL_INTERVAL_S:
            self._interval = min(MAX_POLL_INTERVAL_S, self._interval * 2)
            self.counters["poll_slowdowns"] += 1
        elif rtt < self.poll_interval_s / 4 and self._interval > self.poll_interval_s:
            self._interval = max(self.poll_interval_s, self._interval / 2)

    def _succeeded(self) -> None:
        self._last_ok = time.monotonic()
        self._failures = 0
        self._last_problem = None
        self.counters["polls_ok"] += 1
        if not self._connected.is_set():
            self._link_up(message("why_http_answered"))
        else:
            self._update_health()

    def _failed(self, problem: Problem, what: str) -> None:
        self._failures += 1
        self._last_problem = problem
        self.counters[f"{what}_failures"] += 1
        self.counters[problem.code] += 1
        if self._connected.is_set() and self._failures >= OFFLINE_AFTER_FAILURES:
            self._link_down(problem)
        elif not self._connected.is_set() and self.health.reason != str(problem):
            self._set_health(Health.OFFLINE, problem, problem_dicts([problem]))

    def _restarted(self, old: str, new: str) -> None:
        """The processor restarted (uptime went backwards): re-apply as on a reconnect."""
        self.counters["restarts_seen"] += 1
        self.event(message("led_restarted", old=old, new=new), "warning")
        self._connected.clear()
        self._link_up(message("why_restart"))

    async def _connect(self) -> None:
        """Learn the processor after a (re)connection (topology, identity); default: nothing."""

    @abstractmethod
    async def _poll(self) -> None:
        """Read the processor's state and :meth:`_report` it (raise :class:`ReplyError`)."""

    # ---- writes -----------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending and self._connected.is_set():
                values, self._pending = self._pending, {}
                try:
                    async with self._lock:
                        await self._write(values)
                    self.counters["commands_sent"] += len(values)
                    self._last_ok = time.monotonic()  # an answered write is a live link
                except ReplyError as exc:
                    if exc.refusal:
                        self.counters["errors_from_device"] += 1
                        self.event(message("led_refused", what=", ".join(sorted(values)),
                                           why=str(exc.problem)), "warning")
                    else:
                        # not answered (a timeout, a dropped connection): the values are sent
                        # again while the link holds (newer ones for a key win), and re-applied
                        # from the desired state if it goes down; never silently dropped
                        self._failed(exc.problem, "write")
                        for key, value in values.items():
                            self._pending.setdefault(key, value)
                        self.counters["write_retries"] += 1
                        await asyncio.sleep(WRITE_RETRY_S)
                except Exception as exc:  # a vendor bug must not kill the writer
                    self.counters["writer_errors"] += 1
                    self.event(message("led_refused", what=", ".join(sorted(values)),
                                       why=f"{type(exc).__name__}: {clip(exc, 80)}"), "error")
            if not self._connected.is_set():
                self._pending.clear()  # re-applied from desired on reconnect

    def refused(self, key: str, sent: Any, kept: Any, why: str = "") -> None:
        """Announce that the processor kept ``kept`` instead of ``sent`` for ``key``."""
        self.counters["errors_from_device"] += 1
        reason = why or f"kept {kept!r} instead of {sent!r}"
        self.event(message("led_refused", what=key, why=reason), "warning")

    @abstractmethod
    async def _write(self, values: dict[str, Any]) -> None:
        """Send validated desired-state values and report the echo (raise :class:`ReplyError`)."""

    # ---- actions ----------------------------------------------------------------------

    async def recall_preset(self, number: object) -> int:
        """Recall a preset (an action: not kept as desired state)."""
        preset = self.validate_preset(number)
        if not self.online:
            raise CommandError(self.name, f"cannot recall preset {preset}: "
                               f"{self.health.reason or 'offline'}", "device_offline")
        try:
            async with self._lock:
                await self._recall(preset)
        except ReplyError as exc:
            if not exc.refusal:
                self._failed(exc.problem, "write")
                raise CommandError(self.name, f"preset {preset}: {exc.problem}",
                                   "device_offline") from None
            raise CommandError(self.name, f"preset {preset}: {exc.problem}",
                               "led_refused") from None
        self.counters["commands_sent"] += 1
        return preset

    @abstractmethod
    async def _recall(self, number: int) -> None:
        """Recall preset ``number`` and report what it changed (raise :class:`ReplyError`)."""

    async def inject_fault(self, fault: str, value: float) -> None:
        """POST a fault to a vendor simulator (a real processor answers 404: refused)."""
        try:
            async with self._lock:
                await self.request("POST", SIM_FAULT_PATH, body={"fault": fault, "value": value})
        except ReplyError as exc:
            raise CommandError(self.name, f"fault {fault}: {exc.problem} (only a stagectl "
                               "simulator takes faults)", "not_a_simulator") from None
