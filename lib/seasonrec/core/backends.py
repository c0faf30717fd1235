"""The training backend seam: how a Keras training loop runs, on one process or many.

Two halves, so a train function never names the machinery that runs it:

- :class:`Backend` (driver side): ``fit(ctx, frame, train_fn, **kwargs)`` materialises the Spark
  frame as Petastorm Parquet once and runs ``train_fn(worker, converter, **kwargs)`` on each of its
  ``size`` processes; returns what each process returned, ordered by rank (rank 0 first; only rank 0
  writes artifacts). ``steps_per_epoch`` is the per-process step count of one pass over the data.
- :class:`Worker` (inside ``train_fn``): ``init(seed)``, ``rank()``, ``size()``, the optimizer and
  callbacks that keep the processes in step, this process's share of the data, ``broadcast`` and
  ``allreduce_mean`` of Python values, ``crash`` (tests of --resume).

Implementations, chosen by ``training.backend`` (:func:`make_backend`): ``horovod`` (``num_proc``
Gloo/NCCL processes launched as Spark tasks, :mod:`seasonrec.core.horovod_runner`) and ``local``
(plain Keras ``fit`` in the driver process on the same Petastorm data: rank 0 of 1, no launcher, no
C++ toolchain). A train function written against :class:`Worker` returns the same artifacts and
metrics on either, so a third backend (``tf.distribute``, TorchDistributor) is one more pair of
classes here (README, "Training backends").
"""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, get_args

from seasonrec import logs
from seasonrec.config import TrainingBackend
from seasonrec.core import horovod_runner as dist

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

BACKENDS: tuple[str, ...] = get_args(TrainingBackend)


class SimulatedCrash(RuntimeError):
    """Raised by :meth:`LocalWorker.crash`: the driver is the only process, killing it would end the caller too."""


# ---------------------------------------------------------------------------- inside train_fn
class Worker(abc.ABC):
    """One training process as its train function sees it."""

    @abc.abstractmethod
    def init(self, seed: int | None = None) -> None:
        """Join the process group (if any), pick the device, seed every random generator with ``seed``."""

    @abc.abstractmethod
    def rank(self) -> int:
        """This process's index, 0 .. size-1; rank 0 alone writes files."""

    @abc.abstractmethod
    def size(self) -> int:
        """The number of processes training together (the world size)."""

    @abc.abstractmethod
    def optimizer(self, base_learning_rate: float) -> Any:
        """The Keras optimizer for ``model.compile``: gradients agree across processes."""

    @abc.abstractmethod
    def callbacks(self, base_learning_rate: float, steps_per_epoch: int, warmup_epochs: int = 1,
                  initial_epoch: int = 0, progress: str | None = None) -> list[Any]:
        """Keras callbacks that keep the processes in step; with ``progress``, one line per epoch on rank 0."""

    @abc.abstractmethod
    def dataset(self, converter: Any, batch_size: int, *, seed: int | None = None,
                shuffle: bool = True) -> contextlib.AbstractContextManager[Any]:
        """This process's share of ``converter`` as a ``tf.data.Dataset`` of namedtuple batches, repeating
        forever (drive it with a fixed ``steps_per_epoch``)."""

    @abc.abstractmethod
    def broadcast(self, obj: Any, name: str) -> Any:
        """Rank 0's Python object on every rank (e.g. the early-stopping decision); also a barrier."""

    @abc.abstractmethod
    def allreduce_mean(self, value: float, name: str) -> float:
        """Mean of a Python scalar over all ranks (e.g. a metric computed on each shard)."""

    @abc.abstractmethod
    def crash(self, code: int) -> None:
        """End training as a killed process would (tests of --resume)."""

    def is_chief(self) -> bool:
        """True on rank 0, the process that writes artifacts and logs progress."""
        return self.rank() == 0


class HorovodWorker(Worker):
    """A Horovod rank (Gloo on CPU, NCCL on GPU when built with it)."""

    def init(self, seed: int | None = None) -> None:
        """``hvd.init()``, this process pinned to its local rank's GPU (if any), every seed set from ``seed``, CPU
        threads limited (`horovod_runner.init_worker`)."""
        dist.init_worker(seed)

    def rank(self) -> int:
        """``hvd.rank()``."""
        import horovod.tensorflow.keras as hvd

        return hvd.rank()

    def size(self) -> int:
        """``hvd.size()``."""
        import horovod.tensorflow.keras as hvd

        return hvd.size()

    def optimizer(self, base_learning_rate: float) -> Any:
        """Legacy Keras Adam at ``base_learning_rate * size`` wrapped in ``hvd.DistributedOptimizer``."""
        return dist.distributed_optimizer(base_learning_rate)

    def callbacks(self, base_learning_rate: float, steps_per_epoch: int, warmup_epochs: int = 1,
                  initial_epoch: int = 0, progress: str | None = None) -> list[Any]:
        """Broadcast of rank 0's initial weights, metric averaging and a learning-rate warm-up over ``warmup_epochs``
        (`horovod_runner.standard_callbacks`); plus epoch progress on rank 0 with ``progress``."""
        return dist.standard_callbacks(base_learning_rate, steps_per_epoch, warmup_epochs, initial_epoch, progress)

    def dataset(self, converter: Any, batch_size: int, *, seed: int | None = None,
                shuffle: bool = True) -> contextlib.AbstractContextManager[Any]:
        """This rank's shard of the Petastorm ``converter`` (`horovod_runner.sharded_tf_dataset`)."""
        return dist.sharded_tf_dataset(converter, batch_size, seed=seed, shuffle=shuffle)

    def broadcast(self, obj: Any, name: str) -> Any:
        """Rank 0's ``obj`` on every rank (``hvd.broadcast_object``)."""
        return dist.broadcast_object(obj, name=name)

    def allreduce_mean(self, value: float, name: str) -> float:
        """Mean of ``value`` over all ranks (``hvd.allreduce``), as a float."""
        return dist.average_metric(value, name)

    def crash(self, code: int) -> None:
        """``os._exit(code)``: the rank dies without cleanup and Horovod fails the whole job."""
        os._exit(code)  # the rank dies without cleanup; Horovod fails the whole job


class LocalWorker(Worker):
    """The driver process training alone: rank 0 of 1, the whole dataset, a plain Adam optimizer."""

    def init(self, seed: int | None = None) -> None:
        """Memory growth on every visible GPU and, with ``seed``, every random generator seeded (Keras
        ``set_random_seed``)."""
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            with contextlib.suppress(RuntimeError):  # already initialised in this process
                tf.config.experimental.set_memory_growth(gpu, True)
        if seed is not None:
            tf.keras.utils.set_random_seed(seed)

    def rank(self) -> int:
        """Always 0."""
        return 0

    def size(self) -> int:
        """Always 1."""
        return 1

    def optimizer(self, base_learning_rate: float) -> Any:
        """Legacy Keras Adam at ``base_learning_rate`` (the optimizer Horovod wraps, without the allreduce)."""
        import tensorflow as tf

        # The legacy Keras 2 Adam, as Horovod wraps: the two backends differ only in the allreduce.
        return tf.keras.optimizers.legacy.Adam(learning_rate=base_learning_rate)

    def callbacks(self, base_learning_rate: float, steps_per_epoch: int, warmup_epochs: int = 1,
                  initial_epoch: int = 0, progress: str | None = None) -> list[Any]:
        """No callbacks (one process, no warm-up), or the epoch progress line when ``progress`` is given."""
        # No broadcast or metric averaging (one process) and no warm-up: it ramps to lr * size = lr.
        return [] if progress is None else [dist.epoch_progress(progress, chief=True)]

    def dataset(self, converter: Any, batch_size: int, *, seed: int | None = None,
                shuffle: bool = True) -> contextlib.AbstractContextManager[Any]:
        """All of ``converter`` as a ``tf.data.Dataset`` (`horovod_runner.petastorm_tf_dataset`)."""
        return dist.petastorm_tf_dataset(converter, batch_size, seed=seed, shuffle=shuffle)

    def broadcast(self, obj: Any, name: str) -> Any:
        """``obj`` unchanged (there is no other rank)."""
        return obj

    def allreduce_mean(self, value: float, name: str) -> float:
        """``value`` as a float (the mean over one rank)."""
        return float(value)

    def crash(self, code: int) -> None:
        """Raise `SimulatedCrash`: killing the only process would end the caller too."""
        raise SimulatedCrash(f"simulated crash of the local training process (exit code {code})")


# ---------------------------------------------------------------------------- driver side
class Backend(abc.ABC):
    """Runs a train function on ``size`` processes over one Petastorm copy of a Spark frame."""

    name: str
    size: int

    def steps_per_epoch(self, n_rows: int, batch_size: int) -> int:
        """Steps each process runs per epoch so that all of them together see about one pass over the data."""
        return dist.steps_per_epoch(n_rows, batch_size, self.size)

    def fit(self, ctx_or_spark: Any, frame: DataFrame, train_fn: Callable[..., Any], *,
            cache_dir: str | None = None, min_files: int = 4, **kwargs: Any) -> list[Any]:
        """``train_fn(worker, converter, **kwargs)`` on every process over ``frame``; results by rank.

        The frame goes through Petastorm (cache under ``cache_dir``, default the context's
        ``paths.petastorm_cache_dir``, deleted afterwards) in at least ``min_files`` files and two per
        process, so every process has row groups to read.
        """
        with dist.petastorm_converter(ctx_or_spark, frame, cache_dir,
                                      min_files=max(min_files, 2 * self.size)) as converter:
            return self.run(getattr(ctx_or_spark, "spark", ctx_or_spark), train_fn, converter=converter, **kwargs)

    @abc.abstractmethod
    def run(self, spark: SparkSession, train_fn: Callable[..., Any], **kwargs: Any) -> list[Any]:
        """``train_fn(worker, **kwargs)`` on every process; what each returned, by rank."""


class HorovodBackend(Backend):
    """``num_proc`` Horovod processes, one Spark task each (:func:`horovod_runner.run_horovod`)."""

    name = "horovod"

    def __init__(self, num_proc: int) -> None:
        self.size = num_proc

    def run(self, spark: SparkSession, train_fn: Callable[..., Any], **kwargs: Any) -> list[Any]:
        """``train_fn(HorovodWorker(), **kwargs)`` on ``size`` Horovod ranks launched as Spark tasks; results by
        rank."""
        return dist.run_horovod(spark, _horovod_rank, self.size, rank_fn=train_fn, **kwargs)


def _horovod_rank(rank_fn: Callable[..., Any], **kwargs: Any) -> Any:
    """One Horovod rank (on a Spark executor): the train function with this rank's worker."""
    return rank_fn(HorovodWorker(), **kwargs)


class LocalBackend(Backend):
    """The train function in the driver process: no launcher, no process group."""

    name = "local"
    size = 1

    def run(self, spark: SparkSession, train_fn: Callable[..., Any], **kwargs: Any) -> list[Any]:
        """``[train_fn(LocalWorker(), **kwargs)]`` in the driver process (``spark`` is not used)."""
        logs.quiet_task()  # the same third-party warning filters a Horovod rank sets
        return [train_fn(LocalWorker(), **kwargs)]


def make_backend(name: str, num_proc: int) -> Backend:
    """The backend named by ``training.backend``; ``num_proc`` processes where the backend has several."""
    if name == "horovod":
        return HorovodBackend(num_proc)
    if name == "local":
        return LocalBackend()
    raise ValueError(f"config key 'training.backend': unknown backend {name!r}; allowed: {', '.join(BACKENDS)}")

