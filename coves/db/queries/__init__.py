"""SQL for each domain, one module per area."""
