"""`python -m dev.inbox`: the local inbox (dev/inbox/__init__.py), until SIGTERM or Ctrl-C.

    python -m dev.inbox --smtp-port 1025 --http-port 8025 --data-dir .data/inbox \
        --endpoint local-receiver=whsec_... [--endpoint NAME=SECRET ...] [--keep 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from dev.inbox.faults import Faults
from dev.inbox.shelf import Shelf
from dev.inbox.smtp_server import start_smtp
from dev.inbox.web import Inbox, make_app

HOST = "127.0.0.1"


def _endpoint(text: str) -> tuple[str, str]:
    name, _, secret = text.partition("=")
    if not name or not secret.startswith("whsec_"):
        raise argparse.ArgumentTypeError("expected NAME=whsec_...")
    try:
        Webhook(secret)  # a secret the library cannot use fails here, not at the first POST
    except Exception as exc:  # the library raises several kinds
        raise argparse.ArgumentTypeError(f"endpoint {name}: unusable secret ({exc})") from exc
    return name, secret


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dev.inbox", description=__doc__)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--endpoint", type=_endpoint, action="append", default=[])
    parser.add_argument("--keep", type=int, default=1000, help="mails and webhooks kept (1000)")
    return parser.parse_args()


async def serve(args: argparse.Namespace) -> None:
    args.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    args.data_dir.chmod(0o700)
    inbox = Inbox(
        Shelf(args.data_dir / "mails", args.keep),
        Shelf(args.data_dir / "deliveries", args.keep),
        Faults(),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    smtp = await start_smtp(HOST, args.smtp_port, inbox.mails, inbox.faults)
    runner = web.AppRunner(make_app(inbox, dict(args.endpoint)), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, args.http_port).start()
        names = ", ".join(name for name, _ in args.endpoint) or "none"
        print(
            f"Inbox: SMTP on {HOST}:{args.smtp_port}, pages and webhooks (endpoints: {names})"
            f" on http://{HOST}:{args.http_port}, kept in {args.data_dir}",
            flush=True,
        )
        await stop.wait()
    finally:
        smtp.close()
        await runner.cleanup()
        await smtp.wait_closed()


def main() -> None:
    asyncio.run(serve(_arguments()))


if __name__ == "__main__":
    main()
