"""Provider shapes seen in other projects' recordings, which the adapters and the reader must take.

Each test drives the real SDK through ``httpx2.MockTransport`` (helpers from ``test_providers``) or a
cassette: Azure's delta-less stream chunks and message-less content-filtered choices, the legacy
``function_call`` answer, the Anthropic SDK's refusal to send a large ``max_tokens`` unstreamed,
vcrpy's older httpx cassette format, and Anthropic's two spellings of a text turn.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from test_providers import (
    Recorder,
    anthropic_message,
    anthropic_model,
    ask,
    chat_completion,
    json_response,
    openai_model,
    run,
    sse,
)

from agentlab.errors import ContentFiltered, ModelError
from agentlab.llm.providers import AnthropicMessagesModel, OpenAIChatModel
from agentlab.llm.replay import Replayer, load_cassette, normalized_body
from agentlab.llm.types import Message, ModelRequest

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "real-cassettes"


def replay_openai(replayer: Replayer) -> OpenAIChatModel:
    client = openai.AsyncOpenAI(
        api_key="k", base_url="https://api.openai.com/v1", http_client=replayer.client(), max_retries=0
    )
    return OpenAIChatModel(client)


def replay_model(replayer: Replayer) -> AnthropicMessagesModel:
    """An unstreamed Anthropic adapter over ``replayer`` (no SDK retries: a miss must show at once)."""
    client = anthropic.AsyncAnthropic(
        api_key="k", base_url="https://api.anthropic.com", http_client=replayer.client(), max_retries=0
    )
    return AnthropicMessagesModel(client)


FILTER_RESULTS = {k: {"filtered": False, "severity": "safe"} for k in ("hate", "self_harm", "sexual", "violence")}


# --- Azure OpenAI ----------------------------------------------------------------------------------


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o", "choices": choices, **extra}


def test_azure_stream_chunks_without_delta_are_skipped() -> None:
    # Azure sends a first chunk with no choices (prompt filter results), and content-filter annotation
    # chunks whose choice has no ``delta`` at all (openai-python#1677).
    events = [
        (None, {**_chunk([]), "id": "", "model": "", "prompt_filter_results": [{"prompt_index": 0}]}),
        (None, _chunk([{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}])),
        (None, _chunk([{"index": 0, "finish_reason": None, "content_filter_results": FILTER_RESULTS}])),
        (None, _chunk([{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}])),
        (None, {**_chunk([{"index": 0, "finish_reason": None, "content_filter_offsets": {"check_offset": 3}}])}),
        (None, _chunk([], usage={"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9})),
        (None, "[DONE]"),
    ]
    response = run(openai_model(Recorder(sse(events)), stream=True).complete(ask()))
    assert (response.text, response.stop_reason, response.usage.input_tokens) == ("Hello", "end_turn", 7)


def test_a_content_filtered_choice_without_a_message_is_content_filtered() -> None:
    body = chat_completion({}, "content_filter")
    body["choices"][0] = {"index": 0, "finish_reason": "content_filter", "content_filter_results": FILTER_RESULTS}
    with pytest.raises(ContentFiltered, match="content_filter") as info:
        run(openai_model(Recorder(json_response(200, body))).complete(ask()))
    assert not info.value.transient  # asking again gets the same filter


def test_a_choice_without_a_message_for_another_reason_is_a_model_error() -> None:
    body = chat_completion({}, "stop")
    body["choices"][0] = {"index": 0, "finish_reason": "stop"}
    with pytest.raises(ModelError) as info:
        run(openai_model(Recorder(json_response(200, body))).complete(ask()))
    assert not isinstance(info.value, ContentFiltered)


# --- legacy function_call --------------------------------------------------------------------------


def test_legacy_function_call_is_one_tool_call() -> None:
    call = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    body = chat_completion({"content": None, "function_call": call}, "function_call")
    response = run(openai_model(Recorder(json_response(200, body))).complete(ask()))
    assert response.stop_reason == "tool_use"
    assert [(c.name, c.arguments, c.raw_arguments) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris"}, '{"city": "Paris"}')
    ]
    assert response.tool_calls[0].id


def test_legacy_function_call_streamed_is_one_tool_call() -> None:
    def delta(d: dict[str, Any], finish: str | None = None) -> tuple[None, dict[str, Any]]:
        return None, _chunk([{"index": 0, "delta": d, "finish_reason": finish}])

    events = [
        delta({"role": "assistant", "function_call": {"name": "get_weather", "arguments": ""}}),
        delta({"function_call": {"arguments": '{"city": '}}),
        delta({"function_call": {"arguments": '"Rome"}'}}),
        delta({}, "function_call"),
        (None, "[DONE]"),
    ]
    response = run(openai_model(Recorder(sse(events)), stream=True).complete(ask()))
    assert response.stop_reason == "tool_use"
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("get_weather", {"city": "Rome"})]


# --- Anthropic: a large max_tokens unstreamed --------------------------------------------------------


def _anthropic_stream_answer(text: str) -> list[tuple[str, dict[str, Any]]]:
    message = {**anthropic_message([], "end_turn"), "stop_reason": None}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
    ]
    return [(e["type"], e) for e in events]


def test_anthropic_large_max_tokens_unstreamed_is_sent_as_a_stream() -> None:
    recorder = Recorder(sse(_anthropic_stream_answer("2")))  # type: ignore[arg-type]
    model = anthropic_model(recorder)  # stream=False: the caller did not ask for a stream
    response = run(model.complete(ask(max_tokens=64000)))
    assert (response.text, response.stop_reason, response.usage.output_tokens) == ("2", "end_turn", 3)
    assert recorder.bodies[0]["stream"] is True and recorder.bodies[0]["max_tokens"] == 64000


def test_anthropic_small_max_tokens_stays_unstreamed() -> None:
    recorder = Recorder(json_response(200, anthropic_message([{"type": "text", "text": "ok"}], "end_turn")))
    assert run(anthropic_model(recorder).complete(ask(max_tokens=1024))).text == "ok"
    assert "stream" not in recorder.bodies[0]


def test_anthropic_real_cassette_of_the_stream_fallback_for_high_max_tokens() -> None:
    path = REAL / "anthropic" / "pydantic-ai__test_request_stream_fallback_for_high_max_tokens.yaml"
    if not path.is_file():
        pytest.skip(f"real cassettes not present ({path}); they live beside the project, not in it")
    replayer = Replayer([path])
    request = ModelRequest(
        tier="t",
        model="claude-sonnet-4-5",
        messages=(Message(role="user", content="What is 1+1? Answer with just the number."),),
        max_tokens=32000,
    )
    response = run(replay_model(replayer).complete(request))  # unstreamed, as pydantic-ai's caller asked
    assert (response.text, response.stop_reason, response.usage.output_tokens) == ("2", "end_turn", 5)
    assert replayer.all_played


# --- vcrpy's older httpx cassette format ------------------------------------------------------------

ANSWER = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "m-1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
# vcrpy < 4.2's httpx stub: status_code / http_version / content (the decoded text), with the
# content-encoding header of the compressed original kept.
OLD_HTTPX = f"""\
interactions:
- request:
    body: '{{"model":"m-1","messages":[{{"role":"user","content":"hi"}}]}}'
    headers:
      content-type:
      - application/json
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    content: '{json.dumps(ANSWER)}'
    headers:
      content-encoding:
      - gzip
      content-type:
      - application/json
    http_version: HTTP/1.1
    status_code: 200
version: 1
"""


def test_old_vcrpy_httpx_format_loads_and_replays(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(OLD_HTTPX)
    [it] = load_cassette(path)
    assert (it.response.status, json.loads(it.response.body)["model"]) == (200, "m-1")

    request = ModelRequest(tier="t", model="m-1", messages=(Message(role="user", content="hi"),))
    response = run(replay_openai(Replayer([path])).complete(request))
    assert (response.text, response.usage.input_tokens) == ("hello", 3)


# --- Anthropic's two spellings of a text turn --------------------------------------------------------


def test_text_content_as_a_string_or_as_text_blocks_matches() -> None:
    as_string = {"model": "m", "system": "be brief", "messages": [{"role": "user", "content": "hi"}]}
    as_blocks = {
        "model": "m",
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    assert normalized_body(json.dumps(as_string)) == normalized_body(json.dumps(as_blocks))
    result = {"type": "tool_result", "tool_use_id": "t1"}
    as_string["messages"].append({"role": "user", "content": [{**result, "content": "18C"}]})
    as_blocks["messages"].append(
        {"role": "user", "content": [{**result, "content": [{"type": "text", "text": "18C"}]}]}
    )
    assert normalized_body(json.dumps(as_string)) == normalized_body(json.dumps(as_blocks))
    different = {**as_string, "messages": [{"role": "user", "content": "hello"}]}
    assert normalized_body(json.dumps(different)) != normalized_body(json.dumps(as_blocks))


def test_a_cassette_recorded_with_string_content_replays_for_the_block_sending_adapter(tmp_path: Path) -> None:
    recorded = {"model": "claude-x", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]}
    answer = anthropic_message([{"type": "text", "text": "hello"}], "end_turn")
    path = tmp_path / "strings.yaml"
    path.write_text(
        "interactions:\n- request:\n    method: POST\n    uri: https://api.anthropic.com/v1/messages\n"
        f"    body: '{json.dumps(recorded)}'\n  response:\n    status: {{code: 200, message: OK}}\n"
        f"    headers: {{content-type: [application/json]}}\n    body: {{string: '{json.dumps(answer)}'}}\n"
    )
    replayer = Replayer([path])
    request = ModelRequest(tier="t", model="claude-x", messages=(Message(role="user", content="hi"),))
    assert run(replay_model(replayer).complete(request)).text == "hello"
    # The recorded bytes are kept as they were: normalising is for matching only.
    assert json.loads(load_cassette(path)[0].request.body) == recorded


# --- async generators on the simulated loop ------------------------------------------------------------


def test_an_openai_stream_run_leaves_no_pending_task(tmp_path: Path) -> None:
    args = ["run", "fixtures/suites/support.yaml", "--llm", "sim-openai", "--stream", "--only", "lookup-002"]
    done = subprocess.run(
        [sys.executable, "-m", "agentlab", *args, "--out", str(tmp_path / "run"), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Task was destroyed" not in done.stderr and "was never awaited" not in done.stderr
    assert done.stderr == ""
