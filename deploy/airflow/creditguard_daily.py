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

A run first looks at the day's success marker in the lake (``_markers/jobs/dt=D/_SUCCESS.json``,
written by the merge): when there is one and no events arrived for the day or its neighbours
since, the run skips the day (the ``force`` parameter runs it anyway, as after a failed
``score``).
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import subprocess
import tomllib

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


def lake() -> pathlib.Path:
    """The lake directory, as creditguard finds it: ``CREDITGUARD_LAKE``, else the pipeline's."""
    root = os.environ.get("CREDITGUARD_LAKE")
    if not root:
        with open(PIPELINE, "rb") as f:
            root = tomllib.load(f)["lake"]["root"]
    return pathlib.Path(root)


def done(d: str) -> bool:
    """Day ``d`` has its success marker, and no events file of it or a neighbour is newer."""
    marker = lake() / "_markers/jobs" / f"dt={d}" / "_SUCCESS.json"
    if not marker.is_file():
        return False
    day = dt.date.fromisoformat(d)
    for n in (day - dt.timedelta(days=1), day, day + dt.timedelta(days=1)):
        for f in (lake() / "events" / f"dt={n.isoformat()}").glob("*.parquet"):
            if f.stat().st_mtime > marker.stat().st_mtime:
                return False
    return True


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
        ),
        "force": Param(False, type="boolean", description="Run the day even if it is done."),
    },
    tags=["creditguard"],
)
def creditguard_daily():
    @task.short_circuit
    def pending() -> bool:
        d = day()
        if get_current_context()["params"].get("force") or not done(d):
            return True
        print(f"{d} is done and no events arrived for it since: skipped", flush=True)
        return False
    @task(max_active_tis_per_dagrun=SHARDS)
    def shard(index: int) -> None:
        creditguard("job", "all", "--shard", f"{index}/{SHARDS}", "--day", day())

    @task
    def merge() -> None:
        creditguard("job", "merge", "--shards", str(SHARDS), "--day", day())

    @task
    def score() -> None:
        creditguard("score", "--day", day())

    pending() >> shard.expand(index=list(range(SHARDS))) >> merge() >> score()


creditguard_daily()
