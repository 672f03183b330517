"""Shared fixtures: a real redis-server on a loopback port (installed by .ci/run; never mocked), and the shipped
tier table with its profiles changed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server; .ci/run does this)")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(100):  # wall-clock wait for a real server to start: setup, not simulation
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.fail("redis-server did not start")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def redis_store(redis_url: str):
    from agentlab.resilience.store import RedisStore

    store = RedisStore.from_url(redis_url, prefix=f"test-{time.monotonic_ns()}:")
    yield store
    store.client.close()


@pytest.fixture
def tiers_with(tmp_path: Path) -> Callable[..., str]:
    """``tiers_with(p_correct=1.0, ...)``: fixtures/tiers.yaml with every tier's profile so changed, written into
    the test's folder; its path, for ``--tiers`` (prices are still found beside the suite)."""

    def write(**changes: object) -> str:
        tiers = yaml.safe_load((Path(__file__).resolve().parents[1] / "fixtures" / "tiers.yaml").read_text())
        for profile in tiers["tiers"].values():
            profile.update(changes)
        path = tmp_path / "tiers.yaml"
        path.write_text(yaml.safe_dump(tiers))
        return str(path)

    return write
