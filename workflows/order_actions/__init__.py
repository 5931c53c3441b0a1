"""What the order workflow does, by capability; the workflow (workflows/order.py) decides
when, holds the state and the lock, and calls these one at a time. The rules are in
workflows/decisions.py, the activity calls in workflows/steps.py.

    payment        PaymentIntents, Stripe's word applied, reconciliation, the payment window
    cancellation   cancel: the PaymentIntent cancelled or released, refunded, the row
    refunds        refunds of ours (made once, watched), Stripe's amounts read back, disputes
    shipping       a shipment's capture or refund of the unshipped share, returns
    authorization  the hold's clock (capture at shipment): remind, release or renew
    resume         a run resumed from the row catches up with Stripe
    resolution     ops' `resolve`
    timers         what each timer does
    row            the one way the order row changes
"""
