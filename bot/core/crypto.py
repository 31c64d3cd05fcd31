"""Encryption at rest and pseudonyms, all derived from the server secret.

- Chat ids and phone numbers are stored as Fernet tokens (AES-CBC + HMAC) under keys derived
  from `SEZIM_SECRET_KEY`. Several comma-separated secrets may be given: the first encrypts,
  all decrypt (MultiFernet), so a key can be rotated without downtime.
- Rows are found by an HMAC of the id (`lookup`), never by decrypting every row.
- Statistics count distinct people through a yearly pseudonym: HMAC(secret, year, id).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sezim-bot", info=purpose).derive(
        secret.encode("utf-8")
    )


class Crypto:
    """Encrypts ids, computes lookup HMACs and yearly pseudonyms."""

    def __init__(self, secret: str) -> None:
        secrets = [s.strip() for s in secret.split(",") if s.strip()]
        if not secrets:
            raise ValueError("empty secret")
        self._fernet = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(_derive(s, b"fernet"))) for s in secrets]
        )
        self._lookup_keys = [_derive(s, b"lookup") for s in secrets]
        self._pseudonym_key = _derive(secrets[0], b"pseudonym")
        self._webhook_key = _derive(secrets[0], b"webhook")
        self._code_word_keys = [_derive(s, b"code-word") for s in secrets]
        self._checks = [hmac.new(_derive(s, b"key-check"), b"sezim-bot key check",
                                 hashlib.sha256).digest() for s in secrets]

    @property
    def key_checks(self) -> list[bytes]:
        """Each configured key's check value (newest first): tells which key a database
        was made with, and reveals nothing of the key."""
        return list(self._checks)

    def encrypt(self, value: str | int) -> bytes:
        return self._fernet.encrypt(str(value).encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        return self._fernet.decrypt(token).decode("utf-8")

    def decrypt_int(self, token: bytes) -> int:
        return int(self.decrypt(token))

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt a token under the newest key."""
        return self._fernet.rotate(token)

    def lookup(self, value: str | int) -> bytes:
        """The HMAC under which a Telegram id is found (current key)."""
        return hmac.new(self._lookup_keys[0], str(value).encode(), hashlib.sha256).digest()

    def lookups(self, value: str | int) -> list[bytes]:
        """The HMACs under every configured key, newest first (for rotation)."""
        data = str(value).encode()
        return [hmac.new(k, data, hashlib.sha256).digest() for k in self._lookup_keys]

    def code_word(self, client_id: int, word: str) -> bytes:
        """What is stored of her code word (current key): an HMAC bound to her record, so
        the same word of two clients is stored differently and neither can be read."""
        return self._code_word_mac(self._code_word_keys[0], client_id, word)

    def code_word_matches(self, client_id: int, word: str, stored: bytes) -> bool:
        """Whether `word` is her code word, under any configured key, in constant time."""
        found = False
        for key in self._code_word_keys:
            found |= hmac.compare_digest(self._code_word_mac(key, client_id, word), stored)
        return found

    @staticmethod
    def _code_word_mac(key: bytes, client_id: int, word: str) -> bytes:
        message = f"{client_id}:{word}".encode()
        return hmac.new(key, message, hashlib.sha256).digest()

    def webhook_token(self) -> str:
        """The secret Telegram sends with every webhook request (A-Z, a-z, 0-9, _ and -)."""
        return base64.urlsafe_b64encode(self._webhook_key).decode("ascii").rstrip("=")

    def pseudonym(self, telegram_id: int, year: int) -> int:
        """A yearly pseudonym: the same person within a year, unlinkable across years.

        63 bits of the HMAC, so it fits a signed BIGINT and indexes compactly; a collision
        among a year's people is vanishingly unlikely (about 1 in 10^7 for a million).
        """
        message = f"{year}:{telegram_id}".encode()
        digest = hmac.new(self._pseudonym_key, message, hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") >> 1


__all__ = ["Crypto", "InvalidToken"]
