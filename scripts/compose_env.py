#!/usr/bin/env python3
"""Print .env.example with fresh secrets: every ``change-me-*`` value replaced by a random token and an
empty ``AIRFLOW_FERNET_KEY`` by a new Fernet key. Python 3 standard library only.

    python3 scripts/compose_env.py --output .env      # then: docker compose up -d --build

``--output`` writes the file readable by its owner only (mode 0600, set before any secret is written);
printing to stdout instead leaves the mode to the shell's umask (use ``umask 077`` first).

Keeps ``user:`` prefixes (``FLOWER_BASIC_AUTH=admin:change-me-...`` -> ``admin:<token>``) and prints the
generated admin password on stderr so you can log in.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def fill(text: str) -> tuple[str, dict]:
    """``text`` (the .env.example content) with placeholders replaced; also returns what was generated."""
    out, made = [], {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            prefix, _, rest = value.rpartition(":") if ":" in value else ("", "", value)
            if rest.startswith("change-me"):
                value = (prefix + ":" if prefix else "") + secrets.token_urlsafe(36)
                made[key] = value
            elif key == "AIRFLOW_FERNET_KEY" and not value:
                value = base64.urlsafe_b64encode(os.urandom(32)).decode()
                made[key] = "(generated)"
            line = f"{key}={value}"
        out.append(line)
    return "\n".join(out) + "\n", made


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start (an existing file is truncated and re-moded
    before anything is written), so the secrets are never readable by other users."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fd, 0o600)
        fh.write(text)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, help="write the .env here (mode 0600) instead of to stdout")
    args = parser.parse_args(argv)
    text, made = fill(EXAMPLE.read_text())
    if args.output:
        write_private(args.output, text)
    else:
        sys.stdout.write(text)
    if "AIRFLOW_ADMIN_PASSWORD" in made:
        print(f"admin password: {made['AIRFLOW_ADMIN_PASSWORD']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
