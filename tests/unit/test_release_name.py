"""A build's name says which code it is: the commit, or the commit and a hash of the
shipped code when that has uncommitted changes (a worker started from an edited checkout
is a build of its own, never the commit's)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from vult.release import build_id_of


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout.strip()


def test_uncommitted_shipped_code_is_a_build_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1.2.3"\n')
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "order.py").write_text("A = 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "one")
    commit = git(tmp_path, "rev-parse", "--short=10", "HEAD")
    assert build_id_of(tmp_path) == f"1.2.3+g{commit}"
    (tmp_path / "README.md").write_text("docs only\n")  # not shipped code: the same build
    assert build_id_of(tmp_path) == f"1.2.3+g{commit}"
    (tmp_path / "workflows" / "order.py").write_text("A = 2\n")
    edited = build_id_of(tmp_path)
    assert edited.startswith(f"1.2.3+g{commit}.dirty."), edited
    (tmp_path / "workflows" / "order.py").write_text("A = 3\n")
    assert build_id_of(tmp_path) not in (edited, f"1.2.3+g{commit}")
