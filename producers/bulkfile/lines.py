"""Physical lines of a bulk file: read as bytes, never more than the limit at once.

Each line is decoded as UTF-8 on its own, so a badly encoded line is refused alone, and
a line longer than the limit is measured without being held in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

BOM = b"\xef\xbb\xbf"
CHUNK_BYTES = 1 << 16


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based
    offset: int  # byte offset of the line's start
    data: bytes  # without the line break; for an oversized line, its first max bytes only
    size: int  # bytes without the line break
    oversized: bool

    @property
    def blank(self) -> bool:
        return not self.oversized and not self.data.strip()


def physical_lines(fh: IO[bytes], max_bytes: int, first_number: int = 1) -> Iterator[Line]:
    """The physical lines from the current position, never holding more than max_bytes+2."""
    number = first_number - 1
    offset = fh.tell()
    limit = max_bytes + 2  # room for "\r\n"
    while True:
        chunk = fh.readline(limit)
        if not chunk:
            return
        number += 1
        start = offset
        offset += len(chunk)
        if chunk.endswith(b"\n") or len(chunk) < limit:
            data = chunk.rstrip(b"\n")
            data = data[:-1] if data.endswith(b"\r") else data
            size = len(data)
        else:
            # No line break within the limit: count the rest of the line, drop it.
            data = chunk[:max_bytes]
            size = len(chunk)
            tail = chunk[-2:]
            while not tail.endswith(b"\n"):
                more = fh.readline(CHUNK_BYTES)
                if not more:
                    break
                size += len(more)
                offset += len(more)
                tail = (tail + more)[-2:]
            size -= 2 if tail == b"\r\n" else 1 if tail.endswith(b"\n") else 0
        if start == 0 and data.startswith(BOM):
            data = data[len(BOM) :]
            size -= len(BOM)
        yield Line(number, start, data, size, size > max_bytes)


def too_long(line: Line, max_bytes: int) -> str:
    return f"line is {line.size} bytes, longer than the limit of {max_bytes}"


def decode_utf8(data: bytes) -> tuple[str, str | None]:
    """The text, and the reason when the bytes are not UTF-8 (text then has U+FFFD)."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        reason = f"not valid UTF-8 at byte {exc.start + 1} (save the file as UTF-8)"
        return data.decode("utf-8", errors="replace"), reason
