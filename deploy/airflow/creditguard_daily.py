"""creditguard's daily batch for Airflow: the detection jobs in shards, their merge, then scoring.

Copy this file into the DAGs folder. Settings come from the environment of the Airflow workers:

- ``CREDITGUARD_BIN``: the ``creditguard`` binary (default: ``creditguard`` on the PATH);
- ``CREDITGUARD_PIPELINE``: the pipeline file (lake, catalog, settings of the jobs);
- ``CREDITGUARD_SHARDS``: how many shards the jobs run in (default 4), one mapped task each.

Each run judges one UTC day: by default the day before the run's logical date (a day's jobs read
the day after it too, so run them once it has arrived); the ``day`` parameter names another (a
backfill: trigger once per day, in day order). The shards run ``creditguard job all --shard K/N``
in parallel (mapped tasks; each stages its users' results in the lake), ``creditguard job merge``
runs what crosses users and publishes the day in one step, then ``creditguard score`` decides the
day's credit claims. Every step replaces its output, so a retried or repeated run is harmless
(retries: Airflow's ``default_task_retries``).
Runs of this DAG go one at a time and in order: a day's jobs read earlier days' results.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess

from airflow.sdk import Param, dag, get_current_context, task

CREDITGUARD = os.environ.get("CREDITGUARD_BIN", "creditguard")
PIPELINE = os.environ.get("CREDITGUARD_PIPELINE", "/etc/creditguard/pipeline.toml")
SHARDS = int(os.environ.get("CREDITGUARD_SHARDS", "4"))


def creditguard(*args: str) -> None:
    """Runs one creditguard command; its output goes to the task log, a failure fails the task."""
    cmd = [CREDITGUARD, *args, "--pipeline", PIPELINE]
    print("+", " ".join(cmd), flush=True)
    # The shard flags are on the command line: creditguard would also read these variables.
    env = {k: v for k, v in os.environ.items() if k not in ("CREDITGUARD_SHARD", "CREDITGUARD_SHARDS")}
    subprocess.run(cmd, check=True, env=env)


def day() -> str:
    """The day this run judges (YYYY-MM-DD)."""
    ctx = get_current_context()
    named = ctx["params"].get("day")
    if named:
        return str(named)
    return (ctx["logical_date"] - dt.timedelta(days=1)).strftime("%Y-%m-%d")


@dag(
    dag_id="creditguard_daily",
    schedule="0 4 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    params={
        "day": Param(
            None,
            type=["null", "string"],
            description="The UTC day to judge (YYYY-MM-DD); default: the day before the logical date.",
        )
    },
    tags=["creditguard"],
)
def creditguard_daily():
    @task(max_active_tis_per_dagrun=SHARDS)
    def shard(index: int) -> None:
        creditguard("job", "all", "--shard", f"{index}/{SHARDS}", "--day", day())

    @task
    def merge() -> None:
        creditguard("job", "merge", "--shards", str(SHARDS), "--day", day())

    @task
    def score() -> None:
        creditguard("score", "--day", day())

    shard.expand(index=list(range(SHARDS))) >> merge() >> score()


creditguard_daily()
