"""The loopback Telegram Bot API emulator and simulated users."""

from bot.dev.emulator.phone import Phone
from bot.dev.emulator.server import BotAPIEmulator, EmuMessage, Fault

__all__ = ["BotAPIEmulator", "EmuMessage", "Fault", "Phone"]
