"""The server-server API's HTTP layer: one module per area, routes in routes.py."""
