"""Each loader, and each kind of file that must be skipped with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ingest_pdfutil import make_pdf

from rag.ingest.loaders import LoadError, load_bytes, load_jsonl


def test_text_and_markdown():
    (d,) = load_bytes(Path("/x/notes.txt"), "\ufeffHello\r\nworld\x00".replace("\x00", "").encode())
    assert d.title == "notes" and d.sections[0].text == "Hello\nworld" and d.doc_id == "/x/notes.txt"
    (m,) = load_bytes(Path("/x/a.md"), b"intro\n\n# The Title\n\nBody text.")
    assert m.title == "The Title" and "Body text." in m.sections[0].text


def test_utf16_with_bom():
    (d,) = load_bytes(Path("w.txt"), "caf\u00e9 au lait".encode("utf-16"))
    assert d.sections[0].text == "caf\u00e9 au lait"


def test_html_visible_text_only():
    html = b"""<html><head><title>My Page</title><style>body{color:red}</style>
    <script>var secret = 1;</script></head><body><h1>Heading</h1><p>First <b>para</b>.</p>
    <noscript>enable js</noscript><div>Second</div><script>alert(2)</script></body></html>"""
    (d,) = load_bytes(Path("p.html"), html)
    text = d.sections[0].text
    assert d.title == "My Page"
    assert "Heading" in text and "para" in text and "Second" in text
    for bad in ("secret", "color:red", "alert", "enable js"):
        assert bad not in text


def test_pdf_pages_and_title():
    data = make_pdf(["Page one talks about apples.", "Page two talks about pears."], title="Fruit Book")
    (d,) = load_bytes(Path("f.pdf"), data)
    assert d.title == "Fruit Book"
    assert [s.page for s in d.sections] == [1, 2]
    assert "apples" in d.sections[0].text and "pears" in d.sections[1].text


def test_jsonl_documents_ids_titles_and_bad_lines():
    lines = [
        json.dumps({"_id": "a1", "title": "T1", "text": "alpha text"}),
        "not json",
        json.dumps({"_id": "a2", "text": "beta text"}),
        json.dumps({"_id": "a3", "text": "   "}),
        json.dumps({"_id": "a1", "text": "dup"}),
        json.dumps({"text": "no id here"}),
        json.dumps([1, 2]),
        "",
    ]
    res = load_jsonl(Path("/c/corpus.jsonl"), "\n".join(lines).encode())
    assert [d.doc_id for d in res.documents] == ["a1", "a2", "/c/corpus.jsonl#6"]
    assert res.documents[0].title == "T1" and res.documents[1].title == ""
    assert all(d.source == "/c/corpus.jsonl" for d in res.documents)
    assert len({d.content_hash for d in res.documents}) == 3
    reasons = dict(res.skipped)
    assert set(reasons) == {2, 4, 5, 7}
    assert "invalid JSON" in reasons[2] and "duplicate" in reasons[5]


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("bin.txt", b"abc\x00\x01\x02def", "binary"),
        ("latin.txt", "caf\u00e9".encode("latin-1"), "undecodable"),
        ("empty.md", b"  \n\t \n", "empty"),
        ("zero.txt", b"", "empty"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj garbage without xref", "corrupt PDF"),
        ("fake.pdf", b"hello, I am not a PDF", "corrupt PDF"),
        ("blank.pdf", make_pdf([""]), "no extractable text"),
        ("bad.jsonl", b"{oops\n[1]\n", "no valid lines"),
        ("script.html", b"<html><script>x=1</script></html>", "empty"),
        ("x.docx", b"PK\x03\x04", "unsupported"),
    ],
)
def test_bad_files_raise_with_reason(name, data, reason):
    with pytest.raises(LoadError) as ei:
        if name.endswith(".jsonl"):
            load_jsonl(Path(name), data)
        else:
            load_bytes(Path(name), data)
    assert reason in ei.value.reason
