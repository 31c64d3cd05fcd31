"""What the bot shows, free of Telegram types: handlers render these into messages."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain.callbacks import Callback, Exit, encode


@dataclass(frozen=True)
class Button:
    label: str
    data: str  # callback data (`callbacks.encode`), at most 64 bytes

    @classmethod
    def of(cls, label: str, data: Callback) -> Button:
        """A button saying `data` when tapped."""
        return cls(label, encode(data))


@dataclass
class Screen:
    """One message: HTML text and rows of inline buttons."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    # Emergency answers and case cards go before everything else under load.
    urgent: bool = False

    @property
    def has_buttons(self) -> bool:
        return any(self.buttons)

    @property
    def is_menu(self) -> bool:
        """Buttons besides quick exit: the message becomes her menu (the others expire)."""
        return any(b.data != QUICK_EXIT for row in self.buttons for b in row)


QUICK_EXIT = encode(Exit())


def small_number(text: str, digits: int = 9) -> int | None:
    """`text` as a non-negative number of at most `digits` ASCII digits, else None: callback
    data and command arguments may be forged ("²" is a digit to `str.isdigit`, and a
    40-digit id does not fit a database integer)."""
    if not text or len(text) > digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
