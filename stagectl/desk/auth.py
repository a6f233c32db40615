"""Users, roles, sessions, CSRF and API tokens (docs/desk-api.md "Users, roles...").

Users live in the booking database (``desk_users``), beside ``desk_sessions`` and
``desk_tokens``. Passwords are argon2id hashes (argon2-cffi's default parameters). A session
cookie and an API token are random 32 bytes of which only the SHA-256 is stored, so a copy of
the database logs nobody in. A per-user feed token (for ICS subscriptions, read-only) is
stored as it is, because ``GET /feeds`` must show its URLs again; it stops working with the
user.

Every function here takes the connection (:class:`scheduler.sql.Conn`) of a store checked out of the
:class:`stagectl.desk.bookings.StorePool`, so the desk's tables share the booking store's
connections and file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from scheduler.sql import Conn

__all__ = [
    "CSRF_HEADER",
    "ROLES",
    "SESSION_COOKIE",
    "DeskUser",
    "LoginThrottle",
    "TokenCache",
    "UserError",
    "add_user",
    "audit",
    "audit_log",
    "create_session",
    "create_token",
    "delete_session",
    "disable_user",
    "ensure_schema",
    "feed_token",
    "feed_user",
    "list_users",
    "session_user",
    "token_user",
    "verify_login",
]

ROLES: tuple[str, ...] = ("viewer", "producer", "engineer", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}
SESSION_COOKIE = "stagectl_session"
CSRF_HEADER = "X-CSRF-Token"
NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS desk_users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL,
    feed_token TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, disabled_at TEXT);
CREATE TABLE IF NOT EXISTS desk_sessions (
    hash TEXT PRIMARY KEY, "user" TEXT NOT NULL, csrf TEXT NOT NULL,
    created_at TEXT NOT NULL, last_seen TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS desk_tokens (
    hash TEXT PRIMARY KEY, "user" TEXT NOT NULL, label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL, revoked_at TEXT);
CREATE TABLE IF NOT EXISTS desk_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, subject TEXT NOT NULL, details TEXT NOT NULL DEFAULT '{}');
"""

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A user or token change that cannot be made; the message says why."""


@dataclass(frozen=True)
class DeskUser:
    """Who makes a request."""

    name: str
    role: str

    def has(self, role: str) -> bool:
        """Whether this user's role includes ``role`` (admin > engineer > producer > viewer)."""
        return _RANK.get(self.role, -1) >= _RANK[role]


def _now() -> datetime:
    return datetime.now(UTC)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def ensure_schema(conn: Conn) -> None:
    """Create the desk tables (idempotent; on PostgreSQL the booking migrations made them)."""
    if not conn.postgres:
        conn.executescript(SCHEMA)


def audit(conn: Conn, actor: str, action: str, subject: str,
          clock: Callable[[], datetime] = _now, **details: Any) -> None:
    """Record who changed which user or token (``desk_audit``; never a secret)."""
    conn.execute("INSERT INTO desk_audit (at, actor, action, subject, details)"
                 " VALUES (?, ?, ?, ?, ?)",
                 (clock().isoformat(), actor, action, subject, json.dumps(details)))


def audit_log(conn: Conn, limit: int = 200) -> list[dict[str, Any]]:
    """The latest user and token changes, newest first."""
    return [{"seq": r[0], "at": r[1], "actor": r[2], "action": r[3], "subject": r[4],
             "details": json.loads(r[5])}
            for r in conn.execute("SELECT seq, at, actor, action, subject, details"
                                  " FROM desk_audit ORDER BY seq DESC LIMIT ?", (limit,))]


def check_name(name: str) -> str:
    """A valid user name, else :class:`UserError`."""
    if not NAME_RE.match(name):
        raise UserError(f"user name {name!r}: 1 to 64 letters, digits or _.@- expected")
    return name


def check_role(role: str) -> str:
    """A valid role, else :class:`UserError`."""
    if role not in _RANK:
        raise UserError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    return role


def add_user(conn: Conn, name: str, role: str, password: str,
             clock: Callable[[], datetime] = _now) -> DeskUser:
    """Add a user with an argon2id password hash.

    Raises:
        UserError: bad name, role or password, or the name is taken.
    """
    check_name(name)
    check_role(role)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters expected")
    digest = _hasher.hash(password)
    try:
        conn.execute("INSERT INTO desk_users (name, role, hash, feed_token, created_at)"
                     " VALUES (?, ?, ?, ?, ?)",
                     (name, role, digest, secrets.token_urlsafe(32), clock().isoformat()))
    except sqlite3.IntegrityError:
        raise UserError(f"user {name!r} already exists") from None
    return DeskUser(name, role)


def disable_user(conn: Conn, name: str,
                 clock: Callable[[], datetime] = _now) -> bool:
    """Disable a user: their sessions end, tokens and feed token stop working.

    Returns:
        False when there is no such user.
    """
    cur = conn.execute("UPDATE desk_users SET disabled_at = COALESCE(disabled_at, ?)"
                       " WHERE name = ?", (clock().isoformat(), name))
    conn.execute('DELETE FROM desk_sessions WHERE "user" = ?', (name,))
    return cur.rowcount > 0


def list_users(conn: Conn) -> list[dict[str, Any]]:
    """Name, role, created_at, disabled_at (no hashes)."""
    return [
        {"name": r[0], "role": r[1], "created_at": r[2], "disabled_at": r[3],
         "disabled": r[3] is not None}
        for r in conn.execute("SELECT name, role, created_at, disabled_at FROM desk_users"
                              " ORDER BY name")
    ]


def _active_user(conn: Conn, name: str) -> DeskUser | None:
    r = conn.execute("SELECT name, role FROM desk_users WHERE name = ? AND disabled_at IS NULL",
                     (name,)).fetchone()
    return DeskUser(r[0], r[1]) if r else None


def verify_login(conn: Conn, name: str, password: str) -> DeskUser | None:
    """The user when ``password`` is theirs; None otherwise (same work either way)."""
    r = conn.execute("SELECT name, role, hash FROM desk_users WHERE name = ?"
                     " AND disabled_at IS NULL", (name,)).fetchone()
    digest = r[2] if r else _DUMMY_HASH
    try:
        _hasher.verify(digest, password[:MAX_PASSWORD])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return DeskUser(r[0], r[1]) if r else None


def create_session(conn: Conn, user: DeskUser,
                   clock: Callable[[], datetime] = _now) -> tuple[str, str]:
    """A new session: (cookie value, csrf token). Only the cookie's SHA-256 is stored."""
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = clock().isoformat()
    conn.execute('INSERT INTO desk_sessions (hash, "user", csrf, created_at, last_seen)'
                 " VALUES (?, ?, ?, ?, ?)", (_sha(cookie), user.name, csrf, now, now))
    return cookie, csrf


def session_user(conn: Conn, cookie: str, idle_hours: float,
                 clock: Callable[[], datetime] = _now) -> tuple[DeskUser, str] | None:
    """The session's user and csrf token; None when unknown, ended or its user disabled.

    An idle session (no request for ``idle_hours``) is deleted; ``last_seen`` is refreshed at
    most once a minute.
    """
    if not cookie or len(cookie) > 256:
        return None
    key = _sha(cookie)
    r = conn.execute("SELECT \"user\", csrf, last_seen FROM desk_sessions WHERE hash = ?",
                     (key,)).fetchone()
    if r is None:
        return None
    now = clock()
    seen = datetime.fromisoformat(r[2])
    if now - seen > timedelta(hours=idle_hours):
        conn.execute("DELETE FROM desk_sessions WHERE hash = ?", (key,))
        return None
    user = _active_user(conn, r[0])
    if user is None:
        return None
    if now - seen > timedelta(minutes=1):
        conn.execute("UPDATE desk_sessions SET last_seen = ? WHERE hash = ?",
                     (now.isoformat(), key))
    return user, str(r[1])


def delete_session(conn: Conn, cookie: str) -> None:
    """End a session (logout)."""
    conn.execute("DELETE FROM desk_sessions WHERE hash = ?", (_sha(cookie),))


def csrf_ok(expected: str, sent: str | None) -> bool:
    """Constant-time comparison of the session's csrf token with the header."""
    return bool(sent) and hmac.compare_digest(expected.encode(), (sent or "").encode())


def create_token(conn: Conn, name: str, label: str = "",
                 clock: Callable[[], datetime] = _now) -> str:
    """A new API token for an active user, shown once (only its SHA-256 is stored).

    Raises:
        UserError: no such (active) user.
    """
    if _active_user(conn, name) is None:
        raise UserError(f"no active user {name!r}")
    token = "sdt_" + secrets.token_urlsafe(32)
    conn.execute('INSERT INTO desk_tokens (hash, "user", label, created_at) VALUES (?, ?, ?, ?)',
                 (_sha(token), name, label[:200], clock().isoformat()))
    return token


def token_user(conn: Conn, token: str) -> DeskUser | None:
    """The active user of an unrevoked API token."""
    if not token or len(token) > 256:
        return None
    r = conn.execute("SELECT \"user\" FROM desk_tokens WHERE hash = ? AND revoked_at IS NULL",
                     (_sha(token),)).fetchone()
    return _active_user(conn, r[0]) if r else None


class TokenCache:
    """API tokens whose user was looked up in the last ``ttl_s`` seconds, by token hash.

    A script sends its token with every request; looking it up each time checked a store out
    of the pool (waiting behind the changes for one) to run two queries. A hit costs one
    SHA-256. Only tokens that were found are kept, never the token itself.

    Stays true: :meth:`forget_user` (a user disabled in this process) takes effect at once,
    also against a lookup that was under way meanwhile (its answer is not kept); a change made
    elsewhere (another desk, ``stagectl desk users disable``) is seen within ``ttl_s``.
    At most ``max_entries``, the oldest dropped first.

    Example::

        cache = TokenCache()
        stamp = cache.stamp()
        user = cache.get(token)
        if user is None:
            user = token_user(conn, token)
            if user is not None:
                cache.put(token, user, stamp)
    """

    def __init__(self, ttl_s: float = 1.0, max_entries: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._lock = threading.Lock()
        self._users: OrderedDict[str, tuple[DeskUser, float]] = OrderedDict()
        self._generation = 0

    def stamp(self) -> int:
        """Take before a lookup; :meth:`put` keeps its answer only if nothing was forgotten."""
        return self._generation

    def get(self, token: str) -> DeskUser | None:
        """The token's user if it was looked up less than ``ttl_s`` ago (else None)."""
        key = _sha(token)
        now = self.clock()
        with self._lock:
            found = self._users.get(key)
            if found is None:
                return None
            if now - found[1] >= self.ttl_s:
                del self._users[key]
                return None
            return found[0]

    def put(self, token: str, user: DeskUser, stamp: int) -> None:
        """Keep a lookup's answer (unless :meth:`forget_user` ran since ``stamp``)."""
        key = _sha(token)
        now = self.clock()
        with self._lock:
            if stamp != self._generation:
                return
            self._users.pop(key, None)
            self._users[key] = (user, now)
            while len(self._users) > self.max_entries:
                self._users.popitem(last=False)

    def forget_user(self, name: str) -> None:
        """Drop every token of ``name`` now (and any lookup under way)."""
        with self._lock:
            self._generation += 1
            for key in [k for k, (u, _) in self._users.items() if u.name == name]:
                del self._users[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._users)


def feed_token(conn: Conn, name: str) -> str | None:
    """The user's ICS feed token (None for an unknown or disabled user)."""
    r = conn.execute("SELECT feed_token FROM desk_users WHERE name = ? AND disabled_at IS NULL",
                     (name,)).fetchone()
    return str(r[0]) if r else None


def feed_user(conn: Conn, token: str) -> DeskUser | None:
    """The active user whose ICS feed token this is (for ``/ics/...?token=T``)."""
    if not token or len(token) > 256:
        return None
    r = conn.execute("SELECT name, role FROM desk_users WHERE feed_token = ?"
                     " AND disabled_at IS NULL", (token,)).fetchone()
    return DeskUser(r[0], r[1]) if r else None


class LoginThrottle:
    """Failed logins counted per user name and per client address, and slowed.

    After ``free`` failures within ``window_s`` a key must wait ``2 ** (n - free)`` seconds
    (at most ``max_wait_s``) after its last failure before the next try; a success clears the
    user's count. Memory is bounded: at most ``max_keys`` keys, the oldest forgotten first.
    """

    def __init__(self, free: int = 5, window_s: float = 900.0, max_wait_s: float = 900.0,
                 max_keys: int = 10000, clock: Callable[[], float] = time.monotonic) -> None:
        self.free = free
        self.window_s = window_s
        self.max_wait_s = max_wait_s
        self.max_keys = max_keys
        self.clock = clock
        self._lock = threading.Lock()
        self._fails: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self.refused = 0

    def wait_s(self, *keys: str) -> float:
        """Seconds the caller must still wait (0: may try)."""
        now = self.clock()
        worst = 0.0
        with self._lock:
            for key in keys:
                n, last = self._fails.get(key, (0, 0.0))
                if not n or now - last > self.window_s:
                    continue
                if n >= self.free:
                    wait = min(2.0 ** (n - self.free), self.max_wait_s) - (now - last)
                    worst = max(worst, wait)
            if worst > 0:
                self.refused += 1
        return worst

    def failed(self, *keys: str) -> None:
        """Count a failed login against each key."""
        now = self.clock()
        with self._lock:
            for key in keys:
                n, last = self._fails.pop(key, (0, 0.0))
                if now - last > self.window_s:
                    n = 0
                self._fails[key] = (n + 1, now)
            while len(self._fails) > self.max_keys:
                self._fails.popitem(last=False)

    def succeeded(self, key: str) -> None:
        """Clear a key's count."""
        with self._lock:
            self._fails.pop(key, None)
