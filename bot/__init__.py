"""sezim-bot: a Telegram bot for crisis centers that help survivors of domestic violence."""

__version__ = "0.1.0"
