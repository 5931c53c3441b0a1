"""One try of one order event to one target (docs/events.md): a webhook to one of the
shop's endpoints, or the customer's e-mail. The workflow (workflows/event_delivery.py)
decides when to try again; this does the try and records where the delivery stands.

A try whose record fails (the database away) is tried again by Temporal: the receiver may
get that try twice, with the same `webhook-id` or `Message-ID`, which is how it tells.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities import order_mail, webhook_post
from activities.order_events import Outbox
from vult.db.models import EVENT_DELIVERIES, ORDER_EVENTS, ORDERS, WEBHOOK_ENDPOINT_STATES
from vult.domain.contracts import DeliveryAnswer, DeliveryAttempt
from vult.domain.order_events import EMAIL_TARGET
from vult.process.outbound import WebhookEndpoint
from vult.release import version

_STATE = {"delivered": "delivered", "refused": "refused", "disabled": "disabled"}


class EventDeliveryActivities:
    def __init__(
        self,
        engine: AsyncEngine,
        endpoints: list[WebhookEndpoint],
        mail: order_mail.MailSettings | None,
        webhook_timeout: float,
        outbox: Outbox,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._endpoints = {e.name: e for e in endpoints}
        self._mail = mail
        self._timeout = webhook_timeout
        self._user_agent = f"vult-orders/{version()} (+Standard Webhooks)"
        # One pool for every try; each try bounds itself (webhook_post.post).
        self._http = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(webhook_timeout),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        )

    async def close(self) -> None:
        await self._http.aclose()

    @activity.defn(name="start_pending_deliveries")
    async def start_pending_deliveries(self, older_than_seconds: int) -> int:
        return await self._outbox.start_pending(self._engine, timedelta(seconds=older_than_seconds))

    @activity.defn(name="enable_endpoint")
    async def enable_endpoint(self, name: str) -> bool:
        """Whether it was disabled (it is not now)."""
        async with self._engine.begin() as conn:
            found = await conn.scalar(
                update(WEBHOOK_ENDPOINT_STATES)
                .where(
                    WEBHOOK_ENDPOINT_STATES.c.name == name,
                    WEBHOOK_ENDPOINT_STATES.c.disabled_at.is_not(None),
                )
                .values(disabled_at=None)
                .returning(WEBHOOK_ENDPOINT_STATES.c.name)
            )
        return found is not None

    @activity.defn(name="deliver_event")
    async def deliver_event(self, attempt: DeliveryAttempt) -> DeliveryAnswer:
        async with self._engine.connect() as conn:
            found = (
                await conn.execute(
                    select(ORDER_EVENTS.c.body, ORDERS.c.customer_email_refused)
                    .join(ORDERS, ORDERS.c.order_id == ORDER_EVENTS.c.order_id)
                    .where(ORDER_EVENTS.c.event_id == attempt.event_id)
                )
            ).one_or_none()
            disabled = await conn.scalar(
                select(WEBHOOK_ENDPOINT_STATES.c.disabled_reason).where(
                    WEBHOOK_ENDPOINT_STATES.c.name == attempt.target,
                    WEBHOOK_ENDPOINT_STATES.c.disabled_at.is_not(None),
                )
            )
        if found is None:
            return DeliveryAnswer(outcome="disabled", text="the event is not in the outbox")
        body: dict[str, Any] = found.body
        if attempt.target == EMAIL_TARGET:
            answer = await self._mail_try(body, found.customer_email_refused)
        elif disabled is not None:
            answer = DeliveryAnswer(outcome="disabled", text=f"endpoint disabled: {disabled}")
        else:
            answer = await self._webhook_try(attempt, body)
        await self._record(attempt, answer)
        return answer

    async def _webhook_try(self, attempt: DeliveryAttempt, body: dict[str, Any]) -> DeliveryAnswer:
        endpoint = self._endpoints.get(attempt.target)
        if endpoint is None:
            return DeliveryAnswer(
                outcome="disabled", text="no endpoint of this name in WEBHOOK_ENDPOINTS"
            )
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        posted = await webhook_post.post(
            self._http, endpoint, attempt.event_id, payload, self._timeout, self._user_agent
        )
        outcome = "disabled" if posted.outcome == "gone" else posted.outcome
        return DeliveryAnswer(outcome=outcome, status=posted.status, text=posted.text)

    async def _mail_try(self, body: dict[str, Any], refused: str | None) -> DeliveryAnswer:
        if refused is not None:
            return DeliveryAnswer(outcome="disabled", text=f"address refused before: {refused}")
        if self._mail is None:
            return DeliveryAnswer(outcome="disabled", text="no SMTP_HOST: e-mail is off")
        try:
            message = order_mail.compose(body, self._mail)
        except ValueError as exc:  # no usable address, a shop template that fails
            return DeliveryAnswer(outcome="disabled", text=f"no mail could be made: {exc}")
        if message is None:
            return DeliveryAnswer(outcome="disabled", text="this event sends no e-mail")
        sent = await asyncio.to_thread(order_mail.send, message, self._mail)
        outcome = {"sent": "delivered", "refused": "refused"}.get(sent.outcome, "try_again")
        return DeliveryAnswer(outcome=outcome, text=sent.text)

    async def _record(self, attempt: DeliveryAttempt, answer: DeliveryAnswer) -> None:
        now = datetime.now(UTC)
        state = _STATE.get(answer.outcome, "failing" if attempt.next_try_in else "failed")
        values: dict[str, object] = {
            "state": state,
            "attempts": EVENT_DELIVERIES.c.attempts + 1,
            "last_status": answer.status,
            "last_answer": answer.text[:500],
            "last_attempt_at": now,
            "next_attempt_at": (
                now + timedelta(seconds=attempt.next_try_in)
                if state == "failing" and attempt.next_try_in
                else None
            ),
        }
        if state == "delivered":
            values["delivered_at"] = now
        async with self._engine.begin() as conn:
            # An upsert: ops may send an event again to an endpoint added after it.
            await conn.execute(
                insert(EVENT_DELIVERIES)
                .values(
                    event_id=attempt.event_id,
                    target=attempt.target,
                    attempts=1,
                    runs=attempt.run,
                    **{k: v for k, v in values.items() if k != "attempts"},
                )
                .on_conflict_do_update(
                    index_elements=[EVENT_DELIVERIES.c.event_id, EVENT_DELIVERIES.c.target],
                    set_={
                        **values,
                        "runs": func.greatest(EVENT_DELIVERIES.c.runs, attempt.run),
                    },
                )
            )
            if attempt.target == EMAIL_TARGET and state == "refused":
                await conn.execute(
                    update(ORDERS)
                    .where(
                        ORDERS.c.order_id
                        == select(ORDER_EVENTS.c.order_id)
                        .where(ORDER_EVENTS.c.event_id == attempt.event_id)
                        .scalar_subquery(),
                        ORDERS.c.customer_email_refused.is_(None),
                    )
                    .values(customer_email_refused=answer.text[:500])
                )
            if attempt.target != EMAIL_TARGET and answer.status == 410:
                await conn.execute(
                    insert(WEBHOOK_ENDPOINT_STATES)
                    .values(name=attempt.target, disabled_at=now, disabled_reason=answer.text)
                    .on_conflict_do_update(
                        index_elements=[WEBHOOK_ENDPOINT_STATES.c.name],
                        set_={"disabled_at": now, "disabled_reason": answer.text[:500]},
                    )
                )
