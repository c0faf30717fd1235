"""The one Horovod + Petastorm machinery of seasonrec (recommender and demand LSTM share it).

Training code reaches it through the backend seam (:mod:`seasonrec.core.backends`: its
``HorovodBackend``/``HorovodWorker`` are this module; ``LocalBackend`` reuses the Petastorm half).
Used directly, as by the Horovod smoke test (tests/training/test_horovod_smoke.py):

Driver side (a Spark job)::

    from seasonrec.core import horovod_runner as dist

    def train_fn(converter, steps_per_epoch, epochs, lr, checkpoint_dir):   # runs once per rank
        import tensorflow as tf
        hvd = dist.init_worker()                      # hvd.init(), GPU pinned by local rank, seeds
        model = build_my_keras_model()
        model.compile(optimizer=dist.distributed_optimizer(lr), loss="mse")
        callbacks = dist.standard_callbacks(lr, steps_per_epoch)   # broadcast, metric avg, LR warm-up
        if hvd.rank() == 0:                          # rank 0 alone writes checkpoints/logs/artifacts
            callbacks.append(tf.keras.callbacks.ModelCheckpoint(checkpoint_dir + "/ckpt.h5"))
        with dist.sharded_tf_dataset(converter, batch_size=64) as dataset:   # shard = hvd.rank()
            dataset = dataset.map(lambda b: (b.features, b.label))
            history = model.fit(dataset, steps_per_epoch=steps_per_epoch, epochs=epochs,
                                callbacks=callbacks, verbose=0)
        return {"rank": hvd.rank(), "loss": history.history["loss"], "weights": dist.weights_digest(model)}

    with dist.petastorm_converter(ctx, train_df) as converter:          # cache under paths.petastorm_cache_dir
        steps = dist.steps_per_epoch(len(converter), batch_size=64, num_proc=2)
        results = dist.run_horovod(ctx.spark, train_fn, num_proc=2, converter=converter,
                                   steps_per_epoch=steps, epochs=3, lr=1e-3, checkpoint_dir=...)
    # results[r] is what rank r returned (ordered by rank)

Local mode: `num_proc` CPU processes talking Gloo (one Spark task each, so `num_proc` must not
exceed the Spark task slots). On a GPU cluster: one process per GPU; `init_worker` pins each
process to the GPU of its local rank and Horovod uses NCCL when it was built with it.

Rules inside ``train_fn``: import TensorFlow/Horovod there (the function is cloudpickled to the
Spark executors); every rank must run the same number of steps (fixed ``steps_per_epoch`` over an
infinitely repeating shard), otherwise allreduce deadlocks; only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from seasonrec import logs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

_CACHE_CONF = "petastorm.spark.converter.parentCacheDirUrl"


# ---------------------------------------------------------------------------- driver side
def _spark_and_cache(ctx_or_spark: Any, cache_dir: str | None) -> tuple[SparkSession, str]:
    spark = getattr(ctx_or_spark, "spark", ctx_or_spark)
    if cache_dir is None:
        config = getattr(ctx_or_spark, "config", None)
        if config is None:
            raise ValueError("pass a JobContext or an explicit cache_dir")
        cache_dir = config.paths.petastorm_cache_dir
    return spark, cache_dir


def _as_url(path: str) -> str:
    return path if "://" in path else "file://" + os.path.abspath(path)


def _content_ordered(df: DataFrame, partitions: int) -> DataFrame:
    """``df`` in ``partitions`` partitions, each sorted, both by a hash of the row's columns."""
    from pyspark.sql import functions as F

    key = "_content_hash"
    return (df.withColumn(key, F.xxhash64(*df.columns)).repartition(partitions, key)
            .sortWithinPartitions(key).drop(key))


@contextlib.contextmanager
def petastorm_converter(ctx_or_spark: Any, df: DataFrame, cache_dir: str | None = None, *,
                        min_files: int = 4, row_group_bytes: int = 1 << 20) -> Iterator[Any]:
    """Materialise ``df`` as Petastorm Parquet under ``cache_dir`` and delete it afterwards.

    ``cache_dir`` defaults to the context's ``paths.petastorm_cache_dir``. Doubles become float32.
    Columns must be numeric scalars or fixed-length numeric arrays (pad variable arrays first);
    strings/dates cannot go into a TF dataset. The frame is laid out in at least ``min_files`` files
    (so every rank gets row groups to read) by a hash of each row's content, sorted by it within a
    file: a shuffle's output order depends on which map task answers first, and the same rows in a
    different order train a different model; keyed by content, a rerun writes the same files.
    """
    spark, cache_dir = _spark_and_cache(ctx_or_spark, cache_dir)
    from petastorm.spark import make_spark_converter

    url = _as_url(cache_dir)
    if url.startswith("file://"):
        os.makedirs(url[len("file://"):], exist_ok=True)
    previous = spark.conf.get(_CACHE_CONF, None)
    spark.conf.set(_CACHE_CONF, url)
    converter = None
    try:
        df = _content_ordered(df, max(df.rdd.getNumPartitions(), min_files))
        converter = make_spark_converter(df, parquet_row_group_size_bytes=row_group_bytes, dtype="float32")
        # Petastorm lists the files in the file system's order, which follows their names, which hold a
        # random UUID per write: the seeded row-group shuffle then starts from a different order in each
        # run. By name, the part number comes first, so sorted is the content-keyed order above.
        converter.file_urls = sorted(converter.file_urls)
        yield converter
    finally:
        if converter is not None:
            with contextlib.suppress(Exception):
                converter.delete()
        if previous is not None:
            spark.conf.set(_CACHE_CONF, previous)


def steps_per_epoch(n_rows: int, batch_size: int, num_proc: int) -> int:
    """Steps each rank runs per epoch so that all ranks together see about one pass over the data."""
    return max(1, math.ceil(n_rows / (batch_size * num_proc)))


def run_horovod(spark: SparkSession, train_fn: Callable[..., Any], num_proc: int, *,
                start_timeout: int = 300, verbose: int | None = None, env: dict[str, str] | None = None,
                **kwargs: Any) -> list[Any]:
    """Run ``train_fn(**kwargs)`` on ``num_proc`` Horovod processes (Spark tasks); results by rank.

    Gloo on CPU (local mode); on a GPU cluster set ``num_proc`` to the number of GPUs. Thread
    pools are limited to one thread per process on CPU so ``num_proc`` processes do not fight
    over the cores. Unless the run is verbose (``--verbose``), each rank filters third-party
    warnings before it even unpickles ``kwargs`` (petastorm/pyarrow warn at import) and Horovod's
    own launcher stays silent (``verbose`` defaults to 1 when verbose, else 0).
    """
    import cloudpickle
    import horovod.spark

    slots = spark.sparkContext.defaultParallelism
    if num_proc > slots:
        raise ValueError(f"training.num_proc={num_proc} exceeds the {slots} Spark task slots; "
                         f"lower num_proc or give Spark more cores")
    run_env = dict(os.environ if env is None else env)
    cpu_threads = str(max(1, (os.cpu_count() or 1) // num_proc))
    run_env.setdefault("OMP_NUM_THREADS", cpu_threads)
    run_env.setdefault("TF_NUM_INTRAOP_THREADS", cpu_threads)
    run_env.setdefault("TF_NUM_INTEROP_THREADS", "1")
    run_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run_env.setdefault("HOROVOD_GLOO_TIMEOUT_SECONDS", "120")
    loud = logs.is_verbose()
    run_env.setdefault(logs.VERBOSE_ENV, "1" if loud else "0")
    payload = cloudpickle.dumps((train_fn, kwargs))
    return horovod.spark.run(_run_task, kwargs={"payload": payload, "verbose": loud}, num_proc=num_proc,
                             start_timeout=start_timeout, use_gloo=True, use_mpi=False, env=run_env,
                             verbose=(1 if loud else 0) if verbose is None else verbose)


def _run_task(payload: bytes, verbose: bool) -> Any:
    """One rank: warning filters first, then the caller's function and arguments."""
    import cloudpickle

    logs.quiet_task(verbose)
    train_fn, kwargs = cloudpickle.loads(payload)
    return train_fn(**kwargs)


def clean_dir(path: str) -> None:
    """Delete the directory ``path`` and everything under it; missing paths and errors are ignored."""
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------- inside train_fn
def init_worker(seed: int | None = None) -> Any:
    """``hvd.init()``, pin this process to the GPU of its local rank (if any), seed, limit CPU threads.

    Returns the ``horovod.tensorflow.keras`` module.
    """
    import horovod.tensorflow.keras as hvd
    import tensorflow as tf

    hvd.init()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        tf.config.set_visible_devices(gpus[hvd.local_rank() % len(gpus)], "GPU")
    else:
        intra = int(os.environ.get("TF_NUM_INTRAOP_THREADS", "1"))
        with contextlib.suppress(RuntimeError):  # already initialised in this process
            tf.config.threading.set_intra_op_parallelism_threads(intra)
            tf.config.threading.set_inter_op_parallelism_threads(1)
    if seed is not None:
        tf.keras.utils.set_random_seed(seed)  # same init on every rank; broadcast makes it exact
    return hvd


def distributed_optimizer(base_learning_rate: float, optimizer: Any = None, **kwargs: Any) -> Any:
    """``hvd.DistributedOptimizer`` around Adam (legacy Keras 2 optimizer) at ``lr * hvd.size()``.

    Pair it with :func:`standard_callbacks` for the warm-up from ``base_learning_rate``. Gradients
    are allreduced when they are computed through ``optimizer.minimize(loss, vars, tape=tape)``
    (what ``Model.fit``'s default ``train_step`` does).
    """
    import horovod.tensorflow.keras as hvd
    import tensorflow as tf

    if optimizer is None:
        optimizer = tf.keras.optimizers.legacy.Adam(learning_rate=base_learning_rate * hvd.size())
    kwargs.setdefault("sparse_as_dense", True)
    return hvd.DistributedOptimizer(optimizer, **kwargs)


def standard_callbacks(base_learning_rate: float, steps_per_epoch: int, warmup_epochs: int = 1,
                       initial_epoch: int = 0, progress: str | None = None) -> list[Any]:
    """Broadcast initial variables from rank 0, average epoch metrics over ranks, LR warm-up and, with a
    ``progress`` label (e.g. ``"[forecast] LSTM 1/4"``), one line per epoch on rank 0 (:func:`epoch_line`).

    The warm-up ramps from ``base_learning_rate`` to ``base_learning_rate * hvd.size()`` over
    ``warmup_epochs`` (skipped when resuming past it).
    """
    import horovod.tensorflow.keras as hvd

    callbacks: list[Any] = [
        hvd.callbacks.BroadcastGlobalVariablesCallback(0),
        hvd.callbacks.MetricAverageCallback(),
    ]
    if warmup_epochs > 0 and initial_epoch < warmup_epochs:
        callbacks.append(hvd.callbacks.LearningRateWarmupCallback(
            initial_lr=base_learning_rate * hvd.size(), warmup_epochs=warmup_epochs,
            steps_per_epoch=steps_per_epoch, verbose=0))
    if progress is not None:  # after MetricAverageCallback: metrics averaged over ranks
        callbacks.append(epoch_progress(progress, chief=hvd.rank() == 0))
    return callbacks


class EpochClock:
    """Seconds per epoch since it was started (at the first epoch this run trains) and the time left."""

    def __init__(self, initial_epoch: int = 0) -> None:
        self.started = time.perf_counter()
        self.initial_epoch = initial_epoch

    def eta(self, epochs_done: int, epochs: int) -> str:
        """``"12.3s/epoch, ETA 49s"`` after ``epochs_done`` of ``epochs`` epochs."""
        per_epoch = (time.perf_counter() - self.started) / max(1, epochs_done - self.initial_epoch)
        return f"{per_epoch:.1f}s/epoch, ETA {per_epoch * max(0, epochs - epochs_done):.0f}s"


def epoch_line(label: str, epoch: int, epochs: int, metrics: dict[str, float], clock: EpochClock) -> str:
    """The progress line of a finished (1-based) ``epoch``:
    ``[train] epoch 3/10: loss 0.4321, val_recall_at_20 0.5120 (12.3s/epoch, ETA 86s)``."""
    values = ", ".join(f"{key} {float(value):.4f}" for key, value in metrics.items())
    return f"{label} epoch {epoch}/{epochs}: {values} ({clock.eta(epoch, epochs)})"


def epoch_progress(label: str, chief: bool) -> Any:
    """A Keras callback printing :func:`epoch_line` at each epoch's end if ``chief`` (rank 0), the learning
    rate left out."""
    import tensorflow as tf

    class EpochProgress(tf.keras.callbacks.Callback):
        clock: EpochClock | None = None

        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            if self.clock is None:  # the first epoch of this run (a resumed fit starts past 0)
                self.clock = EpochClock(epoch)

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            if not chief or self.clock is None:
                return
            epochs = int(self.params.get("epochs") or epoch + 1)
            metrics = {key: value for key, value in (logs or {}).items() if key != "lr"}
            print(epoch_line(label, epoch + 1, epochs, metrics, self.clock), flush=True)

    return EpochProgress()


@contextlib.contextmanager
def sharded_tf_dataset(converter: Any, batch_size: int, *, seed: int | None = None, shuffle: bool = True,
                       workers_count: int = 1, num_epochs: int | None = None) -> Iterator[Any]:
    """This rank's shard of a Petastorm converter as a ``tf.data.Dataset`` of namedtuple batches.

    Repeats forever by default (``num_epochs=None``): drive it with a fixed ``steps_per_epoch``.
    ``seed``: the row-group order (Petastorm shuffles it per epoch, from an unseeded generator unless
    given one) and the shard assignment (Petastorm's deprecated ``shard_seed``, which warns, defaults to
    it). It removes the input's share of run-to-run variation; the weights still differ slightly
    between reruns (measured on the test model: up to 0.1 in a weight).
    """
    import horovod.tensorflow.keras as hvd

    with petastorm_tf_dataset(converter, batch_size, shard=(hvd.rank(), hvd.size()), seed=seed, shuffle=shuffle,
                              workers_count=workers_count, num_epochs=num_epochs) as dataset:
        yield dataset


@contextlib.contextmanager
def petastorm_tf_dataset(converter: Any, batch_size: int, *, shard: tuple[int, int] | None = None,
                         seed: int | None = None, shuffle: bool = True, workers_count: int = 1,
                         num_epochs: int | None = None) -> Iterator[Any]:
    """A Petastorm converter as a ``tf.data.Dataset`` of namedtuple batches: every row group, or with
    ``shard=(index, count)`` the row groups of shard ``index`` of ``count``. Arguments as in
    :func:`sharded_tf_dataset`, the Horovod rank's shard of it."""
    cur_shard, shard_count = shard if shard is not None else (None, None)
    with converter.make_tf_dataset(batch_size=batch_size, cur_shard=cur_shard, shard_count=shard_count,
                                   num_epochs=num_epochs, workers_count=workers_count,
                                   shuffling_queue_capacity=batch_size * 4 if shuffle else 0,
                                   reader_pool_type="thread", seed=seed) as dataset:
        yield dataset


def average_metric(value: float, name: str) -> float:
    """Mean of a Python scalar over all ranks (e.g. a validation metric computed per shard)."""
    import horovod.tensorflow as hvd_tf
    import tensorflow as tf

    return float(hvd_tf.allreduce(tf.constant(value, dtype=tf.float64), op=hvd_tf.Average, name=name).numpy())


def broadcast_object(obj: Any, name: str = "object") -> Any:
    """Rank 0's Python object on every rank (e.g. the early-stopping decision)."""
    import horovod.tensorflow as hvd_tf

    return hvd_tf.broadcast_object(obj, root_rank=0, name=name)


def is_chief() -> bool:
    """True on Horovod rank 0 (call only inside a Horovod process, after ``hvd.init()``)."""
    import horovod.tensorflow as hvd_tf

    return hvd_tf.rank() == 0


def weights_digest(model: Any) -> str:
    """SHA-1 of the trainable weights: equal on every rank after a correct synchronous run.

    (Metric state such as a loss tracker is per rank and deliberately left out.)
    """
    import hashlib

    digest = hashlib.sha1()
    for weight in model.trainable_weights:
        digest.update(weight.numpy().tobytes())
    return digest.hexdigest()
