"""Errors name what is actually wrong: a broken cassette body, an unpriced model's price table.

A truncated cassette used to surface as a request mismatch (the SDK met an undecodable body, the
agent moved to another tier, and *that* request was not recorded); an unpriced ``--model`` was blamed
on ``tiers.yaml``, which the user never touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from vcr.serializers import yamlserializer

from agentlab.cli import main
from agentlab.errors import InputError
from agentlab.llm.pricing import load_prices, priced_tiers
from agentlab.llm.replay import load_cassette
from agentlab.llm.tiers import load_tiers

ROOT = Path(__file__).resolve().parents[1]
SUITE = str(ROOT / "fixtures" / "suites" / "support.yaml")
PRICES = ROOT / "fixtures" / "prices.yaml"
EPISODE = "lookup-002"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def _break_body(path: Path, index: int, cut: slice) -> None:
    data = yamlserializer.deserialize(path.read_text())
    body = data["interactions"][index]["response"]["body"]
    body["string"] = body["string"][cut]
    path.write_text(yamlserializer.serialize(data))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("cut", [slice(None, -40), slice(None, 1)], ids=["truncated", "first-byte-only"])
def test_a_truncated_cassette_body_is_named_not_a_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], provider: str, cut: slice
) -> None:
    cassettes = tmp_path / "cassettes"
    shutil.copytree(ROOT / "cassettes" / provider, cassettes / provider)
    broken = cassettes / provider / "support" / f"{EPISODE}_0.yaml"
    _break_body(broken, 1, cut)
    out = tmp_path / "run"
    code, err = cli(
        capsys, "run", SUITE, "--llm", "replay", "--provider", provider, "--cassettes", str(cassettes),
        "--only", EPISODE, "--out", str(out), "--quiet",
    )  # fmt: skip
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"agentlab: error: {broken}: interactions[1]: truncated/undecodable body")
    assert "no unplayed interaction" not in err and "mismatch" not in err


def test_a_truncated_stream_body_is_named(tmp_path: Path) -> None:
    stream = 'event: message_start\ndata: {}\n\nevent: content_block_delta\ndata: {"type": "content_bl'
    path = tmp_path / "cut.yaml"
    path.write_text(
        yamlserializer.serialize(
            {
                "interactions": [
                    {
                        "request": {"method": "POST", "uri": "https://api.anthropic.com/v1/messages", "body": "{}"},
                        "response": {
                            "status": {"code": 200, "message": "OK"},
                            "headers": {"content-type": ["text/event-stream; charset=utf-8"]},
                            "body": {"string": stream},
                        },
                    }
                ]
            }
        )
    )
    with pytest.raises(InputError, match=r"interactions\[0\]: truncated/undecodable body \(response: event stream"):
        load_cassette(path)


def test_an_error_status_with_a_broken_body_is_a_recording_not_a_broken_cassette(tmp_path: Path) -> None:
    # A gateway's 502 page labelled JSON is something providers really send: it replays as recorded.
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "interactions:\n- request: {method: POST, uri: 'https://x/v1/chat/completions'}\n"
        "  response:\n    status: {code: 502, message: Bad Gateway}\n"
        "    headers: {content-type: [application/json]}\n    body: {string: '<html>bad gateway'}\n"
    )
    assert load_cassette(path)[0].response.status == 502


def test_an_unpriced_model_is_blamed_on_the_price_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # never used: the run stops before any request
    prices = tmp_path / "my-prices.yaml"
    shutil.copy(PRICES, prices)
    code, err = cli(
        capsys, "run", SUITE, "--llm", "openai", "--model", "gpt-9-unpriced", "--prices", str(prices),
        "--out", str(tmp_path / "run"), "--quiet",
    )  # fmt: skip
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith(f"agentlab: error: {prices}: ")
    assert "'gpt-9-unpriced'" in line and "--model" in line
    assert "tiers.yaml" not in line


def test_an_unpriced_tier_model_names_the_price_table_and_the_tier(tmp_path: Path) -> None:
    tiers = load_tiers(ROOT / "fixtures" / "tiers.yaml")
    profile = tiers.tiers[tiers.default].model_copy(update={"model": "sim-unpriced"})
    tiers = tiers.model_copy(update={"tiers": {**tiers.tiers, tiers.default: profile}})
    with pytest.raises(InputError) as info:
        priced_tiers(tiers, load_prices(PRICES), "my-tiers.yaml", prices_source=str(PRICES))
    assert info.value.file == str(PRICES)
    assert "'sim-unpriced'" in info.value.problem and f"my-tiers.yaml: tiers.{tiers.default}.model" in str(info.value)
