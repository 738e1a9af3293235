"""Reusable Tk widgets and the Pillow helpers they need (avatars, safe images)."""
