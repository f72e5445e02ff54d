#!/usr/bin/env python3
"""`confab scrub` of two revisions side by side on the same host, runs interleaved.

    benches/compare/scrub_ab.py BASE_REV [--runs 15] [--bytes 20000000]

Wall-clock rates on a shared host drift from day to day (BENCHMARKS.md records ±30%), so a goal
timed on one day cannot be re-checked on another by timing the new code alone. This script
builds `confab` at BASE_REV (in a temporary git worktree) and at the working tree, generates
the benchmark corpora (ASCII, ~1% non-ASCII, secret-dense: `benches/scrubber.rs`), registers
the ten planted secrets as `run.sh` does, and times both binaries on every corpus in rounds
(one run of each pair per round), so that drift hits every figure alike. It prints, per corpus,
the median CPU time (user + sys) and wall time of each and their ratio, then the ratio of each
new run to each base run across corpora. A rate timed for BASE_REV on a quiet day, divided by
the CPU ratio, is what the new code would have done that day.

Everything stays local; the worktree and the corpora live in a temporary folder removed on exit.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
from measure import run_once  # noqa: E402  (the same timing as every other comparison)


def cargo_build(cwd, target_dir):
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir))
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--bin", "confab"],
        cwd=cwd,
        env=env,
        check=True,
    )
    return Path(target_dir) / "release" / "confab"


def corpus_generator():
    out = subprocess.run(
        ["cargo", "bench", "--bench", "scrubber", "--no-run", "--message-format=json"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        m = json.loads(line)
        if (
            m.get("reason") == "compiler-artifact"
            and m["target"]["name"] == "scrubber"
            and m.get("executable")
        ):
            return m["executable"]
    sys.exit("scrubber bench binary not found")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--bytes", type=int, default=20_000_000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="confab-ab.") as tmp:
        tmp = Path(tmp)
        worktree = tmp / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(worktree), args.base],
            cwd=ROOT,
            check=True,
        )
        try:
            # Its own target dir: the working tree's build is left as it is.
            base = cargo_build(worktree, ROOT / "target" / "ab-base")
            shutil.copy(base, tmp / "confab-base")
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=True
            )
        head = cargo_build(ROOT, ROOT / "target")
        shutil.copy(head, tmp / "confab-head")

        gen = corpus_generator()
        corpora = {
            "ascii": {},
            "non_ascii": {"CONFAB_CORPUS_NON_ASCII": "1"},
            "dense": {"CONFAB_CORPUS_DENSE": "1"},
        }
        for name, extra in corpora.items():
            env = dict(
                os.environ,
                CONFAB_CORPUS_OUT=str(tmp / f"{name}.md"),
                CONFAB_CORPUS_BYTES=str(args.bytes),
                **extra,
            )
            if name == "ascii":
                env["CONFAB_SECRETS_OUT"] = str(tmp / "secrets.txt")
            subprocess.run([gen], env=env, check=True, stdout=subprocess.DEVNULL)
        secrets = (tmp / "secrets.txt").read_text().splitlines()
        (tmp / "secrets.txt").unlink()
        secret_args = []
        for i, s in enumerate(secrets, 1):
            os.environ[f"CONFAB_BENCH_SECRET_{i}"] = s
            secret_args += ["--secret-env", f"CONFAB_BENCH_SECRET_{i}"]

        # Rounds outermost: every (corpus, binary) pair is timed once per round, so a drift of
        # the host's speed hits every figure alike and ratios across corpora hold too.
        times = {(c, w): ([], []) for c in corpora for w in ("base", "head")}
        for i in range(args.runs + 1):
            for name in corpora:
                for which in ("base", "head"):
                    exe = str(tmp / f"confab-{which}")
                    cmd = [exe, "scrub", "--findings", "/dev/null", *secret_args]
                    code, wall, cpu, _ = run_once(cmd, str(tmp / f"{name}.md"), False)
                    if code not in (0, 1):
                        sys.exit(f"{which} exited {code} on {name}")
                    if i > 0:  # the first round warms the page cache
                        times[(name, which)][0].append(cpu)
                        times[(name, which)][1].append(wall)
        cpu = {k: statistics.median(v[0]) for k, v in times.items()}
        wall = {k: statistics.median(v[1]) for k, v in times.items()}
        print(
            f"base {args.base} vs the working tree; {args.runs} rounds after one warm-up, each "
            "timing every corpus with both binaries; medians"
        )
        print()
        print(
            "| corpus | base CPU | new CPU | new/base CPU | base wall | new wall | new/base wall |"
        )
        print("|---|---|---|---|---|---|---|")
        for name in corpora:
            bc, hc = cpu[(name, "base")], cpu[(name, "head")]
            bw, hw = wall[(name, "base")], wall[(name, "head")]
            print(
                f"| {name} | {bc * 1e3:.1f} ms | {hc * 1e3:.1f} ms | {hc / bc:.2f}× "
                f"| {bw * 1e3:.1f} ms | {hw * 1e3:.1f} ms | {hw / bw:.2f}× |"
            )
        print()
        print("CPU time of each new run over each base run (rows: new; columns: base):")
        print()
        print("| new \\ base | " + " | ".join(corpora) + " |")
        print("|---|" + "---|" * len(corpora))
        for new in corpora:
            cells = [f"{cpu[(new, 'head')] / cpu[(old, 'base')]:.2f}×" for old in corpora]
            print(f"| {new} | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
