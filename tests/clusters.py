"""Servers of our own for tests the shared one cannot serve: a cluster with its own
settings (pg_cron needs shared_preload_libraries), a streaming replica, a PgBouncer.

Built from Debian's PostgreSQL server binaries (not on PATH) and its pgbouncer, in temp
directories, on free ports of 127.0.0.1; each is removed when stopped. initdb, postgres
and pgbouncer refuse to run as root, so as root they run as the `postgres` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest


def server_bin() -> Path | None:
    """The newest installed Debian PostgreSQL bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def require_server_bin() -> Path:
    path = server_bin()
    if path is None:
        pytest.skip("Debian's postgresql server binaries are not installed "
                    "(apt-get install postgresql-15)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(argv: list) -> list[str]:
    argv = [str(a) for a in argv]
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _own_dir(prefix: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    return root


def _run(argv: list) -> None:
    subprocess.run(_as_server_user(argv), check=True, capture_output=True, timeout=120)


def _wait_ready(dsn: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Cluster:
    """One PostgreSQL cluster in a temp dir, listening on 127.0.0.1:port only."""

    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.data = root / "data"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    @classmethod
    def start(cls, settings: dict | None = None) -> "Cluster":
        bin_dir = require_server_bin()
        cluster = cls(_own_dir("bc-cluster-"), free_port())
        _run([bin_dir / "initdb", "-D", cluster.data, "-U", "postgres", "--auth=trust",
              "-E", "UTF8", "--no-sync"])
        cluster._configure(settings or {})
        cluster._pg_ctl("start")
        return cluster

    def replica(self) -> "Cluster":
        """A hot standby streaming from this cluster (pg_basebackup -R)."""
        bin_dir = require_server_bin()
        replica = Cluster(_own_dir("bc-replica-"), free_port())
        _run([bin_dir / "pg_basebackup", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres",
              "-D", replica.data, "-R", "-X", "stream", "--no-sync", "-c", "fast"])
        replica._configure({"hot_standby": "on"})
        replica._pg_ctl("start")
        return replica

    def _configure(self, settings: dict) -> None:
        lines = {"listen_addresses": "'127.0.0.1'", "port": str(self.port),
                 "unix_socket_directories": f"'{self.root}'", "fsync": "off"}
        lines.update({k: str(v) for k, v in settings.items()})
        conf = self.data / "postgresql.conf"
        text = conf.read_text() + "".join(f"\n{k} = {v}" for k, v in lines.items()) + "\n"
        subprocess.run(_as_server_user(["tee", conf]), input=text.encode(), check=True,
                       capture_output=True)

    def _pg_ctl(self, action: str) -> None:
        _run([require_server_bin() / "pg_ctl", "-D", self.data, "-l", self.root / "log",
              "-w", "-t", "60", action])
        if action == "start":
            _wait_ready(self.dsn())

    def wait_replayed(self, primary: "Cluster", seconds: float = 30) -> None:
        """Block until this standby has replayed everything the primary has written."""
        with psycopg.connect(primary.dsn(), autocommit=True) as p:
            target = p.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + seconds
        with psycopg.connect(self.dsn(), autocommit=True) as r:
            while not r.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                (target,)).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise TimeoutError("the replica did not catch up")
                time.sleep(0.05)

    def stop(self) -> None:
        subprocess.run(_as_server_user([require_server_bin() / "pg_ctl", "-D", self.data,
                                        "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


class PgBouncer:
    """A PgBouncer in front of one cluster, trust auth, the given pool mode."""

    def __init__(self, target: Cluster, pool_mode: str = "transaction"):
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
        self.root, self.port = _own_dir("bc-pgbouncer-"), free_port()
        users = self.root / "users.txt"
        ini = self.root / "pgbouncer.ini"
        for path, text in ((users, '"postgres" ""\n'), (ini, (
                f"[databases]\n* = host=127.0.0.1 port={target.port}\n"
                f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {self.port}\n"
                f"unix_socket_dir =\nauth_type = trust\nauth_file = {users}\n"
                f"pool_mode = {pool_mode}\ndefault_pool_size = 2\nmax_client_conn = 100\n"
                "ignore_startup_parameters = extra_float_digits\n"
                f"logfile = {self.root / 'log'}\n"))):
            path.write_text(text)
            if os.geteuid() == 0:
                shutil.chown(path, "postgres", "postgres")
        self.proc = subprocess.Popen(_as_server_user([binary, ini]), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        _wait_ready(self.dsn())

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)
