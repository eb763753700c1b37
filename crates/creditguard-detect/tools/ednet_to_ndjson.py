#!/usr/bin/env python3
"""Converts the EdNet samples in ../shared/datasets/ to telemetry-v1 NDJSON, to see how often the
detectors flag real (honest, unlabelled) learners.

    python3 crates/creditguard-detect/tools/ednet_to_ndjson.py ../shared/datasets out.ndjson

Mapping (EdNet has no heartbeats, no visibility, no devices beyond the platform):
- course  = the TOEIC part of the item (questions.csv / lectures.csv), `ednet-part-<n>`;
- session = a user's actions with gaps ≤ 30 min; device = `<user>-<platform>`;
- KT4 `enter` → course_enter; `play_video`/`play_audio` → video_play, `pause_*` → video_pause
  (lesson = item, position = cursor_time); `submit` of a bundle → quiz_submit (questions = the
  bundle's questions answered since `enter`, elapsed = submit − enter, score = correct answers);
- KT1 (one row per answered question, with its elapsed time) → quiz_submit of one question.
"""

import csv
import datetime as dt
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets"
out_path = sys.argv[2] if len(sys.argv) > 2 else "ednet.ndjson"

questions = {}
bundle_part = {}
with open(os.path.join(root, "ednet_kt4_sample/contents/questions.csv")) as f:
    for r in csv.DictReader(f):
        questions[r["question_id"]] = r
        bundle_part[r["bundle_id"]] = r["part"]
lecture_part = {}
with open(os.path.join(root, "ednet_kt4_sample/contents/lectures.csv")) as f:
    for r in csv.DictReader(f):
        lecture_part[r["lecture_id"]] = r["part"]


def part(item):
    p = bundle_part.get(item) or lecture_part.get(item) or "0"
    return f"ednet-part-{p}"


def ts(ms):
    return dt.datetime.fromtimestamp(int(ms) / 1000, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


n = 0
out = open(out_path, "w")


def emit(ev):
    global n
    n += 1
    ev["event_id"] = f"ednet-{n}"
    out.write(json.dumps(ev) + "\n")


def sessions(user, rows, key):
    last, s = None, 0
    for r in rows:
        t = int(float(r[key]))
        if last is None or t - last > 30 * 60 * 1000:
            s += 1
        last = t
        yield f"{user}-s{s}", r


kt4 = os.path.join(root, "ednet_kt4_sample/KT4")
for name in sorted(os.listdir(kt4)):
    user = "kt4-" + name.removesuffix(".csv")
    with open(os.path.join(kt4, name)) as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["timestamp"]))
    open_bundle = {}
    for sid, r in sessions(user, rows, "timestamp"):
        a, item, t = r["action_type"], r["item_id"], r["timestamp"]
        base = {"ts": ts(t), "user_id": user, "org_unit": "ednet", "session_id": sid,
                "device_id": f"{user}-{r['platform']}", "platform": "web" if r["platform"] == "web" else "android"}
        if a == "enter":
            emit({**base, "type": "course_enter", "course_id": part(item)})
            if item.startswith("b"):
                open_bundle = {"bundle": item, "t": int(t), "answers": {}}
        elif a in ("play_video", "play_audio", "pause_video", "pause_audio") and r["cursor_time"]:
            kind = "video_play" if a.startswith("play") else "video_pause"
            emit({**base, "type": kind, "course_id": part(item), "lesson_id": item, "position_s": int(r["cursor_time"]) / 1000})
        elif a == "respond" and item in questions:
            open_bundle.setdefault("answers", {})[item] = r["user_answer"]
        elif a == "submit" and open_bundle.get("bundle") == item and open_bundle.get("answers"):
            answers = open_bundle["answers"]
            correct = sum(1 for q, ans in answers.items() if questions[q]["correct_answer"] == ans)
            emit({**base, "type": "quiz_submit", "course_id": part(item), "quiz_id": item, "questions": len(answers),
                  "elapsed_s": (int(t) - open_bundle["t"]) / 1000, "score": correct, "max_score": len(answers)})
            open_bundle = {}

kt1 = os.path.join(root, "ednet_kt1_premonish/KT1_merged")
for name in sorted(os.listdir(kt1)):
    with open(os.path.join(kt1, name)) as f:
        rows = [r for r in csv.DictReader(f) if r["timestamp"] and r["question_id"] and r["elapsed_time"]]
    rows.sort(key=lambda r: int(float(r["timestamp"])))
    user = "kt1-" + name.removesuffix(".csv")
    for sid, r in sessions(user, rows, "timestamp"):
        t = int(float(r["timestamp"]))
        emit({"type": "quiz_submit", "ts": ts(t), "user_id": user, "org_unit": "ednet", "session_id": sid,
              "device_id": f"{user}-{r.get('platform') or 'app'}", "course_id": f"ednet-part-{r['part'] or 0}",
              "quiz_id": r["question_id"], "questions": 1, "elapsed_s": float(r["elapsed_time"]) / 1000,
              "score": int(float(r["correct"] or 0)), "max_score": 1})
out.close()
print(f"{n} events → {out_path}")
