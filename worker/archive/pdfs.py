"""The PDF store: every issued invoice's PDF (and ticket), downloaded on the day it is
issued, because TusFacturas' links work only that day.

The store is a directory by default (`TFQ_PDF_DIR`) or any fsspec URL (`s3://bucket/tfq`
with s3fs installed, ...). Files are named by what they are, so an operator can find an
invoice's PDF without the database: `<cuit>/<punto de venta>/<tipo>/<numero>.pdf`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

import fsspec
import requests
from fsspec.spec import AbstractFileSystem

from worker.errors import TfqError

PDF_MAGIC = b"%PDF-"
# An invoice's PDF is a page or two; a link that serves more is not serving one.
MAX_PDF_BYTES = 20 * 1024 * 1024


class PdfKind(StrEnum):
    A4 = "pdf"
    TICKET = "ticket"


class PdfLinkExpired(TfqError):
    """The link no longer serves the PDF (TusFacturas' links die the day after)."""


class PdfUnavailable(TfqError):
    """The download failed in a way worth retrying later (network, 5xx, timeout)."""


@dataclass(frozen=True)
class StoredPdf:
    path: str  # relative to the store's root
    sha256: str
    size: int  # bytes


def _slug(tipo: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", tipo).strip("-").lower()


def pdf_path(cuit: str, punto_venta: int, tipo: str, numero: int, kind: PdfKind) -> str:
    suffix = "" if kind is PdfKind.A4 else "-ticket"
    return f"{cuit}/{punto_venta:05d}/{_slug(tipo)}/{numero:08d}{suffix}.pdf"


class PdfStore:
    """Reads and writes PDFs under one root (a local directory or an fsspec URL)."""

    def __init__(self, url: str):
        fs, root = fsspec.core.url_to_fs(url)
        self.fs: AbstractFileSystem = fs
        self.root = root.rstrip("/")
        self.url = url

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}"

    def put(self, path: str, data: bytes) -> StoredPdf:
        """Write the file whole: to a temporary name, then moved into place, so a reader
        never sees half a PDF (where the filesystem has a rename)."""
        full = self._full(path)
        self.fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
        partial = full + ".partial"
        with self.fs.open(partial, "wb") as out:
            out.write(data)
        self.fs.mv(partial, full)
        return StoredPdf(path, hashlib.sha256(data).hexdigest(), len(data))

    def get(self, path: str) -> bytes:
        with self.fs.open(self._full(path), "rb") as f:
            data: bytes = f.read()
        return data

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self._full(path)))


def download_pdf(session: requests.Session, url: str, timeout_seconds: float) -> bytes:
    """The PDF at a TusFacturas link. Raises `PdfLinkExpired` when the link answers but
    serves no PDF (gone, forbidden, an HTML page), `PdfUnavailable` when trying again
    later may work."""
    try:
        response = session.get(url, timeout=timeout_seconds, stream=True)
    except requests.RequestException as exc:
        raise PdfUnavailable(f"PDF download failed: {type(exc).__name__}") from None
    with response:
        if response.status_code in (401, 403, 404, 410):
            raise PdfLinkExpired(f"PDF link answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise PdfUnavailable(f"PDF link answered HTTP {response.status_code}")
        try:
            data = response.raw.read(MAX_PDF_BYTES + 1, decode_content=True)
        except Exception as exc:  # urllib3 read errors have no common public base
            raise PdfUnavailable(f"PDF download cut short: {type(exc).__name__}") from None
    if len(data) > MAX_PDF_BYTES:
        raise PdfLinkExpired(f"PDF link served more than {MAX_PDF_BYTES} bytes")
    if not data.startswith(PDF_MAGIC):
        raise PdfLinkExpired("PDF link served something that is not a PDF")
    return data
