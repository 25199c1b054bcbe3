"""Running the replications of a recovery or SBC study: in-process, or spread over dask.distributed.

Each replication is one task, ``models.simulation.recovery.run_replication(design, r, seeds[r])``; the design
is sent to the workers once (``Client.scatter(broadcast=True)``). A worker process keeps the
Bayesian model it compiled for its first task (``models.bayes.sampling`` caches compiled models
per graph structure and swaps in each replication's data), so a replication costs a sample, not a
compile: with K worker processes a study compiles K times. Results are put back in replication
order, so the tables are the same whichever way and in whichever order the tasks ran.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator

from data_prep.errors import InputError
from models.simulation.recovery import ReplicationResult, StudyDesign, replication_seeds, run_replication

Progress = Callable[[int, int, ReplicationResult], None]


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2) -> Iterator:
    """A dask.distributed Client: connected to ``scheduler`` (an address such as
    tcp://host:8786) or to a new LocalCluster of ``workers`` single-threaded worker processes
    (no dashboard). Both are closed on leaving, also on Ctrl-C."""
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError) as err:
            raise InputError(f"--scheduler {scheduler}: cannot connect to a dask scheduler "
                             f"there ({err})") from None
    else:
        if workers < 1:
            raise InputError(f"a local cluster needs at least one worker, not {workers}")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, worker_dashboard_address=None,
                               silence_logs=logging.CRITICAL)
        client = Client(cluster)
    try:
        yield client
    finally:
        # after Ctrl-C the scheduler logs every message it can no longer send to the departed
        # client; that shutdown chatter is no news to the user
        loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)
                   if n.startswith("distributed")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(logging.CRITICAL + 1)
        try:
            client.close()   # the scheduler forgets the client's unfinished tasks
            if cluster is not None:
                cluster.close()
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def run_study(design: StudyDesign, seed: int, replications: int, client=None,
              progress: Progress | None = None) -> list[ReplicationResult]:
    """All replications of ``design`` (in-process when ``client`` is None, else as dask tasks),
    calling ``progress(done, total, result)`` as each finishes (dask: in completion order)."""
    seeds = replication_seeds(seed, replications)
    results: list[ReplicationResult] = []

    def finished(res: ReplicationResult) -> None:
        results.append(res)
        if progress is not None:
            progress(len(results), len(seeds), res)

    if client is None:
        for r, s in enumerate(seeds):
            finished(run_replication(design, r, s))
        return results
    from dask.distributed import as_completed

    shared = client.scatter(design, broadcast=True)
    futures = [client.submit(run_replication, shared, r, s, pure=False)
               for r, s in enumerate(seeds)]
    for future in as_completed(futures):
        finished(future.result())
    return results
