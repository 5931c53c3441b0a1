"""The local inbox (dev/inbox/), for tests: a client of its JSON API, and the process itself
on free ports in a folder of the test's.

    with running_inbox(tmp_path) as inbox:               # or Inbox(stack.inbox_url)
        ... send mail to 127.0.0.1:inbox.smtp_port, webhooks to inbox.webhook_url() ...
        mail = inbox.wait_for_mail(lambda m: "c@example.com" in m["to"], timeout=10)
        inbox.set_faults(smtp="transient")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from dev.inbox.launch import start_inbox
from dev.inbox.local_receiver import LOCAL_RECEIVER, LOCAL_RECEIVER_SECRET
from dev.stack.procs import Child, Children, free_ports

Item = dict[str, Any]


class Inbox:
    def __init__(self, url: str, smtp_port: int | None = None) -> None:
        self.url = url.rstrip("/")
        self.smtp_port = smtp_port

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = httpx.request(method, f"{self.url}{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response

    def mails(self) -> list[Item]:
        """Every kept mail, newest first (n, messageId, to, subject, date, receivedAt, text,
        html, from, toHeader, headers)."""
        return list(self._call("GET", "/api/mails").json())

    def deliveries(self) -> list[Item]:
        """Every webhook request received, newest first (n, endpoint, webhookId, type,
        orderId, receivedAt, verified, status, error, body)."""
        return list(self._call("GET", "/api/deliveries").json())

    def set_faults(
        self,
        smtp: str | Mapping[str, Any] | None = None,
        webhook: Mapping[str, Any] | None = None,
    ) -> Item:
        """smtp: "ok", "transient" or {"refuse": address}; webhook: {"endpoint": name,
        "status": 503, "delaySeconds": 0}. Returns the faults now played."""
        body: Item = {}
        if smtp is not None:
            body["smtp"] = smtp
        if webhook is not None:
            body["webhook"] = dict(webhook)
        return dict(self._call("POST", "/api/faults", json=body).json())

    def clear(self) -> None:
        """Forget every mail and delivery, and play no fault."""
        for kept in ("mails", "deliveries", "faults"):
            self._call("DELETE", f"/api/{kept}")

    def webhook_url(self, endpoint: str = LOCAL_RECEIVER) -> str:
        return f"{self.url}/webhooks/{endpoint}"

    def wait_for_mail(self, predicate: Callable[[Item], bool], timeout: float = 20) -> Item:
        return _wait(self.mails, predicate, timeout, "mail")

    def wait_for_delivery(self, predicate: Callable[[Item], bool], timeout: float = 20) -> Item:
        return _wait(self.deliveries, predicate, timeout, "webhook delivery")


def _wait(
    fetch: Callable[[], list[Item]], predicate: Callable[[Item], bool], timeout: float, what: str
) -> Item:
    deadline = time.monotonic() + timeout
    seen: list[Item] = []
    while True:
        seen = fetch()
        found = next((item for item in seen if predicate(item)), None)
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"no matching {what} within {timeout:.0f}s; {len(seen)} seen")
        time.sleep(0.1)


class RunningInbox(Inbox):
    """An inbox process of the test's own; `restart()` stops and starts it on the same ports
    and folder."""

    def __init__(self, child: Child, children: Children, smtp_port: int, http_port: int) -> None:
        super().__init__(f"http://127.0.0.1:{http_port}", smtp_port)
        self.child, self.children = child, children

    def restart(self) -> None:
        self.child.stop()
        self.children.restart(self.child)


@contextmanager
def running_inbox(
    data_dir: Path, endpoints: Mapping[str, str] | None = None
) -> Iterator[RunningInbox]:
    """The inbox on free 127.0.0.1 ports, keeping what it gets in `data_dir`; by default with
    the dev stack's endpoint (LOCAL_RECEIVER, LOCAL_RECEIVER_SECRET)."""
    smtp_port, http_port = free_ports(2)
    children = Children()
    try:
        child = start_inbox(
            children,
            smtp_port=smtp_port,
            http_port=http_port,
            data_dir=data_dir / "inbox",
            endpoints={LOCAL_RECEIVER: LOCAL_RECEIVER_SECRET} if endpoints is None else endpoints,
            log=data_dir / "inbox.log",
        )
        yield RunningInbox(child, children, smtp_port, http_port)
    finally:
        children.stop_all()
