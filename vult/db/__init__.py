"""PostgreSQL: the system of record for orders (the read model the API serves)."""
