# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Charts of the benchmarks (matplotlib, Agg backend: no display needed)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def balance_chart(runs, path, title):
    """One panel per concurrency level; per configuration, one bar per worker.

    Bars are the workers' shares of the requests served in the window,
    busiest first; the dashed line over each group is the fair share
    (1 / workers). Workers of the second instance are drawn lighter.
    """
    levels = sorted({r["concurrency"] for r in runs})
    configs = []
    for r in runs:
        if r["config"] not in configs:
            configs.append(r["config"])
    colour = {c: COLOURS[i % len(COLOURS)] for i, c in enumerate(configs)}
    by_key = {(r["config"], r["concurrency"]): r for r in runs}
    top = max([max(r["figures"]["worker_shares"] or [0]) for r in runs] + [0.1])

    fig, axes = plt.subplots(len(levels), 1, figsize=(12, 3.4 * len(levels)), squeeze=False)
    for ax, level in zip(axes[:, 0], levels):
        x = 0.0
        ticks, labels = [], []
        for config in configs:
            run = by_key.get((config, level))
            if run is None:
                continue
            sockets = []
            for w in run["workers"]:
                if w["socket"] not in sockets:
                    sockets.append(w["socket"])
            counted = [w for w in run["workers"] if w["counted"]]
            total = sum(w["requests"] for w in counted) or 1
            bars = sorted(counted, key=lambda w: -w["requests"])
            start = x
            for w in bars:
                light = sockets.index(w["socket"]) > 0
                ax.bar(x, w["requests"] / total, width=0.8, color=colour[config],
                       alpha=0.5 if light else 0.95, edgecolor="black", linewidth=0.3)
                x += 1.0
            fair = run["figures"]["fair_share"]
            if fair:
                ax.hlines(fair, start - 0.45, x - 0.55, colors="black", linestyles="dashed", linewidth=1)
            f = run["figures"]
            ax.text((start + x - 1) / 2.0, top * 1.02,
                    "x%s  G %s\nidle %d  %s req/s" % (
                        "-" if f["busiest_ratio"] is None else "%.2f" % f["busiest_ratio"],
                        "-" if f["gini"] is None else "%.2f" % f["gini"],
                        f["idle_workers"], "-" if f["throughput_rps"] is None else "%.0f" % f["throughput_rps"]),
                    ha="center", va="bottom", fontsize=7.5)
            ticks.append((start + x - 1) / 2.0)
            labels.append(run.get("label") or config)
            x += 1.5
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_ylim(0, top * 1.3)
        ax.set_ylabel("share of requests")
        ax.set_title("concurrency %d" % level, fontsize=10, loc="left")
        ax.grid(axis="y", linewidth=0.3)
    fig.suptitle(title + "\nbars: each worker's share, busiest first (lighter: second instance); "
                 "dashed: fair share; xN: busiest / fair, G: Gini", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
