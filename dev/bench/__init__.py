"""The benchmark: full order lifecycles over HTTP on the local stack, with references."""
