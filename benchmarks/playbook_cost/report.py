#!/usr/bin/env python3
"""Facts of the machine, and the playbook-cost report (JSON, markdown table, PNG).

    report.py facts --out FILE             machine facts, load and other containers now
    report.py pipcache DIR --out FILE      what the shared pip cache holds now
    report.py report --work DIR --out RESULTS_DIR
        reads DIR/facts-start.json, DIR/hosts-<N>/{site-first,site-again,rollout}.json
        and DIR/hosts-<N>/pip-cache.json; writes playbook_cost.{json,md,png}
"""
import argparse
import datetime
import glob
import json
import os
import platform
import subprocess
import sys

RUNS = [
    ("site-first", "site.yml, first converge"),
    ("site-again", "site.yml, idempotent re-run"),
    ("rollout", "rollout.yml, second release"),
]


def short(name):
    """A task name without the collection prefix of its role."""
    return name.replace("webstack.django_uwsgi.", "")


def _cmd(*argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_facts():
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = 0
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
    except OSError:
        pass
    containers = [name for name in _cmd("docker", "ps", "--format", "{{.Names}}").splitlines() if name]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "loadavg": list(os.getloadavg()),
        "running_containers": containers,
        "docker": _cmd("docker", "version", "--format", "{{.Server.Version}}"),
        "ansible_core": _cmd("ansible", "--version").splitlines()[0] if _cmd("ansible", "--version") else "",
        "python": platform.python_version(),
    }


def pip_cache(path):
    files = size = 0
    wheels = []
    for root, _, names in os.walk(path):
        for name in names:
            files += 1
            try:
                size += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
            if name.endswith(".whl") and name.lower().startswith("uwsgi-"):
                wheels.append(name)
    http = any(os.path.isdir(os.path.join(path, d)) for d in ("http", "http-v2"))
    return {"path": os.path.basename(path.rstrip("/")), "files": files, "mib": round(size / 1024 / 1024, 1), "uwsgi_wheels": sorted(wheels),
            "http_cache": http}


def slope(points):
    """Least-squares seconds per added host over (hosts, seconds) points."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return round(sum((x - mx) * (y - my) for x, y in points) / den, 1) if den else None


def growth(results):
    """Per run type: seconds at each N, per added host, and largest/smallest ratio."""
    out = {}
    for key, _ in RUNS:
        points = sorted((int(n), r[key]["wall_seconds"]) for n, r in results.items()
                        if key in r and r[key].get("rc") == 0)
        if not points:
            continue
        entry = {"seconds": {str(x): y for x, y in points}, "seconds_per_added_host": slope(points)}
        if len(points) >= 2:
            (x0, y0), (x1, y1) = points[0], points[-1]
            entry[f"ratio_{x1}_to_{x0}_hosts"] = round(y1 / y0, 2) if y0 else None
            entry["steps"] = [{"from": a, "to": b, "added_seconds": round(yb - ya, 1),
                               "per_host": round((yb - ya) / (b - a), 1)}
                              for (a, ya), (b, yb) in zip(points, points[1:])]
        out[key] = entry
    return out


def load(work):
    results = {}
    for directory in sorted(glob.glob(os.path.join(work, "hosts-*"))):
        n = directory.rsplit("-", 1)[-1]
        if not n.isdigit():
            continue
        entry = {}
        for key, _ in RUNS:
            path = os.path.join(directory, key + ".json")
            if os.path.exists(path):
                with open(path, encoding="utf-8") as handle:
                    entry[key] = json.load(handle)
        cache = os.path.join(directory, "pip-cache.json")
        if os.path.exists(cache):
            with open(cache, encoding="utf-8") as handle:
                entry["pip_cache_before"] = json.load(handle)
        results[n] = entry
    return dict(sorted(results.items(), key=lambda kv: int(kv[0])))


def markdown(doc):
    facts = doc["machine"]
    lines = [
        f"Playbook cost, {facts['date']} on {facts['nproc']} x {facts['cpu_model']} "
        f"({facts['mem_gib']} GiB; load {facts['loadavg'][0]:.1f} at start, "
        f"{len(facts['running_containers'])} other containers running).",
        f"Ansible: {doc['settings'].get('forks', '?')} forks, pipelining "
        f"{'on' if doc['settings'].get('pipelining') == '1' else 'off'}, docker connection; "
        f"whole command {doc['settings'].get('total_seconds', '?')} s.",
        "",
        "| app hosts | run | wall s | tasks (banners) | task results (ok+skipped) | changed | failed | slowest task (s) |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for n, entry in doc["results"].items():
        for key, label in RUNS:
            run = entry.get(key)
            if not run:
                lines.append(f"| {n} | {label} | not run | | | | | |")
                continue
            totals = run.get("totals", {})
            top = run["top_tasks"][0] if run["top_tasks"] else {"name": "-", "seconds": 0}
            wall = f"{run['wall_seconds']:.1f}" + ("" if run["rc"] == 0 else f" (rc {run['rc']})")
            lines.append(
                f"| {n} | {label} | {wall} | {run['tasks']['task_banners']} | {totals.get('task_results', '')} "
                f"| {totals.get('changed', '')} | {totals.get('failed', '')} | {short(top['name'])} ({top['seconds']:.1f}) |")
    lines += ["", "How time grows with the number of app hosts:", ""]
    for key, label in RUNS:
        g = doc["growth"].get(key)
        if not g:
            continue
        ratio = next((f"{k.replace('ratio_', '').replace('_to_', '/').replace('_hosts', '')} hosts: x{v}"
                      for k, v in g.items() if k.startswith("ratio_")), "")
        per = g["seconds_per_added_host"]
        lines.append(f"- {label}: " + ", ".join(f"{x} host(s) {y:.0f} s" for x, y in g["seconds"].items())
                     + (f"; {per:+.1f} s per added host (least squares)" if per is not None else "")
                     + (f"; {ratio}" if ratio else ""))
    idem = doc["idempotence"]
    lines += ["", "Idempotent re-run: " + ", ".join(
        f"{n} host(s) changed={v['changed']}" + ("" if v["changed"] == 0 else " (NOT idempotent)")
        for n, v in idem.items())]
    largest = doc.get("largest_hosts")
    if largest:
        lines += ["", f"Top 10 slowest tasks with {largest} app hosts (profile_tasks, seconds summed over batches):", ""]
        for key, label in RUNS:
            run = doc["results"][largest].get(key)
            if not run:
                continue
            lines.append(f"- {label}: " + "; ".join(
                f"{short(t['name'])} {t['seconds']:.1f}" + (f" (x{t['count']})" if t.get("count", 1) > 1 else "")
                for t in run["top_tasks"]))
    lines += ["", doc["notes"]["pip_cache"]]
    return "\n".join(lines) + "\n"


def plot(doc, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = doc["results"]
    largest = doc.get("largest_hosts")
    fig = plt.figure(figsize=(15, 11), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.3])
    ax = fig.add_subplot(grid[0, 0])
    for key, label in RUNS:
        pts = sorted((int(n), r[key]["wall_seconds"]) for n, r in results.items() if key in r)
        per = doc["growth"].get(key, {}).get("seconds_per_added_host")
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                    label=label + (f" ({per:+.0f} s per added host)" if per is not None else ""))
            for x, y in pts:
                ax.annotate(f"{y:.0f}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("app hosts (plus one front host)")
    ax.set_ylabel("wall seconds")
    ax.set_xticks(sorted(int(n) for n in results))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Playbook wall time vs number of app hosts")

    if largest:
        ax = fig.add_subplot(grid[0, 1])
        groups = []
        for key, _ in RUNS:
            for group in results[largest].get(key, {}).get("seconds_by_group", {}):
                if group not in groups:
                    groups.append(group)
        labels = [label for key, label in RUNS if key in results[largest]]
        keys = [key for key, _ in RUNS if key in results[largest]]
        left = [0.0] * len(keys)
        colors = plt.get_cmap("tab10")
        for index, group in enumerate(groups + ["(untimed: start-up)"]):
            values = []
            for key in keys:
                run = results[largest][key]
                values.append(max(run["untimed_seconds"], 0) if group.startswith("(untimed")
                              else run["seconds_by_group"].get(group, 0.0))
            ax.barh(labels, values, left=left, label=group, color=colors(index % 10))
            left = [a + b for a, b in zip(left, values)]
        ax.invert_yaxis()
        ax.set_xlabel("seconds by role (profile_tasks); playbook = rollout.yml's own tasks")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4)
        ax.set_title(f"Where the time goes, {largest} app hosts")

        ax = fig.add_subplot(grid[1, :])
        rows = []
        for key, label in RUNS:
            for task in results[largest].get(key, {}).get("top_tasks", [])[:10]:
                name = short(task["name"]) + (f" (x{task['count']})" if task.get("count", 1) > 1 else "")
                name = name if len(name) <= 80 else name[:77] + "..."
                rows.append((f"[{key}] {name}", task["seconds"], key))
        palette = {key: colors(i) for i, (key, _) in enumerate(RUNS)}
        ax.barh([r[0] for r in rows], [r[1] for r in rows], color=[palette[r[2]] for r in rows])
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("seconds")
        ax.set_title(f"Top 10 slowest tasks per run, {largest} app hosts")
        ax.grid(axis="x", alpha=0.3)
    facts = doc["machine"]
    fig.suptitle(f"webstack.django_uwsgi playbook cost - {facts['date']}, {facts['nproc']} x {facts['cpu_model']}, "
                 f"load {facts['loadavg'][0]:.1f} at start\napp host: {doc['settings'].get('app_host', '')}; "
                 f"uWSGI wheel cached: {'yes' if doc['settings'].get('uwsgi_wheel') == '1' else 'no (collection as is)'}",
                 fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def pip_note(bench, results):
    before = {n: r.get("pip_cache_before", {}) for n, r in results.items()}
    held = "; ".join(f"before {n} host(s): {c.get('files', '?')} files, {c.get('mib', '?')} MiB, "
                     f"uWSGI wheels {', '.join(c.get('uwsgi_wheels', [])) or 'none'}" for n, c in before.items())
    if bench.get("uwsgi_wheel") == "1":
        how = ("Containers mount the benchmark's own pip cache ({}); each release venv gets `wheel`, so uWSGI is "
               "built once (warm-up: {}) and every host of every N installs the cached wheel: the same cache for "
               "every N, so the comparison is fair.").format(bench.get("pip_cache", "?"), bench.get("warmup", "?"))
    else:
        how = ("Containers mount the machine's pip cache ({}), as the tests do. The collection as it is: on Debian 12 "
               "the release venv's pip 23.0 has no `wheel`, installs uWSGI the legacy way and caches no build, so "
               "every host compiles uWSGI at its first converge and again at each rollout.").format(
                   bench.get("pip_cache", "?"))
    if before and not any(c.get("http_cache") for c in before.values()):
        how += (" The cache holds no HTTP downloads (no http/ directory): here every requirement is downloaded "
                "from the index at each venv build.")
    return f"pip cache: {how} Cache held: {held}."


def build(work, bench):
    with open(os.path.join(work, "facts-start.json"), encoding="utf-8") as handle:
        facts = json.load(handle)
    results = load(work)
    complete = [n for n, r in results.items() if all(k in r for k, _ in RUNS)]
    doc = {
        "benchmark": "playbook_cost",
        "machine": facts,
        "machine_at_end": machine_facts(),
        "settings": bench,
        "results": results,
        "growth": growth(results),
        "idempotence": {n: {"changed": r["site-again"].get("totals", {}).get("changed"),
                            "idempotent": r["site-again"].get("totals", {}).get("changed") == 0}
                        for n, r in results.items() if "site-again" in r},
        "largest_hosts": max(complete, key=int) if complete else (max(results, key=int) if results else None),
        "notes": {
            "pip_cache": pip_note(bench, results),
            "times": ("wall_seconds: the whole ansible-playbook run; profile_tasks times are wall time per task "
                      "across all hosts at once (summed over batches under serial); untimed_seconds is start-up."),
            "tasks": ("task_banners: TASK lines printed (a task run in N serial batches counts N times); "
                      "profiled_tasks: distinct tasks started; task_results: ok + skipped over every host "
                      "(Ansible's ok already includes changed)."),
        },
    }
    return doc


def main(argv=None):
    parser = argparse.ArgumentParser(description="playbook-cost facts and report")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("facts")
    p.add_argument("--out", required=True)
    p = sub.add_parser("pipcache")
    p.add_argument("path")
    p.add_argument("--out", required=True)
    p = sub.add_parser("report")
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True, help="results directory")
    p.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if args.cmd in ("facts", "pipcache"):
        data = machine_facts() if args.cmd == "facts" else pip_cache(args.path)
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
        return 0
    bench = dict(item.split("=", 1) for item in args.setting)
    doc = build(args.work, bench)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "playbook_cost.json"), "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1)
        handle.write("\n")
    text = markdown(doc)
    with open(os.path.join(args.out, "playbook_cost.md"), "w", encoding="utf-8") as handle:
        handle.write(text)
    plot(doc, os.path.join(args.out, "playbook_cost.png"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
