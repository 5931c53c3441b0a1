"""Which release this is: the package version and the code it was built from.

The worker's default build id (Temporal Worker Versioning) and the replay corpus's folder
names are both made from it, so "the code an order runs on" and "the histories recorded on
that code" say the same name: `<version>+g<commit>` in a git checkout, `<version>+src.<hash>`
elsewhere (an image built without .git), where the hash is of the Python sources that ship.
A checkout whose shipped code has uncommitted changes is a build of its own,
`<version>+g<commit>.dirty.<hash>`: a worker started from it never takes the name (and the
orders) of the commit it differs from.
"""

from __future__ import annotations

import hashlib
import subprocess
import tomllib
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The code whose change can change what a worker does with an order.
_SHIPPED = ("workflows", "activities", "vult", "api")


def version(root: Path = ROOT) -> str:
    with (root / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def _git(root: Path, *args: str) -> str | None:
    """What git prints for `args` in `root`; None where git or a checkout is missing."""
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _git_commit(root: Path) -> str | None:
    return _git(root, "rev-parse", "--short=10", "HEAD") or None


def _shipped_code_changed(root: Path) -> bool:
    """Uncommitted changes (or new files) in the code that ships."""
    return bool(_git(root, "status", "--porcelain", "--", *_SHIPPED))


def _source_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for folder in _SHIPPED:
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def build_id_of(root: Path) -> str:
    """The release name of the tree at `root` (this one, or an older commit's checkout)."""
    commit = _git_commit(root)
    release = version(root)
    if commit is None:
        return f"{release}+src.{_source_hash(root)}"
    if _shipped_code_changed(root):
        return f"{release}+g{commit}.dirty.{_source_hash(root)}"
    return f"{release}+g{commit}"


@lru_cache(maxsize=1)
def default_build_id() -> str:
    return build_id_of(ROOT)
