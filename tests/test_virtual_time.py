"""The virtual-time loop and the seeded RNG tree."""

from __future__ import annotations

import asyncio

import pytest

from agentlab.sim.clock import Clock
from agentlab.sim.loop import SimulationDeadlock, VirtualTimeLoop, run_virtual
from agentlab.sim.rng import RngTree

# --- VirtualTimeLoop ---------------------------------------------------------------------------


def test_sleep_one_hour_advances_clock_exactly() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        before = loop.time()
        await asyncio.sleep(3600)
        return before, loop.time()

    before, after = run_virtual(main())
    assert before == 0.0
    assert after == 3600.0


def test_run_virtual_uses_a_virtual_time_loop_and_start_time() -> None:
    async def main() -> tuple[bool, float, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(2.5)
        return isinstance(loop, VirtualTimeLoop), start, loop.time()

    is_virtual, start, end = run_virtual(main(), start=100.0)
    assert is_virtual
    assert start == 100.0
    assert end == 102.5


def test_sleep_zero_does_not_advance_time() -> None:
    async def main() -> float:
        for _ in range(10):
            await asyncio.sleep(0)
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == 0.0


def test_timers_fire_in_deadline_order_at_their_times() -> None:
    fired: list[tuple[str, float]] = []

    async def sleeper(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        fired.append((name, asyncio.get_running_loop().time()))

    async def main() -> float:
        loop = asyncio.get_running_loop()
        # Created out of deadline order on purpose.
        loop.call_later(7.0, lambda: fired.append(("call_later", loop.time())))
        await asyncio.gather(sleeper("c", 30.0), sleeper("a", 1.0), sleeper("b", 5.0))
        return loop.time()

    end = run_virtual(main())
    assert fired == [("a", 1.0), ("b", 5.0), ("call_later", 7.0), ("c", 30.0)]
    assert end == 30.0


def test_sequential_sleeps_accumulate() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        seen = []
        for delay in (1.0, 2.0, 4.0):
            await asyncio.sleep(delay)
            seen.append(loop.time())
        return seen

    assert run_virtual(main()) == [1.0, 3.0, 7.0]


def test_timeout_fires_at_the_right_virtual_time() -> None:
    async def main() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        finished = False
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(5):
                await asyncio.sleep(100)
                finished = True
        return loop.time(), finished

    t, finished = run_virtual(main())
    assert t == 5.0
    assert not finished


def test_timeout_not_reached_lets_the_body_finish() -> None:
    async def main() -> float:
        async with asyncio.timeout(5):
            await asyncio.sleep(4)
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == 4.0


def test_wait_for_times_out_on_virtual_clock() -> None:
    async def main() -> float:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(60), timeout=12.5)
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == 12.5


def test_never_resolved_future_raises_simulation_deadlock() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(SimulationDeadlock):
        run_virtual(main())


def test_deadlock_after_timers_have_run_out() -> None:
    reached: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(5)
        reached.append(loop.time())
        await loop.create_future()

    with pytest.raises(SimulationDeadlock):
        run_virtual(main())
    assert reached == [5.0]


def test_clock_reads_the_running_virtual_loop() -> None:
    clock = Clock()

    async def main() -> tuple[float, float]:
        await asyncio.sleep(42)
        return clock.now(), clock.timer()()

    assert run_virtual(main()) == (42.0, 42.0)


def test_clock_reused_across_loops_reads_the_current_loop() -> None:
    clock = Clock()

    async def after(delay: float) -> float:
        await asyncio.sleep(delay)
        return clock.now()

    assert run_virtual(after(5)) == 5.0
    assert run_virtual(after(1)) == 1.0


# --- RngTree -----------------------------------------------------------------------------------


def _draws(tree: RngTree, n: int = 5) -> list[float]:
    rng = tree.random()
    return [rng.random() for _ in range(n)]


def test_same_path_gives_same_sequence() -> None:
    a = RngTree(7).child("model", "S-1", 0)
    b = RngTree(7).child("model", "S-1", 0)
    assert _draws(a) == _draws(b)
    # Each call to random() is a fresh generator for the node: same sequence again.
    assert _draws(a) == _draws(a)


def test_different_path_or_seed_gives_different_sequence() -> None:
    root = RngTree(7)
    base = _draws(root.child("model", "S-1", 0))
    assert _draws(root.child("model", "S-1", 1)) != base
    assert _draws(root.child("model", "S-2", 0)) != base
    assert _draws(root.child("world", "S-1", 0)) != base
    assert _draws(RngTree(8).child("model", "S-1", 0)) != base
    assert _draws(root) != base


def test_path_components_are_not_concatenated() -> None:
    root = RngTree(1)
    assert root.child("ab").derive_seed() != root.child("a", "b").derive_seed()
    assert root.child("a", "b").derive_seed() != root.child("b", "a").derive_seed()


def test_nested_child_equals_flat_child() -> None:
    root = RngTree(3)
    assert root.child("a").child("b", 2).derive_seed() == root.child("a", "b", "2").derive_seed()


def test_child_seeds_do_not_depend_on_creation_or_draw_order() -> None:
    first = RngTree(11)
    a1 = first.child("a")
    _draws(first.child("b"), 100)  # consume lots of randomness elsewhere
    seq_a1 = _draws(a1)

    second = RngTree(11)
    b2 = second.child("b")
    _draws(b2, 3)
    seq_a2 = _draws(second.child("a"))

    assert seq_a1 == seq_a2
    assert first.child("a").derive_seed() == second.child("a").derive_seed()


def test_child_does_not_mutate_parent() -> None:
    root = RngTree(5)
    before = root.derive_seed()
    root.child("x").child("y")
    assert root.derive_seed() == before
    assert _draws(root) == _draws(RngTree(5))
