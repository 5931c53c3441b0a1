#!/usr/bin/env python3
"""The project's one entry point: sets itself up, then runs what you ask.

    python3 tasks.py run     # the whole system on local defaults (Ctrl-C stops it)
    python3 tasks.py test    # the test suite, starting every server it needs
    python3 tasks.py worker  # a worker: joins a running `run`, else uses configured servers
    python3 tasks.py api     # an API process (port 8001 beside a running `run`), the same way
    python3 tasks.py bench   # the benchmark (dev/bench/README.md)
    python3 tasks.py chaos   # kill programs mid-flight, then audit every order (--short: CI's)
    python3 tasks.py record-corpus  # record this release's replay histories (tests/replay/)
    python3 tasks.py lint    # ruff check, ruff format --check, mypy over all the Python
    python3 tasks.py docs    # remake the OpenAPI document and docs/settings.md from the code

Only the standard library is used here, so this works on a machine with nothing but
Python 3.11+. It creates `.venv`, installs the locked dependencies with uv, then runs the
command inside that environment.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
UV_VERSION = "0.13.9"
STAMP = VENV / ".vult-synced"


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, env=env)


def ensure_environment() -> None:
    """Create .venv and sync it with uv.lock when the lock file changed since the last sync."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file may be run by an older python3
        sys.exit(f"Vult Orders needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"Creating {VENV.relative_to(ROOT)} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    uv = BIN / "uv"
    if not uv.exists():
        _run(PYTHON, "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}")
    wanted = hashlib.sha256(
        (ROOT / "uv.lock").read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    ).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != wanted:
        print("Installing locked dependencies ...", flush=True)
        env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV)}
        _run(uv, "sync", "--frozen", "--quiet", env=env)
        STAMP.write_text(wanted)


# Every check runs and reports; the command fails if any does. ruff lints (workflows/ruff.toml
# adds the determinism rules there), ruff's formatter checks the layout, mypy checks types
# over the scope pyproject.toml's [tool.mypy] states (all of the project's Python), and
# dev/stripe_calls.py refuses a `type: ignore` on any Stripe call.
_LINT = (
    "import subprocess, sys\n"
    "codes = [subprocess.call([sys.executable, '-m', m, *a]) for m, a in"
    " (('ruff', ['check', '.']), ('ruff', ['format', '--check', '.']), ('mypy', []),"
    " ('dev.stripe_calls', []))]\n"
    "sys.exit(max(codes))"
)


STACK_ENV = ROOT / ".data" / "stack.env"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def join_running_stack() -> bool:
    """A worker or API started by hand beside `tasks.py run` takes that stack's settings
    (its database, Temporal, emulator and payload key), except what the shell sets."""
    if not STACK_ENV.exists():
        return False
    for line in STACK_ENV.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name not in os.environ:
            os.environ[name] = value
            if name in ("WORKER_METRICS_ADDRESS", "API_METRICS_ADDRESS"):
                # The stack's own worker and API hold those ports.
                os.environ[name] = f"127.0.0.1:{_free_port()}"
    print(f"Joining the running local stack ({STACK_ENV.relative_to(ROOT)})", flush=True)
    return True


def main(argv: list[str]) -> int:
    commands = {
        "run": [PYTHON, "-m", "dev.stack"],
        "test": [PYTHON, "-m", "pytest"],
        "bench": [PYTHON, "-m", "dev.bench"],
        "chaos": [PYTHON, "-m", "dev.chaos"],
        "record-corpus": [PYTHON, "-m", "dev.stack.record_corpus"],
        "worker": [PYTHON, "worker.py"],
        "api": [BIN / "uvicorn", "--factory", "api.app:app_factory", "--host", "127.0.0.1"],
        "lint": [PYTHON, "-c", _LINT],
        "docs": [PYTHON, "-m", "dev.docs_gen"],
    }
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    ensure_environment()
    if argv[0] in ("worker", "api"):
        joined = join_running_stack()
        if argv[0] == "api" and "--port" not in argv:
            port = os.environ.get("API_PORT") or ("8001" if joined else "8000")
            argv = [*argv, "--port", port]
    cmd = [str(c) for c in commands[argv[0]]] + argv[1:]
    # Replace this process so Ctrl-C and exit codes pass straight through.
    os.chdir(ROOT)
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
