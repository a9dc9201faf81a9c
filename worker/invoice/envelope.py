"""The job envelope producers submit (issuer CUIT, invoice, callback_url, metadata) and
`validate_envelope`, the one door in: the structural checks (pydantic), then the fields tfq
does not know, then the business rules; it refuses with every field path and reason at
once per stage."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from worker.errors import FieldError, InvalidJob, field_errors, unencodable_path
from worker.invoice.cuit import valid_cuit
from worker.invoice.fieldtypes import blank_to_none
from worker.invoice.passthrough import plain_json, unknown_fields
from worker.invoice.rules import business_errors
from worker.invoice.schema import Invoice
from worker.settings import CF_IDENTIFICATION_THRESHOLD_ARS


class JobEnvelope(BaseModel):
    """What producers submit: the same for the Python API, a JSONL line and an HTTP body."""

    model_config = ConfigDict(extra="forbid")
    # Paths of invoice fields tfq passed through without checking them (`unknown_fields`).
    _unchecked: list[str] = PrivateAttr(default_factory=list)

    cuit: str
    invoice: Invoice
    callback_url: Annotated[AnyHttpUrl | None, BeforeValidator(blank_to_none)] = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cuit", mode="before")
    @classmethod
    def _cuit(cls, v: Any) -> Any:
        v = str(v) if isinstance(v, int) else v
        return valid_cuit(v) if isinstance(v, str) else v

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(v) > 50:
            raise ValueError("at most 50 keys")
        if len(plain_json(v)) > 8192:
            raise ValueError("at most 8 KiB")
        return v

    @property
    def external_reference(self) -> str:
        return self.invoice.comprobante.external_reference

    @property
    def unchecked_fields(self) -> list[str]:
        # Read from pydantic's store of private attributes: `self._unchecked` takes
        # BaseModel.__getattr__'s slow path (about 5 us; bulk intake reads it per job).
        private = self.__pydantic_private__ or {}
        return list(private.get("_unchecked", ()))

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key: one invoice per (issuer CUIT, external_reference)."""
        return (self.cuit, self.invoice.comprobante.external_reference)

    def invoice_body(self) -> dict[str, Any]:
        """The invoice as the API wants it (JSON-ready, numbers as numbers), no credentials."""
        return self.invoice.model_dump(mode="json", exclude_none=True)


def validate_envelope(
    data: Any,
    *,
    today: date | None = None,
    cf_threshold: Decimal = CF_IDENTIFICATION_THRESHOLD_ARS,
) -> JobEnvelope:
    """The job, or `InvalidJob` listing every field path and reason."""
    if not isinstance(data, dict):
        raise InvalidJob([FieldError("", "a job must be a JSON object")])
    unchecked, misspelt = unknown_fields(Invoice, data.get("invoice"), ("invoice",))
    try:
        env = JobEnvelope.model_validate(data)
    except ValidationError as exc:
        errors = misspelt + field_errors(exc, data=data)
        if any(e["type"] == "string_unicode" for e in exc.errors(include_input=False)):
            # A lone surrogate (JSON allows one): pydantic cannot name where it is.
            path = unencodable_path(data)
            if path is not None:
                errors = [FieldError(path, "not valid UTF-8 text")]
        raise InvalidJob(errors) from None
    if misspelt:
        raise InvalidJob(misspelt)
    errs = business_errors(env, today=today, cf_threshold=cf_threshold)
    if errs:
        raise InvalidJob(errs)
    env._unchecked = unchecked
    return env
