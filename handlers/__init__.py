"""Thin Telegram glue, one module per audience; `register(app)` in each."""
