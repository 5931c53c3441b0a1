"""Record the replay corpus of a release: `python3 tasks.py record-corpus`.

    python3 tasks.py record-corpus                 # this tree, into tests/replay/<release>/
    python3 tasks.py record-corpus --tree DIR      # an older commit's checkout (git worktree)
    python3 tasks.py record-corpus --out DIR       # somewhere else (nothing is replaced)

Starts fresh programs of its own on free loopback ports (a Temporal dev server that
suggests continuing as new after 100 history events, the Stripe emulator, a new
PostgreSQL database on DATABASE_URL's server or an embedded one), migrates the database
with the tree's own migrations, then runs dev/stack/corpus_journeys.py against them with
the tree first on the import path: every path a journey can take, one history each, and
a manifest.json naming them. The release name is the tree's build id (vult/release.py):
`<version>+g<commit>`. The replay test (tests/replay/test_replay_corpus.py) replays every
release's folder on today's code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from dev.stack.database import (
    drop_database,
    embedded_server_url,
    ensure_database,
    with_database,
)
from dev.stack.procs import Children, free_port
from dev.stack.stripe_emulator import start_localstripe
from dev.stack.temporal_server import start_temporal
from vult.db.urls import async_url
from vult.release import ROOT, build_id_of

CORPUS = ROOT / "tests" / "replay"
JOURNEYS = Path(__file__).with_name("corpus_journeys.py")
# Low enough that one journey reaches it (40 events at once), above every other path (74 at most).
SUGGEST_CONTINUE_AS_NEW = "100"
_TIMEOUT_S = 600


def _migrate(tree: Path, url: str) -> None:
    """The tree's own schema: an older release records against the schema it shipped."""
    code = "import sys; from vult.db.migrate import upgrade_to_head; upgrade_to_head(sys.argv[1])"
    subprocess.run(
        [sys.executable, "-c", code, url],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        check=True,
        timeout=120,
    )


def record(tree: Path, out: Path, release: str) -> int:
    work = Path(tempfile.mkdtemp(prefix="vult-corpus-"))
    children = Children()
    handle: object = None
    base = os.environ.get("DATABASE_URL")
    if base:
        base = async_url(base)
    else:
        base, handle = embedded_server_url(work / "postgres")
    database = with_database(base, f"vult_corpus_{uuid.uuid4().hex[:10]}")
    try:
        ensure_database(database)
        _migrate(tree, database)
        temporal_port, stripe_port = free_port(), free_port()
        start_temporal(
            children,
            port=temporal_port,
            ui_port=None,
            db_file=None,
            log=work / "temporal.log",
            dynamic_config={"limit.historyCount.suggestContinueAsNew": SUGGEST_CONTINUE_AS_NEW},
        )
        start_localstripe(children, port=stripe_port, log=work / "localstripe.log", state_file=None)
        out.mkdir(parents=True, exist_ok=True)
        # The driver runs from a folder of its own, so only the tree is on its import path.
        driver = work / "corpus_journeys.py"
        shutil.copy(JOURNEYS, driver)
        print(f"Recording the corpus of {release} from {tree} into {out}", flush=True)
        code = subprocess.run(
            [
                sys.executable,
                str(driver),
                str(out),
                database,
                f"127.0.0.1:{temporal_port}",
                f"http://127.0.0.1:{stripe_port}",
                release,
            ],
            cwd=tree,
            env={
                **os.environ,
                "PYTHONPATH": str(tree),
                # One client driving every journey at once, standing for many customers:
                # the per-client bounds (api/client_limits.py) are not its to meet.
                "API_MAX_COMMANDS_PER_CLIENT": "10000",
                "API_MAX_WAITS_PER_CLIENT": "10000",
            },
            timeout=_TIMEOUT_S,
        ).returncode
        manifest = out / "manifest.json"
        if tree != ROOT and manifest.exists():
            # An older commit, recorded later: not the newest code (tests/replay).
            held = json.loads(manifest.read_text())
            manifest.write_text(json.dumps({**held, "from_worktree": True}, indent=2) + "\n")
        return code
    finally:
        children.stop_all()
        drop_database(database)
        del handle
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tasks.py record-corpus", description=__doc__)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to record")
    parser.add_argument("--release", help="the folder's name (default: the tree's build id)")
    parser.add_argument("--out", type=Path, help="default: tests/replay/<release>/")
    args = parser.parse_args(argv)
    tree = args.tree.resolve()
    release = args.release or build_id_of(tree)
    out = args.out or CORPUS / release
    if out.exists() and any(out.glob("*.json")):
        print(f"{out} already holds a corpus: a recorded release is kept as it was.")
        return 2
    return record(tree, out, release)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
