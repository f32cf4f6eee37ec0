"""Run a study's independent tasks (per backbone, backbone x layer, subject x backbone x
layer) one after another, in local processes (joblib) or on a dask.distributed cluster.

A study runs step by step; within a step its stale units are tasks that share nothing
but read-only inputs and write disjoint files (each unit has its own outputs and its own
record), so any executor gives the same files. A task that raises or whose worker dies
is retried (``retries`` times); the content-hash records make a retry, or a rerun after
a crash, redo only the units without a valid record.

On a SLURM cluster (dask-jobqueue, not tested here), start a scheduler whose workers are
SLURM jobs and give its address; the derivatives folder must be on a file system every
node sees::

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(cores=1, processes=1, memory="8GB", walltime="04:00:00",
                           job_extra_directives=["--cpus-per-task=4"])
    cluster.scale(jobs=64)          # or cluster.adapt(minimum_jobs=0, maximum_jobs=64)
    print(cluster.scheduler_address)  # tcp://10.0.0.5:8786

    neuro-sae run --manifest study.yaml --executor dask:tcp://10.0.0.5:8786

Each task is one unit (an extraction per backbone, an SAE per backbone x layer, a fit per
subject x backbone x layer); a worker that dies (pre-emption, out of memory) has its task
rerun elsewhere. The SAE trainings of a large corpus use torch DDP instead
(:func:`neuro_sae.sae.train_saes` with ``torchrun``, see ``neuro_sae/sae/_distributed.py``),
one SLURM job with several GPUs, before the study runs with ``sae.pretrained``.
"""

from __future__ import annotations

import re
import time

from ..utils import logger

EXECUTORS = "'serial', 'processes:N', 'dask-local:N' or 'dask:ADDRESS'"


def parse_executor(spec):
    """Split an executor setting into its kind and argument.

    Parameters
    ----------
    spec : str
        ``"serial"``, ``"processes:N"``, ``"dask-local:N"`` or ``"dask:ADDRESS"``.

    Returns
    -------
    kind : str
        ``"serial"``, ``"processes"``, ``"dask-local"`` or ``"dask"``.
    arg : int | str | None
        The number of workers, the scheduler address, or ``None``.
    """
    spec = str(spec).strip()
    if spec == "serial":
        return "serial", None
    m = re.fullmatch(r"(processes|dask-local):([1-9][0-9]*)", spec)
    if m:
        return m.group(1), int(m.group(2))
    m = re.fullmatch(r"dask:(\S+)", spec)
    if m:
        return "dask", m.group(1)
    raise ValueError(
        f"executor {spec!r} is not one of {EXECUTORS} (N a positive number of workers, ADDRESS "
        "a dask scheduler such as tcp://host:8786); e.g. --executor processes:2."
    )


def run_task(manifest, out, step_name, unit, force):
    """One task: run one unit of one step (in whatever process runs it).

    Returns
    -------
    result : dict
        ``runtime`` (seconds per stage), ``wall_s``, ``cpu_s`` (CPU seconds of the process,
        every thread: what the task costs on an idle machine, whatever the load), ``error``
        (``None`` or its text).
    """
    from ._registry import Study, execute, get_step

    runtime, t0, c0 = {}, time.perf_counter(), time.process_time()
    try:
        study = Study(manifest, out)
        execute(study, get_step(step_name), unit, force=force, upstream=False, runtime=runtime)
        error = None
    except Exception as err:  # noqa: BLE001 - reported to the client with the unit
        error = f"{type(err).__name__}: {err}"
    return dict(runtime=runtime, wall_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0, error=error)


class Executor:
    """Runs lists of tasks; a context manager owning the pool or the dask client.

    Parameters
    ----------
    spec : str
        See :func:`parse_executor`.
    """

    def __init__(self, spec="serial"):
        self.spec = spec
        self.kind, self.arg = parse_executor(spec)
        self.client = self.cluster = None

    def __enter__(self):
        if self.kind in ("dask", "dask-local"):
            try:
                from dask.distributed import Client, LocalCluster
            except ImportError:
                raise ImportError(
                    f"executor {self.spec!r} needs dask.distributed: pip install "
                    "'neuro_sae[cluster]' (or \"dask[distributed]\"), or use "
                    "--executor processes:N."
                ) from None
            if self.kind == "dask-local":
                self.cluster = LocalCluster(n_workers=self.arg, threads_per_worker=1, processes=True,
                                            dashboard_address=None)  # fmt: skip
                self.client = Client(self.cluster)
            else:
                self.client = Client(self.arg)
            n = len(self.client.scheduler_info().get("workers", {}))
            logger.info(f"[executor] {self.spec}: dask scheduler {self.client.scheduler.address}, "
                        f"{n} worker(s)")  # fmt: skip
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def map(self, tasks, *, label):
        """Run tasks ``(callable, args)`` and return their results in order.

        Parameters
        ----------
        tasks : list of (callable, tuple)
            The tasks.
        label : callable
            ``label(i) -> str``, the task's name in the progress lines.
        """
        n = len(tasks)
        if self.kind == "serial" or n == 0:
            return [fn(*args) for fn, args in tasks]
        if self.kind == "processes":
            from joblib import Parallel, delayed
            from joblib.externals.loky import get_reusable_executor

            # a fresh pool for every map: a reused loky pool can hand a task to a worker that
            # is leaving on its idle timeout (or was left broken by an earlier run), and the
            # study then waits for it forever
            get_reusable_executor().shutdown(wait=True, kill_workers=True)
            return Parallel(n_jobs=min(self.arg, n))(delayed(fn)(*args) for fn, args in tasks)
        from dask.distributed import as_completed

        futures = [self.client.submit(fn, *args, pure=False, retries=1, key=f"{label(i)}-{time.time_ns()}")
                   for i, (fn, args) in enumerate(tasks)]  # fmt: skip
        index = {f.key: i for i, f in enumerate(futures)}
        results = [None] * n
        for done, fut in enumerate(as_completed(futures), 1):
            i = index[fut.key]
            try:
                results[i] = fut.result()
            except Exception as err:  # noqa: BLE001 - a worker died twice: reported with its unit
                results[i] = dict(runtime={}, wall_s=0.0, error=f"{type(err).__name__}: {err}")
            logger.info(f"[dask] {done}/{n} done: {label(i)}")
        return results
