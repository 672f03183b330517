"""Memory Manager: per-user context, bounded, persisted in SQLite behind a write-through cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlab.components.memory import MemoryItem, MemoryManager


@pytest.fixture
def memory() -> Iterator[MemoryManager]:
    mm = MemoryManager(":memory:", max_items=6)
    yield mm
    mm.close()


def db_recent(mm: MemoryManager, user_id: str) -> list[MemoryItem]:
    """The user's last ``max_items`` items, read straight from the database (bypassing the cache)."""
    rows = mm.conn.execute(
        "SELECT session_id, role, content FROM memory WHERE user_id = ? ORDER BY id DESC LIMIT ?",
        (user_id, mm.max_items),
    ).fetchall()
    return [MemoryItem(*r) for r in reversed(rows)]


def test_empty_memory_loads_nothing(memory: MemoryManager) -> None:
    assert memory.load("U-1", "s1") == []


def test_save_then_load_round_trip(memory: MemoryManager) -> None:
    saved = memory.save("U-1", "s1", 1.5, [("user", "where is my order?"), ("assistant", "it shipped")])
    assert saved == 2
    assert memory.load("U-1", "s1") == [
        MemoryItem("s1", "user", "where is my order?"),
        MemoryItem("s1", "assistant", "it shipped"),
    ]


def test_save_stores_time_and_session(memory: MemoryManager) -> None:
    memory.save("U-1", "s9", 12.25, [("user", "hi")])
    memory.flush()
    rows = memory.conn.execute("SELECT user_id, session_id, t, role, content FROM memory").fetchall()
    assert rows == [("U-1", "s9", 12.25, "user", "hi")]


def test_load_spans_sessions_of_the_same_user(memory: MemoryManager) -> None:
    memory.save("U-1", "s1", 0.0, [("user", "first")])
    memory.save("U-1", "s2", 1.0, [("user", "second")])
    assert [(m.session_id, m.content) for m in memory.load("U-1", "s3")] == [("s1", "first"), ("s2", "second")]


def test_users_are_isolated(memory: MemoryManager) -> None:
    memory.save("U-1", "s1", 0.0, [("user", "alice secret")])
    memory.save("U-2", "s1", 0.0, [("user", "bob secret")])
    assert [m.content for m in memory.load("U-1", "s1")] == ["alice secret"]
    assert [m.content for m in memory.load("U-2", "s1")] == ["bob secret"]
    assert memory.load("U-3", "s1") == []


def test_users_stay_isolated_after_cache_is_warm(memory: MemoryManager) -> None:
    memory.load("U-1", "s1")
    memory.load("U-2", "s1")  # both users cached
    memory.save("U-1", "s1", 0.0, [("user", "only for U-1")])
    assert memory.load("U-2", "s1") == []
    assert [m.content for m in memory.load("U-1", "s1")] == ["only for U-1"]


def test_max_items_keeps_most_recent_in_order() -> None:
    mm = MemoryManager(":memory:", max_items=3)
    for i in range(5):
        mm.save("U-1", f"s{i}", float(i), [("user", f"m{i}")])
    assert [m.content for m in mm.load("U-1", "x")] == ["m2", "m3", "m4"]
    mm.close()


def test_max_items_applies_to_the_warm_cache_too() -> None:
    mm = MemoryManager(":memory:", max_items=3)
    assert mm.load("U-1", "s") == []  # warms the cache
    mm.save("U-1", "s", 0.0, [("user", "a"), ("assistant", "b")])
    mm.save("U-1", "s", 1.0, [("user", "c"), ("assistant", "d")])
    assert [m.content for m in mm.load("U-1", "s")] == ["b", "c", "d"]
    mm.close()


def test_load_returns_a_copy(memory: MemoryManager) -> None:
    memory.save("U-1", "s1", 0.0, [("user", "x")])
    items = memory.load("U-1", "s1")
    items.clear()
    assert len(memory.load("U-1", "s1")) == 1


def test_cache_and_database_agree(memory: MemoryManager) -> None:
    memory.save("U-1", "s1", 0.0, [("user", "before cache")])
    memory.load("U-1", "s1")  # cache built from the database here
    for i in range(8):
        memory.save("U-1", f"s{i % 2}", float(i), [("user", f"q{i}"), ("assistant", f"a{i}")])
        cached = memory.load("U-1", "s1")
        memory.flush()
        assert cached == db_recent(memory, "U-1")
    assert [m.content for m in memory.load("U-1", "s1")] == ["q5", "a5", "q6", "a6", "q7", "a7"]


def test_file_backed_memory_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite"
    first = MemoryManager(path)
    first.save("U-1", "s1", 0.0, [("user", "remember me"), ("assistant", "noted")])
    first.save("U-2", "s1", 0.0, [("user", "someone else")])
    first.close()

    second = MemoryManager(path)
    assert second.load("U-1", "s2") == [MemoryItem("s1", "user", "remember me"), MemoryItem("s1", "assistant", "noted")]
    assert [m.content for m in second.load("U-2", "s2")] == ["someone else"]
    second.save("U-1", "s2", 1.0, [("user", "again")])
    second.close()

    third = MemoryManager(path, max_items=2)
    assert [m.content for m in third.load("U-1", "s3")] == ["noted", "again"]
    third.close()


def test_saves_are_buffered_until_flush_but_the_writer_sees_them(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite"
    writer = MemoryManager(path, flush_every=100)
    writer.save("U-1", "s1", 0.0, [("user", "hello")])
    reader = MemoryManager(path)
    assert reader.load("U-1", "s1") == []  # not committed yet
    assert [m.content for m in writer.load("U-1", "s1")] == ["hello"]  # its own load flushes first
    reader.close()
    reader = MemoryManager(path)
    assert [m.content for m in reader.load("U-1", "s1")] == ["hello"]
    writer.close()
    reader.close()


def test_a_full_buffer_is_committed_without_an_explicit_flush(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite"
    writer = MemoryManager(path, flush_every=4)
    for i in range(2):
        writer.save("U-1", "s1", float(i), [("user", f"q{i}"), ("assistant", f"a{i}")])
    reader = MemoryManager(path)
    assert len(reader.load("U-1", "s1")) == 4
    writer.close()
    reader.close()
