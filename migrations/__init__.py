"""Alembic migrations, shipped inside the package so `sezim-bot db upgrade` finds them."""
