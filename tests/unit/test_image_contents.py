"""What the production image holds, read from the Dockerfile's COPY lines and .dockerignore
(no container engine runs here): the service only, never the tests or the dev tooling, and
everything the image's commands import."""

from __future__ import annotations

import ast
import fnmatch
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
# Never in an image: the tests, the dev tooling (local stack, chaos suite, benchmark), the
# set-up script, CI and the docs.
DEVELOPMENT = ("tests/", "dev/", "tasks.py", ".ci/", "docs/", ".git/")
# What the image's commands run: the API (CMD), the worker, the migration and set-up jobs.
ENTRY_MODULES = ("api.app", "worker", "vult.db.migrate", "vult.temporal.setup")


def _tracked() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = PurePosixPath(path).parts
    for pattern in patterns:
        pattern = pattern.removeprefix("**/")
        if any(fnmatch.fnmatch(part, pattern) for part in parts) or fnmatch.fnmatch(path, pattern):
            return True
    return False


def image_files(dockerfile: str, files: list[str]) -> set[str]:
    """The tracked files the Dockerfile's COPY lines bring into the image."""
    ignore = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    copied: set[str] = set()
    for line in dockerfile.splitlines():
        if not line.upper().startswith("COPY "):
            continue
        words = shlex.split(line)
        sources = [w for w in words[1:-1] if not w.startswith("--")]
        for source in sources:
            source = source.rstrip("/")
            if source == ".":
                copied.update(files)
            else:
                copied.update(f for f in files if f == source or f.startswith(f"{source}/"))
    return {f for f in copied if not _ignored(f, ignore)}


def test_the_image_holds_no_tests_and_no_dev_tooling() -> None:
    files = image_files((ROOT / "Dockerfile").read_text(), _tracked())
    assert "worker.py" in files and "api/app.py" in files  # the reading finds the COPY lines
    assert "migrations/env.py" in files and "alembic.ini" in files
    leaked = sorted(f for f in files if f.startswith(DEVELOPMENT))
    assert not leaked, leaked


def test_the_check_would_see_a_copy_of_everything() -> None:
    files = image_files("COPY pyproject.toml ./\nCOPY . .\n", _tracked())
    assert any(f.startswith("tests/") for f in files)
    assert any(f.startswith("dev/") for f in files)


def _project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_what_ships_imports_only_what_ships() -> None:
    """No shipped module reaches into dev/, tests/ or tasks.py, which the image lacks."""
    files = image_files((ROOT / "Dockerfile").read_text(), _tracked())
    tops = {PurePosixPath(f).parts[0].removesuffix(".py") for f in files if f.endswith(".py")}
    offending = {
        (f, name)
        for f in sorted(files)
        if f.endswith(".py")
        for name in _project_imports(ROOT / f)
        if name.split(".")[0] in ("dev", "tests", "tasks")
    }
    assert not offending, sorted(offending)
    assert {"api", "vult", "workflows", "activities", "worker"} <= tops


def test_the_image_commands_load_from_the_image_files_alone(tmp_path: Path) -> None:
    """The entry points import with only the image's files on the path."""
    for f in image_files((ROOT / "Dockerfile").read_text(), _tracked()):
        target = tmp_path / f
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / f).read_bytes())
    code = (
        "import importlib, sys\nsys.path.insert(0, '.')\n"
        "for m in sys.argv[1:]: importlib.import_module(m)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, *ENTRY_MODULES],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
