"""Documents for the knowledge base: bytes in, a kind sniffed, text out, then passage-sized chunks.

No FastAPI and no database here: ``read_document`` turns an upload (or a fetched URL's body)
into ``Chunk`` s, or raises ``DocumentError`` with the HTTP status the API answers:

==========================  ======  ====================================================
what                         status  when
==========================  ======  ====================================================
``DocumentTooLarge``         413     more than ``max_bytes``
``UnsupportedDocument``      415     not markdown, plain text, HTML, PDF, DOCX or CSV
``EmptyDocument``            422     no readable text (an empty file, a scanned PDF)
==========================  ======  ====================================================

Kinds are sniffed from the bytes first (``%PDF-``, a ZIP holding ``word/document.xml``, an HTML
tag), then from the file name or the content type; text must decode as UTF-8 (or UTF-16 with a
byte-order mark) and hold no NUL bytes. Readers: PDF through ``pypdf`` (text layer only: a
scanned PDF has none), HTML through the standard library's ``html.parser`` (headings kept,
scripts, styles and navigation dropped), DOCX through ``zipfile`` + ``ElementTree`` (headings
from the paragraph styles), CSV one row per passage (``column: value`` sentences).

Every kind becomes markdown, and ``chunk_markdown`` splits it with the knowledge base's own
``split_markdown`` (a passage is a paragraph or list under its heading), then evens the sizes:
paragraphs under ``min_words`` merge with the next one under the same heading, and paragraphs
over ``max_words`` are cut at sentence ends. The result is what the offline responder speaks
and what a cloud LLM is grounded with, so a chunk stays a few sentences long.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath
from xml.etree import ElementTree

from presence.processors.llm.engines.text import split_markdown, split_sentences

MAX_BYTES = 50 * 1024 * 1024  # Tavus's documented limit
KINDS = ("markdown", "text", "html", "pdf", "docx", "csv")
_EXTENSIONS = {
    ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
    ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx", ".csv": "csv",
}  # fmt: skip
_MIME = {
    "text/markdown": "markdown", "text/x-markdown": "markdown", "text/plain": "text",
    "text/html": "html", "application/xhtml+xml": "html", "application/pdf": "pdf",
    "text/csv": "csv",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}  # fmt: skip
SUPPORTED = "markdown (.md), plain text (.txt), HTML, PDF (with a text layer), DOCX and CSV"
_HTML_START = re.compile(rb"^\s*(<!doctype html|<html|<head|<body|<meta|<title|<h[1-6][\s>]|<p[\s>]|<div)", re.I)  # fmt: skip
_DOCX_XML_LIMIT = 64 * 1024 * 1024  # uncompressed word/document.xml (a zip bomb stops here)


class DocumentError(ValueError):
    """A document that cannot be used; ``status`` is the HTTP status the API answers."""

    status = 422


class DocumentTooLarge(DocumentError):
    """The document is over the size limit."""

    status = 413


class UnsupportedDocument(DocumentError):
    """The document's kind is not one presence reads."""

    status = 415


class EmptyDocument(DocumentError):
    """The document holds no readable text."""

    status = 422


@dataclass(frozen=True)
class Chunk:
    """One passage of a document: its nearest heading and a few sentences."""

    title: str
    text: str


def sniff(data: bytes, file_name: str | None = None, content_type: str | None = None) -> str:
    """The kind of ``data`` (one of ``KINDS``).

    Raises:
        UnsupportedDocument: Binary data that is none of the kinds.
    """
    head = data[:2048]
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        if _is_docx(data):
            return "docx"
        raise UnsupportedDocument(f"a ZIP archive that is not a DOCX file; send {SUPPORTED}")
    by_name = _EXTENSIONS.get(PurePosixPath(file_name or "").suffix.lower())
    mime = (content_type or "").split(";")[0].strip().lower()
    by_mime = _MIME.get(mime)
    if by_name in ("pdf", "docx") or by_mime in ("pdf", "docx"):
        raise UnsupportedDocument(f"the file says {by_name or by_mime} but its bytes are not")
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        what = mime or PurePosixPath(file_name or "").suffix or "binary data"
        raise UnsupportedDocument(f"{what} is not a document presence reads; send {SUPPORTED}")
    if _HTML_START.match(head) or by_name == "html" or by_mime == "html":
        return "html"
    return by_name or by_mime or "text"


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return "word/document.xml" in z.namelist()
    except zipfile.BadZipFile:
        return False


def decode_text(data: bytes) -> str:
    """``data`` as text (UTF-8, or UTF-16 with a byte-order mark).

    Raises:
        UnsupportedDocument: It is not text in one of those encodings.
    """
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnsupportedDocument(
            f"the text is not UTF-8 (or UTF-16 with a byte-order mark); re-save it as UTF-8, "
            f"or send {SUPPORTED}"
        ) from None


class _HTMLToMarkdown(HTMLParser):
    """Headings become ``#`` lines, blocks become paragraphs; scripts and chrome are dropped."""

    _SKIP = {"script", "style", "noscript", "template", "svg", "nav", "footer", "head"}
    _BLOCK = {"p", "div", "section", "article", "br", "tr", "table", "blockquote", "pre", "main"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._text: list[str] = []
        self._skip = 0
        self._prefix = ""

    def _flush(self) -> None:
        text = " ".join("".join(self._text).split())
        if text:
            self.lines += [f"{self._prefix}{text}", ""]
        self._text, self._prefix = [], ""

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._prefix = "#" * int(tag[1]) + " "
        elif tag == "li":
            self._flush()
            self._prefix = "- "
        elif tag in self._BLOCK:
            self._flush()

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag == "li" or tag in self._BLOCK:
            self._flush()

    def handle_data(self, data):
        if not self._skip:
            self._text.append(data)

    def markdown(self) -> str:
        self._flush()
        return "\n".join(self.lines)


def html_to_markdown(html: str) -> str:
    """Markdown from HTML: headings kept, text blocks as paragraphs, list items as lists."""
    parser = _HTMLToMarkdown()
    parser.feed(html)
    parser.close()
    return parser.markdown()


def pdf_to_markdown(data: bytes) -> str:
    """The text layer of a PDF, one paragraph per blank-line block (or per page).

    Raises:
        UnsupportedDocument: The PDF cannot be parsed or is encrypted.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnsupportedDocument("the PDF is password-protected; send it unlocked")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnsupportedDocument(f"the PDF cannot be read ({exc})") from None
    return "\n\n".join(_reflow(page) for page in pages)


def _reflow(text: str) -> str:
    """Hard-wrapped lines joined into paragraphs; hyphenated line ends rejoined."""
    text = re.sub(r"-\n(?=[a-z])", "", text)
    blocks = re.split(r"\n\s*\n", text)
    return "\n\n".join(" ".join(b.split()) for b in blocks if b.strip())


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def docx_to_markdown(data: bytes) -> str:
    """Paragraphs of a DOCX file; ``Heading N``/``Title`` styles become headings."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            info = z.getinfo("word/document.xml")
            if info.file_size > _DOCX_XML_LIMIT:
                raise DocumentTooLarge("the DOCX text is too large once uncompressed")
            root = ElementTree.fromstring(z.read(info))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as exc:
        raise UnsupportedDocument(f"the DOCX file cannot be read ({exc})") from None
    lines: list[str] = []
    for para in root.iter(f"{_W}p"):
        text = "".join(t.text or "" for t in para.iter(f"{_W}t")).strip()
        if not text:
            continue
        style = para.find(f"{_W}pPr/{_W}pStyle")
        name = (style.get(f"{_W}val") or "") if style is not None else ""
        level = re.fullmatch(r"(?i)heading\s?(\d)", name)
        if level or name.lower() == "title":
            lines += [f"{'#' * (int(level.group(1)) if level else 1)} {text}", ""]
        else:
            lines += [text, ""]
    return "\n".join(lines)


def csv_to_markdown(text: str) -> str:
    """One paragraph per row: ``Column: value.`` for each non-empty cell."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return ""
    header = [h.strip() for h in rows[0]]
    out = []
    for row in rows[1:]:
        cells = [
            f"{header[i] if i < len(header) and header[i] else f'Column {i + 1}'}: {v.strip()}."
            for i, v in enumerate(row)
            if v.strip()
        ]
        if cells:
            out.append(" ".join(cells))
    return "\n\n".join(out)


def to_markdown(data: bytes, kind: str) -> str:
    """The document as markdown, whatever its kind."""
    if kind == "pdf":
        return pdf_to_markdown(data)
    if kind == "docx":
        return docx_to_markdown(data)
    text = decode_text(data)
    if kind == "html":
        return html_to_markdown(text)
    if kind == "csv":
        return csv_to_markdown(text)
    return text.replace("\r\n", "\n")


def _windows(text: str, max_words: int) -> list[str]:
    """``text`` cut at sentence ends into pieces of at most ``max_words`` (a longer sentence whole)."""
    out: list[str] = []
    current: list[str] = []
    count = 0
    for sentence in split_sentences(text):
        n = len(sentence.split())
        if current and count + n > max_words:
            out.append(" ".join(current))
            current, count = [], 0
        current.append(sentence)
        count += n
    if current:
        out.append(" ".join(current))
    return out


def chunk_markdown(
    markdown: str, *, title: str = "", min_words: int = 25, max_words: int = 120
) -> list[Chunk]:
    """Passage-sized chunks of a markdown text (see the module docstring).

    Args:
        markdown: The text.
        title: Heading for the passages before the first heading (the document's name).
        min_words: A shorter paragraph joins the next one under the same heading.
        max_words: A longer paragraph is cut at sentence ends.
    """
    out: list[Chunk] = []
    pending: Chunk | None = None
    for part in split_markdown(markdown):
        heading, body = part.title or title, part.text
        for piece in _windows(body, max_words):
            if pending is not None and pending.title == heading:
                merged = f"{pending.text} {piece}"
                if len(merged.split()) <= max_words:
                    pending = Chunk(heading, merged)
                    if len(merged.split()) >= min_words:
                        out.append(pending)
                        pending = None
                    continue
            if pending is not None:
                out.append(pending)
            pending = Chunk(heading, piece)
            if len(piece.split()) >= min_words:
                out.append(pending)
                pending = None
    if pending is not None:
        out.append(pending)
    return out


def read_document(
    data: bytes,
    *,
    name: str,
    file_name: str | None = None,
    content_type: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> tuple[str, list[Chunk]]:
    """``(kind, chunks)`` of a document.

    Args:
        data: The document's bytes.
        name: The document's name (heading of the text before its first heading).
        file_name: The uploaded file's name (its extension is a hint).
        content_type: The upload's or the URL's content type (a hint).
        max_bytes: Size limit.

    Raises:
        DocumentError: Too large (413), unsupported (415) or without text (422).
    """
    if len(data) > max_bytes:
        raise DocumentTooLarge(
            f"the document is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB"
        )
    if not data.strip():
        raise EmptyDocument("the document is empty")
    kind = sniff(data, file_name, content_type)
    rows = {"min_words": 0} if kind == "csv" else {}  # a row is a passage of its own
    chunks = chunk_markdown(to_markdown(data, kind), title=name, **rows)
    if not chunks:
        hint = " (a scanned PDF has no text layer: run OCR first)" if kind == "pdf" else ""
        raise EmptyDocument(f"the {kind} document holds no readable text{hint}")
    return kind, chunks


def render_markdown(chunks: list[tuple[str, str]]) -> str:
    """Markdown whose ``split_markdown`` gives back these ``(title, text)`` passages.

    Each text is written as one line (a paragraph); a new heading line starts each change of
    title. A text that opens like a list item ("2. Then ...") loses that marker when read back.
    """
    lines: list[str] = []
    title = None
    for heading, text in chunks:
        if heading != title:
            lines += [f"## {' '.join(heading.split())}", ""]
            title = heading
        lines += [" ".join(text.split()), ""]
    return "\n".join(lines)
