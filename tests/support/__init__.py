"""What the tests share: helpers, stand-ins and constants. A test module takes its helpers
from here only, never from another test module or a conftest (tests/unit/test_structure.py
checks); a conftest holds fixtures and hooks, built from these.

- integration.py: the real programs' test settings, the worker and API runners, order bodies,
  paying with the emulator's cards, waiting for an order, webhooks.
- workflows.py: the stand-in activities (Backend), the Harness that places and pays orders
  on the time-skipping test server, the stand-in worker.
- stripe_signing.py: Stripe's webhook signature scheme, for signed test events.
- inbox.py: the local inbox (dev/inbox/) for tests: its mails and webhook deliveries, its
  faults, an inbox process of the test's own.
- temporal_server.py: the dev server's settings for the tests' own Temporal servers.
- variants.py: OrderWorkflow as a next build might change it (deploy test, replay gate).
"""
