"""A bulk file's jobs: `JobLine`, and the checks both formats share (strict JSON, one
validation door, duplicates within the file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from worker.errors import FieldError, InvalidJob, field_errors
from worker.invoice.envelope import JobEnvelope, validate_envelope
from worker.settings import get_settings
from worker.webhooks.safe_http import callback_url_errors


@dataclass(frozen=True)
class JobLine:
    """One job of a bulk file, valid or not."""

    line: int
    """1-based physical line; for CSV the first row of the invoice (the header is line 1)."""
    envelope: JobEnvelope | None
    """The validated job, or None when it was refused."""
    raw: dict[str, Any] | None
    """The envelope as parsed, before validation; None when the line could not be parsed."""
    errors: list[FieldError] = field(default_factory=list)
    """Why it was refused; empty when valid."""

    @property
    def ok(self) -> bool:
        return self.envelope is not None and not self.errors


class _JsonProblem(Exception):
    """A JSON text Python's parser accepts but a job must not have."""


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            shown = key if len(key) <= 40 else key[:40] + "…"
            raise _JsonProblem(f"the key {json.dumps(shown, ensure_ascii=False)} appears twice")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise _JsonProblem(f"{name} is not a JSON number")


def parse_json(text: str) -> tuple[Any, str | None]:
    """The JSON value, or the reason it is not (position, never content)."""
    try:
        value = json.loads(text, object_pairs_hook=_object_pairs, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON at column {exc.colno}: {exc.msg}"
    except _JsonProblem as exc:
        return None, f"not valid JSON: {exc}"
    except RecursionError:
        return None, "not valid JSON: nested too deeply"
    except ValueError:  # e.g. an integer with more digits than Python converts
        return None, "not valid JSON: a number is too long"
    return value, None


def validate_job(
    line: int,
    raw: dict[str, Any],
    today: date | None,
    seen: dict[tuple[str, str], int],
) -> tuple[JobEnvelope | None, list[FieldError]]:
    """The validated envelope, or why it is refused; `seen` maps each key to its first line."""
    try:
        env = validate_envelope(raw, today=today)
    except InvalidJob as exc:
        return None, list(exc.errors)
    except ValidationError as exc:  # the contract says InvalidJob; stay safe anyway
        return None, field_errors(exc)
    # As InvoiceQueue.validate refuses it, so `tfq check` and `--strict` see it first.
    refused = callback_url_errors(
        env.callback_url, allow_private=get_settings().callbacks_allow_private
    )
    if refused:
        return None, refused
    first = seen.setdefault(env.key, line)
    if first != line:
        reason = f"duplicate of line {first} (same cuit and external_reference)"
        return None, [FieldError("invoice.comprobante.external_reference", reason)]
    return env, []
