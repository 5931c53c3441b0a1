"""What the inbox keeps: numbered records in a folder, one JSON file each (a mail's message
beside it as `N.eml`), the newest `keep` of them. The folder and its files are readable by
their owner only: they hold customer data. A restarted inbox reads them back."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Record = dict[str, Any]


def now_iso() -> str:
    """The time now, as the API shows it: 2025-01-31T12:00:00.000Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _write_private(path: Path, data: bytes) -> None:
    """Write whole or not at all: a reader, or the next start, never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    tmp.replace(path)


class Shelf:
    def __init__(self, folder: Path, keep: int, raw_suffix: str = ".eml") -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.chmod(0o700)
        self.folder, self.keep, self.raw_suffix = folder, keep, raw_suffix
        self._records: dict[int, Record] = {}
        for path in folder.glob("*.json"):
            try:
                self._records[int(path.stem)] = json.loads(path.read_text())
            except (ValueError, OSError):
                continue  # not one of ours, or unreadable: left alone
        self._next = max(self._records, default=0) + 1
        self._trim()

    def add(self, record: Record, raw: bytes | None = None) -> int:
        n = self._next
        self._next += 1
        record = {"n": n, **record}
        if raw is not None:
            _write_private(self._path(n, self.raw_suffix), raw)
        _write_private(self._path(n, ".json"), json.dumps(record).encode())
        self._records[n] = record
        self._trim()
        return n

    def newest_first(self) -> list[Record]:
        return [self._records[n] for n in sorted(self._records, reverse=True)]

    def get(self, n: int) -> Record | None:
        return self._records.get(n)

    def raw(self, n: int) -> bytes | None:
        try:
            return self._path(n, self.raw_suffix).read_bytes()
        except OSError:
            return None

    def clear(self) -> None:
        for n in list(self._records):
            self._drop(n)

    def _trim(self) -> None:
        for n in sorted(self._records)[: max(len(self._records) - self.keep, 0)]:
            self._drop(n)

    def _drop(self, n: int) -> None:
        self._records.pop(n, None)
        self._path(n, ".json").unlink(missing_ok=True)
        self._path(n, self.raw_suffix).unlink(missing_ok=True)

    def _path(self, n: int, suffix: str) -> Path:
        return self.folder / f"{n:08d}{suffix}"
