"""Every `workflow.patched` id the workflows use, with what it guards and since when.

An id is a promise to every recorded history: once a release has shipped with it, it is
never renamed or reused. Retiring one (docs/architecture.md, "Changing workflow code"):
replace `patched(X)` with `deprecate_patch(X)` and keep only the new branch once no open
order can hold a history from before it; remove the call a release later.
"""

from __future__ import annotations

# Before a new PaymentIntent of a declined order, the declined one is cancelled, so only
# one PaymentIntent of an order can be paid (since 0.1.0+g7887ef7118's successors).
CLOSE_PREVIOUS_PAYMENT_INTENT = "close-previous-payment-intent"

# Stripe's amounts are the truth (since 0.1.0+g920203d): refund and dispute events read the
# charge back (captured, refunded by anyone, disputed) into the state and the row, and a
# refund asks for exactly what is still held, under its own key, never of a disputed charge.
STRIPE_AMOUNTS = "stripe-amounts"
# Fulfilment reads the charge back first: a payment refunded in full at Stripe, or an open
# dispute, refuses `start_processing` and `ship` (since 0.1.0+g920203d).
FULFIL_READS_STRIPE = "fulfil-reads-stripe"
# The workflow does not close while a refund of its is pending or a dispute is open, and
# the payment window waits for a PaymentIntent that is `processing` (since 0.1.0+g920203d).
WAIT_FOR_MONEY_IN_FLIGHT = "wait-for-money-in-flight"
# A redelivered event (already seen) wakes the main loop, so its continue-as-new check
# runs for a redelivery storm too (since 0.1.0+g1984ced5cd).
REDELIVERIES_COUNT = "redeliveries-count"
# A refund Stripe reports failed parks the order until ops `retry` (or `resolve`): no
# timer refunds again (since 0.1.0+g1984ced5cd).
FAILED_REFUND_WAITS_FOR_OPS = "failed-refund-waits-for-ops"
# A cancellation that meets a PaymentIntent mid-charge is recorded and asked again from a
# timer, not from a loop of sleeps under the handlers' lock (since 0.1.0+g1984ced5cd).
CANCEL_WAITS_OUTSIDE_LOCK = "cancel-waits-outside-lock"
# A delivered order's workflow stays open for returns until RETURN_WINDOW has passed
# (before: it completed at delivery) (since 0.1.0+ga07e7b91ce).
RETURN_WINDOW = "return-window"
# Capture at shipment, before a lapsed authorization is renewed or released: Stripe's
# amounts are read first, and money already captured (by hand in the Dashboard) is taken
# as the order's capture, never authorized and captured again (issue 28).
LAPSE_READS_STRIPE = "lapse-reads-stripe"
# Capture at shipment: a shipment of an order with nothing captured goes through the
# capture (Stripe's amounts decide) even when no authorization was seen (a resumed run
# whose authorization lapsed meanwhile): never shipped unpaid (issue 28).
SHIP_CAPTURES_AT_SHIPMENT = "ship-captures-at-shipment"
# A shipment sent again after its money moved and its row write failed carries on that
# shipment (the same lines, no money moved again); other lines are refused (issue 29).
SHIP_REMEMBERS_ITS_MONEY = "ship-remembers-its-money"
# Capture at shipment, captured outside the service above the shipment's share (in full,
# by hand in the Dashboard): the excess is refunded, so what is held is the share (issue 29).
REFUND_ABOVE_THE_SHARE = "refund-above-the-share"
# A line return's tax is cumulative (the tax of all returned so far less that of what was
# returned before), so returns one at a time add up to the whole (issue 29).
RETURN_SHARES_ADD_UP = "return-shares-add-up"
# Every refund the service makes (a return's, an unshipped share's, one above the share) is
# watched until Stripe settles it: a failure parks the order with the amount owed, and
# `retry` makes it again under a fresh key (issue 29).
WATCH_EVERY_REFUND = "watch-every-refund"
# `resolve` settles the failed refunds it was about: none is made again by a later event,
# and the row is not set back to refund_failed (issue 29).
RESOLVE_SETTLES_REFUNDS = "resolve-settles-refunds"
# A return sent again whose refund Stripe already holds under its key is recorded as it is,
# without the checks or a second request (since 0.1.0+g1685141; guarded in issue 29).
RETURN_FINDS_ITS_REFUND = "return-finds-its-refund"
# A cancellation recorded mid-charge (202) is written on the row (pending_cancel_reason), so
# a run resumed from the row completes it (issue 29).
CANCEL_RECORDED_ON_ROW = "cancel-recorded-on-row"
# A released authorization's answer is read: one captured meanwhile is refunded, and the
# row records what Stripe said, not "canceled" (issue 29, item 9).
CANCEL_READS_ITS_ANSWER = "cancel-reads-its-answer"
