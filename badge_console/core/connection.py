"""Where the database is (--dsn > DATABASE_URL > embedded demo), and connecting to it.

A password never leaves this module in any text: `describe_dsn` builds a display name
without it, and `redact` scrubs it from any message a server or libpq produced.
"""

from __future__ import annotations

import os

import psycopg
from psycopg import conninfo

from .errors import DatabaseUnreachable, UsageError

APPLICATION_NAME = "badge-console"


def resolve_dsn(dsn_arg: str | None, environ=os.environ) -> str | None:
    """The DSN to use, or None for the embedded demo."""
    return dsn_arg or environ.get("DATABASE_URL") or None


def _parts(dsn: str) -> dict:
    try:
        return conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise UsageError("The DSN is not a valid libpq URI or key=value string.") from None


def describe_dsn(dsn: str) -> str:
    """user@host:port/dbname, never the password."""
    parts = _parts(dsn)
    user = parts.get("user") or os.environ.get("PGUSER") or ""
    host = parts.get("host") or os.environ.get("PGHOST") or "localhost"
    if host.startswith("/"):
        host = "socket"
    port = parts.get("port") or os.environ.get("PGPORT") or "5432"
    db = parts.get("dbname") or os.environ.get("PGDATABASE") or user
    return f"{user + '@' if user else ''}{host}:{port}/{db}"


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
    """Open a connection; failures become DatabaseUnreachable with one clean sentence."""
    _parts(dsn)  # a malformed DSN is a usage error, not an unreachable server
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10,
                               application_name=APPLICATION_NAME, **kwargs)
    except psycopg.OperationalError as exc:
        detail = redact(first_line(exc), dsn)
        raise DatabaseUnreachable(
            f"Cannot connect to {describe_dsn(dsn)}: {detail}.") from None
