#!/usr/bin/env python3
"""Reads creditguard's result tables with DuckDB, the way a dashboard would.

Usage: python3 tests/duckdb_results.py LAKE_DIR

Prints one JSON object: per table its row count, the distinct `dt` days (from the hive partition
directories), the column types DuckDB sees, and a few counts the Rust test checks against what the
scorer reported. Exits non-zero with a message when a table cannot be read or a column is missing.
Run by `crates/creditguard-score/tests/score.rs::duckdb_reads_every_result_table`.
"""
import json
import sys

import duckdb

TABLES = {
    "flags": ["flag_id", "run_id", "detector", "rule", "user_id", "org_unit", "course_id",
              "window_start", "window_end", "severity", "evidence", "explanation"],
    "credits": ["credit_id", "run_id", "user_id", "org_unit", "course_id", "category",
                "completed_at", "credits_claimed", "credits_granted", "status", "flag_ids"],
    "cases": ["case_id", "run_id", "user_id", "org_unit", "period_start", "period_end", "risk",
              "flag_ids", "detectors", "credits_withheld", "status"],
    "claim_issues": ["issue_id", "run_id", "credit_id", "user_id", "course_id", "completed_at",
                     "issue", "credits_claimed", "catalog_credits", "detail"],
    "progress": ["progress_id", "run_id", "user_id", "org_unit", "year", "as_of",
                 "credits_granted", "credits_withheld", "mandatory_granted", "mandatory_withheld",
                 "target_credits", "mandatory_target", "expected_by_now", "share_of_target",
                 "mandatory_share", "status", "elective_granted", "elective_target",
                 "practice_granted", "practice_target", "policy_rule", "policy_version"],
}


def main() -> int:
    lake = sys.argv[1]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    out = {}
    for table, columns in TABLES.items():
        src = f"read_parquet('{lake}/results/{table}/**/*.parquet', hive_partitioning = true)"
        desc = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
        types = {row[0]: row[1] for row in desc}
        missing = [c for c in columns + ["dt"] if c not in types]
        if missing:
            print(f"results/{table}: missing columns {missing}; has {list(types)}", file=sys.stderr)
            return 1
        rows = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
        days = [r[0] for r in con.execute(
            f"SELECT DISTINCT CAST(dt AS VARCHAR) AS d FROM {src} ORDER BY d").fetchall()]
        out[table] = {"rows": rows, "days": days, "types": types}
    out["credits"]["withheld"] = con.execute(
        f"SELECT count(*) FROM read_parquet('{lake}/results/credits/**/*.parquet', hive_partitioning = true) "
        "WHERE status = 'withheld' AND len(flag_ids) > 0").fetchone()[0]
    out["cases"]["open"] = con.execute(
        f"SELECT count(*) FROM read_parquet('{lake}/results/cases/**/*.parquet', hive_partitioning = true) "
        "WHERE status = 'open'").fetchone()[0]
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
