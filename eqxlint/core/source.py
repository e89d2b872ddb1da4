"""Source bytes to text, as Python decodes them."""

from __future__ import annotations

import codecs
import hashlib
import io
import tokenize


def decode(data: bytes) -> tuple[str, str]:
    """Decode source bytes as Python does (BOM, coding cookie, default UTF-8). Returns (text,
    encoding); raises UnicodeDecodeError / SyntaxError / LookupError on bad input."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    codecs.lookup(encoding)
    return data.decode(encoding), encoding


def digest(text: str) -> str:
    """The digest of a decoded text (BOM excluded), which results record to tell whether a file
    changed since it was linted."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
