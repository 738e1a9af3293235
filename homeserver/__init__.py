"""Parley homeserver: a Matrix client-server API over Starlette, Hypercorn and Tortoise."""

__version__ = "0.1.0"
