"""`Crypto.Cipher.AES` as dc09-spt 0.0.4 calls it, on `cryptography`.

dc09-spt was written for pycrypto under Python 2: it hands AES a `str` IV and `str` plaintext.
pycrypto does not build on Python 3.11 and pycryptodome refuses `str`, so its encrypted mode
cannot run as published. This shim accepts `str` (as latin-1 bytes, what Python 2 meant) and
does nothing else: padding, framing and hex are still dc09-spt's own code.
"""

from __future__ import annotations

import sys
import types

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MODE_CBC = 2


def _bytes(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


class _AesCbc:
    def __init__(self, key: str | bytes, iv: str | bytes) -> None:
        self._cipher = Cipher(algorithms.AES(_bytes(key)), modes.CBC(_bytes(iv)))

    def encrypt(self, data: str | bytes) -> bytes:
        encryptor = self._cipher.encryptor()
        return encryptor.update(_bytes(data)) + encryptor.finalize()

    def decrypt(self, data: str | bytes) -> bytes:
        decryptor = self._cipher.decryptor()
        return decryptor.update(_bytes(data)) + decryptor.finalize()


def new(key: str | bytes, mode: int, iv: str | bytes) -> _AesCbc:
    if mode != MODE_CBC:
        raise ValueError("only CBC, as dc09-spt uses")
    return _AesCbc(key, iv)


def install() -> None:
    """Make `from Crypto.Cipher import AES` find this module."""
    if "Crypto.Cipher.AES" in sys.modules:
        return
    package = types.ModuleType("Crypto")
    cipher = types.ModuleType("Crypto.Cipher")
    aes = types.ModuleType("Crypto.Cipher.AES")
    aes.MODE_CBC = MODE_CBC  # type: ignore[attr-defined]
    aes.new = new  # type: ignore[attr-defined]
    cipher.AES = aes  # type: ignore[attr-defined]
    package.Cipher = cipher  # type: ignore[attr-defined]
    sys.modules.update({"Crypto": package, "Crypto.Cipher": cipher, "Crypto.Cipher.AES": aes})
