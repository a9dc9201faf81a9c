"""`python -m ops.sandbox`: serve the fake TusFacturas API v2 (see `ops.sandbox`)."""

from __future__ import annotations

import contextlib
import re

from ops.sandbox.config import build_parser, config_from_args
from ops.sandbox.server import run


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.reject_ref is not None:
        try:
            re.compile(ns.reject_ref)
        except re.error as exc:
            parser.error(f"--reject-ref: {exc}")
    with contextlib.suppress(KeyboardInterrupt):
        run(config_from_args(ns))


if __name__ == "__main__":
    main()
