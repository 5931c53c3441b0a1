"""Workflows decide: each order is one OrderWorkflow. No I/O, clock or randomness here."""
