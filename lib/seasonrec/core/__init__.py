"""The floor every stage package builds on; it imports no stage package.

- `core.topk`: the NumPy top-K / candidate-pool kernel of full-catalog scoring (scoring, training and
  evaluation share it).
- `core.contract`: what the scoring engine needs from a recommender (`Recommender`), and the keys of
  the request context.
- `core.randomness`: hashed, partitioning-independent randomness for Spark columns.
- `core.horovod_runner`: the Horovod + Petastorm machinery (launch on Spark, sharded readers,
  callbacks, checkpoints) that the recommender and the demand LSTM both train with.
- `core.backends`: the training seam over it (`training.backend: horovod|local`): a `Backend` runs a
  train function on its processes, the train function sees only a `Worker`.
"""
