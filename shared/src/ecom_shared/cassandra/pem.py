"""PEM material for TLS settings: given inline (the PEM text itself) or as a file path.

It is parsed when settings load, so a wrong file, a wrong key password or a key that does not
belong to its certificate stops a service at start-up with a clear message (the C++ driver
would only say "Unable to load private key"). Messages never quote the material: a private key
given inline is a secret, so errors name only the setting, and a file only by its path.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

_BEGIN = "-----BEGIN "
_KEY_MARKER = "PRIVATE KEY-----"
_ENCRYPTED_MARKERS = ("-----BEGIN ENCRYPTED PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED")


def is_inline(value: str) -> bool:
    """True if ``value`` is PEM text rather than a path."""
    return value.lstrip().startswith(_BEGIN)


def read_pem(value: str) -> str:
    """The PEM text of ``value``: itself if inline, else the content of the file it names."""
    if is_inline(value):
        return value
    return Path(value).read_text(encoding="ascii")


def _where(value: str) -> str:
    return "the PEM text" if is_inline(value) else f"file {value!r}"


def _text(value: str) -> str:
    """Like :func:`read_pem`, with errors that say which file and what is wrong."""
    if not is_inline(value) and not Path(value).is_file():
        raise ValueError(f"file {value!r} does not exist (give a PEM file's path or PEM text)")
    try:
        return read_pem(value)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {_where(value)}: {type(exc).__name__}") from None


def load_certificates(value: str) -> list[x509.Certificate]:
    """The certificates in ``value``; ValueError if there is none or one is malformed."""
    text = _text(value)
    try:
        return x509.load_pem_x509_certificates(text.encode("ascii"))
    except ValueError:
        raise ValueError(f"{_where(value)} holds no valid PEM certificate") from None


def check_private_key_present(value: str) -> None:
    """ValueError unless ``value`` holds a PEM private key (its password is checked later)."""
    if _KEY_MARKER not in _text(value):
        raise ValueError(f"{_where(value)} holds no PEM private key")


def load_private_key(value: str, password: str | None) -> PrivateKeyTypes:
    """The private key in ``value``, decrypted with ``password``; ValueError saying what is wrong.

    The names in the messages are those of the settings (``ssl_private_key`` and its password).
    """
    text = _text(value)
    encrypted = any(marker in text for marker in _ENCRYPTED_MARKERS)
    if encrypted and password is None:
        raise ValueError("ssl_private_key is encrypted: set ssl_private_key_password")
    if not encrypted and password is not None:
        raise ValueError("ssl_private_key_password is set but ssl_private_key is not encrypted")
    try:
        return serialization.load_pem_private_key(
            text.encode("ascii"), password.encode() if password is not None else None
        )
    except (ValueError, TypeError):
        raise ValueError(
            "ssl_private_key cannot be loaded: wrong ssl_private_key_password, "
            "or not a valid PEM private key"
        ) from None


def same_public_key(certificate: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """True if ``key`` is the private half of ``certificate``'s public key."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return certificate.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)
