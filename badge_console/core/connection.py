"""Where the database is (--dsn > DATABASE_URL > libpq's PG* environment > embedded demo),
connecting to it, and what it turned out to be.

A password never leaves this module in any text: `describe_dsn` builds a display name
without it, `describe_server` reads the target from the live connection, and `redact`
scrubs the password from any message a server or libpq produced.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import psycopg
from psycopg import conninfo

from .errors import DatabaseUnreachable, UsageError

APPLICATION_NAME = "badge-console"
# Variables that name a target: any of them means "libpq's environment", not the demo.
# (PGPASSWORD, PGPASSFILE/.pgpass, PGSERVICEFILE only supply details of a target.)
LIBPQ_TARGET = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")
_SECRETS = (re.compile(r"^[a-z]+://[^:/?#@]*:([^/?#]*)@", re.I),  # URI user:password@
            re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.I))


def resolve_dsn(dsn_arg: str | None, environ=os.environ) -> str | None:
    """The DSN to use: "" lets libpq read its PG* environment; None means the embedded demo."""
    if dsn_arg or environ.get("DATABASE_URL"):
        return dsn_arg or environ["DATABASE_URL"]
    return "" if any(environ.get(name) for name in LIBPQ_TARGET) else None


def _unparsed_secrets(dsn: str) -> list[str]:
    """Password-looking parts of a DSN libpq cannot parse (its message may quote them)."""
    found = [m.group(1) for pattern in _SECRETS for m in pattern.finditer(dsn)]
    return [f for f in found if f]


def _parts(dsn: str) -> dict:
    try:
        return conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        detail = first_line(exc)
        for secret in _unparsed_secrets(dsn):
            detail = detail.replace(secret, "***")
        raise UsageError(f"The DSN is not a valid libpq URI or key=value string: "
                         f"{detail}.") from None


def describe_dsn(dsn: str) -> str:
    """user@host:port/dbname (or the service's name), never the password; for messages
    about a server that was not reached (a live one is described by describe_server)."""
    parts = _parts(dsn)
    service = parts.get("service") or os.environ.get("PGSERVICE")
    if service and not {"host", "port", "dbname"} & set(parts):
        return f"service {service}"
    user = parts.get("user") or os.environ.get("PGUSER") or ""
    host = parts.get("host") or os.environ.get("PGHOST") or "localhost"
    if host.startswith("/"):
        host = "socket"
    port = parts.get("port") or os.environ.get("PGPORT") or "5432"
    db = parts.get("dbname") or os.environ.get("PGDATABASE") or user
    return f"{user + '@' if user else ''}{host}:{port}/{db}"


@dataclass(frozen=True)
class ServerTarget:
    """Where a live connection really is (after service files, PG* variables, DNS)."""

    user: str
    host: str  # the server's address, or the socket directory
    port: int
    database: str
    standby: bool  # pg_is_in_recovery(): a hot standby, read-only

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database}"

    def __str__(self) -> str:
        return self.address + (" (standby, read-only)" if self.standby else "")


def describe_server(conn: psycopg.Connection) -> ServerTarget:
    """The target as the server reports it; no password is ever part of it."""
    addr, port, database, standby = conn.execute(
        "SELECT host(inet_server_addr()), inet_server_port(), current_database(),"
        " pg_is_in_recovery()").fetchone()
    return ServerTarget(conn.info.user, addr or conn.info.host,
                        int(port or conn.info.port), database, bool(standby))


def redact(text: str, dsn: str | None) -> str:
    """Remove the DSN's password (and the DSN itself) from a message."""
    if not dsn:
        return text
    try:
        password = conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        password = None
    if dsn in text:
        text = text.replace(dsn, describe_dsn(dsn) if password is None else "<dsn>")
    if password:
        text = text.replace(password, "***")
    return text


def with_database(dsn: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return conninfo.make_conninfo(dsn, dbname=dbname)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    for prefix in ("connection failed: ",):
        line = line.removeprefix(prefix)
    return line.rstrip(".")


def connect(dsn: str, *, autocommit: bool = False, **kwargs) -> psycopg.Connection:
    """Open a connection; failures become DatabaseUnreachable with one clean sentence.

    No server-side prepared statements (prepare_threshold None): behind a transaction-
    pooling PgBouncer the next transaction may run on a server that never saw them."""
    _parts(dsn)  # a malformed DSN is a usage error, not an unreachable server
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10,
                               application_name=APPLICATION_NAME, **kwargs)
        conn.prepare_threshold = None
        return conn
    except psycopg.OperationalError as exc:
        detail = redact(first_line(exc), dsn)
        raise DatabaseUnreachable(
            f"Cannot connect to {describe_dsn(dsn)}: {detail}.") from None
