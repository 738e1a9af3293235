"""Numbered schema migrations, applied in order at start-up.

Each ``NNNN_name.py`` module defines ``upgrade(dialect) -> list[str]``
returning the statements for ``"sqlite"`` or ``"mysql"``.  Tables are built
with :mod:`migrations.ddl` so both dialects stay in step and every text
column compares exactly (``utf8mb4_nopad_bin`` on MySQL).  Never edit a migration
that has shipped: add the next number.
"""
