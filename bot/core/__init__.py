"""What every part of the bot stands on: configuration, keys and crypto, the clock, texts,
the database. Imports nothing else of the bot."""
