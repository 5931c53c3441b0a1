"""Process set-up for the worker and the API: settings, logging, the event loop, and the
Stripe client built from settings."""
