"""The code word that brings her back to a conversation she left with quick exit.

She chooses it herself (offered once when she sends a request and when a specialist
joins, always skippable). Only an HMAC of it under the server key is stored, bound to her
record; it is compared in constant time, never logged, never relayed, and her message
with it is deleted from her chat at once. Whoever holds her phone may try words too: a
wrong word gets the same answer as any other text from a new person (nothing tells that a
word exists), and after MAX_FAILS_A_DAY wrong tries in a day the word stops working until
a specialist resets it.

Data access: ORM statements on `models.Client`, built where they run; rows unpacked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import aware
from bot.core.crypto import Crypto
from models import Client

MAX_FAILS_A_DAY = 5
MAX_LENGTH = 40
MAX_WORDS = 3
_TRIM = ".,!?;:\"'«»()[]"


def normalise(text: str) -> str | None:
    """The word as it is compared (case, spaces and end punctuation do not matter), or
    None for text that cannot be a code word (a sentence, a command, a single letter)."""
    words = [w.strip(_TRIM) for w in text.casefold().split()]
    words = [w for w in words if w]
    if not words or len(words) > MAX_WORDS:
        return None
    word = " ".join(words)
    if not 2 <= len(word) <= MAX_LENGTH or word.startswith("/"):
        return None
    return word


@dataclass(frozen=True)
class State:
    stored: bytes | None
    fails: int
    day: date | None
    locked: bool
    set_at: datetime | None = None

    def may_resume(self, paused_at: datetime | None) -> bool:
        """Whether this word was chosen before the case was paused."""
        if self.set_at is None or paused_at is None:
            return False
        return aware(self.set_at) <= aware(paused_at)

    @property
    def usable(self) -> bool:
        return self.stored is not None and not self.locked


async def state(session: AsyncSession, client_id: int) -> State:
    row = (await session.execute(
        select(Client.code_word_hmac, Client.code_word_fails, Client.code_word_day,
               Client.code_word_locked, Client.code_word_set_at)
        .where(Client.id == client_id))).first()
    if row is None:
        return State(None, 0, None, False)
    word_hmac, fails, day, locked, set_at = row
    return State(bytes(word_hmac) if word_hmac is not None else None, int(fails or 0), day,
                 bool(locked), set_at)


async def choose(session: AsyncSession, *, crypto: Crypto, client_id: int, word: str,
                 now: datetime) -> None:
    """Store a new code word (replacing any earlier one, unlocked). It brings back only a
    case paused after now: whoever chose it after her quick exit may not be her."""
    await session.execute(
        update(Client).where(Client.id == client_id).values(
            code_word_hmac=crypto.code_word(client_id, word), code_word_set_at=now,
            code_word_fails=0, code_word_day=None, code_word_locked=False))


async def attempt(session: AsyncSession, *, crypto: Crypto, client_id: int, word: str,
                  today: date, paused_at: datetime | None) -> bool:
    """Whether `word` is her code word for a case paused at `paused_at`. A wrong try is
    counted; the last allowed one locks the word. A locked word (or none, or one chosen
    after the pause) never matches."""
    current = await state(session, client_id)
    if not current.usable or current.stored is None:
        return False
    if not current.may_resume(paused_at):
        return False
    if crypto.code_word_matches(client_id, word, current.stored):
        # Stored again under the newest key: a word used during a key rotation keeps
        # working once the old key is gone.
        await session.execute(update(Client).where(Client.id == client_id).values(
            code_word_hmac=crypto.code_word(client_id, word), code_word_fails=0,
            code_word_day=None))
        return True
    fails = (current.fails if current.day == today else 0) + 1
    await session.execute(update(Client).where(Client.id == client_id).values(
        code_word_fails=fails, code_word_day=today,
        code_word_locked=fails >= MAX_FAILS_A_DAY))
    return False


async def reset(session: AsyncSession, *, client_id: int) -> bool:
    """A specialist lets a locked word work again (her tries start afresh); False if she
    has no code word."""
    result = await session.execute(
        update(Client).where(Client.id == client_id, Client.code_word_hmac.is_not(None))
        .values(code_word_fails=0, code_word_day=None, code_word_locked=False))
    return bool(getattr(result, "rowcount", 0))
