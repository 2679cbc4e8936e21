"""A throwaway PostgreSQL server for the tests that need a real one (the notebook's store).

It uses Debian's postgresql binaries (scripts/test.sh installs them): initdb into a temporary folder,
start on a free port with its socket in that folder, and stop at the end. As root (CI), the server runs
as the `postgres` system user, because PostgreSQL refuses to run as root. Where the binaries or that
user are missing, the caller skips with the reason this module returns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator


def _bin_dir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def temporary_server() -> Iterator[tuple[str | None, str]]:
    """Yields (SQLAlchemy URL, "") for a running server, or (None, why not)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        yield None, "PostgreSQL server binaries not found (install Debian's postgresql package)"
        return
    as_user: list[str] = []
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            yield None, "running as root and there is no 'postgres' user to run the server as"
            return
        as_user, user = ["runuser", "-u", "postgres", "--"], "postgres"
    folder = tempfile.mkdtemp(prefix="lab-pg-")
    data = os.path.join(folder, "data")
    if as_user:
        shutil.chown(folder, "postgres")
    port = _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)  # noqa: E731
    try:
        init = run(f"{bin_dir}/initdb", "-D", data, "-U", user, "-A", "trust", "--no-sync")
        if init.returncode != 0:
            yield None, f"initdb failed: {init.stderr.strip()[:200]}"
            return
        start = run(f"{bin_dir}/pg_ctl", "-D", data, "-l", os.path.join(folder, "log"), "-w", "-o",
                    f"-p {port} -k {folder} -c listen_addresses=''", "start")
        if start.returncode != 0:
            yield None, f"the server did not start: {start.stderr.strip()[:200]}"
            return
        for _ in range(50):
            if run(f"{bin_dir}/pg_isready", "-h", folder, "-p", str(port)).returncode == 0:
                break
            time.sleep(0.1)
        yield f"postgresql+psycopg://{user}@/postgres?host={folder}&port={port}", ""
    finally:
        if os.path.isdir(data):
            run(f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)
