#!/usr/bin/env python3
"""scripts/speed-table.py RUN_DIR BEFORE AFTER — the table of a scripts/speed-table run, as Markdown.

Reads what each tool wrote into RUN_DIR (criterion's text, /usr/bin/time, loadtest's JSON reports,
scripts/bench-serve's text) and prints one row per figure: each build's values over the rounds, in round
order, and the load average before each. A missing or failed measurement shows as "–"."""

import glob
import json
import os
import re
import sys

run, names = sys.argv[1], sys.argv[2:4]
UNITS = {"ps": 1e-6, "ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}


def rounds(what, name, suffix):
    """The files of `what` for build `name`, one a round in round order: the rounds are those with any file
    of `what` (the script writes a `.load` file for every measurement), so a round whose command failed
    before writing this file still has its place (and shows "–")."""
    pat = re.compile(re.escape(f"{what}-{name}-") + r"(\d+)[-.]")
    found = {int(m.group(1)) for f in glob.glob(os.path.join(run, f"{what}-{name}-*"))
             if (m := pat.match(os.path.basename(f)))}
    return [os.path.join(run, f"{what}-{name}-{r}{suffix}") for r in sorted(found)]


def criterion(text, bench):
    """Criterion's middle estimate for `bench`, in µs."""
    m = re.search(re.escape(bench) + r"\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


rows = []  # (label, {name: [values as text]})


def row(label, what, suffix, get, spec):
    rows.append((label, {n: [fmt(get(f), spec) for f in rounds(what, n, suffix)] for n in names}))


for bench, label in [
    ("core/parse", "`core/parse` (µs)"),
    ("core/lookups", "`core/lookups`, 5 parties (µs; ≤ 0.3)"),
    ("core/score", "`core/score`, a `Decision` built (µs)"),
    ("core/verdict", "`core/verdict`, the rules alone (µs; scoring ≤ 0.1)"),
    ("core/serialize", "`core/serialize`, serde reference (µs)"),
    ("core/core_path", "**core path** (µs; ≤ 2 = 500 k/s a core)"),
]:
    row(label, "core", ".txt", lambda f, b=bench: criterion(read(f), b), ".3f")
for bench, label in [
    ("whatif/compare_1000000_manifests_two_policies", "replay 1 M × 2 policies, 2 cores, as `replay` reads the table (s; ≤ 2)"),
    ("whatif/compare_1000000_manifests_two_policies_live", "… the live table (s)"),
]:
    row(label, "replay", ".txt", lambda f, b=bench: (lambda us: us / 1e6 if us else None)(criterion(read(f), b)), ".2f")


def timed(f, field):
    t = read(f)
    if "Command exited with non-zero status" in t or "Command terminated by signal" in t:
        return None
    m = re.search(r"wall ([\d.]+) s, user ([\d.]+) s, sys ([\d.]+) s, peak (\d+) KB", t)
    if not m:
        return None
    wall, user, sys_, peak = (float(x) for x in m.groups())
    if field == "rate":
        count = read(f.removesuffix(".time") + ".count").strip()
        return int(count) / wall / 1e3 if count and wall > 0 else None
    return user + sys_ if field == "cpu" else peak / 1024  # "rss"


for s, size in [("one", "~1.12 KB"), ("mix", "~1.74 KB")]:
    for field, label, spec in [
        ("rate", f"`borderlane score`, {size}, 2 cores (k manifests/s; ≥ 500)", ".0f"),
        ("cpu", f"… CPU seconds ({size})", ".2f"),
        ("rss", f"… peak RSS ({size}, MiB)", ".0f"),
    ]:
        row(label, "score", f"-{s}.time", lambda f, fl=field: timed(f, fl), spec)


def kafka(f, path):
    j = load_json(f)
    for k in path:
        j = j.get(k) if isinstance(j, dict) else None
    return j


def ratio(f, a, b):
    """kafka(f, a) ÷ kafka(f, b), when both are there."""
    x, y = kafka(f, a), kafka(f, b)
    return x / y if x and y else None


# loadtest's report: the pipeline's figures at the top level (flattened), the passthrough's under "passthrough".
row("saturation, 150 000/s offered: pipeline (/s)", "saturation", ".json",
    lambda f: kafka(f, ["throughput_per_s"]), ".0f")
row("… passthrough (/s)", "saturation", ".json", lambda f: kafka(f, ["passthrough", "throughput_per_s"]), ".0f")
row("… pipeline ÷ passthrough (≥ 0.9)", "saturation", ".json", lambda f: kafka(f, ["ratio", "throughput"]), ".2f")
# loadtest --backlog's report: "pipeline" and "passthrough" blocks, "ratio" of their drain rates.
row("saturation as a drain, 300 000 written first: pipeline (/s)", "drain", ".json",
    lambda f: kafka(f, ["pipeline", "rate"]), ".0f")
row("… passthrough's drain (/s)", "drain", ".json", lambda f: kafka(f, ["passthrough", "rate"]), ".0f")
row("… drain: pipeline ÷ passthrough (≥ 0.9)", "drain", ".json", lambda f: kafka(f, ["ratio"]), ".2f")


def cpu_us(f, who, what):
    """µs a manifest answered of `who`'s drain: the whole process's CPU (`process`), one thread group's
    (`scoring`), or the other processes' (`other`: the broker, mostly)."""
    cpu, answered = kafka(f, [who, "cpu"]), kafka(f, [who, "answered"])
    if not isinstance(cpu, dict) or not answered:
        return None
    if what == "process":
        s = cpu.get("process_s")
    elif what == "other":
        s = cpu.get("other_processes_s")
    else:
        s = sum(g.get("cpu_s", 0) for g in cpu.get("groups", []) if g.get("name") == what) or None
    return s * 1e6 / answered if s is not None else None


row("… drain: pipeline's process CPU (µs a manifest)", "drain", ".json",
    lambda f: cpu_us(f, "pipeline", "process"), ".1f")
row("… drain: of which the scoring threads (µs a manifest)", "drain", ".json",
    lambda f: cpu_us(f, "pipeline", "scoring"), ".1f")
row("… drain: passthrough's process CPU (µs a manifest)", "drain", ".json",
    lambda f: cpu_us(f, "passthrough", "process"), ".1f")
row("… drain: other processes (the broker, mostly) during the pipeline's (µs a manifest)", "drain", ".json",
    lambda f: cpu_us(f, "pipeline", "other"), ".1f")
row("… drain: other processes during the passthrough's (µs a manifest)", "drain", ".json",
    lambda f: cpu_us(f, "passthrough", "other"), ".1f")
for q, label in [("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")]:
    row(f"half load 2 000/s: pipeline {label} (ms)", "half", ".json", lambda f, q=q: kafka(f, [q]), ".2f")
    row(f"… passthrough {label} (ms)", "half", ".json", lambda f, q=q: kafka(f, ["passthrough", q]), ".2f")
row("… p99 ÷ passthrough's (≤ 1.1)", "half", ".json", lambda f: kafka(f, ["ratio", "p99"]), ".2f")
row("… p99.9 ÷ p99 (≤ 3)", "half", ".json", lambda f: ratio(f, ["p999_ms"], ["p99_ms"]), ".2f")

def outside(where, p99, p999):
    """The half-load percentiles of the manifests in flight during none of the broker's `where` (loadtest
    --broker-gc-log; a build whose loadtest cannot read the log, or these fields, has no figure)."""
    for q, label in [(p99, "p99"), (p999, "p99.9")]:
        row(f"… pipeline {label} outside {where} (ms)", "half", ".json",
            lambda f, q=q: kafka(f, ["broker_gc", q]), ".2f")
        row(f"… passthrough {label} outside {where} (ms)", "half", ".json",
            lambda f, q=q: kafka(f, ["passthrough", "broker_gc", q]), ".2f")
    short = where.replace("the broker's GC pauses", "the pauses")
    row(f"… outside {short}: p99 ÷ passthrough's (≤ 1.1)", "half", ".json",
        lambda f: ratio(f, ["broker_gc", p99], ["passthrough", "broker_gc", p99]), ".2f")
    row(f"… outside {short}: p99.9 ÷ p99 (≤ 3)", "half", ".json",
        lambda f: ratio(f, ["broker_gc", p999], ["broker_gc", p99]), ".2f")


outside("the broker's GC pauses", "p99_outside_ms", "p999_outside_ms")
row("… manifests in flight during a broker GC pause (pipeline)", "half", ".json",
    lambda f: kafka(f, ["broker_gc", "in_flight"]), ".0f")
# Its concurrent cycles stop nothing but take CPU (a loadtest that reads them).
row("… longest broker concurrent GC cycle in the pipeline's run (ms)", "half", ".json",
    lambda f: kafka(f, ["broker_gc", "cycle_max_ms"]), ".0f")
row("… manifests in flight during a cycle and no pause (pipeline)", "half", ".json",
    lambda f: kafka(f, ["broker_gc", "in_cycle"]), ".0f")
outside("the pauses and cycles", "p99_outside_all_ms", "p999_outside_all_ms")


def backlog(f, field):
    t = read(f)
    if field == "rate":
        m = re.search(r"outcomes in [\d.]+ s .*: (\d+)/s", t)
        return int(m.group(1)) if m else None
    m = re.search(r"serve after the backlog: VmHWM:?\s+(\d+) MiB\s+VmRSS:?\s+\d+ MiB\s+cpu ([\d.]+) s", t)
    if not m:
        return None
    return float(m.group(1)) if field == "rss" else float(m.group(2))


row("backlog 300 000 (7 139 partners), `config/borderlane.toml`: serve peak RSS (MiB; ≤ 190)", "backlog", ".txt",
    lambda f: backlog(f, "rss"), ".0f")
row("… backlog rate (/s, partner load and group join included)", "backlog", ".txt", lambda f: backlog(f, "rate"), ".0f")
row("… serve CPU (s)", "backlog", ".txt", lambda f: backlog(f, "cpu"), ".1f")
row("1 M partners: raw consume, median (s)", "partners", ".json", lambda f: kafka(f, ["raw_s"]), ".2f")
row("… batched raw consume, median (s)", "partners", ".json", lambda f: kafka(f, ["raw_batch_s"]), ".2f")
row("… table load, median (s)", "partners", ".json", lambda f: kafka(f, ["table_s"]), ".2f")
row("… table ÷ raw (≥ 0.8)", "partners", ".json", lambda f: kafka(f, ["rate_ratio"]), ".2f")
row("… table ÷ batched raw (≥ 0.8)", "partners", ".json", lambda f: kafka(f, ["batch_ratio"]), ".2f")
row("… table load peak RSS (MiB; ≤ 286)", "partners", ".json", lambda f: kafka(f, ["table_peak_rss_mib"]), ".0f")

print(f"| line (target) | {names[0]} (before) | {names[1]} (after) |")
print("|---|---|---|")
for label, values in rows:
    if any(v != "–" for n in names for v in values[n]):  # a row no build has a figure for is left out
        print(f"| {label} | " + " | ".join(" / ".join(values[n]) or "–" for n in names) + " |")

print()
print("Load average (1, 5, 15 min) before each measurement:")
print()
for f in sorted(glob.glob(os.path.join(run, "*.load"))):
    first = read(f).splitlines()[:1]
    print(f"- {os.path.basename(f)[:-5]}: {first[0].removeprefix('load_before ') if first else '–'}")
