"""Parley's client: ``core`` (asyncio library, no Tk), the CLI and the Tk GUI."""
