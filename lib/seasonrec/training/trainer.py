"""Training of the two-tower model: the function each training process runs, whatever the backend.

Per process (``train_fn``, run by a :class:`seasonrec.core.backends.Backend` chosen by
``training.backend``): the backend's init and device pinning, the process's Petastorm share, the
backend's optimizer (Horovod: distributed, scaled LR and warm-up) and at each epoch end full-catalog
validation Recall@K on rank 0 (broadcast, so every rank takes the same early-stopping decision).
Rank 0 alone writes the checkpoint (model + optimizer + ``state.json`` with the next epoch), the
best weights, TensorBoard logs and the exported tower weights.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from seasonrec.core.backends import Worker
    from seasonrec.core.horovod_runner import EpochClock

STATE_FILE = "state.json"


def _read_state(checkpoint_dir: str) -> dict[str, Any] | None:
    path = os.path.join(checkpoint_dir, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _write_state(checkpoint_dir: str, state: dict[str, Any]) -> None:
    tmp = os.path.join(checkpoint_dir, STATE_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
    os.replace(tmp, os.path.join(checkpoint_dir, STATE_FILE))


def full_catalog_recall(model: Any, inputs: dict[str, np.ndarray], targets: list[list[int]], k: int) -> float:
    """Recall@k of the first stage over every catalog item (no sampling)."""
    import tensorflow as tf

    from seasonrec.training.metrics import recall_at_k, top_k

    if not targets:
        return 0.0
    core = model.item_core()
    items = model.item_full(core)
    scores = []
    for start in range(0, len(targets), 1024):
        batch = {key: tf.constant(value[start:start + 1024]) for key, value in inputs.items()}
        scores.append(tf.matmul(model.user_full(batch, core), items, transpose_b=True).numpy())
    return recall_at_k(top_k(np.concatenate(scores), k), targets, k)


def report_epoch(row: dict[str, float], epochs: int, mlflow_run: dict[str, str] | None,
                 clock: EpochClock) -> None:
    """Rank 0, at each epoch's end: one progress line (loss, validation recall, seconds per epoch and time
    left from ``clock``), and the epoch's metrics into the training's MLflow run while training goes on
    (``mlflow_run``: tracking_uri and run_id). A failing tracking store costs a warning, never the training."""
    from seasonrec.core.horovod_runner import epoch_line

    values = {key: value for key, value in row.items() if key != "epoch"}
    print(epoch_line("[train]", int(row["epoch"]), epochs, values, clock), flush=True)
    if not mlflow_run:
        return
    try:
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        MlflowClient(tracking_uri=mlflow_run["tracking_uri"]).log_batch(
            mlflow_run["run_id"], metrics=[Metric(key, float(value), stamp, int(row["epoch"]))
                                           for key, value in values.items()])
    except Exception as exc:  # noqa: BLE001 - metrics are for people watching; training must go on
        print(f"[train] epoch metrics not logged to MLflow: {type(exc).__name__}: {exc}", flush=True)


def train_fn(worker: Worker, converter: Any, params: dict[str, Any], spec: dict[str, Any],
             item_tables: dict[str, np.ndarray], val_inputs: dict[str, np.ndarray], val_targets: list[list[int]],
             steps_per_epoch: int, checkpoint_dir: str, export_dir: str, resume: bool,
             fail_after_epoch: int | None = None, mlflow_run: dict[str, str] | None = None) -> dict[str, Any]:
    """One training process: fit from ``converter``'s rows (resuming from ``checkpoint_dir``), rank 0
    exports ``tower.npz`` and the Keras weights to ``export_dir``; returns this process's state and timing."""
    import tensorflow as tf

    from seasonrec.core import horovod_runner as dist
    from seasonrec.training.model import build_model

    worker.init(seed=int(params["seed"]))
    chief = worker.is_chief()  # rank 0 alone validates, checkpoints and reports
    model = build_model(item_tables, spec, params)
    optimizer = worker.optimizer(float(params["learning_rate"]))
    model.compile(optimizer=optimizer)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    last_prefix = os.path.join(checkpoint_dir, "last", "ckpt")
    best_prefix = os.path.join(checkpoint_dir, "best", "weights")
    state = _initial_state(checkpoint, last_prefix, checkpoint_dir, resume)
    initial_epoch = int(state["epoch"])
    epochs = int(params["epochs"])
    patience = int(params["early_stopping_patience"])
    recall_k = int(params["recall_k"])

    class EpochEnd(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            recall = full_catalog_recall(model, val_inputs, val_targets, recall_k) if chief else None
            recall = float(worker.broadcast(recall, name=f"val_recall_{epoch}"))
            improved = recall > state["best_recall"] + 1e-6
            if improved:
                state.update(best_recall=recall, best_epoch=epoch + 1, bad_epochs=0)
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch + 1
            state["history"].append({"epoch": epoch + 1, "loss": float((logs or {}).get("loss", np.nan)),
                                     f"val_recall_at_{recall_k}": recall})
            if state["bad_epochs"] > patience:
                state["stopped"] = True
                self.model.stop_training = True
            if chief:
                if improved:
                    model.save_weights(best_prefix)
                checkpoint.write(last_prefix)
                _write_state(checkpoint_dir, state)
                report_epoch(state["history"][-1], epochs, mlflow_run, clock)
            worker.broadcast(True, name=f"checkpoint_written_{epoch}")  # barrier: checkpoint is complete
            if fail_after_epoch is not None and epoch + 1 >= fail_after_epoch:
                worker.crash(3)  # simulate a killed run (tests of --resume)

    started = time.perf_counter()
    clock = dist.EpochClock(initial_epoch)
    steps_run = 0
    if initial_epoch < epochs and not state["stopped"]:
        _fit(worker, model, converter, params, steps_per_epoch, initial_epoch, EpochEnd(), checkpoint_dir)
        steps_run = (int(state["epoch"]) - initial_epoch) * steps_per_epoch
    seconds = time.perf_counter() - started
    result = {"rank": worker.rank(), "size": worker.size(), "initial_epoch": initial_epoch, "state": state,
              "seconds": seconds, "examples": steps_run * int(params["batch_size"]),
              "digest": dist.weights_digest(model)}
    if chief:
        _export(model, best_prefix if state["best_epoch"] > 0 else None, export_dir)
    return result


def _initial_state(checkpoint: Any, last_prefix: str, checkpoint_dir: str, resume: bool) -> dict[str, Any]:
    """The training state to start from: with ``resume`` and a ``state.json`` in ``checkpoint_dir``, that
    state, the model and optimizer restored from ``last_prefix`` (every rank reads the same files); else a
    fresh state (epoch 0, no best recall yet)."""
    state = _read_state(checkpoint_dir) if resume else None
    if state is not None:
        checkpoint.read(last_prefix).expect_partial()
        return state
    return {"epoch": 0, "best_recall": -1.0, "best_epoch": -1, "bad_epochs": 0, "stopped": False, "history": []}


def _fit(worker: Worker, model: Any, converter: Any, params: dict[str, Any], steps_per_epoch: int,
         initial_epoch: int, epoch_end: Any, checkpoint_dir: str) -> None:
    """Keras ``fit`` from ``initial_epoch`` to ``params["epochs"]`` over this process's Petastorm share of
    ``converter``, with the backend's callbacks (Horovod: broadcast, LR warm-up), ``epoch_end`` (validation,
    early stopping, checkpoint) and, on rank 0, TensorBoard logs under ``checkpoint_dir``."""
    import tensorflow as tf

    # No generic progress line: epoch_end prints one with the validation recall (report_epoch).
    callbacks: list[Any] = worker.callbacks(float(params["learning_rate"]), steps_per_epoch,
                                            int(params["warmup_epochs"]), initial_epoch)
    callbacks.append(epoch_end)
    if worker.is_chief():
        callbacks.append(tf.keras.callbacks.TensorBoard(os.path.join(checkpoint_dir, "tensorboard"),
                                                        write_graph=False, profile_batch=0))
    with worker.dataset(converter, batch_size=int(params["batch_size"]), seed=int(params["seed"])) as dataset:
        dataset = dataset.map(lambda b: {"user_bucket": b.user_bucket, "user_dense": b.user_dense,
                                         "history": b.history, "context": b.context, "item_index": b.item_index})
        model.fit(dataset, steps_per_epoch=steps_per_epoch, epochs=int(params["epochs"]),
                  initial_epoch=initial_epoch, callbacks=callbacks, verbose=0)


def _export(model: Any, best_prefix: str | None, export_dir: str) -> None:
    """Rank 0 after training: load the best epoch's weights from ``best_prefix`` (None: keep the last),
    then write ``tower.npz`` (the numpy tower scoring reads) and the Keras weights to ``export_dir``."""
    if best_prefix is not None:
        model.load_weights(best_prefix)
    os.makedirs(export_dir, exist_ok=True)
    np.savez(os.path.join(export_dir, "tower.npz"), **model.numpy_weights())
    model.save_weights(os.path.join(export_dir, "keras", "weights"))
