#!/usr/bin/env python3
"""Summarizes a `make claim-bench` log (.build/claim-bench.log): each claim run
beside the anchor run right after it (Redis for SQLite, pgbench for
PostgreSQL), as ratios, pair by pair and as medians; and the sold-out ratios.

    python3 bench/claim-summary.py .build/claim-bench.log
"""
import json
import re
import statistics
import sys


def main(path):
    store = None
    pending = []  # claim runs waiting for their anchor
    pairs = {"sqlite": [], "postgres": []}  # (runs, anchor rate)
    sold_out = {}
    sold_out_cost = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        header = re.match(r"== (claims|sold out) \((sqlite|postgres)\)", line)
        if header:
            store = header.group(2)
            continue
        if line.startswith("{") and '"holds_per_s"' in line and store:
            summary = json.loads(line)
            if summary["outcomes"].get("HELD", 0) > 1:  # a claim run (the sold-out run holds one unit)
                pending.append((store, summary["concurrency"], summary["holds_per_s"], summary["p99_ms"]))
            continue
        redis = re.match(r'round \d+ -c 50 +: "[^"]*","([0-9.]+)"', line)
        pgbench = re.match(r"round \d+ claim +: tps=([0-9.]+)", line)
        anchor = redis or pgbench
        if anchor:
            kind = "sqlite" if redis else "postgres"
            mine = [(c, h, p) for s, c, h, p in pending if s == kind]
            if mine:
                pairs[kind].append((mine, float(anchor.group(1))))
            pending = [r for r in pending if r[0] != kind]
            continue
        ratio = re.match(r"(.*): sold-out Book / Health/Check \(make bench\) by round: (.*); median ([0-9.]+)", line)
        if ratio and store:
            sold_out[(store, ratio.group(1))] = (ratio.group(2), float(ratio.group(3)))
        cost = re.match(r"(.*): server CPU per call, sold-out Book / Health/Check by round: (.*); median ([0-9.]+)",
                        line)
        if cost and store:
            sold_out_cost[(store, cost.group(1))] = (cost.group(2), float(cost.group(3)))

    names = {"sqlite": ("SQLite", "Redis's Lua decrement (-c 50, not durable)"),
             "postgres": ("PostgreSQL", "pgbench's plain SKIP LOCKED claim, one per transaction")}
    for kind in ("sqlite", "postgres"):
        if not pairs[kind]:
            continue
        title, anchor_name = names[kind]
        print(f"{title}, each run beside {anchor_name} run right after it:")
        by_level = {}
        for n, (mine, anchor) in enumerate(pairs[kind], 1):
            parts = []
            for concurrency, holds, p99 in mine:
                by_level.setdefault(concurrency, []).append(holds / anchor)
                parts.append(f"{concurrency} in flight {holds:,.0f} holds/s (p99 {p99:.0f} ms) = {holds / anchor:.2f}x")
            print(f"  pair {n}: anchor {anchor:,.0f}/s; " + "; ".join(parts))
        for concurrency, ratios in by_level.items():
            print(f"  {concurrency} in flight: median {statistics.median(ratios):.2f}x "
                  f"(pairs {', '.join(f'{r:.2f}' for r in ratios)})")
    for (kind, layout), (rounds, median) in sold_out.items():
        print(f"Sold-out Book / Health/Check, h2load req/s ({names[kind][0]} server, {layout}): median {median:.3f} "
              f"(rounds {rounds})")
        if (kind, layout) in sold_out_cost:
            rounds, median = sold_out_cost[(kind, layout)]
            print(f"  the server's CPU per call, Book / Health/Check: median {median:.3f} (rounds {rounds})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".build/claim-bench.log")
