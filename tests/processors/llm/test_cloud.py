"""Anthropic and OpenAI-compatible LLMs through pipecat's real services, against wire fakes."""

from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.llm_script import Reply
from fakes.openai import FakeOpenAI
from pipecat.frames.frames import (
    ErrorFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.tests.utils import SleepFrame, run_test

from presence.framework import registry
from presence.framework.config import StageConfig
from presence.framework.errors import ProviderTimeout, ProviderUnavailable
from presence.framework.persona import Persona
from presence.framework.registry import BuildContext
from presence.processors.resilience import DEFAULT_APOLOGY, build_with_fallback

PROVIDERS = {"anthropic": FakeAnthropic, "openai": FakeOpenAI}


class ToolPersona(Persona):
    tools: list = []


def weather(city: str) -> dict:
    CALLS.append(city)
    return {"city": city, "sky": "sunny"}


CALLS: list[str] = []


def spec(name: str, fake, persona=None, **extra) -> StageConfig:
    provider = registry.get("llm", name)
    params = provider.params.model_validate(
        {"api_key": "test-key", "base_url": fake.base_url, "timeout_s": 2, **extra}
    )
    return StageConfig("llm", provider, params)


def ctx(persona=None) -> BuildContext:
    persona = persona or Persona(
        name="Guide", system_prompt="You are the guide.", context="Be brief."
    )
    return BuildContext(persona=persona, base_dir=Path("."))


def turn(text: str) -> LLMContextFrame:
    return LLMContextFrame(context=LLMContext(messages=[{"role": "user", "content": text}]))


def replies(frames) -> list[str]:
    """The text of each response (start..end), in order."""
    out, current = [], None
    for f in frames:
        if isinstance(f, LLMFullResponseStartFrame):
            current = ""
        elif isinstance(f, LLMTextFrame) and current is not None:
            current += f.text
        elif isinstance(f, LLMFullResponseEndFrame) and current is not None:
            out.append(current)
            current = None
    return out


async def run_llm(name: str, *script: Reply, turns=("hi",), **extra):
    async with PROVIDERS[name](*script) as fake:
        s = spec(name, fake, **extra)
        llm = s.provider.factory(s.params, ctx())
        down, up = await run_test(llm, frames_to_send=[turn(t) for t in turns])
    return fake, replies(down), [f for f in up if isinstance(f, ErrorFrame)]


def system_prompt(name: str, request: dict) -> str:
    if name == "anthropic":
        system = request["system"]
        return system if isinstance(system, str) else " ".join(b["text"] for b in system)
    return next(m["content"] for m in request["messages"] if m["role"] == "system")


@pytest.mark.parametrize("name", PROVIDERS)
async def test_streamed_text_becomes_one_reply_with_the_persona_prompt(name):
    fake, said, errors = await run_llm(name, Reply(text=["Hello", " there", "."]), model="m-1")
    assert said == ["Hello there."] and not errors
    assert fake.requests[0]["model"] == "m-1" and fake.requests[0]["stream"] is True
    assert "You are the guide." in system_prompt(name, fake.requests[0])
    assert "Be brief." in system_prompt(name, fake.requests[0])


@pytest.mark.parametrize("name", PROVIDERS)
async def test_tool_call_runs_the_persona_tool_and_the_model_answers_with_it(name):
    CALLS.clear()
    persona = ToolPersona(
        tools=[
            {
                "name": "get_weather",
                "description": "Weather in a city.",
                "parameters": {"city": {"type": "string"}},
                "required": ["city"],
                "python": f"{__name__}:weather",
            }
        ]
    )
    script = [
        Reply(tool_calls=[("get_weather", {"city": "Paris"})]),
        Reply(text=["Sunny in Paris."]),
    ]
    async with PROVIDERS[name](*script) as fake:
        s = spec(name, fake)
        llm = s.provider.factory(s.params, ctx(persona))
        context = LLMContext(messages=[{"role": "user", "content": "Weather in Paris?"}])
        pair = LLMContextAggregatorPair(context)
        pipeline = Pipeline([pair.user(), llm, pair.assistant()])
        await run_test(pipeline, frames_to_send=[LLMContextFrame(context), SleepFrame(0.5)])
    assert CALLS == ["Paris"]
    assert len(fake.requests) == 2
    tools = fake.requests[0]["tools"]
    assert [t.get("name") or t["function"]["name"] for t in tools] == ["get_weather"]
    assert "sunny" in str(fake.requests[1]["messages"])  # the result went back to the model
    assert context.get_messages()[-1] == {"role": "assistant", "content": "Sunny in Paris."}


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("fault", ["500", "429", "529", "malformed"])
async def test_one_failure_is_retried_and_the_user_hears_the_answer(name, fault):
    fake, said, errors = await run_llm(name, Reply(fault=fault), Reply(text=["Fine."]))
    assert said == ["Fine."] and not errors
    assert len(fake.requests) == 2


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("fault", ["500", "stall"])
async def test_repeated_failure_apologizes_once_and_the_next_turn_works(name, fault):
    script = [Reply(fault=fault, stall_s=5), Reply(fault=fault, stall_s=5), Reply(text=["Back."])]
    fake, said, errors = await run_llm(name, *script, turns=("one", "two"), timeout_s=0.3)
    assert said == [DEFAULT_APOLOGY, "Back."]
    assert len(errors) == 1
    expected = ProviderTimeout if fault == "stall" else ProviderUnavailable
    assert isinstance(errors[0].exception, expected)
    assert len(fake.requests) == 3


@pytest.mark.parametrize("name", PROVIDERS)
async def test_no_retry_beyond_the_turn_budget(name):
    script = [Reply(fault="429", retry_after=5), Reply(text=["late"])]
    fake, said, errors = await run_llm(name, *script, turn_budget_s=1.0)
    assert said == [DEFAULT_APOLOGY] and len(errors) == 1
    assert len(fake.requests) == 1


@pytest.mark.parametrize("name", PROVIDERS)
async def test_stream_cut_after_words_is_not_repeated(name):
    fake, said, errors = await run_llm(name, Reply(text=["The answer", " is"], fault="drop"))
    assert said == ["The answer"]  # not retried (that would repeat it), no apology appended
    assert len(errors) == 1 and len(fake.requests) == 1


async def test_fallback_list_hands_the_failed_turn_to_the_next_provider():
    async with FakeAnthropic(Reply(fault="500"), Reply(fault="500")) as primary:
        async with FakeOpenAI(
            Reply(text=["From backup."]), Reply(text=["Still backup."])
        ) as backup:
            specs = [spec("anthropic", primary), spec("openai", backup)]
            llm = build_with_fallback("llm", specs, ctx())
            down, up = await run_test(
                llm, frames_to_send=[turn("one"), SleepFrame(0.3), turn("two")]
            )
    texts = [f.text for f in down if isinstance(f, LLMTextFrame)]
    assert "".join(texts) == "From backup.Still backup."
    assert DEFAULT_APOLOGY not in texts
    assert len(primary.requests) == 2 and len(backup.requests) == 2


async def test_after_recover_after_s_a_later_turn_goes_back_to_the_primary():
    primary_script = [Reply(fault="500"), Reply(fault="500"), Reply(text=["Primary again."])]
    async with FakeAnthropic(*primary_script) as primary:
        async with FakeOpenAI(Reply(text=["From backup."])) as backup:
            specs = [spec("anthropic", primary), spec("openai", backup)]
            llm = build_with_fallback("llm", specs, ctx(), recover_after_s=0)
            down, _ = await run_test(
                llm, frames_to_send=[turn("one"), SleepFrame(1.0), turn("two"), SleepFrame(1.0)]
            )
    assert [r for r in replies(down) if r] == ["From backup.", "Primary again."]
    assert len(primary.requests) == 3 and len(backup.requests) == 1


async def test_a_primary_still_down_costs_a_retry_but_every_turn_is_answered():
    async with FakeAnthropic(*[Reply(fault="500")] * 4) as primary:
        async with FakeOpenAI(Reply(text=["Backup one."]), Reply(text=["Backup two."])) as backup:
            specs = [spec("anthropic", primary), spec("openai", backup)]
            llm = build_with_fallback("llm", specs, ctx(), recover_after_s=0)
            down, _ = await run_test(
                llm, frames_to_send=[turn("one"), SleepFrame(1.0), turn("two"), SleepFrame(1.0)]
            )
    assert [r for r in replies(down) if r] == ["Backup one.", "Backup two."]  # no apology
    assert len(primary.requests) == 4 and len(backup.requests) == 2


def test_openai_compatible_server_needs_no_key_but_openai_does(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    params = registry.get("llm", "openai").params
    assert params.model_validate({"base_url": "http://127.0.0.1:11434/v1", "model": "llama3.2"})
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        params.model_validate({"model": "gpt-4.1-mini"})
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        registry.get("llm", "anthropic").params.model_validate({})


@pytest.mark.parametrize("name", PROVIDERS)
async def test_knowledge_base_passages_ground_each_turn(name, tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "venue.md").write_text(
        "# Opening hours\n\nThe museum opens at nine and closes at five.\n\n"
        "# Parking\n\nThe car park is behind the east wing.\n"
    )
    persona = Persona(system_prompt="You are the guide.", knowledge_base=kb)
    async with PROVIDERS[name](Reply(text=["Nine."])) as fake:
        s = spec(name, fake, grounding_passages=1)
        llm = s.provider.factory(s.params, ctx(persona))
        await run_test(llm, frames_to_send=[turn("When does the museum open?")])
    prompt = system_prompt(name, fake.requests[0])
    assert "opens at nine" in prompt and "car park" not in prompt
