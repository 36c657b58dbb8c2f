"""Turn one file's bytes into documents: one function per format.

Every loader returns :class:`Document` objects whose text went through
:func:`rag.text.clean_text`, or raises :class:`LoadError` with a short reason
(binary, undecodable, corrupt PDF, empty, ...) so the file is reported and skipped.

Example:
    >>> docs = load_bytes(Path("notes/a.md"), b"# Hello\\n\\nWorld.")
    >>> docs[0].title, docs[0].sections[0].text
    ('Hello', '# Hello\\n\\nWorld.')
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag.text import clean_text

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl")


class LoadError(Exception):
    """A file (or a line of a .jsonl file) that cannot be indexed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Section:
    """A run of document text; ``page`` is 1-based for PDFs, else None."""

    text: str
    page: int | None = None


@dataclass
class Document:
    """One document to index: a whole file, or one line of a .jsonl file."""

    doc_id: str
    source: str
    title: str
    content_hash: str
    sections: list[Section] = field(default_factory=list)


@dataclass
class JsonlResult:
    """Documents of a .jsonl file plus the lines that were skipped (line number, reason)."""

    documents: list[Document]
    skipped: list[tuple[int, str]]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_text(text: str, what: str = "file") -> str:
    text = clean_text(text)
    if not text.strip():
        raise LoadError(f"empty {what} (no text after cleaning)")
    return text


def decode_text(data: bytes) -> str:
    """Decode bytes as UTF-8 (BOM allowed) or BOM-marked UTF-16; refuse binary data."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise LoadError(f"undecodable UTF-16 text at byte {e.start}") from None
    if b"\x00" in data[:1 << 20] or b"\x00" in data:
        raise LoadError("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LoadError(f"undecodable: not UTF-8 (invalid byte 0x{data[e.start]:02x} at offset {e.start})") from None


def load_text(path: Path, data: bytes) -> list[Document]:
    """Plain text: one section, title = file stem."""
    text = _check_text(decode_text(data))
    return [Document(str(path), str(path), path.stem, sha256(data), [Section(text)])]


_MD_TITLE = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def load_markdown(path: Path, data: bytes) -> list[Document]:
    """Markdown kept as written (the embedder copes with light markup); title = first ``# `` heading."""
    text = _check_text(decode_text(data))
    m = _MD_TITLE.search(text)
    return [Document(str(path), str(path), m.group(1).strip() if m else path.stem, sha256(data), [Section(text)])]


_DROP_TAGS = ("script", "style", "noscript", "template", "svg", "head")
_BLANKS = re.compile(r"\n\s*\n\s*")
_SPACES = re.compile(r"[ \t\f\v]+")


def html_to_text(data: bytes | str) -> tuple[str, str]:
    """(title, visible text) of an HTML page: scripts, styles and the head dropped; block breaks kept."""
    from bs4 import BeautifulSoup  # noqa: PLC0415

    if isinstance(data, bytes) and b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoadError("binary file (contains NUL bytes)")
    try:
        soup = BeautifulSoup(data, "html.parser")
    except Exception as e:  # noqa: BLE001
        raise LoadError(f"unparseable HTML ({e})") from None
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(list(_DROP_TAGS)):
        tag.decompose()
    text = soup.get_text("\n")
    text = clean_text(text)
    lines = [_SPACES.sub(" ", ln).strip() for ln in text.split("\n")]
    text = "\n".join(lines)
    text = _BLANKS.sub("\n\n", text).strip()
    return clean_text(title), text


def load_html(path: Path, data: bytes) -> list[Document]:
    """Visible text of an HTML page (BeautifulSoup); title from ``<title>``."""
    title, text = html_to_text(data)
    text = _check_text(text, "page")
    return [Document(str(path), str(path), title or path.stem, sha256(data), [Section(text)])]


def load_pdf(path: Path, data: bytes) -> list[Document]:
    """Text per page (pypdf), page numbers kept; title from the PDF metadata or the file stem."""
    import pypdf  # noqa: PLC0415

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise LoadError("corrupt PDF (no %PDF header)")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise LoadError("encrypted PDF (needs a password)")
            except LoadError:
                raise
            except Exception:  # noqa: BLE001
                raise LoadError("encrypted PDF (cannot decrypt)") from None
        sections = []
        for i, page in enumerate(reader.pages, start=1):
            text = clean_text(page.extract_text() or "")
            if text.strip():
                sections.append(Section(text, page=i))
        title = ""
        try:
            meta = reader.metadata
            title = clean_text(str(meta.title)).strip() if meta and meta.title else ""
        except Exception:  # noqa: BLE001
            title = ""
    except LoadError:
        raise
    except Exception as e:  # noqa: BLE001  (pypdf raises many kinds on broken files)
        raise LoadError(f"corrupt PDF ({type(e).__name__}: {' '.join(str(e).split())[:120]})") from None
    if not sections:
        raise LoadError("PDF has no extractable text (scanned images need OCR)")
    return [Document(str(path), str(path), title or path.stem, sha256(data), sections)]


def load_jsonl(path: Path, data: bytes) -> JsonlResult:
    """One document per line: ``{"text": ..., "title"?: ..., "_id"?: ...}``.

    doc_id is ``_id`` (else ``id``, else ``<file>#<line>``); each line's hash is its own,
    so changing one line re-embeds only that document. Bad lines are returned in ``skipped``.
    """
    text = decode_text(data)
    docs: list[Document] = []
    skipped: list[tuple[int, str]] = []
    seen: set[str] = set()
    for no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            skipped.append((no, f"invalid JSON ({e.msg})"))
            continue
        if not isinstance(obj, dict):
            skipped.append((no, "not a JSON object"))
            continue
        body = obj.get("text")
        if not isinstance(body, str):
            skipped.append((no, "no string 'text' field"))
            continue
        body = clean_text(body)
        if not body.strip():
            skipped.append((no, "empty 'text'"))
            continue
        raw_id = obj.get("_id", obj.get("id"))
        doc_id = str(raw_id) if raw_id not in (None, "") else f"{path}#{no}"
        if doc_id in seen:
            skipped.append((no, f"duplicate _id {doc_id!r}"))
            continue
        seen.add(doc_id)
        title = obj.get("title")
        title = clean_text(str(title)).strip() if title not in (None, "") else ""
        docs.append(Document(doc_id, str(path), title, sha256(line.encode("utf-8")), [Section(body)]))
    if not docs:
        if skipped:
            raise LoadError(f"no valid lines ({len(skipped)} bad; first: line {skipped[0][0]}: {skipped[0][1]})")
        raise LoadError("empty file (no lines)")
    return JsonlResult(docs, skipped)


LOADERS: dict[str, Callable[[Path, bytes], list[Document]]] = {
    ".txt": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
}


def load_bytes(path: Path, data: bytes) -> list[Document]:
    """Load a non-jsonl file by its suffix; raise LoadError when unsupported or unreadable."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    return loader(path, data)
