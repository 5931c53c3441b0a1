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
