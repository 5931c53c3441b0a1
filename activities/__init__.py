"""Side effects: PostgreSQL writes and Stripe calls. Every activity is safe to run twice."""
