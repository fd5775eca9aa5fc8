"""``ecom-health``: exit 0 if the service in this container answers its probe, else 1.

For Docker ``HEALTHCHECK`` and Compose healthchecks in images that have no curl: it GETs
``http://127.0.0.1:$ECOM_HTTP__PORT/readyz`` (``--live``: ``/livez``) with a short timeout and
prints the body. Standard library only, so it starts fast and needs no event loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from http import HTTPStatus


def probe_url(*, live: bool, port: str | None = None) -> str:
    port = port or os.environ.get("ECOM_HTTP__PORT") or "8000"
    return f"http://127.0.0.1:{port}/{'livez' if live else 'readyz'}"


def check(url: str, timeout: float) -> tuple[bool, str]:
    """GET ``url``: (True, body) on HTTP 200, (False, why) on anything else."""
    if not url.startswith(("http://", "https://")):
        return False, f"not an http(s) URL: {url}"
    try:
        # The scheme is checked above; the URL is the operator's own probe address.
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310
            return reply.status == HTTPStatus.OK, reply.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}: {exc.read(4096).decode(errors='replace')}"
    except (OSError, ValueError) as exc:
        return False, f"{url}: {exc}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecom-health", description=__doc__.splitlines()[0])
    parser.add_argument("--live", action="store_true", help="check /livez instead of /readyz")
    parser.add_argument("--url", help="probe this URL instead")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    args = parser.parse_args(argv)
    ok, text = check(args.url or probe_url(live=args.live), args.timeout)
    (sys.stdout if ok else sys.stderr).write(text.rstrip() + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
