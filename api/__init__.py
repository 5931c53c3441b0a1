"""The HTTP API: validates input, then starts, updates, signals or reads. It writes nothing."""
