"""The zero-setup demo: an embedded PostgreSQL (pgserver) with a Django-shaped schema.

The server lives in the user's data directory and is reused across runs; pgserver stops
it when the last process using it exits. The demo database is created once, with fixed
(deterministic) rows so screenshots and snapshot tests show the same thing every time.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path

from psycopg import sql

from .connection import connect, with_database
from .errors import DatabaseUnreachable

DEMO_DB = "badge_demo"
DEMO_BADGES = Path(__file__).with_name("demo_badges.json")

DEMO_SCHEMA = """
CREATE TABLE auth_user (
    id serial PRIMARY KEY,
    password varchar(128) NOT NULL DEFAULT '',
    last_login timestamptz NULL,
    is_superuser boolean NOT NULL DEFAULT false,
    username varchar(150) NOT NULL UNIQUE,
    first_name varchar(150) NOT NULL DEFAULT '',
    last_name varchar(150) NOT NULL DEFAULT '',
    email varchar(254) NOT NULL DEFAULT '',
    is_staff boolean NOT NULL DEFAULT false,
    is_active boolean NOT NULL DEFAULT true,
    date_joined timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE dummy_sketch (
    id serial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED,
    title varchar(200) NOT NULL,
    hit_views integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dummy_sketch_user_id ON dummy_sketch (user_id);
"""

# Fixed rows: users joined 1..300 days ago (some over a year: the Pionner candidates),
# sketches spread so that some users are one sketch short of Collector.
DEMO_ROWS = """
INSERT INTO auth_user (username, first_name, email, date_joined)
SELECT format('user%s', lpad(i::text, greatest(3, length({users}::text)), '0')),
       format('User %s', i),
       format('user%s@example.com', i),
       timestamptz '2026-01-01 12:00+00' - make_interval(days => (i * 37) % 700)
FROM generate_series(1, {users}) AS i;
INSERT INTO dummy_sketch (user_id, title, hit_views, created_at)
SELECT 1 + (i * 7) % {users}, format('Sketch %s', i), (i * 131) % 997,
       timestamptz '2026-01-01 12:00+00' - make_interval(hours => i)
FROM generate_series(1, {sketches}) AS i;
"""


def create_demo_schema(conn, users: int = 200, sketches: int = 600) -> None:
    """Django-shaped auth_user and dummy_sketch with fixed rows (used by tests too)."""
    conn.execute(DEMO_SCHEMA)
    conn.execute(DEMO_ROWS.format(users=int(users), sketches=int(sketches)))


def data_dir() -> Path:
    override = os.environ.get("BADGE_CONSOLE_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("badge-console"))


def start_embedded_server(pgdata: Path | None = None, cleanup_mode: str | None = "stop"):
    """Start (or reuse) the embedded server; returns the pgserver handle."""
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.getLogger("pgserver").setLevel(logging.ERROR)
    import pgserver

    pgdata = pgdata or data_dir() / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        return pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)
    except Exception as exc:  # pgserver raises plain subprocess/OS errors
        raise DatabaseUnreachable(
            f"Cannot start the embedded demo PostgreSQL in {pgdata}: {exc}.") from None


def ensure_demo_database(server_uri: str) -> str:
    """Create and fill the demo database once; returns its DSN."""
    with connect(server_uri, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                               (DEMO_DB,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DB)))
    dsn = with_database(server_uri, DEMO_DB)
    if not exists:
        from .definitions import load_badge_file
        from .install import install

        with connect(dsn) as conn:
            with conn.transaction():
                create_demo_schema(conn)
            install(conn, load_badge_file(DEMO_BADGES))
            conn.execute("ANALYZE")  # row estimates in the Tables view from the first look
            conn.commit()
    return dsn


@contextmanager
def scratch_server(admin_dsn: str | None = None, prefix: str = "badge-console-"):
    """The given admin DSN, or a throw-away embedded server (tests, benches, screenshots).

    The data directory comes from mkdtemp, not pytest's tmp folders, which pytest prunes
    while a concurrent session may still use them."""
    if admin_dsn:
        yield admin_dsn
        return
    root = Path(tempfile.mkdtemp(prefix=prefix))
    server = start_embedded_server(root / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def scratch_database(admin_dsn: str, prefix: str = "bc_scratch"):
    """A database of its own, created here and dropped (WITH FORCE) afterwards; yields its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(admin_dsn, name)
    finally:
        with connect(admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
