"""Every `workflow.patched` id the workflows use, with what it guards and since when.

1.0.0 is the baseline: it carries no patch. The 0.x ids (close-previous-payment-intent,
stripe-amounts, fulfil-reads-stripe, wait-for-money-in-flight, redeliveries-count,
failed-refund-waits-for-ops, cancel-waits-outside-lock, return-window, lapse-reads-stripe,
ship-captures-at-shipment, ship-remembers-its-money, refund-above-the-share,
return-shares-add-up, watch-every-refund, resolve-settles-refunds, return-finds-its-refund,
cancel-recorded-on-row, cancel-reads-its-answer) were retired with their old branches; they
are never used again, so no history of a 0.x build can be mistaken for a 1.x one's.

From 1.0 on (docs/architecture.md, "Changing workflow code"): a change that alters the
commands of a recorded history gets an id here (what it guards, the release that added it,
the release it may be retired in), `if workflow.patched(ID): <new> else: <old>`, and its
new paths recorded into the corpus. An id is a promise to every recorded history: never
renamed or reused.
"""

from __future__ import annotations

# 1.1.0: the order tells its facts as order events (docs/events.md), written with the row
# change that records each. Asked once when a run begins (OrderContext.emits_events): a
# run begun on 1.0 emits nothing, the next run of it (continue-as-new, a resume) does.
# May be retired once no run begun on 1.0 is open (the drain check in docs/architecture.md).
ORDER_EVENTS = "1.1-order-events"
# 1.1.0: the order sweep also starts order event deliveries whose start was lost. The
# sweep is PINNED and lives seconds: may be retired in 1.2.
SWEEP_STARTS_DELIVERIES = "1.1-sweep-starts-deliveries"
# 1.1.0: an update that acts (writes the row, calls Stripe) first has its acceptance
# recorded (the no-op activity accept_update ends the workflow task that accepted it), so that no
# write of its local activities lands for an update the server then forgets (the server
# died before the task that accepted it was recorded). May be retired once no run begun
# before it is open (the drain check in docs/architecture.md).
ACCEPTED_BEFORE_ACTING = "1.1-accepted-before-acting"
