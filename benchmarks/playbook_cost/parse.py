#!/usr/bin/env python3
"""Read one ansible-playbook log (default stdout callback + ansible.posix.profile_tasks).

Pure functions, unit-tested in benchmarks/tests/test_playbook_cost_parse.py:
    parse_recap(text)          PLAY RECAP counters per host
    parse_profile_tasks(text)  profile_tasks' TASKS RECAP: [(task name, seconds)]
    count_task_lines(text)     TASK [...] and RUNNING HANDLER [...] banners
    parse_rollout_hosts(text)  rollout.yml's "<host>: release a -> b in N s" lines
    task_group(name)           the role a task belongs to (or what else it is)
    merge_by_name(rows)        same-named tasks (dynamic includes, serial batches) summed
    summarize(text, wall_seconds, rc)   all of the above for one run

    parse.py LOG --wall SECONDS --rc RC --out RUN.json    (used by playbook_cost.sh)
"""
import argparse
import json
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
RECAP_LINE = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)(?:\s+skipped=(?P<skipped>\d+))?(?:\s+rescued=(?P<rescued>\d+))?"
    r"(?:\s+ignored=(?P<ignored>\d+))?\s*$")
# profile_tasks pads "<name> " with dashes to the terminal width, then " 12.34s"
# right-aligned (dash-filled) in 9 columns; a long name or time leaves no dash.
PROFILE_LINE = re.compile(r"^(?P<name>.*?)\s+-*\s*(?P<seconds>\d+\.\d\d)s\s*$")
TASK_BANNER = re.compile(r"^TASK \[(?P<name>.*)\]")
HANDLER_BANNER = re.compile(r"^RUNNING HANDLER \[(?P<name>.*)\]")
# rollout.yml's per-host summary: "<host>: release <old> -> <new> in 12.3 s; ..."
ROLLOUT_HOST = re.compile(r"(?P<host>[\w.-]+): release (?P<old>\S+) -> (?P<new>\S+) in (?P<seconds>\d+(?:\.\d+)?) s")
COUNTERS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")


def strip_ansi(text):
    return ANSI.sub("", text)


def parse_recap(text):
    """{host: {ok, changed, unreachable, failed, skipped, rescued, ignored}} of the last PLAY RECAP."""
    lines = strip_ansi(text).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("PLAY RECAP")]
    if not starts:
        return {}
    hosts = {}
    for line in lines[starts[-1] + 1:]:
        match = RECAP_LINE.match(line.strip())
        if match:
            hosts[match.group("host")] = {key: int(match.group(key) or 0) for key in COUNTERS}
        elif hosts and not line.strip():
            break
    return hosts


def recap_totals(hosts):
    """Counters summed over hosts, plus task_results: ok + skipped (Ansible's ok already counts the changed ones)."""
    totals = {key: sum(h[key] for h in hosts.values()) for key in COUNTERS}
    totals["task_results"] = totals["ok"] + totals["skipped"]
    return totals


def parse_profile_tasks(text):
    """[(name, seconds)] from the TASKS RECAP that profile_tasks prints, in printed order."""
    lines = strip_ansi(text).splitlines()
    starts = [i for i, line in enumerate(lines) if "TASKS RECAP" in line]
    if not starts:
        return []
    rows = []
    body = lines[starts[-1] + 1:]
    # Skip the timestamp line and the ===== rule that follow the banner.
    for index, line in enumerate(body):
        if set(line.strip()) == {"="}:
            body = body[index + 1:]
            break
    for line in body:
        match = PROFILE_LINE.match(line.rstrip())
        if match and match.group("name").strip():
            rows.append((match.group("name").rstrip(" -") or match.group("name"), float(match.group("seconds"))))
    return rows


def count_task_lines(text):
    """Task and handler banners of the default callback (one per task start, per batch under serial)."""
    tasks = handlers = 0
    for line in strip_ansi(text).splitlines():
        if TASK_BANNER.match(line):
            tasks += 1
        elif HANDLER_BANNER.match(line):
            handlers += 1
    return {"task_banners": tasks, "handler_banners": handlers}


def parse_rollout_hosts(text):
    """{host: seconds} from rollout.yml's per-host summary (switch phase of each host)."""
    return {m.group("host"): float(m.group("seconds")) for m in ROLLOUT_HOST.finditer(strip_ansi(text))}


def task_group(name):
    """Where a task comes from: the role's short name, facts, or the playbook's own tasks."""
    if name == "Gathering Facts":
        return "facts"
    if " : " in name:
        role = name.split(" : ", 1)[0].strip()
        return role.rsplit(".", 1)[-1]
    return "playbook"


def merge_by_name(profile):
    """[(name, seconds summed, count)] over same-named rows, slowest first."""
    merged = {}
    for name, seconds in profile:
        total, count = merged.get(name, (0.0, 0))
        merged[name] = (round(total + seconds, 2), count + 1)
    return sorted(((name, total, count) for name, (total, count) in merged.items()),
                  key=lambda row: row[1], reverse=True)


def summarize(text, wall_seconds, rc, top=10):
    hosts = parse_recap(text)
    profile = parse_profile_tasks(text)
    ordered = merge_by_name(profile)
    by_group = {}
    for name, seconds in profile:
        group = task_group(name)
        by_group[group] = round(by_group.get(group, 0.0) + seconds, 2)
    profiled = round(sum(seconds for _, seconds in profile), 2)
    return {
        "rc": rc,
        "wall_seconds": round(wall_seconds, 2),
        "recap": hosts,
        "totals": recap_totals(hosts) if hosts else {},
        "tasks": dict(count_task_lines(text), profiled_tasks=len(profile)),
        "profiled_seconds": profiled,
        # ansible-playbook start-up, inventory and play loading: what no task timed.
        "untimed_seconds": round(wall_seconds - profiled, 2),
        "seconds_by_group": dict(sorted(by_group.items(), key=lambda kv: kv[1], reverse=True)),
        "rollout_host_seconds": parse_rollout_hosts(text),
        # Same-named tasks merged: a task of a dynamic include is a new task per
        # host and batch for profile_tasks (count: how many were merged).
        "top_tasks": [{"name": name, "seconds": seconds, "count": count} for name, seconds, count in ordered[:top]],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description="Summarize one ansible-playbook log as JSON")
    parser.add_argument("log")
    parser.add_argument("--wall", type=float, required=True, help="wall seconds of the run")
    parser.add_argument("--rc", type=int, required=True, help="exit status of ansible-playbook")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    with open(args.log, encoding="utf-8", errors="replace") as handle:
        summary = summarize(handle.read(), args.wall, args.rc)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
