"""Tools for development, never used by a running bot: the loopback Bot API emulator, the
test harness and the demo."""
