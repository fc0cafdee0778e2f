"""Executors for grids of independent cells: local worker processes, or a Dask cluster.

Both expose the same two methods:

``map(fn, *iterables)``
    Like the built-in ``map`` (results in input order), computed in chunks on the workers. This is
    the interface :func:`analysis.evaluate.run_replicates` takes as ``executor=``, so ``iapo
    compare`` and ``iapo figures`` run on the same machinery as ``iapo sweep``.
``as_completed(fn, chunks)``
    ``fn(chunk)`` for every chunk, yielded as each finishes (completion order), with a bounded
    number of chunks in flight. The sweep engine stores each chunk's cells as they arrive.

Neither changes a result: every cell draws its randomness from a seed derived from the sweep
seed and the cell's key (:mod:`analysis.seeds`), never from the worker, the chunk or the order.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator

#: Chunks kept in flight per worker: enough to keep every worker busy while the driver stores
#: results, few enough that a huge sweep is not submitted all at once.
IN_FLIGHT_PER_WORKER = 4


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def default_chunksize(n_items: int, n_workers: int) -> int:
    """Fixed chunk size: about 32 chunks per worker, at most 64 items per chunk.

    A process-pool task costs ~0.2 ms of driver time; chunks amortise it over many cells while
    keeping the work lost to a kill (one chunk per worker) and the end-of-run imbalance small.
    Depends only on the counts, so the chunking of a given sweep is always the same.
    """
    return max(1, min(64, math.ceil(n_items / (32 * max(1, n_workers)))))


def _exit_with_driver(driver: int) -> None:
    """Worker initializer: exit once the driver process ``driver`` is gone (e.g. SIGKILLed),
    instead of lingering as an orphan. (The fork server, the workers' parent, outlives the
    driver while any worker holds its pipe, so the driver itself is watched.)"""

    def watch():
        while True:
            time.sleep(0.5)
            try:
                os.kill(driver, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # pragma: no cover - pid reused by another user
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _mp_context():
    """The "forkserver" start method (POSIX), else "spawn"; never a plain fork of the driver.

    Forking the driver is unsafe once it has run a Numba ``parallel=True`` kernel on the GNU
    OpenMP threading layer (the child aborts: "fork() called from a process already using GNU
    OpenMP"), and would copy its open files (the results store) into the workers. The fork
    server is a fresh process that has only imported the simulator (preloaded once), so
    workers start quickly and clean.
    """
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["analysis.evaluate"])
        return ctx
    return mp.get_context("spawn")  # pragma: no cover - Windows


def _apply_chunk(fn: Callable, arg_tuples: list) -> list:
    return [fn(*args) for args in arg_tuples]


def _in_order(futures: list, cancel: Callable) -> Iterator:
    """The items of each future's chunk, future by future; ``cancel(futures)`` if stopped."""
    try:
        for fut in futures:
            yield from fut.result()
    finally:
        cancel(futures)


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class LocalExecutor:
    """Worker processes on this machine (``concurrent.futures.ProcessPoolExecutor``).

    Parameters
    ----------
    workers : int, optional
        Number of processes; default all available cores. ``workers=1`` runs in this process
        (no pool, no pickling), which is also the reference every other setting must match.
    chunksize : int, optional
        Items per task in :meth:`map`; default :func:`default_chunksize`.

    Notes
    -----
    Workers start from a fork server (:func:`_mp_context`), so the function and its arguments
    must be importable/picklable by reference (a module-level function, not a lambda or a
    function defined in ``__main__`` of an interactive session).
    """

    def __init__(self, workers: int | None = None, *, chunksize: int | None = None):
        workers = available_cores() if workers is None else workers
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"--workers must be an integer >= 1; got {workers!r}")
        if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
            raise ValueError(f"chunksize must be an integer >= 1; got {chunksize!r}")
        self.n_workers = workers
        self.chunksize = chunksize
        self._pool = None

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.n_workers})"

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.n_workers, mp_context=_mp_context(),
                                                initializer=_exit_with_driver,
                                                initargs=(os.getpid(),))
        return self._pool

    def map(self, fn: Callable, *iterables: Iterable) -> Iterator:
        """``fn`` over the zipped ``iterables``, results in input order (like ``map``).

        As ``concurrent.futures.Executor.map``: every chunk is submitted now, and results are
        yielded in order as they become available (so a caller's progress bar moves).
        """
        args = list(zip(*iterables, strict=False))
        if self.n_workers == 1:
            return (fn(*a) for a in args)
        size = self.chunksize or default_chunksize(len(args), self.n_workers)
        pool = self._get_pool()
        futures = [pool.submit(_apply_chunk, fn, c) for c in _chunks(args, size)]
        return _in_order(futures, lambda fs: [f.cancel() for f in fs])

    def as_completed(self, fn: Callable, chunks: Iterable) -> Iterator:
        """``fn(chunk)`` for each chunk, yielded in completion order."""
        if self.n_workers == 1:
            yield from (fn(c) for c in chunks)
            return
        pool = self._get_pool()
        todo = iter(chunks)
        running = set()
        try:
            for chunk in todo:
                running.add(pool.submit(fn, chunk))
                if len(running) >= IN_FLIGHT_PER_WORKER * self.n_workers:
                    break
            while running:
                done, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
                    nxt = next(todo, None)
                    if nxt is not None:
                        running.add(pool.submit(fn, nxt))
        finally:
            for fut in running:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DaskExecutor:
    """A Dask distributed cluster: an existing one, or a local one started here.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``). Its workers must be able to import
        ``iapo-sim`` (and the cell function).
    n_workers : int, optional
        Without ``scheduler``: start a ``LocalCluster`` of this many single-threaded workers on
        the loopback interface (default: all available cores), closed by :meth:`close`.
    processes : bool
        Local cluster only: worker processes (default) or threads of this process.
    chunksize : int, optional
        Items per task in :meth:`map`; default :func:`default_chunksize`.
    timeout : float
        Seconds to wait for ``scheduler`` to answer.

    Raises
    ------
    ValueError
        If Dask is not installed, the scheduler cannot be reached, or the arguments conflict.
    """

    def __init__(self, scheduler: str | None = None, *, n_workers: int | None = None,
                 processes: bool = True, chunksize: int | None = None, timeout: float = 10.0):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("--scheduler/--dask-workers: Dask is not installed; "
                             "pip install 'iapo-sim[dask]'") from None
        if scheduler is not None and n_workers is not None:
            raise ValueError("--dask-workers starts a local cluster; it cannot be combined with "
                             "--scheduler")
        if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int)
                                      or n_workers < 1):
            raise ValueError(f"--dask-workers must be an integer >= 1; got {n_workers!r}")
        self.chunksize = chunksize
        self._cluster = None
        if scheduler is None:
            self._cluster = LocalCluster(
                n_workers=n_workers or available_cores(), threads_per_worker=1,
                processes=processes, host="127.0.0.1", dashboard_address=None)
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(scheduler, timeout=timeout)
            except (OSError, TimeoutError) as exc:
                raise ValueError(f"--scheduler: cannot connect to {scheduler!r} ({exc})") from None

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address}, threads={self.n_workers})"

    @property
    def n_workers(self) -> int:
        """Worker threads in the cluster now (at least 1)."""
        info = self.client.scheduler_info()["workers"].values()
        return max(1, sum(w.get("nthreads", 1) for w in info))

    def map(self, fn: Callable, *iterables: Iterable) -> Iterator:
        """``fn`` over the zipped ``iterables``, results in input order (like ``map``).

        Every chunk is submitted now; results are yielded in order as they become available.
        """
        args = list(zip(*iterables, strict=False))
        size = self.chunksize or default_chunksize(len(args), self.n_workers)
        futures = [self.client.submit(_apply_chunk, fn, c, pure=False)
                   for c in _chunks(args, size)]
        return _in_order(futures, self.client.cancel)

    def as_completed(self, fn: Callable, chunks: Iterable) -> Iterator:
        """``fn(chunk)`` for each chunk, yielded in completion order."""
        from distributed import as_completed

        todo = iter(chunks)
        first = []
        for chunk in todo:
            first.append(self.client.submit(fn, chunk, pure=False))
            if len(first) >= IN_FLIGHT_PER_WORKER * self.n_workers:
                break
        pending = set(first)
        queue = as_completed(first)
        try:
            for fut in queue:
                pending.discard(fut)
                result = fut.result()
                fut.release()
                nxt = next(todo, None)
                if nxt is not None:
                    new = self.client.submit(fn, nxt, pure=False)
                    pending.add(new)
                    queue.add(new)
                yield result
        finally:
            if pending:
                self.client.cancel(list(pending))

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_executor(*, workers: int | None = None, scheduler: str | None = None,
                  dask_workers: int | None = None):
    """The executor the command-line options ask for.

    ``scheduler`` → :class:`DaskExecutor` on that cluster; ``dask_workers`` → a local Dask
    cluster of that many workers; otherwise :class:`LocalExecutor` with ``workers`` processes.
    """
    if scheduler is not None or dask_workers is not None:
        if workers is not None:
            raise ValueError("--workers sets local processes; with Dask use --dask-workers or "
                             "size the cluster behind --scheduler")
        return DaskExecutor(scheduler, n_workers=dask_workers)
    return LocalExecutor(workers)


def add_executor_options(parser, *, workers_default: str = "all cores") -> None:
    """Add ``--workers N | --scheduler ADDRESS | --dask-workers N`` to an argparse parser.

    The same three options for every command that maps cells (``iapo sweep``, and ``iapo
    compare`` / ``iapo figures`` if they take them); read them back with
    :func:`executor_from_args`.
    """
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help=f"local worker processes (default: {workers_default})")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on an existing Dask cluster (e.g. tcp://host:8786)")
    where.add_argument("--dask-workers", type=int, default=None, metavar="N",
                       help="start a local Dask cluster of N workers on 127.0.0.1")


def executor_from_args(args, *, default_workers: int | None = None):
    """The executor chosen by :func:`add_executor_options` (``default_workers`` if none given;
    ``None`` means all cores)."""
    workers = args.workers
    if workers is None and args.scheduler is None and args.dask_workers is None:
        workers = default_workers
    return make_executor(workers=workers, scheduler=args.scheduler,
                         dask_workers=args.dask_workers)
