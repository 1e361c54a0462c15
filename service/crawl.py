"""Website crawling for a ``document_url`` document with Tavus's ``crawl: {depth, max_pages}``.

From the starting page the crawler follows links breadth first, on the starting page's site only
(same scheme, host and port), at most ``depth`` links away from it and ``max_pages`` pages in
all, each page fetched once (a URL's ``#fragment`` is dropped). Only HTML pages are read and
followed; a link to anything else (a PDF, an image) is skipped, and so is a page that answers an
error (the starting page's error fails the whole document). The pages' text together is limited
to ``max_bytes``. The pages become one markdown document: each under a heading of its title (its
URL when it has none), in the order they were found.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from presence.service.documents import DocumentError, html_to_markdown


class CrawlConfig(BaseModel):
    """Tavus's ``crawl`` object of ``POST /v2/documents``."""

    model_config = ConfigDict(extra="forbid")
    depth: int = Field(default=1, ge=0, le=10, description="Links followed from the start page.")
    max_pages: int = Field(default=10, ge=1, le=100, description="Pages read in all.")


class _Page(HTMLParser):
    """A page's title and the targets of its links."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def _site(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _is_html(content_type: str | None, data: bytes) -> bool:
    if content_type:
        return "html" in content_type.lower()
    return data.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))


async def download(
    client: httpx.AsyncClient, url: str, limit: int
) -> tuple[bytes, str | None, str]:
    """The body (``limit`` bytes at most), content type and final URL (after redirects) at ``url``.

    Raises:
        httpx.HTTPError: The request failed or answered an error status.
        DocumentError: The body is over ``limit``.
    """
    async with client.stream("GET", url) as answer:
        answer.raise_for_status()
        data = bytearray()
        async for part in answer.aiter_bytes():
            data += part
            if len(data) > limit:
                raise DocumentError(f"over the {limit // 1_000_000} MB limit")
        return bytes(data), answer.headers.get("content-type"), str(answer.url)


async def crawl_site(
    client: httpx.AsyncClient, start: str, config: CrawlConfig, *, max_bytes: int
) -> tuple[str, list[str]]:
    """The crawled pages as one markdown document, and their URLs in the order read.

    Raises:
        httpx.HTTPError: The starting page could not be fetched.
        DocumentError: The starting page is not HTML, or the text is over ``max_bytes``.
    """
    start = urldefrag(start).url
    queue: list[tuple[str, int]] = [(start, 0)]
    seen = {start}
    site = _site(start)
    sections: list[str] = []
    crawled: list[str] = []
    size = 0
    while queue and len(crawled) < config.max_pages:
        url, hops = queue.pop(0)
        try:
            data, content_type, final = await download(client, url, max_bytes)
        except httpx.HTTPError:
            if url == start:
                raise
            continue  # a broken link leaves the rest of the site readable
        if url == start:
            site = _site(final)  # where a redirect took it (http to https, a www. host)
        if not _is_html(content_type, data):
            if url == start:
                raise DocumentError("crawl needs an HTML page to start from; drop `crawl`")
            continue
        html = data.decode("utf-8", errors="replace")
        page = _Page()
        page.feed(html)
        text = html_to_markdown(html).strip()
        size += len(text.encode())
        if size > max_bytes:
            raise DocumentError(f"the crawled pages are over the {max_bytes // 1_000_000} MB limit")
        crawled.append(url)
        if text:
            sections.append(f"# {' '.join(page.title.split()) or url}\n\n{text}")
        if hops >= config.depth:
            continue
        for href in page.links:
            target = urldefrag(urljoin(final, href)).url
            if target not in seen and _site(target) == site:
                seen.add(target)
                queue.append((target, hops + 1))
    return "\n\n".join(sections), crawled
