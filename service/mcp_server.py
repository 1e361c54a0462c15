"""``presence mcp``: an MCP server that lets agents drive a presence service.

Its tools (create and list personas and conversations, end a conversation, read a transcript,
add, list and delete knowledge-base documents)
call the REST API through ``AsyncPresenceClient``, so an agent sees exactly what the service
holds. A refused request comes back as a tool error carrying the service's reason. Served over
stdio (an MCP client launches ``presence mcp``) or streamable HTTP (``--transport http``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from presence.framework.errors import PresenceError
from presence.service.client import AsyncPresenceClient
from presence.service.routes.documents import DocumentOut
from presence.service.schemas import ConversationOut, Page, PersonaOut

INSTRUCTIONS = (
    "presence runs real-time video conversations with AI personas. Create a persona "
    "(its name, system prompt and greeting), start a conversation with it and give the user "
    "its conversation_url to join in a browser; end it when done and read its transcript. "
    "Documents (a text or a URL, with tags) are the knowledge base a persona answers from: "
    "pass their ids as document_ids, or their tags as document_tags, when creating the persona."
)


class Transcript(BaseModel):
    """A conversation's transcript so far."""

    conversation_id: str
    status: Literal["active", "ended"]
    transcript: list[dict[str, Any]]


def create_mcp_server(client: AsyncPresenceClient) -> MCPServer:
    """An MCP server whose tools call the presence service behind ``client``.

    Args:
        client: The service to drive; closed when the server stops.

    Returns:
        The server; run it with ``run("stdio")`` or ``run("streamable-http", port=...)``.
    """

    @asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[None]:
        try:
            yield None
        finally:
            await client.aclose()

    server = MCPServer(
        name="presence", instructions=INSTRUCTIONS, log_level="WARNING", lifespan=lifespan
    )

    async def call(coro):
        try:
            return await coro
        except PresenceError as exc:  # the service's reason, for the agent to act on
            raise ToolError(str(exc)) from None

    @server.tool()
    async def create_persona(
        persona_name: str,
        system_prompt: str = "",
        greeting: str = "",
        context: str = "",
        pipeline: str | None = None,
        document_ids: list[str] | None = None,
        document_tags: list[str] | None = None,
    ) -> PersonaOut:
        """Create a persona: who the AI is in its conversations.

        Args:
            persona_name: Display name.
            system_prompt: How the persona behaves.
            greeting: What it says when the user joins.
            context: Background knowledge for every conversation.
            pipeline: A pipeline shipped with presence ('local' offline, 'cloud'); default local.
            document_ids: Documents (from add_document) it answers from.
            document_tags: Every ready document with one of these tags is used too.
        """
        fields = dict(
            persona_name=persona_name, system_prompt=system_prompt, greeting=greeting,
            context=context, pipeline=pipeline, document_ids=document_ids,
            document_tags=document_tags,
        )  # fmt: skip
        return await call(client.create_persona(**{k: v for k, v in fields.items() if v}))

    @server.tool()
    async def list_personas(limit: int = 10, page: int = 1) -> Page[PersonaOut]:
        """This API key's personas, newest first (total_count says how many in all)."""
        return await call(client.list_personas(limit=limit, page=page))

    @server.tool()
    async def create_conversation(
        persona_id: str,
        conversation_name: str = "",
        conversational_context: str = "",
        custom_greeting: str | None = None,
    ) -> ConversationOut:
        """Start a conversation with a persona; the user joins at its conversation_url.

        Args:
            persona_id: The persona that answers.
            conversation_name: A label for it.
            conversational_context: What this conversation is about (added to the persona's).
            custom_greeting: Replaces the persona's greeting.
        """
        fields: dict[str, Any] = dict(persona_id=persona_id)
        if conversation_name:
            fields["conversation_name"] = conversation_name
        if conversational_context:
            fields["conversational_context"] = conversational_context
        if custom_greeting is not None:
            fields["custom_greeting"] = custom_greeting
        return await call(client.create_conversation(**fields))

    @server.tool()
    async def list_conversations(
        status: Literal["active", "ended"] | None = None,
        persona_id: str | None = None,
        limit: int = 10,
        page: int = 1,
    ) -> Page[ConversationOut]:
        """This API key's conversations, newest first, optionally by status or persona."""
        return await call(
            client.list_conversations(status=status, persona_id=persona_id, limit=limit, page=page)
        )

    @server.tool()
    async def end_conversation(conversation_id: str) -> ConversationOut:
        """End a live conversation (the user is disconnected); no-op once ended."""
        return await call(client.end_conversation(conversation_id))

    @server.tool()
    async def get_transcript(conversation_id: str) -> Transcript:
        """What was said so far: turns of {role: user|assistant, content}."""
        talk = await call(client.get_conversation(conversation_id))
        return Transcript(
            conversation_id=talk.conversation_id, status=talk.status, transcript=talk.transcript
        )

    @server.tool()
    async def add_document(
        text: str | None = None,
        document_url: str | None = None,
        document_name: str | None = None,
        tags: list[str] | None = None,
    ) -> DocumentOut:
        """Add a document to the knowledge base: its text (markdown, plain, HTML) or a URL.

        Args:
            text: The document itself; ready at once.
            document_url: A page or file to fetch instead (status 'processing' until read).
            document_name: A label for it.
            tags: Tags personas can select it by (document_tags).
        """
        fields = dict(text=text, document_url=document_url, document_name=document_name, tags=tags)
        return await call(client.create_document(**{k: v for k, v in fields.items() if v}))

    @server.tool()
    async def list_documents(
        tags: list[str] | None = None, limit: int = 10, page: int = 1
    ) -> Page[DocumentOut]:
        """This API key's documents, oldest first; with tags, those carrying any of them."""
        return await call(client.list_documents(tags=tags, limit=limit, page=page))

    @server.tool()
    async def delete_document(document_id: str) -> str:
        """Remove a document from the knowledge base (personas stop using it)."""
        await call(client.delete_document(document_id))
        return f"document {document_id} deleted"

    return server


def run_mcp(
    url: str,
    api_key: str | None,
    transport: Literal["stdio", "http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
) -> None:
    """Serve the MCP tools until the client disconnects (stdio) or Ctrl-C (http).

    Args:
        url: The presence service's root URL.
        api_key: Its API key (default ``PRESENCE_API_KEY``).
        transport: ``stdio`` or ``http`` (streamable HTTP at ``http://host:port/mcp``).
        host: Interface for ``http``.
        port: TCP port for ``http``.

    Raises:
        ConfigError: No API key, or an unknown transport.
    """
    from presence.framework.errors import ConfigError

    if transport not in ("stdio", "http"):
        raise ConfigError(f"--transport {transport!r}: use stdio or http")
    server = create_mcp_server(AsyncPresenceClient(url, api_key))
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)
