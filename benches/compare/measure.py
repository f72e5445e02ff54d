#!/usr/bin/env python3
"""Times one command N times (after one untimed warm-up run) and appends a JSON record to a
results file: wall times, CPU (user+sys) times and peak RSS of each run, and their medians.

    measure.py --name NAME --runs 5 --results FILE [--stdin FILE] [--ok 0,1] [--units N]
               [--unit tokens] -- CMD ARG...

stdout of the command goes to /dev/null (its stderr too, unless --keep-stderr), stdin comes
from --stdin. Exit codes outside --ok fail the measurement (and this script).
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time


def run_once(cmd, stdin_path, keep_stderr):
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(
            cmd,
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=None if keep_stderr else subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdin_path:
            stdin.close()
    return p.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--results", required=True)
    ap.add_argument("--stdin")
    ap.add_argument("--ok", default="0")
    ap.add_argument("--units", type=float, help="work per run (lines, bytes) for rates")
    ap.add_argument("--unit", default="")
    ap.add_argument("--keep-stderr", action="store_true")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    ok = {int(c) for c in args.ok.split(",")}

    walls, cpus, rss = [], [], []
    for i in range(args.runs + 1):
        code, wall, cpu, maxrss = run_once(cmd, args.stdin, args.keep_stderr)
        if code not in ok:
            sys.exit(f"measure {args.name}: exit code {code} from {shlex.join(cmd)}")
        if i == 0:
            continue  # warm-up: page cache, lazy statics, CPU frequency
        walls.append(wall)
        cpus.append(cpu)
        rss.append(maxrss)
    record = {
        "name": args.name,
        "command": shlex.join(cmd) + (f" < {args.stdin}" if args.stdin else ""),
        "runs": args.runs,
        "wall_s": walls,
        "cpu_s": cpus,
        "maxrss_kb": rss,
        "median_wall_s": statistics.median(walls),
        "median_cpu_s": statistics.median(cpus),
        "units": args.units,
        "unit": args.unit,
    }
    with open(args.results, "a") as f:
        f.write(json.dumps(record) + "\n")
    rate = ""
    if args.units:
        rate = f", {args.units / record['median_wall_s']:,.0f} {args.unit}/s"
    print(
        f"  {args.name}: median {record['median_wall_s']:.3f} s wall, "
        f"{record['median_cpu_s']:.3f} s CPU{rate}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
