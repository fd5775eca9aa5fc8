"""How an exception is told wherever its text leaves the code: a log line, a health reason
(``/readyz``), a metric, another exception's message.

Never an exception's ``repr``: aiohttp's ``ClientResponseError`` carries its request, whose
repr shows the request headers (``Authorization: Bearer ...``), and its ``str`` shows the URL
with its query. An HTTP client's error is told as its type, status, reason and URL without
query or credentials; any other error as its type and message, with URL queries and bearer
tokens taken out. Both are cut to a length, and telling an error never raises.
"""

from __future__ import annotations

import re
from typing import Final

import aiohttp
from yarl import URL

ERROR_TEXT_LIMIT: Final = 300
"""Characters of an error's description kept in a log line or a health reason."""

_URL_QUERY: Final = re.compile(r"(\w+://[^\s?#'\"<>]*)[?#][^\s'\"<>]*")
_URL_USERINFO: Final = re.compile(r"(\w+://)[^\s/@'\"<>]*@")
_BEARER: Final = re.compile(r"(bearer\s+)[^\s'\",;]+", re.IGNORECASE)


def clip(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def describe_error(exc: BaseException, *, limit: int = ERROR_TEXT_LIMIT) -> str:
    """``Type: what happened``, free of secrets and at most ``limit`` characters."""
    name = type(exc).__name__
    try:
        text = _what_happened(exc)
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails is still told
        text = ""
    return clip(f"{name}: {text}" if text else name, limit)


def _what_happened(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientResponseError):
        request = exc.request_info
        where = f" ({request.method} {bare_url(request.real_url)})" if request else ""
        return f"{exc.status} {redact(exc.message)}{where}"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL {bare_url(exc.url)}"
    return redact(str(exc))


def bare_url(url: URL | str) -> str:
    """A URL without credentials, query or fragment."""
    try:
        parsed = URL(url) if isinstance(url, str) else url
        if parsed.absolute:
            parsed = parsed.with_user(None)
        return str(parsed.with_query(None).with_fragment(None))
    except (TypeError, ValueError):
        return redact(re.split(r"[?#]", str(url), maxsplit=1)[0])


def redact(text: str) -> str:
    """``text`` without URL queries, URL credentials and bearer tokens."""
    text = _URL_QUERY.sub(r"\1", text)
    text = _URL_USERINFO.sub(r"\1", text)
    return _BEARER.sub(r"\1[redacted]", text)
