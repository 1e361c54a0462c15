"""Documents: every kind read into passage-sized chunks, and the ``/v2/documents`` API around them."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers.pdf import text_pdf
from helpers.service import KEY_B, free_port

from presence.processors.llm.engines.text import split_markdown
from presence.service.documents import (
    DocumentTooLarge,
    EmptyDocument,
    UnsupportedDocument,
    read_document,
    render_markdown,
)

pytestmark = pytest.mark.background

KETTLE = """# Zephyr kettle

The Zephyr kettle boils a litre of water in ninety seconds. Its base glows blue while it heats.

Short note.

## Cleaning

- Descale it every month with white vinegar.
- Never put it in the dishwasher.
"""


def docx(paragraphs: list[tuple[str | None, str]]) -> bytes:
    """A minimal DOCX: ``(style, text)`` paragraphs (style ``Heading1`` makes a heading)."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join(
        "<w:p>"
        + (f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else "")
        + f"<w:r><w:t>{text}</w:t></w:r></w:p>"
        for style, text in paragraphs
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", f'<w:document xmlns:w="{w}"><w:body>{body}</w:body></w:document>')  # fmt: skip
    return buf.getvalue()


def test_each_kind_becomes_chunks_under_their_headings():
    kind, chunks = read_document(KETTLE.encode(), name="Kettle", file_name="kettle.md")
    assert kind == "markdown"
    assert chunks[0].title == "Zephyr kettle"
    assert "ninety seconds" in chunks[0].text and "Short note." in chunks[0].text  # merged
    assert chunks[1].title == "Cleaning" and "vinegar" in chunks[1].text

    html = (
        b"<!doctype html><html><head><title>t</title><script>var secret = 1;</script></head>"
        b"<body><nav>Home | Shop</nav><h2>Warranty</h2><p>Two years, <b>parts</b> and labour."
        b"</p></body></html>"
    )
    kind, chunks = read_document(html, name="Site")
    assert kind == "html"
    assert chunks == [chunks[0]] and chunks[0].title == "Warranty"
    assert chunks[0].text == "Two years, parts and labour."

    pdf = text_pdf([["The Zephyr kettle holds 1.7 litres."], ["Its cord is 75 cm long."]])
    kind, chunks = read_document(pdf, name="Manual", file_name="manual.pdf")
    assert kind == "pdf" and chunks[0].title == "Manual"
    assert "1.7 litres" in chunks[0].text and "75 cm" in chunks[0].text

    word = docx([("Heading1", "Returns"), (None, "Return it within 30 days for a refund.")])
    kind, chunks = read_document(word, name="Policy", file_name="policy.docx")
    assert (kind, chunks[0].title, chunks[0].text) == (
        "docx", "Returns", "Return it within 30 days for a refund."
    )  # fmt: skip

    kind, chunks = read_document(b"model,price\nZephyr,49\nBreeze,39\n", name="Prices", file_name="p.csv")  # fmt: skip
    assert kind == "csv" and [c.text for c in chunks] == ["model: Zephyr. price: 49.", "model: Breeze. price: 39."]  # fmt: skip


def test_long_paragraphs_are_cut_at_sentences_and_read_back_unchanged():
    long = " ".join(f"Sentence number {i} talks about kettles and tea." for i in range(60))
    _, chunks = read_document(f"# Long\n\n{long}".encode(), name="Long")
    assert len(chunks) > 2 and all(len(c.text.split()) <= 120 for c in chunks)
    assert " ".join(c.text for c in chunks) == long
    back = split_markdown(render_markdown([(c.title, c.text) for c in chunks]))
    assert [(p.title, p.text) for p in back] == [(c.title, c.text) for c in chunks]


@pytest.mark.parametrize(
    ("data", "name", "error", "says"),
    [
        (b"", "a.txt", EmptyDocument, "empty"),
        (b"\n  \n", "a.md", EmptyDocument, "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.png", UnsupportedDocument, "PDF"),
        (b"PK\x03\x04not really a zip", "a.zip", UnsupportedDocument, "ZIP"),
        (b"caf\xe9 au lait", "latin1.txt", UnsupportedDocument, "UTF-8"),
        (b"not a pdf at all", "fake.pdf", UnsupportedDocument, "not"),
        (text_pdf([[]]), "scan.pdf", EmptyDocument, "OCR"),
    ],
)
def test_unreadable_documents_are_refused_with_a_reason(data, name, error, says):
    with pytest.raises(error, match=says):
        read_document(data, name="x", file_name=name)


def test_the_size_limit_is_checked_first():
    with pytest.raises(DocumentTooLarge, match="limit") as caught:
        read_document(b"x" * 2000, name="big", max_bytes=1000)
    assert caught.value.status == 413


def test_documents_api_create_list_patch_delete(service):
    text = service.post(
        "/v2/documents", json={"text": KETTLE, "document_name": "Kettle FAQ", "tags": ["faq"]}
    )
    assert text.status_code == 200, text.text
    doc = text.json()
    assert doc["document_id"].startswith("d") and doc["status"] == "ready"
    assert doc["chunk_count"] == 2 and doc["tags"] == ["faq"]
    read_back = service.get(f"/v2/documents/{doc['document_id']}").json()
    assert datetime.fromisoformat(read_back["created_at"]).utcoffset() == timedelta(0)

    upload = service.post(
        "/v2/documents",
        files={"file": ("manual.pdf", text_pdf([["Cord length is 75 cm."]]), "application/pdf")},
        data={"tags": "manuals, faq", "properties": json.dumps({"team": "support"})},
    )
    assert upload.status_code == 200, upload.text
    manual = upload.json()
    assert manual["document_name"] == "manual" and manual["content_type"] == "pdf"
    assert manual["tags"] == ["manuals", "faq"] and manual["properties"] == {"team": "support"}

    listed = service.get("/v2/documents", params={"tags": "manuals"}).json()
    assert listed["total_count"] == 1 and listed["data"][0]["document_id"] == manual["document_id"]
    assert service.get("/v2/documents").json()["total_count"] == 2
    newest = service.get("/v2/documents", params={"sort": "descending", "limit": 1}).json()
    assert newest["data"][0]["document_id"] == manual["document_id"]
    assert service.get("/v2/documents", params={"page": 0}).json()["total_count"] == 2
    found = service.get("/v2/documents", params={"name_or_uuid": "kettle"}).json()
    assert [d["document_id"] for d in found["data"]] == [doc["document_id"]]

    patched = service.patch(
        f"/v2/documents/{doc['document_id']}", json={"document_name": "FAQ", "tags": ["x"]}
    ).json()
    assert (patched["document_name"], patched["tags"]) == ("FAQ", ["x"])
    assert service.get(f"/v2/documents/{doc['document_id']}").json()["tags"] == ["x"]

    other = service.get(f"/v2/documents/{doc['document_id']}", headers={"x-api-key": KEY_B})
    assert other.status_code == 403
    assert service.get("/v2/documents", headers={"x-api-key": KEY_B}).json()["total_count"] == 0

    assert service.delete(f"/v2/documents/{doc['document_id']}").status_code == 204
    assert service.get(f"/v2/documents/{doc['document_id']}").status_code == 404


def test_bad_documents_get_a_clear_4xx(service):
    png = service.post(
        "/v2/documents", files={"file": ("cat.png", b"\x89PNG\x00\x00", "image/png")}
    )
    assert png.status_code == 415 and "PDF" in png.json()["detail"]
    empty = service.post("/v2/documents", files={"file": ("empty.txt", b"", "text/plain")})
    assert empty.status_code == 422 and "empty" in str(empty.json())
    none = service.post("/v2/documents", json={"document_name": "nothing"})
    assert none.status_code == 422 and "exactly one of" in str(none.json())
    both = service.post("/v2/documents", json={"text": "hi", "document_url": "http://127.0.0.1/x"})
    assert both.status_code == 422 and "document_url, text" in str(both.json())
    typo = service.post("/v2/documents", json={"txt": "hello"})
    assert typo.status_code == 422 and "txt" in str(typo.json())
    bad_url = service.post("/v2/documents", json={"document_url": "not a url"})
    assert bad_url.status_code == 422 and "document_url" in str(bad_url.json())
    blank = service.post("/v2/documents", json={"text": " \n "})
    assert blank.status_code == 422 and blank.json()["detail"][0]["loc"] == ["body", "text"]
    long_tag = service.post("/v2/documents", json={"text": "hi", "tags": ["x" * 101]})
    assert long_tag.status_code == 422 and long_tag.json()["detail"][0]["loc"][:2] == ["body", "tags"]  # fmt: skip
    not_json = service.post("/v2/documents", content=b"{text: hi", headers={"content-type": "application/json"})  # fmt: skip
    assert not_json.status_code == 400 and "JSON" in not_json.json()["detail"]
    text_as_file = service.post("/v2/documents", files={"file": (None, "hello")})
    assert text_as_file.status_code == 422 and text_as_file.json()["detail"][0]["loc"] == ["body", "file"]  # fmt: skip
    file_as_tags = service.post("/v2/documents", files={"file": ("a.md", b"# A"), "tags": ("t.txt", b"x")})  # fmt: skip
    assert file_as_tags.status_code == 422 and file_as_tags.json()["detail"][0]["loc"] == ["body", "tags"]  # fmt: skip
    assert service.get("/v2/documents").json()["total_count"] == 0


class _Site:
    """Serves pages on 127.0.0.1: ``page(path)`` gives ``(body, content_type)`` or None (404)."""

    def __init__(self, page):
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                found = page(self.path)
                if found is None:
                    self.send_error(404)
                    return
                body, ctype = found
                self.send_response(200)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _wait_status(service, did: str) -> dict:
    deadline = time.monotonic() + 20
    while (doc := service.get(f"/v2/documents/{did}").json())["status"] == "processing":
        assert time.monotonic() < deadline, doc
        time.sleep(0.05)
    return doc


def test_a_document_url_is_fetched_in_the_background_and_its_webhook_sent(service, receiver):
    receiver.up()
    hours = b"<html><body><h1>Opening hours</h1><p>We open at nine.</p></body></html>"
    site = _Site(lambda path: None if path == "/missing" else (hours, "text/html"))
    try:
        created = service.post(
            "/v2/documents",
            json={"document_url": f"{site.url}/hours.html", "callback_url": receiver.url},
        ).json()
        assert created["status"] == "processing" and created["document_name"] == "hours"
        doc = _wait_status(service, created["document_id"])
        assert (
            doc["status"] == "ready" and doc["content_type"] == "html" and doc["chunk_count"] == 1
        )
        broken = service.post("/v2/documents", json={"document_url": f"{site.url}/missing"}).json()
        failed = _wait_status(service, broken["document_id"])
        assert failed["status"] == "error" and "404" in failed["error_message"]
    finally:
        site.close()
    events = receiver.wait_for(lambda e: len(e) >= 1)
    assert events[0]["event_type"] == "document.ready"
    assert events[0]["document_id"] == created["document_id"]
    assert events[0]["properties"]["chunk_count"] == 1


SITE = {
    "/": ("<html><head><title>Acme help</title></head><body><h1>Help</h1><p>Start here.</p>"
          "<a href='/hours'>Hours</a> <a href='/prices#top'>Prices</a> <a href='/prices'>Again</a>"
          " <a href='http://localhost:9/elsewhere'>Another site</a> <a href='/manual.pdf'>PDF</a>"
          " <a href='/gone'>Gone</a></body></html>", "text/html"),
    "/hours": ("<html><head><title>Opening hours</title></head><body><p>We open at nine.</p>"
               "<a href='/basement'>Deeper</a> <a href='/'>Home</a></body></html>", "text/html"),
    "/prices": ("<html><body><p>A seat costs twenty dollars.</p></body></html>", "text/html"),
    "/basement": ("<html><body><p>The basement is closed.</p></body></html>", "text/html"),
    "/manual.pdf": ("%PDF-1.4 not really", "application/pdf"),
}  # fmt: skip


def _chunk_texts(service, did: str) -> str:
    from presence.service.db import DocumentChunkRow

    with service.app.state.sessions() as db:
        rows = db.query(DocumentChunkRow).filter_by(document_id=did).all()
        return " ".join(f"{r.title}: {r.text}" for r in rows)


def test_a_crawl_reads_the_sites_linked_pages_into_one_document_within_its_bounds(service):
    site = _Site(lambda path: (SITE[path][0].encode(), SITE[path][1]) if path in SITE else None)
    try:
        body = {"document_url": f"{site.url}/", "crawl": {"depth": 1, "max_pages": 10}}
        created = service.post("/v2/documents", json=body)
        assert created.status_code == 200, created.text
        assert created.json()["crawl_config"] == {"depth": 1, "max_pages": 10}
        doc = _wait_status(service, created.json()["document_id"])
        assert doc["status"] == "ready", doc
        # one link away, same site, HTML only; a broken link does not fail the document
        assert doc["crawled_urls"] == [f"{site.url}/", f"{site.url}/hours", f"{site.url}/prices"]
        assert doc["crawl_count"] == 1 and doc["last_crawled_at"]
        text = _chunk_texts(service, doc["document_id"])
        assert "open at nine" in text and "twenty dollars" in text and "Opening hours" in text
        assert "basement" not in text
        assert site.hits.count("/prices") == 1  # the same page under two links is read once

        few = {"document_url": f"{site.url}/", "crawl": {"depth": 2, "max_pages": 2}}
        capped = _wait_status(
            service, service.post("/v2/documents", json=few).json()["document_id"]
        )
        assert len(capped["crawled_urls"]) == 2

        deep = {"document_url": f"{site.url}/", "crawl": {"depth": 2}}
        whole = _wait_status(
            service, service.post("/v2/documents", json=deep).json()["document_id"]
        )
        assert "basement is closed" in _chunk_texts(service, whole["document_id"])

        single = service.post("/v2/documents", json={"document_url": f"{site.url}/"}).json()
        assert _wait_status(service, single["document_id"])["crawled_urls"] is None
        assert "nine" not in _chunk_texts(service, single["document_id"])  # no crawl: one page
    finally:
        site.close()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "Hello there.", "crawl": {"depth": 1}}, "crawl"),
        ({"document_url": "http://127.0.0.1:9/", "crawl": {"depth": 99}}, "depth"),
        ({"document_url": "http://127.0.0.1:9/", "crawl": {"max_pages": 0}}, "max_pages"),
        ({"document_url": "http://127.0.0.1:9/", "crawl": {"pages": 3}}, "pages"),
    ],
)
def test_a_bad_crawl_is_a_422_naming_the_field(service, body, field):
    answer = service.post("/v2/documents", json=body)
    assert answer.status_code == 422 and field in str(answer.json()), answer.text
