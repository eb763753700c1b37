"""The detection jobs of a lake as one process, and as shards (separate processes running at
once) plus their merge.

    target/release/examples/jobs_bench 10000000 30        # makes target/bench-lake-10000000-30
    python3 benches/jobs_shards.py target/release/creditguard target/bench-lake-10000000-30 [SHARDS] [RUNS]

Prints, per run, the wall time of one `creditguard job all` and of the sharded run (the shards
in parallel, then `job merge`), with each process's peak RSS and CPU time, and checks that both
wrote the same number of flags. Writes a pipeline file for the lake (its catalog.csv, privacy
off: the bench lake holds raw ids) into a temporary directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time


def start(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "CREDITGUARD_NO_PROGRESS": "true"})


def finish(p):
    """Waits for a process: (stdout, peak RSS in MiB, user + system CPU seconds)."""
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{p.args} failed with {p.returncode}:\n{out}")
    return out, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def flags(out: str) -> int:
    return int(re.search(r"total flags (\d+)", out).group(1))


def main() -> None:
    binary, lake = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    shards = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = os.path.join(tmp, "bench.toml")
        with open(pipeline, "w") as f:
            f.write(
                f'[pipeline]\nname = "bench"\nstages = ["jobs"]\n[source]\nkind = "ndjson"\npath = "-"\n'
                f'[lake]\nroot = "{lake}"\n[catalog]\npath = "{lake}/catalog.csv"\n'
                f'[privacy]\npseudonymise = "off"\n'
            )
        job = [binary, "job", "--pipeline", pipeline]
        for r in range(1, runs + 1):
            t = time.monotonic()
            out, rss, cpu = finish(start([*job, "all"]))
            single = time.monotonic() - t
            print(f"run {r}: one process   {single:6.2f} s  peak {rss:6.0f} MiB  cpu {cpu:6.2f} s  flags {flags(out)}")
            t = time.monotonic()
            procs = [start([*job, "all", "--shard", f"{k}/{shards}"]) for k in range(shards)]
            done = [finish(p) for p in procs]
            shards_wall = time.monotonic() - t
            t = time.monotonic()
            mout, mrss, mcpu = finish(start([*job, "merge", "--shards", str(shards)]))
            merge = time.monotonic() - t
            assert flags(mout) == flags(out), (flags(mout), flags(out))
            per = ", ".join(f"peak {s:.0f} MiB cpu {c:.2f} s" for _, s, c in done)
            print(
                f"run {r}: {shards} shards    {shards_wall + merge:6.2f} s  (shards {shards_wall:.2f} s: {per}; "
                f"merge {merge:.2f} s, peak {mrss:.0f} MiB, cpu {mcpu:.2f} s)  flags {flags(mout)}"
            )


if __name__ == "__main__":
    main()
