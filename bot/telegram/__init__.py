"""The Telegram glue: the PTB Application, polling, delivery, relay, due-time triggers, jobs
and Telegram's send limits. With `handlers/`, the only part of the bot that imports
`telegram`."""
