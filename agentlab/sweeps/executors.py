"""Where a sweep's cells run: in this process, on a local process pool, or on a Dask cluster.

One small interface, as httpx's transports are one: ``with executor: for done in executor.map(fn,
tasks)`` yields results as they finish, in any order. The sweep puts them back in grid order, so the
merged results never depend on which executor ran them or how many workers it had.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from agentlab.errors import InputError, WorkersFailed

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs tasks and yields their results as they finish."""

    name: str
    workers: int
    ships_files: bool  # True: workers may not share this machine's disk, so run directories come back as bytes

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]: ...


class InProcess:
    """Run every cell here, one after another (no pickling, no worker start-up: the reference)."""

    name = "in-process"
    workers = 1
    ships_files = False

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        for task in tasks:
            yield fn(task)


class ProcessPool:
    """A local pool of ``workers`` processes (default: the machine's cores).

    Workers are forked where that is safe (Linux, outside a Jupyter kernel: :func:`start_method`): they start
    in milliseconds with the parent's imports and loaded inputs, instead of importing pandas and the SDKs again.
    """

    name = "processes"
    ships_files = False

    def __init__(self, workers: int | None = None) -> None:
        workers = workers if workers is not None else (os.cpu_count() or 1)
        if workers < 1:
            raise InputError("--workers", "", f"must be at least 1 (got {workers})")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ProcessPool:
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(start_method()))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        pending: set[Future[R]] = {self.submit(fn, task) for task in tasks}
        yield from as_completed(pending)

    def submit(self, fn: Callable[[T], R], task: T) -> Future[R]:
        """One task, started at once: for a caller that makes its tasks while the pool works (chaos search)."""
        assert self._pool is not None, "use the pool inside `with`"
        try:
            return self._pool.submit(fn, task)
        except BrokenProcessPool as exc:  # a worker died since the last task was handed out
            raise WorkersFailed(exc) from None


def start_method() -> str:
    """``fork`` where it is safe and fast (Linux, a plain process); ``forkserver`` inside a running Jupyter kernel,
    whose ZeroMQ threads a forked child would inherit mid-message (a child's output can land in the notebook's next
    cell); ``spawn`` elsewhere."""
    if not sys.platform.startswith("linux"):
        return "spawn"
    return "forkserver" if in_jupyter_kernel() else "fork"


def in_jupyter_kernel() -> bool:
    """Whether this process is a running Jupyter kernel. Not merely whether ipykernel is imported: pytest's nbval
    plugin imports it into the test process, which runs no kernel, and there the tests must take the pools' real
    path (fork), which they did not while this asked only that."""
    kernelapp = sys.modules.get("ipykernel.kernelapp")
    return kernelapp is not None and bool(kernelapp.IPKernelApp.initialized())


def as_completed(pending: set[Any]) -> Iterator[Any]:
    """Results as they finish; the first failure, or closing the iterator, cancels what has not started (a
    failure is raised; a dead worker's broken pool as :class:`~agentlab.errors.WorkersFailed`)."""
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    raise WorkersFailed(exc) from None
                yield result
    finally:
        for future in pending:
            future.cancel()


class Dask:
    """Cells as tasks on a Dask distributed cluster: ``Dask("tcp://scheduler:8786")``, or ``Dask.local(n)``
    for a ``LocalCluster`` of ``n`` single-threaded worker processes started (and stopped) here.

    Workers need agentlab at the same version and the spec's input files at the same paths (one image or
    checkout on every machine). On a cluster they run each cell in a scratch folder and send its run
    directory back, so no shared filesystem is needed; a local cluster's workers share this disk and
    write in place (``ship=True`` makes them ship as a remote cluster's do).
    """

    name = "dask"

    def __init__(self, address: str | None = None, *, local_workers: int | None = None, ship: bool = True) -> None:
        if (address is None) == (local_workers is None):
            raise ValueError("give a scheduler address or local_workers")
        if local_workers is not None and local_workers < 1:
            raise InputError("--dask", "", f"local:N needs N of at least 1 (got {local_workers})")
        self.address = address
        self.workers = local_workers or 0
        self.ships_files = ship
        self._cluster: Any = None
        self._client: Any = None

    @classmethod
    def local(cls, workers: int, *, ship: bool = False) -> Dask:
        return cls(local_workers=workers, ship=ship)

    @classmethod
    def parse(cls, spec: str) -> Dask:
        """``local:N`` or a scheduler address (``tcp://host:8786``)."""
        if spec.startswith("local:"):
            try:
                return cls.local(int(spec.removeprefix("local:")))
            except ValueError:
                raise InputError("--dask", "", f"expected local:N or tcp://host:port, got {spec!r}") from None
        if "://" not in spec:
            raise InputError("--dask", "", f"expected local:N or tcp://host:port, got {spec!r}")
        return cls(spec)

    def __enter__(self) -> Dask:
        import logging

        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise InputError("--dask", "", "needs the dask extra: pip install 'agentlab[dask]'") from None
        if self.address is None:
            import dask

            # Dask's statistical profiler samples the running task's stack every 10 ms for the dashboard
            # (which a local sweep does not open); on agentlab's deep asyncio stacks it cost a worker ~15 % of
            # its CPU. The nanny hands this config to the worker processes it starts.
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                self._cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(self.address, timeout="20s")
            except OSError as exc:
                raise InputError("--dask", self.address, f"cannot reach the scheduler: {exc}") from None
            self.workers = len(self._client.scheduler_info().get("workers", {}))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        from distributed import as_completed

        assert self._client is not None, "use the cluster inside `with`"
        futures = [self._client.submit(fn, task, pure=False) for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def executor_for(*, workers: int | None = None, in_process: bool = False, dask: str | None = None) -> Executor:
    """The executor a command line asks for (``--workers N``, ``--in-process``, ``--dask ADDR|local:N``)."""
    if dask is not None:
        if in_process or workers is not None:
            raise InputError("--dask", "", "goes alone: not with --workers or --in-process")
        return Dask.parse(dask)
    if in_process:
        if workers is not None:
            raise InputError("--in-process", "", "goes alone: not with --workers")
        return InProcess()
    return ProcessPool(workers)
