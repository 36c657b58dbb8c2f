"""Text cleaning shared by ingest (documents) and the input guard (questions).

Example:
    >>> clean_text("a\\x00b\\u200bc\\r\\nd")
    'abc\\nd'
    >>> normalize_whitespace("  what   is\\n\\tit? ")
    'what is it?'
"""

from __future__ import annotations

import re
import unicodedata

# C0/C1 controls except \t and \n, plus zero-width and bidi-override characters.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\ufffe\uffff]")


def clean_text(text: str) -> str:
    """NFC-normalise, turn CR/CRLF into LF and drop control characters (tabs and newlines stay)."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def normalize_whitespace(text: str) -> str:
    """Collapse every run of whitespace into one space and strip the ends."""
    return " ".join(text.split())
