"""Weather in the ranker (issue #19): the synthetic bar, end to end on a real lake.

conf/test.yaml's synthetic data (seed 7) with a bigger catalogue, more users and events (`SETUP`)
through the real ingest, features, train and evaluate jobs, with the split moved to spring 2011: in
the validation window (April) Germany is in a cold spell (trailing 7-day anomaly -3.7 degC on 4
April; Great Britain -1.5), and the test window (May) starts with Great Britain (half the users) at
-4.8 degC and Germany at -2.6 (both cold spells; what the model knows on 30 April): the planted
cold-sensitive items sell ~4x and ~2x their usual rate there. On conf/test.yaml's own 120 items,
with 5% of the events planted on the category's best sellers, the planted items are in every list
with or without weather (Recall@20 1.000 both ways: nothing to measure); here they are 4 mid-popular
`home_decor` items of 800 (popularity rank 20 on in the category) with 1% of the events planted, so
they are not in every top 20 and the cold spell's lift is what can put them there.
`seasonrec evaluate` scores the model and its weather ablation (the ranker refitted without the
weather features, same scoring path); the test fails if the weather signal is ignored, because then
the two rankers rank the planted items alike.

The issue's bar (with weather >= 1.2x the ablation) is a property of the method, not of one
training. Until 2026-12-04 every run trained a different two-tower: Petastorm read its files in the
file system's order, random per write (fixed in `horovod_runner.petastorm_converter`), and the
second stage, fitted on ~475 (user, week) units, turned that into different weather splits. Ten
such runs found, of 32 planted pairs, with/without weather 0.750/0.250, 0.656/0.250, 0.625/0.281,
0.531/0.250, 0.469/0.281, 0.375/0.250 (twice), 0.344/0.250, 0.375/0.281 and 0.312/0.281 (a CI run):
median ratio ~1.6, 9 of 10 >= 1.2, and the ablation never found more. Training is now
reproducible on one machine (0.594/0.344, 1.73x, in each of two runs), but other CPUs may sum in
another order, so the test asserts that weather lifts the planted items (strictly more pairs
found) and prints the ratio against the bar;
README "Weather as seasonal context" reports the distribution.
"""

from __future__ import annotations

import argparse

import pytest

from support import job_args, make_config

SPLIT = ("split.train_end=2011-04-01", "split.validation_end=2011-05-01", "split.test_end=2011-06-01")
SETUP = ("data.synthetic.n_items=800", "data.synthetic.n_users=600", "data.synthetic.n_events=40000",
         "data.synthetic.cold_sensitive_share=0.01", "data.synthetic.cold_sensitive_first_rank=20")
K = 20
BAR = 1.2  # issue #19: >= 20% relative, met in 9 of 10 trainings (see above); printed, not asserted


@pytest.fixture(scope="module")
def weather_run(spark, tmp_path_factory):
    from seasonrec.context import JobContext
    from seasonrec.data import jobs as ingest_jobs
    from seasonrec.evaluation import jobs as evaluate_jobs
    from seasonrec.features import jobs as features_jobs
    from seasonrec.training.pipeline import train

    config = make_config(tmp_path_factory.mktemp("weather_ranker"), *SPLIT, *SETUP, "training.backend=local",
                         "training.weather_features=on", "evaluation.k_list=[10,20]")
    ingest_jobs.run(JobContext.create(config, "ingest", spark), job_args(ingest_jobs))
    features_jobs.run(JobContext.create(config, "features", spark), job_args(features_jobs))
    summary = train(JobContext.create(config, "train", spark))
    ctx = JobContext.create(config, "evaluate", spark)
    evaluation = evaluate_jobs.run(ctx, argparse.Namespace(split="test", methods="model", model_dir=None,
                                                           no_mlflow=True))
    return ctx, summary, evaluation


def test_weather_lifts_the_planted_items_in_a_cold_spell(weather_run):
    ctx, summary, evaluation = weather_run
    assert summary["reranker"] == "kept" and summary["reranker_uses_weather"]
    assert summary["reranker_feature_gain"]["weather_sensitivity_x_anomaly"] > 0
    ablation = evaluation["weather_ablation"]
    assert ablation["ablation"] == "model_no_weather" and ablation["cold_spell_planted_pairs"] >= 20
    rows = ctx.lake.read("evaluation_runs").where(f"run_id = '{ctx.run_id}'").collect()
    value = {(r["method"], r["metric"], r["k"], r["segment"]): r["value"] for r in rows}
    with_weather = value[("model", "cold_spell_planted_recall", K, "all")]
    without = value[("model_no_weather", "cold_spell_planted_recall", K, "all")]
    ratio = with_weather / without if without else float("inf")
    print(f"cold-spell planted recall@{K} ({ablation['cold_spell_planted_pairs']} pairs): "
          f"with weather {with_weather:.3f}, without {without:.3f} ({ratio:.2f}x; bar {BAR}x "
          f"{'met' if ratio >= BAR else 'NOT met'} in this run)")
    assert with_weather > without
    # Both variants are whole rows of the run (same metrics), and the report has the ablation table.
    assert value[("model_no_weather", "recall", K, "all")] is not None
    with open(evaluation["report"], encoding="utf-8") as handle:
        report = handle.read()
    assert "## Weather ablation" in report and "cold-spell planted recall@20" in report
