"""Runs the creditguard_daily DAG for real: Airflow's ``dag.test()`` on a SQLite metadata database,
with the real binary on the shipped sample, then checks what it published.

    python deploy/airflow/test_dag.py target/release/creditguard

(with the Python of an environment where apache-airflow is installed; ``.ci/install-airflow``
makes one). The day's flags must be byte for byte those of one ``creditguard job all --day`` process
on a copy of the same events. A second run for the day is skipped (its success marker); after late
events for the day after it, a third run judges it again.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
DAY = "2026-03-09"
SHARDS = 3


def main() -> None:
    binary = pathlib.Path(sys.argv[1]).resolve()
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="creditguard-airflow-"))
    try:
        run(binary, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(binary: pathlib.Path, scratch: pathlib.Path) -> None:
    lake, single = scratch / "lake", scratch / "single"
    pipeline = scratch / "pipeline.toml"
    pipeline.write_text(
        f"""[pipeline]
name = "airflow-test"
stages = ["ingest"]
[source]
kind = "ndjson"
path = "{REPO / 'sample-data/telemetry.ndjson.zst'}"
[lake]
root = "{lake}"
[catalog]
path = "{REPO / 'sample-data/catalog.csv'}"
[privacy]
key_file = "{scratch / 'k.key'}"
create_key = true
"""
    )
    quiet = {**os.environ, "CREDITGUARD_NO_PROGRESS": "true"}
    subprocess.run([binary, "run", pipeline], check=True, env=quiet, stdout=subprocess.DEVNULL)
    shutil.copytree(lake / "events", single / "events")

    # Airflow in this process: its home, a SQLite metadata database, no examples.
    home = scratch / "airflow"
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "deploy/airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "CREDITGUARD_BIN": str(binary),
            "CREDITGUARD_PIPELINE": str(pipeline),
            "CREDITGUARD_SHARDS": str(SHARDS),
            "CREDITGUARD_NO_PROGRESS": "true",
        }
    )
    airflow = pathlib.Path(sys.executable).parent / "airflow"
    subprocess.run([airflow, "db", "migrate"], check=True, stdout=subprocess.DEVNULL)

    spec = importlib.util.spec_from_file_location(
        "creditguard_daily", REPO / "deploy/airflow/creditguard_daily.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.creditguard_daily()
    # The logical date of the run that judges DAY (the day before it).
    logical = dt.datetime.fromisoformat(DAY).replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    dagrun = dag.test(logical_date=logical)

    states = {}
    for ti in dagrun.get_task_instances():
        states.setdefault(ti.task_id, []).append((ti.map_index, str(ti.state)))
    print("task instances:", states)
    assert str(dagrun.state) in ("success", "DagRunState.SUCCESS"), dagrun.state
    assert states["pending"] == [(-1, "success")], states
    assert sorted(states["shard"]) == [(k, "success") for k in range(SHARDS)], states
    assert states["merge"] == [(-1, "success")] and states["score"] == [(-1, "success")], states

    # Published in one step: the day's flags, features and credits; no staging left.
    flags = lake / f"results/flags/dt={DAY}/part-0.parquet"
    assert flags.is_file(), flags
    assert (lake / f"results/credits/dt={DAY}").is_dir()
    assert (lake / f"features/watch_time/dt={DAY}").is_dir()
    assert not any((lake / "_shards").iterdir()), list((lake / "_shards").iterdir())

    # The same flags as one process running every job for the day.
    out = subprocess.run(
        [binary, "job", "all", "--day", DAY, "--pipeline", pipeline, "--lake", single],
        check=True,
        env=quiet,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    total = int(re.search(r"total flags (\d+)", out).group(1))
    assert total > 0, out
    want = (single / f"results/flags/dt={DAY}/part-0.parquet").read_bytes()
    assert flags.read_bytes() == want, "the sharded day's flags differ from one process's"
    # Run again for the day (another logical date, the day as a parameter): it is done, skipped.
    again = dag.test(logical_date=logical + dt.timedelta(days=7), run_conf={"day": DAY})
    skipped = {ti.task_id: str(ti.state) for ti in again.get_task_instances()}
    print("second run:", skipped)
    assert skipped["merge"] == "skipped" and skipped["score"] == "skipped", skipped
    assert flags.read_bytes() == want
    # Late events for the day after (context of DAY): the day is judged again.
    late = next((lake / f"events/dt={(dt.date.fromisoformat(DAY) + dt.timedelta(days=1)).isoformat()}").glob("*.parquet"))
    marker = lake / f"_markers/jobs/dt={DAY}/_SUCCESS.json"
    os.utime(late, (marker.stat().st_mtime + 1, marker.stat().st_mtime + 1))
    third = dag.test(logical_date=logical + dt.timedelta(days=14), run_conf={"day": DAY})
    rerun = {ti.task_id: str(ti.state) for ti in third.get_task_instances() if ti.task_id != "shard"}
    print("after late events:", rerun)
    assert rerun == {"pending": "success", "merge": "success", "score": "success"}, rerun
    assert flags.read_bytes() == want

    print(f"ok: creditguard_daily for {DAY} in {SHARDS} shards, merged and scored ({total} flags)")


if __name__ == "__main__":
    main()
