"""Checks the Kubernetes manifests without a cluster, with the real binary:

    python deploy/kubernetes/test_manifests.py target/release/creditguard

- every document parses and names a known kind, and what a pod refers to (ConfigMap, Secret
  volume, claim, probe port, Service selector) is there;
- the pipeline file of the ConfigMap passes ``creditguard validate``; the ingest container's
  flags and environment variables are ones ``creditguard ingest`` takes, and its metrics port
  is the pipeline's;
- the commands of the jobs Indexed Job and the scoring CronJob run, as written (``/bin/sh -c``,
  one process per index with JOB_COMPLETION_INDEX), on the shipped sample, and publish the day.

Needs PyYAML (the Airflow environment of ``.ci/install-airflow`` has it).
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
DAY = "2026-03-09"
API = {
    "ConfigMap": "v1",
    "PersistentVolumeClaim": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "CronJob": "batch/v1",
}


def documents():
    for path in sorted(HERE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path.name, doc


def pod_spec(doc):
    if doc["kind"] == "Deployment":
        return doc["spec"]["template"]["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def main() -> None:
    binary = pathlib.Path(sys.argv[1]).resolve()
    docs = list(documents())
    by_kind: dict[str, dict[str, dict]] = {}
    for name, doc in docs:
        kind = doc.get("kind")
        assert kind in API, f"{name}: unknown kind {kind}"
        assert doc.get("apiVersion") == API[kind], f"{name}: {kind} wants apiVersion {API[kind]}"
        by_kind.setdefault(kind, {})[doc["metadata"]["name"]] = doc

    for name, doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        what = f"{name}: {doc['kind']} {doc['metadata']['name']}"
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for v in volumes.values():
            if "configMap" in v:
                assert v["configMap"]["name"] in by_kind["ConfigMap"], f"{what}: {v}"
            if "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"]["claimName"]
                assert claim in by_kind["PersistentVolumeClaim"], f"{what}: {v}"
            if "secret" in v:
                assert v["secret"]["secretName"], f"{what}: {v}"
        for c in spec["containers"]:
            for m in c.get("volumeMounts", []):
                assert m["name"] in volumes, f"{what}: mount {m['name']} has no volume"
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                if probe in c:
                    port = c[probe]["httpGet"]["port"]
                    assert port in ports, f"{what}: {probe} port {port}"
        if doc["kind"] == "Deployment":
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items(), what
            services = [
                s
                for s in by_kind["Service"].values()
                if s["spec"]["selector"].items() <= labels.items()
            ]
            assert services, f"{what}: no Service selects it"

    scratch = pathlib.Path(tempfile.mkdtemp(prefix="creditguard-k8s-"))
    try:
        run(binary, by_kind, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(binary: pathlib.Path, by_kind, scratch: pathlib.Path) -> None:
    # The ConfigMap's files where the pods mount them, moved under the scratch directory.
    etc, lake = scratch / "etc/creditguard", scratch / "lake"
    (etc / "key").mkdir(parents=True)
    files = by_kind["ConfigMap"]["creditguard-pipeline"]["data"]
    moved = lambda text: text.replace("/etc/creditguard", str(etc)).replace('"/lake"', f'"{lake}"')
    for name, text in files.items():
        (etc / name).write_text(moved(text))
    pipeline = etc / "pipeline.toml"
    subprocess.run([binary, "keygen", "--out", etc / "key/pseudonym.key"], check=True)
    subprocess.run([binary, "validate", pipeline], check=True)

    # Ingest: the flags and environment variables it is given exist; probes on the metrics port.
    ingest = by_kind["Deployment"]["creditguard-ingest"]
    c = ingest["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["creditguard", "ingest"], c["command"]
    help_text = subprocess.run(
        [binary, "ingest", "--help"], check=True, capture_output=True, text=True
    ).stdout
    for flag in (a for a in c["args"] if a.startswith("--")):
        assert re.search(rf"\s{re.escape(flag)}\b", help_text), f"ingest has no {flag}"
    for env in c.get("env", []):
        assert f"env: {env['name']}" in help_text, f"ingest reads no {env['name']}"
    metrics_port = re.search(r'metrics_addr = "[^"]*:(\d+)"', files["pipeline.toml"]).group(1)
    assert {p["containerPort"] for p in c["ports"]} == {int(metrics_port)}, c["ports"]

    # The sample's events in the lake (ingested with another pipeline: the ConfigMap's reads Kafka).
    sample = scratch / "sample.toml"
    sample.write_text(
        f'[pipeline]\nname = "sample"\nstages = ["ingest"]\n[source]\nkind = "ndjson"\n'
        f'path = "{REPO / "sample-data/telemetry.ndjson.zst"}"\n[lake]\nroot = "{lake}"\n'
        f'[privacy]\nkey_file = "{etc / "key/pseudonym.key"}"\n'
    )
    env = {
        **os.environ,
        "PATH": f"{binary.parent}{os.pathsep}{os.environ['PATH']}",
        "CREDITGUARD_DAY": DAY,
        "CREDITGUARD_NO_PROGRESS": "true",
        "CREDITGUARD_CATALOG": str(REPO / "sample-data/catalog.csv"),
    }
    subprocess.run([binary, "run", sample], check=True, env=env, stdout=subprocess.DEVNULL)

    def container(cronjob: str):
        job = by_kind["CronJob"][cronjob]["spec"]["jobTemplate"]["spec"]
        c = job["template"]["spec"]["containers"][0]
        cmd = c["command"] + c["args"]
        return job, cmd, {**env, **{e["name"]: moved(e["value"]) for e in c["env"]}}

    job, cmd, shard_env = container("creditguard-jobs")
    assert job["completionMode"] == "Indexed", job
    shards = job["completions"]
    assert f"--shards {shards}" in cmd[-1], cmd
    for k in range(shards):
        subprocess.run(cmd, check=True, env={**shard_env, "JOB_COMPLETION_INDEX": str(k)})
        assert not (lake / "results").exists(), "published before the merge"
    _, cmd, score_env = container("creditguard-score")
    assert f"--shards {shards}" in cmd[-1], cmd
    subprocess.run(cmd, check=True, env=score_env)
    for table in ("results/flags", "results/credits", "features/shared_device"):
        assert (lake / table / f"dt={DAY}").is_dir(), table
    print(f"ok: {len(list(documents()))} manifests; {shards} shards, merge and score ran on the sample")


if __name__ == "__main__":
    main()
