"""``LLMJudge``: the real OpenAI and Anthropic SDKs against the local fake servers."""

from __future__ import annotations

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.openai import FakeOpenAI, Reply

from presence.processors.llm.engines.judge import JudgeError, LLMJudge, json_object


def judge(fake, provider: str = "openai", **options) -> LLMJudge:
    return LLMJudge(provider, "judge-model", base_url=fake.base_url, api_key="k", **options)


async def test_the_verdict_is_the_json_object_in_the_answer():
    async with FakeOpenAI(
        Reply(text=["```json\n", '{"broken": ', '"no_medical"}', "\n```"])
    ) as fake:
        verdict = await judge(fake).ask("Check guardrails.", "Text: take two pills")
    assert verdict == {"broken": "no_medical"}
    (request,) = fake.requests
    assert request["model"] == "judge-model" and request["temperature"] == 0
    assert request["messages"][0] == {"role": "system", "content": "Check guardrails."}
    assert request["messages"][1]["content"] == "Text: take two pills"


async def test_anthropic_answers_too():
    async with FakeAnthropic(Reply(text=['{"broken": null}'])) as fake:
        verdict = await judge(fake, "anthropic").ask("Check.", "Text: hello")
    assert verdict == {"broken": None}
    assert fake.requests[0]["system"] == "Check."


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (Reply(fault="500"), "no verdict"),
        (Reply(fault="malformed"), "no verdict"),
        (Reply(text=["I think it is fine."]), "no JSON object"),
        (Reply(fault="stall", stall_s=5), "longer than 0.3 s"),
    ],
)
async def test_a_failed_or_slow_judge_raises_judge_error(reply, says):
    async with FakeOpenAI(reply) as fake:
        with pytest.raises(JudgeError, match=says):
            await judge(fake, timeout_s=0.3).ask("Check.", "Text: hello")


def test_only_a_cloud_llm_makes_a_judge():
    assert LLMJudge.from_llm_settings(None) is None
    assert LLMJudge.from_llm_settings({"provider": "knowledge-base", "model": "x"}) is None
    made = LLMJudge.from_llm_settings(
        {"provider": "openai", "model": "m", "base_url": "http://127.0.0.1:1/v1", "api_key": None},
        timeout_s=1.5,
    )
    assert (made.provider, made.model, made.timeout_s) == ("openai", "m", 1.5)
    with pytest.raises(ValueError, match="no JSON object"):
        json_object("nothing here")


@pytest.mark.parametrize("fake_server", [FakeOpenAI, FakeAnthropic])
async def test_a_warmed_judge_keeps_one_connection_between_verdicts(fake_server):
    async with fake_server(Reply(text=['{"broken": null}']), Reply(text=['{"a": 1}'])) as fake:
        provider = "anthropic" if fake_server is FakeAnthropic else "openai"
        verdicts = judge(fake, provider)
        await verdicts.warm()
        assert await verdicts.ask("Check.", "one") == {"broken": None}
        assert await verdicts.ask("Check.", "two") == {"a": 1}
        await verdicts.close()
    first, second = fake.peers
    assert first is not None and first == second  # no new connection (nor TLS) per verdict
