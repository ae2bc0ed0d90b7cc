"""The streaming JSON reader: the elements of a top-level JSON list, one record at a time, with every
structural problem (unreadable, empty, not JSON, truncated, not a list, an element that is not an object,
NaN/Infinity literals) a :class:`~ml.errors.DataError` naming the file, the rule and the record index. The
whole file never exists as Python objects at once; :func:`ml.data.read_records` builds on it."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from ml.errors import DataError

log = logging.getLogger(__name__)

_CHUNK = 1 << 22  # characters read per refill (4 Mi)


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str):
    raise _NonFinite(name)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_WS = " \t\n\r"


class _HashingReader(io.RawIOBase):
    """Raw reader that feeds every byte it reads into a hash object."""

    def __init__(self, raw, digest):
        self.raw, self.digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self.raw.readinto(b)
        if n:
            self.digest.update(memoryview(b)[:n])
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


class _Stream:
    """A growing text buffer over a file, with line tracking for error messages."""

    def __init__(self, path: Path, digest=None):
        self.path = path
        try:
            raw = open(path, "rb", buffering=0)  # noqa: SIM115
            if digest is not None:
                raw = io.BufferedReader(_HashingReader(raw, digest), buffer_size=1 << 20)
            self.fh = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        except OSError as exc:
            raise DataError(path, "file.readable", f"cannot open file ({exc.strerror or exc})") from None
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.lines_before = 0  # newlines in text already dropped from buf

    def close(self):
        self.fh.close()

    def refill(self, size: int = _CHUNK) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.fh.read(size)
        except UnicodeDecodeError as exc:
            raise DataError(self.path, "file.utf8", f"file is not UTF-8 text ({exc.reason})") from None
        except OSError as exc:
            raise DataError(self.path, "file.readable", f"cannot read file ({exc.strerror or exc})") from None
        if not chunk:
            self.eof = True
            return False
        if self.pos > _CHUNK:  # drop consumed text so memory stays bounded
            self.lines_before += self.buf.count("\n", 0, self.pos)
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += chunk
        return True

    def skip_ws(self) -> str | None:
        """Advance past whitespace; return the next character or None at end of file."""
        while True:
            buf, n, p = self.buf, len(self.buf), self.pos
            while p < n and buf[p] in _WS:
                p += 1
            self.pos = p
            if p < n:
                return buf[p]
            if not self.refill():
                return None

    def where(self, p: int | None = None) -> str:
        p = self.pos if p is None else p
        line = self.lines_before + self.buf.count("\n", 0, p) + 1
        col = p - (self.buf.rfind("\n", 0, p) + 1) + 1
        return f"line {line} column {col}"


def _cut_short(rest: str) -> bool:
    """True when the text left after a JSON error could be the start of valid JSON (the file was cut)."""
    rest = rest.strip(_WS)
    if rest in ("", "-", ".", "e", "E", "e-", "e+", "E-", "E+"):  # nothing left, or a number cut mid-way
        return True
    return any(lit.startswith(rest) for lit in ("true", "false", "null"))


def iter_raw_records(path, digest=None):
    """Yield ``(index, record_object, record_text)`` for each element of the top-level JSON list.

    Raises DataError for any structural problem, naming the record index where one applies. When
    ``digest`` (a hashlib object) is given, every byte of the file is fed to it: a complete iteration
    reads the file to its end.
    """
    path = Path(path)
    s = _Stream(path, digest)
    try:
        first = s.skip_ws()
        if first is None:
            raise DataError(path, "file.non_empty", "file is empty (expected a JSON list of records)")
        if first != "[":
            head = s.buf[s.pos : s.pos + 5]
            if first == "{":
                msg = "top-level JSON value is an object; expected a list of records"
            elif first in '"-0123456789' or head.startswith(("true", "false", "null")):
                msg = "top-level JSON value is not a list; expected a list of records"
            else:
                raise DataError(path, "json.syntax", f"not JSON: unexpected character {first!r} at {s.where()}")
            raise DataError(path, "json.list", msg)
        s.pos += 1
        index = 0
        while True:
            ch = s.skip_ws()
            if ch is None:
                raise DataError(
                    path, "json.complete", f"truncated JSON: file ends inside the list after {index} record(s)"
                )
            if ch == "]" and index == 0:
                s.pos += 1
                break
            while True:
                try:
                    obj, end = _DECODER.raw_decode(s.buf, s.pos)
                    if end >= len(s.buf) and not s.eof and not isinstance(obj, (dict, list)):
                        raise json.JSONDecodeError("may continue", s.buf, end)  # number cut at a chunk edge
                    break
                except json.JSONDecodeError as exc:
                    if s.refill(max(_CHUNK, len(s.buf))):
                        continue
                    if "Unterminated" in exc.msg or _cut_short(s.buf[exc.pos :]):
                        raise DataError(
                            path,
                            "json.complete",
                            f"truncated JSON: file ends inside record #{index}",
                            [(index, None)],
                        ) from None
                    raise DataError(
                        path,
                        "json.syntax",
                        f"invalid JSON in record #{index} at {s.where(exc.pos)}: {exc.msg}",
                        [(index, None)],
                    ) from None
                except _NonFinite as exc:
                    raise DataError(
                        path,
                        "json.finite",
                        f"record #{index} contains the non-standard literal {exc.args[0]} (NaN/Infinity are not JSON)",
                        [(index, None)],
                    ) from None
                except RecursionError:
                    raise DataError(
                        path, "json.syntax", f"record #{index} is nested too deeply to parse", [(index, None)]
                    ) from None
                except ValueError as exc:  # e.g. an integer literal longer than Python's digit limit
                    reason = str(exc).split(":")[0]
                    raise DataError(
                        path, "json.syntax", f"invalid JSON in record #{index}: {reason}", [(index, None)]
                    ) from None
            if not isinstance(obj, dict):
                raise DataError(
                    path,
                    "record.object",
                    f"record #{index} is a JSON {type(obj).__name__}, not an object",
                    [(index, None)],
                )
            yield index, obj, s.buf[s.pos : end]
            s.pos = end
            index += 1
            ch = s.skip_ws()
            if ch == ",":
                s.pos += 1
                continue
            if ch == "]":
                s.pos += 1
                break
            if ch is None:
                raise DataError(
                    path, "json.complete", f"truncated JSON: file ends after record #{index - 1}", [(index - 1, None)]
                )
            raise DataError(
                path, "json.syntax", f"invalid JSON after record #{index - 1} at {s.where()}: expected ',' or ']'"
            )
        if s.skip_ws() is not None:
            raise DataError(path, "json.syntax", f"extra data after the closing ']' at {s.where()}")
    finally:
        s.close()
