#!/usr/bin/env python3
"""Writes BENCHMARKS.md from what run.sh collected: its meta file (sizes, load, the 1 GB
run), the timed command runs (measure.py records) and criterion's
`<target>/criterion/**/new/{benchmark,estimates}.json`. Run by run.sh; not meant to be run
by hand except to re-render the same data."""

import argparse
import importlib.metadata
import json
import os
import platform
import re
import subprocess
from pathlib import Path

# ----------------------------------------------------------------------------------------
# Inputs


def read_meta(path):
    meta = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            meta[k] = v
    return meta


def read_results(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            out[r["name"]] = r
    return out


def read_criterion(root):
    """full_id -> {median_ns, lo_ns, hi_ns, throughput}"""
    out = {}
    root = Path(root)
    if not root.is_dir():
        return out
    for bench in root.glob("**/new/benchmark.json"):
        est = bench.with_name("estimates.json")
        if not est.exists():
            continue
        b = json.loads(bench.read_text())
        e = json.loads(est.read_text())["median"]
        out[b["full_id"]] = {
            "median_ns": e["point_estimate"],
            "lo_ns": e["confidence_interval"]["lower_bound"],
            "hi_ns": e["confidence_interval"]["upper_bound"],
            "throughput": b.get("throughput") or {},
        }
    return out


def cmd_out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                kb = int(line.split()[1])
                return f"{kb / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def pkg_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# ----------------------------------------------------------------------------------------
# Formatting


def fmt_time(ns):
    if ns is None:
        return "n/a"
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.2f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.2f} s"


def fmt_rate(per_s, unit):
    if per_s is None:
        return "n/a"
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f} M{unit}/s"
    if per_s >= 1e3:
        return f"{per_s / 1e3:.1f} k{unit}/s"
    return f"{per_s:.1f} {unit}/s"


def fmt_mbs(bytes_per_s):
    if bytes_per_s is None:
        return "n/a"
    if bytes_per_s >= 1e9:
        return f"{bytes_per_s / 1e9:.2f} GB/s"
    return f"{bytes_per_s / 1e6:.1f} MB/s"


def fmt_x(x):
    if x is None:
        return "n/a"
    return f"{x:.1f}×" if x >= 10 else f"{x:.2f}×"


class Crit:
    def __init__(self, data):
        self.data = data

    def ns(self, full_id):
        d = self.data.get(full_id)
        return d["median_ns"] if d else None

    def elements(self, full_id):
        """What one iteration counts (criterion's `Throughput::Elements`), if the bench says."""
        d = self.data.get(full_id)
        return d["throughput"].get("Elements") if d else None

    def per_s(self, full_id):
        """elements/s or bytes/s by the bench's throughput."""
        d = self.data.get(full_id)
        if not d:
            return None
        tp = d["throughput"]
        n = tp.get("Elements") or tp.get("Bytes") or 1
        return n / (d["median_ns"] / 1e9)

    def ci(self, full_id):
        d = self.data.get(full_id)
        if not d:
            return ""
        return f"{fmt_time(d['lo_ns'])} – {fmt_time(d['hi_ns'])}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def verdict(ok):
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**missed**"


# ----------------------------------------------------------------------------------------
# Report

ALGS = [
    ("hs256", "HS256", "floor_hmac_sha256", "bare HMAC-SHA256 (aws-lc-rs, pre-built key)"),
    ("rs256", "RS256 (2048-bit)", "floor_aws_lc_verify", "bare RSA PKCS#1 v1.5 verify (aws-lc-rs, pre-parsed key)"),
    ("ps256", "PS256 (2048-bit)", "floor_aws_lc_verify", "bare RSA-PSS verify (aws-lc-rs, pre-parsed key)"),
    ("es256", "ES256", "floor_aws_lc_verify", "bare ECDSA P-256 verify (aws-lc-rs, pre-parsed key)"),
    ("eddsa", "EdDSA (kid map)", "floor_aws_lc_verify", "bare Ed25519 verify (aws-lc-rs, pre-parsed key)"),
]

REJECTS = [
    ("reject_bad_signature", "bad signature (one character changed)",
     "header parsed, payload decoded, HMAC computed and compared, then refused"),
    ("reject_alg_none", "`alg: none`", "refused at the header, before any cryptography"),
    ("reject_garbage_header", "garbage header (base64url of non-JSON)",
     "refused when the header fails to parse, before any cryptography"),
    ("reject_expired", "issuer-signed but expired",
     "a full verification, refused at the claims"),
]

SCRUB_ROWS = [
    ("confab_full_rules_secrets_0", "confab `scrub`, full rule set, 0 registered secrets",
     "the contender: credentials + PII regex, high-entropy runs, re-scan after redaction"),
    ("confab_full_rules_secrets_10", "confab `scrub`, full rule set, 10 secrets",
     "adds an Aho-Corasick automaton of the 10 secrets and their encodings"),
    ("confab_full_rules_secrets_1000", "confab `scrub`, full rule set, 1,000 secrets",
     "the same with 1,000 secrets (~11 patterns each): what rule-count growth costs"),
    ("confab_stream_secrets_10", "confab `scrub_stream`, 10 secrets (what the CLI runs)",
     "256 KiB chunks with a 16 KiB overlap re-scanned at each step"),
    ("detect_once_secrets_10", "one detection pass, 10 secrets (`is_clean`)",
     "all detectors once, without rendering or the re-scan after a redaction"),
    ("rules_only", "credential + PII regex only", "one detector family alone"),
    ("entropy_only", "high-entropy scan only", "one detector family alone"),
    ("literals_only_1000", "1,000 registered secrets only", "one detector family alone"),
    ("floor_aho_corasick_10", "reference: plain Aho-Corasick, 10 secrets' literals",
     "the same literals (all encodings), one leftmost-longest pass with the crate's defaults: "
     "what a straightforward literal scanner pays, nothing else"),
    ("floor_aho_corasick_1000", "reference: plain Aho-Corasick, 1,000 secrets' literals",
     "the same, 1,000 secrets: the growth the issue allows (\"beyond the Aho-Corasick automaton\")"),
    ("floor_memchr", "floor: memchr of one absent byte", "memory bandwidth: no scanner beats it"),
]

GEN_ROWS = [
    ("generators/token/mint_valid_hs256", "token: `MintContext::mint_valid` (HS256)",
     "claims JSON, base64url and one HMAC"),
    ("generators/token/build_recipe_valid_hs256", "token: `TokenRecipe::mint`, valid family (HS256)",
     "the goal's \"HS256 mint\": a recipe turned into a labelled case"),
    ("generators/token/build_recipe_all_families_hs256", "token: `TokenRecipe::mint`, all 48 families",
     "some families sign with the attacker's RSA/EC/Ed25519 keys, which dominates"),
    ("generators/token/draw_and_build_all_families_hs256", "token: draw from `token_recipe()` + mint, all families",
     "what a property run pays per token case"),
    ("generators/prompt/build", "prompt: `PromptRecipe::build`", "template, canary, obfuscation"),
    ("generators/prompt/draw_and_build", "prompt: draw + build", "what a property run pays per prompt"),
    ("generators/output/build", "output: `OutputRecipe::build`", "a fabricated model turn script"),
    ("generators/output/draw_and_build", "output: draw + build", "what a property run pays per output"),
]


ORACLE_ROWS = [
    ("oracle/hardened/read", "hardened target, `read`", "refusals and served reads: almost every check finds nothing"),
    ("oracle/hardened/assist", "hardened target, `assist`",
     "adds the model calls, the prompt sent upstream and the downstream calls"),
    ("oracle/vulnerable/read", "vulnerable target, `read`", "checks that find bypasses and echoes and build violations"),
    ("oracle/vulnerable/assist", "vulnerable target, `assist`", "the heaviest: leaks in responses, logs and prompts"),
]

CAMPAIGN_ROWS = [
    ("campaign/in_process/read", "whole campaign, `read`, in-process"),
    ("campaign/loopback_http/read", "whole campaign, `read`, loopback HTTP"),
    ("campaign/in_process/assist", "whole campaign, `assist`, in-process"),
    ("campaign/loopback_http/assist", "whole campaign, `assist`, loopback HTTP"),
    ("per_case_one_core/in_process/read", "one case at a time on one core, `read`"),
    ("per_case_one_core/in_process/assist", "one case at a time on one core, `assist`"),
    ("per_case_one_core/in_process/guard_only_service",
     "one case at a time on one core, a service that only runs the guard"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meta", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--criterion", required=True)
    ap.add_argument("--notes")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    meta = read_meta(args.meta)
    res = read_results(args.results)
    crit = Crit(read_criterion(args.criterion))
    notes = Path(args.notes).read_text().splitlines() if args.notes and Path(args.notes).exists() else []

    def rate(name):
        r = res.get(name)
        return r["units"] / r["median_wall_s"] if r and r.get("units") else None

    def wall(name):
        r = res.get(name)
        return r["median_wall_s"] if r else None

    L = []
    w = L.append

    # The revision run.sh measured (a re-render must not name its own).
    git_rev = meta.get("GIT_REV", "unknown")
    if meta.get("CRITERION_REUSED") == "1":
        git_rev += "; criterion figures reused from an earlier run (SKIP_CRITERION=1)"

    w("# Benchmarks")
    w("")
    w("Generated by `benches/compare/run.sh` — do not edit by hand; rerun the script. Every number "
      "below is a median on this machine at the time given; ratios compare runs made on the "
      "same machine in the same session.")
    if meta.get("QUICK") == "1":
        w("")
        w("> **QUICK=1 run**: small sizes and short measurement times. These numbers check that "
          "the script works; they are not the project's figures.")
    w("")
    w("## Machine and versions")
    w("")
    w("| | |")
    w("|---|---|")
    w(f"| date (UTC) | {meta.get('DATE', 'unknown')} |")
    w(f"| CPU | {cpu_model()} |")
    w(f"| cores (nproc) | {os.cpu_count()} |")
    w(f"| memory | {mem_total()} |")
    w(f"| OS | {platform.system()} {platform.release()} |")
    w(f"| load average (1, 5, 15 min) at start / end | {meta.get('LOAD_START', '?')} / {meta.get('LOAD_END', '?')} |")
    w(f"| rustc | {meta.get('RUSTC') or cmd_out('rustc', '-V')} |")
    w(f"| confab | git {git_rev}, `--release` |")
    w(f"| Python | {platform.python_version()} |")
    w(f"| PyJWT | {pkg_version('pyjwt')} (with cryptography {pkg_version('cryptography')}) |")
    w(f"| detect-secrets | {pkg_version('detect-secrets')} |")
    w("")
    w("The machine is shared: a load average above the core count means other work competed "
      "for the CPU and every figure is pessimistic by roughly that much. Criterion figures are "
      "single-threaded; the command-line runs are single-threaded processes (their CPU time is "
      "recorded next to the wall time).")
    w("")
    w("## How to reproduce")
    w("")
    w("```sh")
    w("benches/compare/run.sh            # everything below, ~15 min on 2 cores")
    w("RUNS=5 MEASUREMENT_TIME=5 benches/compare/run.sh   # the defaults used here")
    w("cargo bench --bench guard_token   # one criterion bench on its own")
    w("benches/compare/scrub_ab.py REV   # confab scrub at REV and now, side by side (§11)")
    w("```")
    w("")
    w(f"Criterion: `cargo bench --bench {{guard_token,scrubber,generators,oracle,campaign}} -- --warm-up-time "
      f"{meta.get('WARM_UP_TIME')} --measurement-time {meta.get('MEASUREMENT_TIME')}`; medians of "
      f"the per-iteration sample means. Command-line runs: each command {meta.get('RUNS')} times "
      "after one untimed warm-up run (`benches/compare/measure.py`), median wall time.")
    w("")

    # ---------------- goals
    hs_e2e = ratio(rate("verify_hs256_confab"), rate("verify_hs256_pyjwt"))
    rs_e2e = ratio(rate("verify_rs256_confab"), rate("verify_rs256_pyjwt"))
    hs_decide = crit.ns("guard_token/hs256/confab_decide")
    hs_floor = crit.ns("guard_token/hs256/floor_hmac_sha256")
    hs_vs_floor = ratio(hs_decide, hs_floor)
    hs_decide_vs_py = ratio(crit.per_s("guard_token/hs256/confab_decide"), rate("verify_hs256_pyjwt"))
    rs_decide_vs_py = ratio(crit.per_s("guard_token/rs256/confab_decide"), rate("verify_rs256_pyjwt"))

    def scrub_min(corpus):
        vals = [crit.per_s(f"scrubber/{corpus}/confab_full_rules_secrets_{n}") for n in (0, 10, 1000)]
        return None if None in vals else min(vals)

    def growth(corpus):
        return ratio(crit.ns(f"scrubber/{corpus}/confab_full_rules_secrets_1000"),
                     crit.ns(f"scrubber/{corpus}/confab_full_rules_secrets_0"))

    sa, sn = scrub_min("ascii_20MB"), scrub_min("non_ascii_20MB")
    sd = scrub_min("secret_dense_20MB")
    ga, gn = growth("ascii_20MB"), growth("non_ascii_20MB")
    gen_goal = [crit.per_s(i) for i in ("generators/token/build_recipe_valid_hs256",
                                        "generators/prompt/draw_and_build",
                                        "generators/output/draw_and_build")]
    gen_min = None if None in gen_goal else min(gen_goal)

    def ok(x, pred):
        return None if x is None else pred(x)

    def num(key):
        v = meta.get(key)
        return None if v in (None, "") else float(v)

    def pct(x):
        return "?" if x is None else f"{100 * x:.0f}%"

    h_read = ratio(num("SCAN_READ_RPS"), num("WRK_READ_RPS"))
    h_assist = ratio(num("SCAN_ASSIST_RPS"), num("WRK_ASSIST_RPS"))
    # "cases:peak RSS KB:wall s:requests" per run.
    rss_points = []
    for item in meta.get("SCAN_RSS_POINTS", "").split():
        n, kb, wall_s, reqs = item.split(":")
        rss_points.append((int(n), int(kb), float(wall_s), int(reqs)))
    rss_summary = ", ".join(f"{kb / 1024:.0f} MiB at {n:,} cases" for n, kb, _, _ in rss_points) or "?"
    # Flat: the largest run holds at most 1.5× the smallest run's peak (runtime, buffers and
    # the report are fixed costs; per-case state would grow with the count).
    rss_ok = None if len(rss_points) < 2 else rss_points[-1][1] <= 1.5 * rss_points[0][1]

    w("## Goals")
    w("")
    w("| goal (issue 6, docs/ARCHITECTURE.md §7) | measured | verdict |")
    w("|---|---|---|")
    w(f"| guard HS256 full decision ≥ 25× PyJWT | {fmt_x(hs_e2e)} end to end (`confab verify` vs "
      f"`pyjwt_verify.py`, same file); {fmt_x(hs_decide_vs_py)} for the decision alone (criterion) "
      f"vs PyJWT end to end | {verdict(ok(hs_e2e, lambda x: x >= 25))} |")
    w(f"| guard HS256 within 3× of bare HMAC | {fmt_x(hs_vs_floor)} ({fmt_time(hs_decide)} vs "
      f"{fmt_time(hs_floor)}) | {verdict(ok(hs_vs_floor, lambda x: x <= 3))} |")
    w(f"| guard RS256 ≥ 3× PyJWT | {fmt_x(rs_e2e)} end to end; {fmt_x(rs_decide_vs_py)} for the "
      f"decision alone | {verdict(ok(rs_e2e, lambda x: x >= 3))} |")
    w(f"| scrubber ≥ 500 MB/s per core, full rule set, ASCII corpus | slowest of 0/10/1,000 "
      f"secrets: {fmt_mbs(sa)} | {verdict(ok(sa, lambda x: x >= 500e6))} |")
    w(f"| scrubber ≥ 500 MB/s per core, full rule set, ~1% non-ASCII corpus | {fmt_mbs(sn)} | "
      f"{verdict(ok(sn, lambda x: x >= 500e6))} |")
    w(f"| scrubber ≥ 500 MB/s per core, full rule set, secret-dense corpus (issue 14) | "
      f"slowest of 0/10/1,000 secrets: {fmt_mbs(sd)} | {verdict(ok(sd, lambda x: x >= 500e6))} |")
    proc_dense = rate("scrub_dense_confab_secrets10")
    w(f"| `confab scrub` ≥ 500 MB/s per core as a whole process (start-up, I/O, findings "
      f"written), secret-dense corpus, 10 secrets (issue 14) | {fmt_mbs(proc_dense)} (§4) | "
      f"{verdict(ok(proc_dense, lambda x: x >= 500e6))} |")
    w(f"| scrubber cost not growing with rule count (1,000 vs 0 secrets within 1.25×) | "
      f"{fmt_x(ga)} ASCII, {fmt_x(gn)} non-ASCII | "
      f"{verdict(None if ga is None or gn is None else max(ga, gn) <= 1.25)} |")
    w(f"| generators ≥ 200k cases/s per core (HS256 token mint, prompt, output) | slowest: "
      f"{fmt_rate(gen_min, ' cases')} | {verdict(ok(gen_min, lambda x: x >= 200e3))} |")
    w(f"| harness ≥ 50% of `wrk`'s requests/s on the same endpoint (reference target, loopback) "
      f"| {pct(h_read)} on the endpoint without the model, {pct(h_assist)} on the one with it | "
      f"{verdict(None if h_read is None or h_assist is None else min(h_read, h_assist) >= 0.5)} |")
    w(f"| `confab scan` memory does not grow per case | peak RSS {rss_summary} | "
      f"{verdict(rss_ok)} |")
    w("")

    # ---------------- guard, criterion
    w("## 1. Guard: one decision per token (criterion, `benches/guard_token.rs`)")
    w("")
    w("Each group decides the same freshly signed access token (RFC 9068 shape: iss, sub, aud, "
      "exp, nbf, iat, jti, scope) three ways: `Guard::decide` as configured by the example spec of "
      "that algorithm (bearer header, structure, JOSE header policy, signature, "
      "iss/aud/exp/nbf/sub, scope `docs:read`); the bare signature check with a pre-built "
      "aws-lc-rs key (the floor); and plain `jsonwebtoken::decode` (12.0, aws-lc-rs backend) "
      "with the equivalent `Validation` (pinned algorithm, iss, aud, exp, nbf, leeway, required "
      "exp/nbf/iss/aud/sub) plus the same scope check (the library baseline).")
    if notes:
        w("")
        w("Token sizes: " + "; ".join(
            n.split("/", 1)[1] for n in notes if n.startswith("guard_token/")) + ".")
    w("")
    w("| algorithm | contender | median | tokens/s | vs floor | what it means |")
    w("|---|---|---|---|---|---|")
    for key, label, floor, floor_label in ALGS:
        g = f"guard_token/{key}"
        fl = crit.ns(f"{g}/{floor}")
        d = crit.ns(f"{g}/confab_decide")
        j = crit.ns(f"{g}/jsonwebtoken_decode")
        w(f"| {label} | confab `Guard::decide` | {fmt_time(d)} | {fmt_rate(crit.per_s(g + '/confab_decide'), '')} "
          f"| {fmt_x(ratio(d, fl))} | the full decision costs {fmt_x(ratio(d, fl))} the signature check alone |")
        w(f"| | {floor_label} | {fmt_time(fl)} | {fmt_rate(crit.per_s(g + '/' + floor), '')} | 1× "
          f"| the floor: no guard can decide faster |")
        pp = crit.ns(f"{g}/aws_lc_verify_key_parsed_per_call")
        if pp is not None:
            w(f"| | same verify, key parsed on every call | {fmt_time(pp)} | "
              f"{fmt_rate(crit.per_s(g + '/aws_lc_verify_key_parsed_per_call'), '')} | {fmt_x(ratio(pp, fl))} "
              f"| what `jsonwebtoken::crypto::verify` (and so the guard) pays: the key is re-parsed per token |")
        jr = ratio(j, d)
        if jr is None:
            cmp = "not measured"
        elif jr >= 1:
            cmp = f"confab decides {fmt_x(jr)} as fast as the library baseline"
        else:
            cmp = f"confab takes {fmt_x(1 / jr)} the library baseline's time"
        w(f"| | `jsonwebtoken::decode` + scope | {fmt_time(j)} | {fmt_rate(crit.per_s(g + '/jsonwebtoken_decode'), '')} "
          f"| {fmt_x(ratio(j, fl))} | {cmp} |")
    w("")
    w("Rejections (HS256 spec), which must cost no more than an acceptance:")
    w("")
    w("| token | median | vs acceptance | what it means |")
    w("|---|---|---|---|")
    for name, label, meaning in REJECTS:
        t = crit.ns(f"guard_token/hs256/{name}")
        w(f"| {label} | {fmt_time(t)} | {fmt_x(ratio(t, hs_decide))} | {meaning} |")
    w("")

    # ---------------- guard, end to end
    hs_n, rs_n = meta.get("HS_LINES"), meta.get("RS_LINES")
    w("## 2. Guard vs PyJWT, end to end (`confab verify` vs `benches/compare/pyjwt_verify.py`)")
    w("")
    w(f"`confab tokens --family valid` mints {hs_n} HS256 header lines "
      f"({meta.get('HS_TOKEN_BYTES', '?')}-byte tokens) and {rs_n} RS256 lines "
      f"({meta.get('RS_UNIQUE', '?')} distinct {meta.get('RS_TOKEN_BYTES', '?')}-byte tokens repeated; "
      f"minting RSA is slow) at a fixed `--now {meta.get('NOW')}`. Both verifiers read the file "
      "on stdin and write one JSON line per token; the PyJWT driver does what the guard does "
      "(algorithm pinned, signature, `typ` where the spec requires it, iss, aud, exp, nbf with "
      "the spec's leeway, required exp/nbf/iss/aud/sub, scope) and its output was checked to be "
      f"byte-identical to `confab verify`'s before timing ({meta.get('HS256_ACCEPTED', '?')} and "
      f"{meta.get('RS256_ACCEPTED', '?')} accepted). Times include process start-up and I/O.")
    w("")
    w("| run | median wall | CPU | tokens/s | confab ÷ PyJWT | what it means |")
    w("|---|---|---|---|---|---|")
    for alg, label in (("hs256", "HS256"), ("rs256", "RS256")):
        c, p = f"verify_{alg}_confab", f"verify_{alg}_pyjwt"
        rc, rp = rate(c), rate(p)
        for name, who in ((c, "confab verify"), (p, "PyJWT 2.x driver")):
            r = res.get(name)
            cpu = f"{r['median_cpu_s']:.2f} s" if r else "n/a"
            if name == c:
                meaning = (f"confab decides {label} tokens {fmt_x(ratio(rc, rp))} as fast as PyJWT "
                           "on one core, JSON output included")
                x = fmt_x(ratio(rc, rp))
            else:
                meaning = "the Python service a user would otherwise write"
                x = "1×"
            w(f"| {label} {who} | {fmt_time(wall(name) * 1e9) if wall(name) else 'n/a'} | {cpu} | "
              f"{fmt_rate(rate(name), '')} | {x} | {meaning} |")
    w("")
    w("For scale, peer figures measured separately on this kind of machine: PyJWT 36.9k HS256/s and "
      "21.7k RS256/s with the decode call alone.")
    w("")

    # ---------------- scrubber, criterion
    w("## 3. Scrubber throughput (criterion, `benches/scrubber.rs`)")
    w("")
    w("The corpus is generated in code, seeded (`benches/compare/corpus.rs`): LLM-style "
      "markdown answers (prose with inline code and links, lists, fenced Python/Rust/shell/JSON/"
      "YAML, tables, UUIDs, git hashes) where about one answer in three carries a planted value: "
      "AWS, GitHub, OpenAI, Slack and Stripe keys, JWTs in `Authorization` headers, PEM private "
      "keys, emails, phone numbers, a test card number, an SSN, or one of the ten registered "
      "secrets (raw or inside a base64 `Basic` credential). The non-ASCII variant uses the "
      "punctuation models print (“ ” ’ — … é).")
    corpus_notes = [n for n in notes if n.startswith("scrubber/")]
    if corpus_notes:
        w("")
        for n in corpus_notes:
            w(f"- {n}")
    w("")
    for corpus, title in (("ascii_20MB", "ASCII corpus"), ("non_ascii_20MB", "~1% non-ASCII corpus"),
                          ("secret_dense_20MB", "secret-dense corpus (a planted value in every "
                           "response, ~1% non-ASCII)")):
        w(f"### {title}")
        w("")
        w("| scanner | median per 20 MiB | MB/s | vs confab (0 secrets) | what it means |")
        w("|---|---|---|---|---|")
        base = crit.ns(f"scrubber/{corpus}/confab_full_rules_secrets_0")
        for name, label, meaning in SCRUB_ROWS:
            fid = f"scrubber/{corpus}/{name}"
            t = crit.ns(fid)
            w(f"| {label} | {fmt_time(t)} | {fmt_mbs(crit.per_s(fid))} | "
              f"{fmt_x(ratio(base, t))} faster | {meaning} |" if t and base and t < base else
              f"| {label} | {fmt_time(t)} | {fmt_mbs(crit.per_s(fid))} | "
              f"{fmt_x(ratio(t, base))} the time | {meaning} |")
        w("")
    w("### One 8 KiB response")
    w("")
    w("| case | median | MB/s | what it means |")
    w("|---|---|---|---|")
    for name, meaning in (
        ("clean_secrets_10", "what a clean answer costs with 10 registered secrets"),
        ("clean_secrets_1000", "the same with 1,000 registered secrets"),
        ("one_finding_secrets_10", "one GitHub token in the answer: redaction plus the re-scan"),
    ):
        fid = f"scrubber/response_8KB/{name}"
        w(f"| {name.replace('_', ' ')} | {fmt_time(crit.ns(fid))} | {fmt_mbs(crit.per_s(fid))} | {meaning} |")
    w("")

    # ---------------- scrubber CLI
    cb = int(meta.get("CORPUS_BYTES", "0"))
    db = int(meta.get("DS_BYTES", "0"))
    w("## 4. Scrubber vs detect-secrets (`confab scrub` vs `detect-secrets scan`)")
    w("")
    w(f"Files generated by the same code: {cb / 1e6:.0f} MB (ASCII and non-ASCII) for confab, "
      f"{db / 1e6:.1f} MB for detect-secrets (it is ~1,000× slower; scaled to keep each run "
      "short). `confab scrub` writes the redacted text to /dev/null and its findings to "
      "/dev/null (`--findings`); `detect-secrets scan` writes its JSON baseline to /dev/null. "
      "Registered secrets go to confab with `--secret-env`.")
    w("")
    w("| run | input | median wall | CPU | MB/s | vs detect-secrets | what it means |")
    w("|---|---|---|---|---|---|---|")
    ds = rate("scan_small_detect_secrets")
    for name, label, size, meaning in (
        ("scrub_ascii_confab", "confab scrub, full rule set", cb, "the CLI on the ASCII corpus"),
        ("scrub_ascii_confab_secrets10", "confab scrub, full rules + 10 secrets", cb, "what a harness run registers"),
        ("scrub_non_ascii_confab_secrets10", "confab scrub, full rules + 10 secrets", cb, "non-ASCII corpus"),
        ("scrub_dense_confab_secrets10", "confab scrub, full rules + 10 secrets", cb,
         "secret-dense corpus (issue 14)"),
        ("scrub_small_confab", "confab scrub, full rule set", db, "same input as detect-secrets (start-up weighs more)"),
        ("scan_small_detect_secrets", "detect-secrets scan (default plugins)", db, "the tool users run today"),
    ):
        r = res.get(name)
        cpu = f"{r['median_cpu_s']:.2f} s" if r else "n/a"
        x = "1×" if name.startswith("scan_") else f"{fmt_x(ratio(rate(name), ds))} faster"
        w(f"| {label} | {size / 1e6:.1f} MB{' non-ASCII' if 'non_ascii' in name else ' secret-dense' if 'dense' in name else ''} | "
          f"{fmt_time(wall(name) * 1e9) if wall(name) else 'n/a'} | {cpu} | {fmt_mbs(rate(name))} | {x} | {meaning} |")
    w("")
    w("detect-secrets and confab do not report the same things (detect-secrets has no PII rules and "
      "flags hex strings; confab registers exact secrets and redacts), so the ratio is one of cost "
      "for the job each does on LLM output, not of equal work.")
    w("")

    # ---------------- memory
    sb = int(meta.get("STREAM_BYTES", "0"))
    rss = meta.get("STREAM_RSS_KB")
    sw = meta.get("STREAM_WALL_S")
    w("## 5. Bounded memory: `confab scrub` on a 1 GB pipe")
    w("")
    w("```sh")
    w(f"CONFAB_CORPUS_OUT=- CONFAB_CORPUS_BYTES={sb} <scrubber bench binary> \\")
    w("  | /usr/bin/time -f '%M %e' confab scrub --findings /dev/null --secret-env … > /dev/null")
    w("```")
    w("")
    if rss:
        mb_s = sb / float(sw) if sw and float(sw) > 0 else None
        w(f"| stream | peak RSS of `confab scrub` | wall | MB/s |")
        w("|---|---|---|---|")
        w(f"| {sb / 2**30:.2f} GiB generated on the fly | {int(rss) / 1024:.1f} MiB | {sw} s | {fmt_mbs(mb_s)} |")
        w("")
        w(f"The scrubber holds {int(rss) / 1024:.1f} MiB at most while {sb / 2**30:.2f} GiB pass "
          "through it: memory is bounded by the chunk, the overlap and the compiled rules, not by "
          "the input. The generator shares the two cores, so the rate here is lower than in §4.")
    else:
        w("not measured")
    w("")

    # ---------------- generators
    w("## 6. Case generation (criterion, `benches/generators.rs`)")
    w("")
    w("Recipes come from a fixed seed. `build` turns a pre-drawn recipe into a case; "
      "`draw_and_build` also draws the recipe from its proptest strategy. Token cases are minted "
      "against `examples/specs/docs-hs256.toml`.")
    w("")
    w("| generator | median | cases/s | vs 200k/s goal | what it means |")
    w("|---|---|---|---|---|")
    for fid, label, meaning in GEN_ROWS:
        w(f"| {label} | {fmt_time(crit.ns(fid))} | {fmt_rate(crit.per_s(fid), '')} | "
          f"{fmt_x(ratio(crit.per_s(fid), 200e3))} | {meaning} |")
    w("")

    # ---------------- oracle
    w("## 7. Oracle checks (criterion, `benches/oracle.rs`)")
    w("")
    w("Exchanges are recorded once from the embedded reference target called in-process (1,024 "
      "cases per row, drawn as a campaign draws them, seed 3); then `Session::judge` checks them "
      "again one after another: the case and run facts, then every invariant of docs/ARCHITECTURE.md §4. "
      "Nothing is sent while timing. The recorded exchanges and their violations:")
    w("")
    for line in notes:
        if line.startswith("oracle/"):
            w(f"- `{line}`")
    w("")
    w("| exchanges | median per check | checks/s | what it means |")
    w("|---|---|---|---|")
    for fid, label, meaning in ORACLE_ROWS:
        w(f"| {label} | {fmt_time(crit.ns(fid))} | {fmt_rate(crit.per_s(fid), '')} | {meaning} |")
    w("")

    # ---------------- campaigns (issue 8)
    w("## 8. Campaigns: in-process next to loopback HTTP (criterion, `benches/campaign.rs`)")
    w("")
    whole = crit.elements("campaign/in_process/read")
    whole_text = "?" if whole is None else f"{whole:,}"
    w(f"The reference target, hardened. A whole campaign is {whole_text} cases after the "
      "baselines at "
      "concurrency 8 on a 2-thread runtime: the service called as a function "
      "(`campaign::run_in_process`, what `confab::testing` runs) or served on a loopback port. "
      "Per case: `Session::run_case` one after another on a current-thread runtime, as a "
      "`confab::testing::Harness` property test runs cases: minting, the service, the fake model "
      "and sink, the oracle.")
    w("")
    w("| run | median | cases/s | what it means |")
    w("|---|---|---|---|")
    for fid, label in CAMPAIGN_ROWS:
        # Cases per iteration: the bench's own throughput (benches/campaign.rs, CASES).
        n = crit.elements(fid) or 1
        per = "per case" if n == 1 else f"per {n:,} cases"
        w(f"| {label} | {fmt_time(crit.ns(fid))} {per} | {fmt_rate(crit.per_s(fid), '')} | "
          f"{'every case judged by the oracle' if n > 1 else 'the per-core cost of a case'} |")
    w("")

    # ---------------- harness vs wrk
    c = meta.get("HARNESS_C", "?")
    w("## 9. The harness next to `wrk` (`benches/compare/harness.sh`)")
    w("")
    w(f"The reference target (`confab reference-target`, hardened, HS256) runs on loopback, wired "
      f"as a campaign wires it: its documents API and its OpenAI-compatible model are the "
      f"harness's own fake sink and fake model (started by the scrubber bench binary with "
      f"`CONFAB_SERVE_FAKES`). `wrk -t1 -c{c}` loads one endpoint for "
      f"{meta.get('HARNESS_WRK_SECONDS', '?')} s with one valid token (every request accepted "
      f"and served; a non-2xx answer fails the step); `confab scan --concurrency {c} --endpoint E "
      f"--cases {meta.get('HARNESS_SCAN_CASES', '?')}` runs its generated cases (valid and hostile "
      f"tokens, prompts and payloads, each judged by the oracle) against its own instance of the "
      f"same target, and its requests/s is `stats.requests` ÷ `stats.duration_ms` from its JSON "
      f"report. Medians of {meta.get('HARNESS_RUNS', '?')} runs. "
      f"Both share the machine's {os.cpu_count()} cores with the target, so this is a ratio of "
      f"throughputs under the same contention, not of harness CPU alone.")
    w("")
    w("| endpoint | `wrk` req/s | `confab scan` req/s | scan ÷ wrk | what it means |")
    w("|---|---|---|---|---|")
    for ep, label, meaning in (
        ("READ", "`GET /docs/{id}` (guard, downstream call, no model)",
         "the harness's cost per request next to a load generator that checks nothing"),
        ("ASSIST", "`POST /assist` (guard, fake model, downstream)",
         "the same with a model call in every request"),
    ):
        wr, sr = num(f"WRK_{ep}_RPS"), num(f"SCAN_{ep}_RPS")
        w(f"| {label} | {fmt_rate(wr, '')} | {fmt_rate(sr, '')} | {pct(ratio(sr, wr))} | {meaning} |")
    w("")
    w("For scale, measured separately on this kind of machine: a Flask + PyJWT service under gunicorn (2 workers) reaches 5.1k req/s "
      "with wrk on this kind of machine.")
    w("")
    w("### Peak memory of `confab scan` by case count")
    w("")
    w("Both endpoints, same concurrency; peak RSS is GNU time's maximum resident set "
      "size of the `confab scan` process (the target is a separate process).")
    w("")
    w("| cases | requests | wall | peak RSS |")
    w("|---|---|---|---|")
    for n, kb, wall_s, reqs in rss_points:
        w(f"| {n:,} | {reqs:,} | {wall_s:.1f} s | {kb / 1024:.1f} MiB |")
    w("")

    # Not measured by run.sh, so kept verbatim from hand-written files: §10 by the precision
    # suite, §11 by hand (callgrind counts, side-by-side runs).
    for name in ("precision.md", "instructions.md"):
        section = Path(__file__).with_name(name)
        if section.exists():
            L.extend(section.read_text().rstrip("\n").split("\n"))
            w("")

    Path(args.out).write_text("\n".join(L))


if __name__ == "__main__":
    main()
