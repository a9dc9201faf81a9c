"""The intake's command line (`python -m producers.http`): minting a caller's token."""

from __future__ import annotations

import json
import secrets
import sys

from producers.http.auth import token_sha256


def _main(argv: list[str]) -> int:
    """`python -m producers.http new-token NAME CUIT...`: a fresh token and its [[client]]."""
    if len(argv) < 3 or argv[0] != "new-token":
        print("usage: python -m producers.http new-token NAME CUIT [CUIT...]", file=sys.stderr)
        return 2
    token = secrets.token_urlsafe(32)
    cuits = ", ".join(json.dumps(c) for c in argv[2:])
    print(f"# give the caller this token (it is not stored anywhere): {token}")
    print("[[client]]")
    print(f"name = {json.dumps(argv[1])}")
    print(f'token_sha256 = "{token_sha256(token)}"')
    print(f"cuits = [{cuits}]")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
