"""``POST /v2/conversations/{id}/interactions``: the data channel's messages, over REST."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy.orm import Session

from presence.service.auth import owned, owner
from presence.service.db import ConversationRow
from presence.service.deps import db_session, unprocessable
from presence.service.interaction_schemas import InteractionIn, InteractionOut
from presence.service.schemas import errors

router = APIRouter(prefix="/v2/conversations", tags=["conversations"], responses=errors(401))


@router.post(
    "/{conversation_id}/interactions",
    response_model=InteractionOut,
    summary="Send an interaction (echo, respond, interrupt, context) to a live conversation",
    responses=errors(400, 403, 404, 409),
)
async def send_interaction(
    conversation_id: str,
    body: InteractionIn,
    request: Request,
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> InteractionOut:
    """The same messages the page sends over the data channel, for server-side callers.

    ``conversation.echo`` makes the replica say ``properties.text``; ``conversation.respond``
    answers ``properties.text`` as if the user said it; ``conversation.interrupt`` stops the
    replica; ``conversation.overwrite_llm_context``/``append_llm_context`` change the
    conversational context (``properties.context``); ``conversation.sensitivity`` changes
    ``participant_pause_sensitivity``/``participant_interrupt_sensitivity`` for the rest of the
    call. 422 names a missing or invalid field.
    """
    from presence.processors.interactions.engines.protocol import (
        InteractionError,
        NotRunningError,
    )

    row = owned(db.get(ConversationRow, conversation_id), who, "conversation", conversation_id)
    if row.status != "active":
        raise HTTPException(409, detail=f"conversation {conversation_id} has ended")
    interact = getattr(request.app.state.launcher, "interact", None)
    if interact is None:
        raise HTTPException(409, detail="this service's launcher does not take interactions")
    message = body.model_dump()
    try:
        event_type = await interact(conversation_id, message)
    except NotRunningError as exc:
        raise HTTPException(409, detail=str(exc)) from None
    except InteractionError as exc:
        raise unprocessable(exc.field or "properties", str(exc)) from None
    return InteractionOut(conversation_id=conversation_id, event_type=event_type)
