"""Tortoise models, one module per domain.  Tables are created by ``migrations/``,
never by ``generate_schemas``; a model must match its migration."""
