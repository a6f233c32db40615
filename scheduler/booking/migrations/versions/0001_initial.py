"""The booking store and the desk's tables on PostgreSQL, with the double-booking guard.

A confirmed booking's stage time is guarded by an exclusion constraint.

The tables and columns are those of the SQLite file (scheduler/booking/store.py SCHEMA and
stagectl/desk/auth.py SCHEMA), so the store's SQL runs unchanged on both. PostgreSQL adds:

* ``bookings.rowid``: arrival order (SQLite's implicit rowid).
* ``bookings.start_at``, ``end_at``, ``busy_until`` (timestamptz), derived by a trigger from
  the row itself (``start``, the spec's ``duration_minutes``, the stage's
  ``changeover_minutes``) on every insert and update, so no writer can set them wrong.
* ``bookings_confirmed_no_overlap``: no two confirmed bookings on one stage whose
  ``[start_at, busy_until)`` ranges overlap (changeover included). Whatever the code does, the
  database refuses a double booking (SQLSTATE 23P01).

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE stages (id TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE pools (id TEXT PRIMARY KEY, capacity INTEGER NOT NULL, kind TEXT NOT NULL DEFAULT '');
CREATE TABLE outages (
    id BIGSERIAL PRIMARY KEY, stage TEXT NOT NULL, start TEXT NOT NULL, "end" TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL);
CREATE TABLE bookings (
    rowid BIGSERIAL NOT NULL UNIQUE,
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    spec TEXT NOT NULL,
    stage TEXT,
    start TEXT,
    hold_rank INTEGER,
    hold_expires TEXT,
    challenged_by TEXT,
    challenge_deadline TEXT,
    sequence INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    start_at TIMESTAMPTZ,
    end_at TIMESTAMPTZ,
    busy_until TIMESTAMPTZ);
CREATE INDEX bookings_stage ON bookings (stage, status);
CREATE INDEX bookings_status_start ON bookings (status, start_at);
CREATE INDEX bookings_arrival ON bookings (created_at, rowid);
CREATE TABLE history (
    seq BIGSERIAL PRIMARY KEY,
    booking_id TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    reason TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}');
CREATE INDEX history_booking ON history (booking_id, seq);
INSERT INTO meta (key, value) VALUES ('version', '0'), ('slot_minutes', '15');
CREATE TABLE desk_users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL,
    feed_token TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, disabled_at TEXT);
CREATE TABLE desk_sessions (
    hash TEXT PRIMARY KEY, "user" TEXT NOT NULL, csrf TEXT NOT NULL,
    created_at TEXT NOT NULL, last_seen TEXT NOT NULL);
CREATE TABLE desk_tokens (
    hash TEXT PRIMARY KEY, "user" TEXT NOT NULL, label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL, revoked_at TEXT);
CREATE TABLE desk_audit (
    seq BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, subject TEXT NOT NULL, details TEXT NOT NULL DEFAULT '{}')
"""

DERIVE = """
CREATE FUNCTION bookings_derive_times() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    co integer;
BEGIN
    IF NEW.start IS NULL OR NEW.stage IS NULL THEN
        NEW.start_at := NULL;
        NEW.end_at := NULL;
        NEW.busy_until := NULL;
        RETURN NEW;
    END IF;
    NEW.start_at := NEW.start::timestamptz;
    NEW.end_at := NEW.start_at
        + make_interval(mins => (NEW.spec::jsonb ->> 'duration_minutes')::integer);
    SELECT COALESCE((spec::jsonb ->> 'changeover_minutes')::integer, 0) INTO co
        FROM stages WHERE id = NEW.stage;
    NEW.busy_until := NEW.end_at + make_interval(mins => COALESCE(co, 0));
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    """Create the tables, the trigger that derives the guarded range, and the constraint."""
    for statement in TABLES.split(";"):
        if statement.strip():
            op.execute(statement)
    op.execute(DERIVE)
    op.execute("CREATE TRIGGER bookings_times BEFORE INSERT OR UPDATE ON bookings"
               " FOR EACH ROW EXECUTE FUNCTION bookings_derive_times()")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute("ALTER TABLE bookings ADD CONSTRAINT bookings_confirmed_no_overlap"
               " EXCLUDE USING gist (stage WITH =, tstzrange(start_at, busy_until, '[)') WITH &&)"
               " WHERE (status = 'confirmed')")


def downgrade() -> None:
    """Drop everything (the data with it)."""
    for table in ("desk_audit", "desk_tokens", "desk_sessions", "desk_users", "history",
                  "bookings", "outages", "pools", "stages", "meta"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS bookings_derive_times()")
