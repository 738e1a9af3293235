"""The Synapse-compatible server admin API (``/_synapse/admin/...``)."""
