"""Answers that are files: a report's rows as CSV (RFC 4180), for spreadsheets; a web page's files.

A CSV opens cleanly in a spreadsheet: a header row, CRLF line ends, UTF-8 with a byte
order mark (so spreadsheet programs do not guess a legacy code page), times in RFC 3339
UTC, numbers with a dot and no grouping, true/false, empty for none. A cell that a
spreadsheet would run as a formula (text beginning = + - @, a tab or a carriage return:
a uid or a hostname a user chose) is prefixed with a quote mark, so it stays text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import flask

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class StaticFile:
    """A file of a web page (the console's): `content` as it is sent (gzip-encoded when
    `gzipped`), cached by browsers as `cache_control` says."""

    content: bytes
    media_type: str
    cache_control: str
    gzipped: bool = False


@dataclass(frozen=True)
class Download:
    """A non-JSON answer: `text` of `media_type`, saved by a browser as `filename`."""

    text: str
    media_type: str
    filename: str


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_download(rows: Iterable[Mapping[str, Any]], columns: list[str], filename: str) -> Download:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return Download("\ufeff" + out.getvalue(), "text/csv", filename)


def wants_csv(request: flask.Request, format_asked: str | None) -> bool:
    """`?format=csv`, or an Accept header that prefers text/csv to JSON."""
    if format_asked is not None:
        return format_asked == "csv"
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    return best == "text/csv"
