"""The admin command line (``python -m homeserver.admin``): common operator tasks over the
same service layer as the admin API, against the configured database, without a
running server."""
