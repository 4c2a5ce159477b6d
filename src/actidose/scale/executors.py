"""The executors the parts path runs on: a local process pool, an existing Dask cluster, or
this process.

Every one is a :class:`concurrent.futures.Executor`, so :func:`actidose.scale.run.run_files`
has one code path whatever runs the work:

``process``
    A pool of ``jobs`` spawned worker processes (:class:`ProcessPool`). When a worker dies
    (killed, out of memory) the pool is broken; :meth:`ProcessPool.renew` replaces it and the
    driver resubmits what was in flight.
``dask``
    An existing Dask cluster: ``distributed.Client(scheduler)`` then
    ``Client.get_executor(retries=...)`` (:class:`DaskExecutor`). The scheduler retries the
    tasks of a lost worker on the others. ``scheduler`` is an address (``tcp://HOST:PORT``) or
    a scheduler file (JSON, as written by ``dask scheduler --scheduler-file`` or
    ``SLURMRunner``). A scheduler that cannot be reached is a :class:`ClusterError`, never a
    silent local run. Dask is imported only here, only then (``pip install actidose[cluster]``).
``inline``
    Each call runs at once in this process (:class:`InlineExecutor`; tests, debugging).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from ..errors import ActidoseError, UsageError

_P = ParamSpec("_P")
_T = TypeVar("_T")

Engine = Literal["process", "dask", "inline"]
ENGINES: tuple[str, ...] = ("process", "dask", "inline")

#: Seconds to wait for a Dask scheduler when Dask's own setting
#: (``distributed.comm.timeouts.connect``, e.g. ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s``)
#: is not set.
CONNECT_TIMEOUT_S = 30.0


class ClusterError(ActidoseError):
    """The cluster cannot be used: its scheduler is unreachable, or it went away during a run.
    The command exits with status 1; nothing was run locally instead."""


class InlineExecutor(Executor):
    """Run each call at once, in this process (the ``inline`` engine)."""

    workers = 1
    #: a call is done when submit returns: the driver submits one at a time, so each result
    #: is in the ledger before the next file is read
    runs_inline = True

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        fut: Future[_T] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # as a pool would: the error is the future's
            fut.set_exception(exc)
        return fut


class ProcessPool(Executor):
    """A spawned :class:`~concurrent.futures.ProcessPoolExecutor` that can be renewed after a
    worker died (which breaks the whole pool: every pending future fails with
    ``BrokenProcessPool``).

    Parameters
    ----------
    jobs
        Worker processes.
    """

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise UsageError(f"--jobs must be at least 1, not {jobs}")
        self.workers = jobs
        self.renewals = 0
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        # spawned, not forked: no database handle, lock or thread is inherited
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        return self._pool.submit(fn, *args, **kwargs)

    def renew(self) -> None:
        """Replace a broken pool by a new one (what was in flight must be resubmitted)."""
        old, self._pool = self._pool, self._new()
        self.renewals += 1
        old.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


class DaskExecutor(Executor):
    """``Client.get_executor(retries=...)`` of a connected ``distributed.Client``, plus what the
    driver needs to know about the cluster (how many worker threads it has now).

    Parameters
    ----------
    client
        A connected ``distributed.Client``.
    retries
        Times a task that raised is retried (tasks of a lost worker are rescheduled by the
        scheduler in any case, up to its ``allowed-failures``).
    own_client
        Close the client at :meth:`shutdown`.
    """

    def __init__(self, client: Any, *, retries: int, own_client: bool = True) -> None:
        self.client = client
        self._inner = client.get_executor(retries=retries, pure=False)
        self._own = own_client
        self._workers = 1
        self._asked = 0.0

    @property
    def workers(self) -> int:
        """Worker threads of the cluster now (asked at most every 5 s; at least 1: an adaptive
        cluster may start with none)."""
        now = time.monotonic()
        if now - self._asked > 5.0:
            self._asked = now
            try:
                info = self.client.scheduler_info(n_workers=-1)
                self._workers = max(
                    1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())
                )
            except Exception:  # a transient RPC failure: keep the last answer
                pass
        return self._workers

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        fut: Future[_T] = self._inner.submit(fn, *args, **kwargs)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        try:
            self._inner.shutdown(wait=wait and not cancel_futures)
        finally:
            if self._own:
                self.client.close()


def executor_workers(executor: Executor) -> int:
    """How many tasks ``executor`` runs at once (1 when it does not say)."""
    return max(1, int(getattr(executor, "workers", 1)))


def connect_dask(scheduler: str, *, retries: int, timeout_s: float | None = None) -> DaskExecutor:
    """Connect to an existing Dask scheduler.

    Parameters
    ----------
    scheduler
        ``tcp://HOST:PORT`` (or any address ``distributed`` takes), or the path of a scheduler
        file (JSON with its ``address``).
    retries
        Times a task that raised is retried.
    timeout_s
        How long to wait for the scheduler (default: Dask's ``distributed.comm.timeouts.connect``,
        which ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT`` sets).

    Returns
    -------
    DaskExecutor

    Raises
    ------
    UsageError
        Dask is not installed.
    ClusterError
        The scheduler cannot be reached within ``timeout_s``.
    """
    try:
        from distributed import Client
    except ImportError as exc:
        raise UsageError(
            "--engine dask needs Dask distributed", fix="pip install 'actidose[cluster]'"
        ) from exc
    if timeout_s is None:
        timeout_s = _dask_connect_timeout()
    kwargs: dict[str, Any] = {"timeout": timeout_s, "set_as_default": False}
    is_file = "://" not in scheduler and (scheduler.endswith(".json") or Path(scheduler).is_file())
    where = f"scheduler file {scheduler}" if is_file else f"scheduler {scheduler}"
    if is_file and not Path(scheduler).is_file():
        raise ClusterError(f"cannot reach the Dask {where}: no such file")
    try:
        if is_file:
            client = Client(scheduler_file=scheduler, **kwargs)
        else:
            client = Client(scheduler, **kwargs)
    except Exception as exc:  # OSError, TimeoutError, ValueError (bad address) ...
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if len(reason) > 160:
            reason = reason[:157] + "..."
        raise ClusterError(
            f"cannot reach the Dask {where} within {timeout_s:g} s ({reason}); nothing was run"
        ) from None
    return DaskExecutor(client, retries=retries)


def _dask_connect_timeout() -> float:
    import dask.config
    from dask.utils import parse_timedelta

    value = dask.config.get("distributed.comm.timeouts.connect", None)
    seconds = parse_timedelta(value) if value is not None else None
    return float(seconds) if seconds else CONNECT_TIMEOUT_S


@contextmanager
def make_executor(
    engine: Engine,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    retries: int = 3,
    timeout_s: float | None = None,
) -> Iterator[Executor]:
    """The executor of ``engine``, shut down on exit.

    Parameters
    ----------
    engine
        ``"process"`` (a :class:`ProcessPool` of ``jobs`` workers; this process when
        ``jobs`` is 1), ``"dask"`` (an existing
        cluster at ``scheduler``) or ``"inline"`` (this process).
    jobs
        Worker processes of the process pool.
    scheduler
        The Dask scheduler's address or scheduler file (``engine="dask"`` only; required).
    retries
        Dask: times a task that raised is retried. (The process pool's resubmission bound is
        given to :func:`actidose.scale.run.run_files`.)
    timeout_s
        How long to wait for the Dask scheduler (default: Dask's connect timeout setting).

    Yields
    ------
    concurrent.futures.Executor

    Raises
    ------
    UsageError
        Unknown engine, or ``dask`` without ``scheduler`` (or a scheduler with another engine).
    ClusterError
        The Dask scheduler cannot be reached (nothing is run locally instead).
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}", fix="use process, dask or inline")
    if retries < 0:
        raise UsageError(f"--retries must be 0 or more, not {retries}")
    ex: Executor
    if engine == "dask":
        if not scheduler:
            raise UsageError(
                "--engine dask needs --scheduler",
                fix="e.g. --scheduler tcp://head-node:8786 (or a scheduler file)",
            )
        ex = connect_dask(scheduler, retries=retries, timeout_s=timeout_s)
    elif scheduler:
        raise UsageError("--scheduler is for --engine dask", fix="add --engine dask")
    elif engine == "process" and jobs > 1:
        ex = ProcessPool(jobs)
    else:  # inline, or a "pool" of one: this process (as the ordinary import with --jobs 1)
        ex = InlineExecutor()
    try:
        yield ex
    except BaseException:
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        ex.shutdown(wait=True)
