"""The local stack: the real Temporal dev server, PostgreSQL and the Stripe emulator.

Used by `python3 tasks.py run` and by the integration tests, so both start the same way.
"""
