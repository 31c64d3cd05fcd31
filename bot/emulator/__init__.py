"""The loopback Telegram Bot API emulator and simulated users."""

from bot.emulator.phone import Phone
from bot.emulator.server import BotAPIEmulator, EmuMessage, Fault

__all__ = ["BotAPIEmulator", "EmuMessage", "Fault", "Phone"]
