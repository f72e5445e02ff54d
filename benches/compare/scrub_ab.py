#!/usr/bin/env python3
"""`confab scrub` of two revisions side by side on the same host, runs interleaved.

    benches/compare/scrub_ab.py BASE_REV [--runs 15] [--bytes 20000000]

Wall-clock rates on a shared host drift from day to day (BENCHMARKS.md records ±30%), so a goal
timed on one day cannot be re-checked on another by timing the new code alone. This script
builds `confab` at BASE_REV (in a temporary git worktree) and at the working tree, generates
the benchmark corpora (ASCII, ~1% non-ASCII, secret-dense: `benches/scrubber.rs`), registers
the ten planted secrets as `run.sh` does, and times both binaries on each corpus, alternating
A and B so that drift hits both alike. It prints, per corpus, the median CPU time (user + sys)
and wall time of each and their ratio. A rate timed for BASE_REV on a quiet day, multiplied
by the CPU ratio, is what the new code would have done that day.

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

        print(
            f"base {args.base} vs the working tree; {args.runs} runs each after one warm-up, "
            "interleaved"
        )
        print()
        print(
            "| corpus | base CPU | new CPU | new/base CPU | base wall | new wall | new/base wall |"
        )
        print("|---|---|---|---|---|---|---|")
        for name in corpora:
            times = {"base": ([], []), "head": ([], [])}
            for i in range(args.runs + 1):
                for which in ("base", "head"):
                    exe = str(tmp / f"confab-{which}")
                    cmd = [exe, "scrub", "--findings", "/dev/null", *secret_args]
                    code, wall, cpu, _ = run_once(cmd, str(tmp / f"{name}.md"), False)
                    if code not in (0, 1):
                        sys.exit(f"{which} exited {code} on {name}")
                    if i > 0:
                        times[which][0].append(cpu)
                        times[which][1].append(wall)
            (bc, bw), (hc, hw) = (
                [statistics.median(x) for x in times[w]] for w in ("base", "head")
            )
            print(
                f"| {name} | {bc * 1e3:.1f} ms | {hc * 1e3:.1f} ms | {hc / bc:.2f}× "
                f"| {bw * 1e3:.1f} ms | {hw * 1e3:.1f} ms | {hw / bw:.2f}× |"
            )


if __name__ == "__main__":
    main()
