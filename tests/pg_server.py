"""A throwaway PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` into a temporary folder, sockets only.

PostgreSQL refuses to run as root, so as root the server runs as ``nobody``. ``start`` raises ``Unavailable``
(with the reason) when no server can be started; the fixtures then skip the PostgreSQL tests with that reason.
Run as a script (``python tests/pg_server.py``) it starts one and prints its URL until interrupted.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

UNPRIVILEGED_USER = "nobody"


class Unavailable(RuntimeError):
    """No PostgreSQL server could be started here (the message says why)."""


def binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (the newest Debian install, else the PATH), or None."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and (Path(found).parent / "initdb").exists() else None


@dataclass
class Server:
    """A running test server; ``url`` connects as its superuser through the socket in ``folder``."""

    folder: Path
    bin: Path
    port: int
    run_as: dict
    options: str = ""

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.folder}&port={self.port}"

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        subprocess.run([str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=60, check=False, **self.run_as)
        shutil.rmtree(self.folder, ignore_errors=True)

    def crash(self) -> None:
        """Stop the server as a crash or a pulled cable would (``-m immediate``: no clean shutdown); data stays."""
        self._pg_ctl("-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        """Start the server again on the same folder and port (after ``crash``): it recovers from its WAL."""
        self._pg_ctl("-o", self.options, "-l", str(self.folder / "server.log"), "-w", "-t", "60", "start")

    def _pg_ctl(self, *args: str) -> None:
        done = subprocess.run([str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), *args], capture_output=True,
                              text=True, timeout=90, check=False, cwd=self.folder, **self.run_as)
        if done.returncode != 0:
            raise Unavailable(f"pg_ctl {args[-1]} failed: {done.stderr.strip().splitlines()[-1:]}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(*, durable: bool = False) -> Server:
    """Start a fresh server (trust authentication, UTF8, sockets only, no fsync: test data is throwaway).

    ``durable``: keep PostgreSQL's own durability settings, so a commit survives ``Server.crash``.
    """
    bin_dir = binaries()
    if bin_dir is None:
        raise Unavailable("PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)")
    run_as: dict = {}
    # Under /tmp itself: pytest's own temporary folders are private to root, and nobody could not reach them.
    folder = Path(tempfile.mkdtemp(prefix="dermascan-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(UNPRIVILEGED_USER)
        except KeyError:
            raise Unavailable(f"running as root, and no {UNPRIVILEGED_USER} user to run PostgreSQL as") from None
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = {"user": user.pw_uid, "group": user.pw_gid}
    data = folder / "data"
    try:
        init = subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                               "--locale=C.UTF-8"], capture_output=True, text=True, timeout=120, check=False,
                              cwd=folder, **run_as)
        if init.returncode != 0:
            raise Unavailable(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
        port = _free_port()
        options = f"-k {folder} -p {port} -c listen_addresses='' -c max_connections=300"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        started = subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                                  str(folder / "server.log"), "-w", "-t", "60", "start"], capture_output=True,
                                 text=True, timeout=90, check=False, cwd=folder, **run_as)
        if started.returncode != 0:
            log = (folder / "server.log").read_text(errors="replace") if (folder / "server.log").exists() else ""
            raise Unavailable(f"pg_ctl start failed: {(log or started.stderr).strip().splitlines()[-1:]}")
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise Unavailable(f"PostgreSQL could not be started ({type(exc).__name__})") from None
    except Unavailable:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Server(folder, bin_dir, port, run_as, options)


if __name__ == "__main__":
    server = start()
    print(server.url, flush=True)
    try:
        input("PostgreSQL is running; press Enter to stop it.\n")
    finally:
        server.stop()
