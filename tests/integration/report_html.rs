//! The HTML report (`--format html`, `--out-html`): a self-contained page that loads nothing
//! (no `src`/`href`/`url()`/`@import` to http(s) but links a person clicks), escapes
//! everything the target said, masks keys, shows every finding with its remediation, and a
//! clean bill for a hardened target; rendered in headless Chromium with no console message,
//! no CSP violation and no resource loaded.
//!
//! The browser tests need `chromium` (Debian: `scripts/ensure-apt.sh chromium`; CI installs
//! it): without it they skip with a note, and fail under `CONFAB_REQUIRE_TOOLS=1` (CI).
//! `CONFAB_CHROMIUM` names another binary (e.g. google-chrome).

use crate::common::flask_available;
use confab::oracle::{Invariant, Severity};
use confab::report::html::{self, Masking};
use confab::report::{Example, Finding, Gate, Report, Reproduce, SpecContext, guidance};
use serde_json::{Value, json};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HOSTILE: &str = "<script>alert('pwned')</script>\"><img src=x onerror=alert(1)>\
<link rel=stylesheet href=\"https://evil.example/x.css\"><style>@import url(http://evil.example/y.css)</style>";
const LLM_KEY: &str = "sk-confab-0123456789abcdef0123456789abcdef";

fn hex64() -> String {
    "deadbeef".repeat(8)
}

fn finding(inv: Invariant, sev: Severity, endpoint: &str, kind: &str, cases: u64) -> Finding {
    Finding {
        invariant: inv,
        severity: sev,
        cwe: inv.cwe().iter().map(|s| s.to_string()).collect(),
        owasp: inv.owasp().iter().map(|s| s.to_string()).collect(),
        endpoint: endpoint.to_owned(),
        kind: kind.to_owned(),
        observed: format!("the target answered {HOSTILE}"),
        cases,
        fingerprint: format!("{}/{endpoint}/{kind}", inv.id()),
        example: Example {
            case: format!("endpoint {endpoint}, principal alice, prompt {HOSTILE}"),
            request: format!("POST /assist {HOSTILE}"),
            model_output: vec![
                json!({"content": HOSTILE, "tool_calls": [{"url": "https://evil.example/"}]}),
            ],
            downstream: vec![format!("GET http://127.0.0.1:9/docs/{HOSTILE}")],
            response_status: Some(200),
            response_excerpt: format!(
                "{{\"answer\": \"{HOSTILE}\", \"key\": \"{LLM_KEY}\", \"secret\": \"{}\"}}",
                hex64()
            ),
        },
        reproduce: Reproduce {
            curl: format!(
                "curl -i -X POST 'http://127.0.0.1:1/assist' -H 'Authorization: Bearer a.b.c' --data-raw '{{\"prompt\":\"{HOSTILE}\"}}'"
            ),
            replay: Some(format!(".confab/replays/{kind}.json")),
        },
    }
}

/// Hand-made findings whose every field carries hostile markup and keys.
fn hostile_report() -> (Report, SpecContext) {
    let report = Report {
        confab_version: env!("CARGO_PKG_VERSION").to_owned(),
        target: "http://127.0.0.1:1".to_owned(),
        spec: "examples/my api/spec.toml".to_owned(),
        findings: vec![
            finding(
                Invariant::Cost,
                Severity::Medium,
                "assist",
                "max_tokens_over_cap",
                9,
            ),
            finding(
                Invariant::Echo,
                Severity::High,
                "assist",
                "bearer_token_in_response_body",
                2,
            ),
            finding(
                Invariant::Agency,
                Severity::High,
                "assist",
                "capability_exceeded_delete",
                7,
            ),
            finding(
                Invariant::Agree,
                Severity::Low,
                "read",
                "valid_request_refused",
                30,
            ),
        ],
        stats: crate::common::sample_stats(),
    };
    let ctx = SpecContext {
        path: report.spec.clone(),
        endpoints: crate::common::reference_endpoints(),
    };
    (report, ctx)
}

// --- a pure-Rust check that the page loads nothing -----------------------------------------

/// Every place in `html` that would make a browser fetch an http(s) URL: `src`, `srcset`,
/// `href` (except on `<a>`: a link a person clicks), `action`, `formaction`, `poster`,
/// `data`, `background` attributes of tags, and `url(` / `@import` in `<style>` and `style`
/// attributes. Text content is not scanned: everything the target said is escaped, so it
/// holds no `<` and no tag.
fn external_loads(html: &str) -> Vec<String> {
    const LOADING_ATTRS: [&str; 9] = [
        "src",
        "srcset",
        "href",
        "xlink:href",
        "action",
        "formaction",
        "poster",
        "data",
        "background",
    ];
    let external = |v: &str| {
        let v = v
            .trim()
            .trim_matches(['"', '\''])
            .trim()
            .to_ascii_lowercase();
        v.starts_with("http:") || v.starts_with("https:") || v.starts_with("//")
    };
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>').unwrap_or(after.len());
        let tag = &after[..end];
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        for (attr, value) in attributes(tag) {
            let attr = attr.to_ascii_lowercase();
            if LOADING_ATTRS.contains(&attr.as_str()) && external(&value) {
                if !(name == "a" && attr == "href") {
                    found.push(format!("<{name} {attr}={value}>"));
                }
            } else if attr == "style" {
                found.extend(css_loads(&value));
            }
        }
        rest = &after[end.min(after.len())..];
        if name == "style" {
            let close = rest
                .to_ascii_lowercase()
                .find("</style")
                .unwrap_or(rest.len());
            found.extend(css_loads(&rest[..close]));
            rest = &rest[close..];
        }
    }
    found
}

/// `url(http…)` and `@import` of an http(s) URL in CSS text.
fn css_loads(css: &str) -> Vec<String> {
    let lower = css.to_ascii_lowercase().replace(['"', '\'', ' '], "");
    let mut found = Vec::new();
    for pat in [
        "url(http",
        "url(//",
        "@importhttp",
        "@import//",
        "@importurl(http",
    ] {
        if lower.contains(pat) {
            found.push(format!("css {pat}"));
        }
    }
    found
}

/// The attributes of a tag's inner text (`name a="x" b='y' c=z d`).
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = tag.as_bytes();
    let mut i = b
        .iter()
        .position(|c| c.is_ascii_whitespace())
        .unwrap_or(b.len());
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' {
            i += 1;
        }
        let name = tag[start..i].to_owned();
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vstart = i + 1;
                let vend = b[vstart..]
                    .iter()
                    .position(|c| *c == q)
                    .map_or(b.len(), |p| vstart + p);
                value = tag[vstart..vend].to_owned();
                i = (vend + 1).min(b.len());
            } else {
                let vstart = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = tag[vstart..i].to_owned();
            }
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
}

#[test]
fn the_load_scanner_catches_every_kind_of_external_load() {
    // The scanner must be able to fail: each of these loads something.
    for bad in [
        "<img src=\"https://x.example/a.png\">",
        "<script src='http://x.example/a.js'></script>",
        "<link rel=\"stylesheet\" href=\"https://x.example/a.css\">",
        "<style>@import url(\"https://x.example/a.css\");</style>",
        "<style>body { background: url(http://x.example/a.png) }</style>",
        "<div style=\"background-image: url('https://x.example/a.png')\"></div>",
        "<svg><image xlink:href=\"https://x.example/a.svg\"/></svg>",
        "<iframe src=//x.example/></iframe>",
    ] {
        assert!(!external_loads(bad).is_empty(), "not caught: {bad}");
    }
    // A link a person clicks, and escaped text that merely mentions URLs, are fine.
    for ok in [
        "<a href=\"https://cwe.mitre.org/data/definitions/79.html\">CWE-79</a>",
        "<pre>&lt;img src=&quot;https://x.example/a.png&quot;&gt; url(https://x)</pre>",
        "<link rel=\"icon\" href=\"data:,\">",
    ] {
        assert!(external_loads(ok).is_empty(), "false alarm: {ok}");
    }
}

#[test]
fn a_report_of_hostile_findings_loads_nothing_and_escapes_everything() {
    let (report, ctx) = hostile_report();
    let page = html::render(&report, &ctx, &Gate::default());
    assert_eq!(external_loads(&page), Vec::<String>::new());
    // One script: confab's own, in <head>. The target's markup is text.
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    assert!(
        !page.contains("<img"),
        "an <img> tag from the target survived"
    );
    assert!(!page.contains("onerror=alert(1)>"));
    assert!(!page.contains("<link rel=stylesheet"));
    assert!(page.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // The CSP meta tag, strict.
    let csp = html::content_security_policy();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src "))
        .unwrap_or_default();
    assert!(
        script_src.starts_with("script-src 'sha256-") && !script_src.contains("unsafe"),
        "{csp}"
    );
    assert!(page.contains("http-equiv=\"Content-Security-Policy\""));
    // Keys the target echoed are masked; the test credential note is there.
    assert!(!page.contains(LLM_KEY), "the LLM API key is in the page");
    assert!(
        !page.contains(&hex64()),
        "a generated signing key is in the page"
    );
    assert!(page.contains("[masked:api_key]") && page.contains("[masked:key]"));
    assert!(page.contains("short-lived test credentials"));
}

#[test]
fn literal_secrets_of_the_spec_are_masked_with_their_encodings() {
    let (mut report, ctx) = hostile_report();
    let secret = "spec-literal-signing-secret";
    let b64 = "c3BlYy1saXRlcmFsLXNpZ25pbmctc2VjcmV0"; // base64 of it
    report.findings[0].example.response_excerpt = format!("{secret} and {b64}");
    let mask = Masking::with_secrets(&[("auth.secret".to_owned(), secret.into())]);
    let page = html::render_masked(&report, &ctx, &Gate::default(), &mask);
    assert!(!page.contains(secret) && !page.contains(b64));
    // Without it, the control: the text is there (the check above is not vacuous).
    let plain = html::render(&report, &ctx, &Gate::default());
    assert!(plain.contains(secret));
}

#[test]
fn findings_are_listed_by_severity_then_cases_each_with_its_remediation() {
    let (report, ctx) = hostile_report();
    let page = html::render(&report, &ctx, &Gate::default());
    // ECHO high 2 cases, AGENCY high 7 cases, COST medium, AGREE low: AGENCY first.
    let order: Vec<usize> = [
        "capability_exceeded_delete",
        "bearer_token_in_response_body",
        "max_tokens_over_cap",
        "valid_request_refused",
    ]
    .iter()
    .map(|k| {
        page.find(&format!(": {k} <span"))
            .unwrap_or_else(|| panic!("{k} missing"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    for (n, f) in report.findings.iter().enumerate() {
        assert!(page.contains(&format!("id=\"finding-{}\"", n + 1)));
        assert!(page.contains(&format!("id=\"fix-{}\"", f.invariant.id())));
        assert!(page.contains(&format!("href=\"#fix-{}\"", f.invariant.id())));
    }
    for id in ["chart-invariant", "chart-severity", "chart-endpoint"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(page.contains("href=\"https://cwe.mitre.org/data/definitions/918.html\""));
    assert!(page.contains("href=\"https://genai.owasp.org/llmrisk/llm062025-excessive-agency/\""));
    assert!(page.contains("confab replay .confab/replays/capability_exceeded_delete.json"));
    assert!(!page.contains("Clean bill"));
}

#[test]
fn an_empty_report_is_a_clean_bill() {
    let (mut report, ctx) = hostile_report();
    report.findings.clear();
    let page = html::render(&report, &ctx, &Gate::default());
    assert!(page.contains("Clean bill: no findings."));
    assert!(!page.contains("id=\"finding-1\""));
    assert_eq!(
        page.matches("<span class=\"tag\">held</span>").count(),
        Invariant::ALL.len()
    );
}

// --- the browser ---------------------------------------------------------------------------

/// The Chromium binary, `None` when the test skips (see `common::Tool`).
fn chromium() -> Option<PathBuf> {
    if !crate::common::require(crate::common::Tool::Chromium) {
        return None;
    }
    crate::common::chromium_path()
}

/// What headless Chromium made of a page.
struct Rendered {
    dom: String,
    /// Console messages Chromium logged (`--enable-logging=stderr`: `INFO:CONSOLE…` lines).
    console: Vec<String>,
}

/// Loads `file` (with `#fragment`) in headless Chromium and returns the DOM after load.
///
/// How errors and external requests are caught, three ways that do not depend on each other:
/// - the page's own script notes every `error` event and every `securitypolicyviolation`
///   (the CSP blocks any fetch and any script but confab's) as `data-errors` on `<html>`
///   and a list in `#confab-errors`, and after `load` writes in `data-resources` how many
///   resources the page loaded (Resource Timing): these are in the dumped DOM;
/// - `--enable-logging=stderr --v=0` makes Chromium print every console message (errors,
///   CSP reports, a failed load) as a `CONSOLE` line on stderr; the page logs nothing, so
///   any such line fails the test;
/// - `--host-resolver-rules` resolves no host name but localhost, so even a load that
///   slipped past all that could not reach the network (the tests stay on loopback).
///
/// The browser is killed after 60 s (its helper processes exit with it); its profile is a
/// temporary folder removed afterwards.
fn render_in_browser(browser: &Path, file: &Path, fragment: &str) -> Rendered {
    let profile = tempfile::tempdir().expect("profile dir");
    let out_path = profile.path().join("dom.html");
    let err_path = profile.path().join("stderr.txt");
    let out = std::fs::File::create(&out_path).expect("dom file");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let url = format!("file://{}#{fragment}", file.display());
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-extensions",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--no-pings",
        "--enable-logging=stderr",
        "--v=0",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
        "--virtual-time-budget=3000",
    ])
    .arg(format!(
        "--user-data-dir={}",
        profile.path().join("profile").display()
    ))
    .arg("--dump-dom")
    .arg(&url)
    .stdin(Stdio::null())
    .stdout(out)
    .stderr(err);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                kill(&mut child);
                panic!(
                    "{} did not finish rendering {url} within 60 s (killed)",
                    browser.display()
                );
            }
            Err(e) => {
                kill(&mut child);
                panic!("waiting for {}: {e}", browser.display());
            }
        }
    };
    let read = |p: &Path| {
        let mut s = String::new();
        std::fs::File::open(p)
            .and_then(|mut f| f.read_to_string(&mut s))
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        s
    };
    let dom = read(&out_path);
    let stderr = read(&err_path);
    assert!(
        status.success() && dom.contains("</html>"),
        "{} failed on {url} ({status}); stderr:\n{stderr}",
        browser.display()
    );
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    Rendered { dom, console }
}

fn kill(child: &mut std::process::Child) {
    // Chromium's helpers (renderer, GPU) exit when the browser process is gone.
    let _ = child.kill();
    let _ = child.wait();
}

/// The checks every rendered report must pass: the script ran, no error, no CSP violation,
/// no console message, nothing loaded.
fn assert_clean_render(r: &Rendered, what: &str) {
    assert!(
        r.console.is_empty(),
        "{what}: console messages:\n{}",
        r.console.join("\n")
    );
    assert!(
        r.dom.contains("data-ready=\"1\""),
        "{what}: the page's script did not run"
    );
    assert!(
        !r.dom.contains("data-errors=\"1\""),
        "{what}: the page noted errors: {}",
        errors_box(&r.dom)
    );
    assert!(
        r.dom.contains("data-resources=\"0\""),
        "{what}: the page loaded resources"
    );
}

fn errors_box(dom: &str) -> &str {
    dom.find("id=\"confab-errors\"")
        .map(|i| &dom[i..(i + 600).min(dom.len())])
        .unwrap_or("")
}

/// The `<details>` tag of finding `n`, as the browser left it.
fn details_tag(dom: &str, n: usize) -> Option<&str> {
    let i = dom.find(&format!("id=\"finding-{n}\""))?;
    let start = dom[..i].rfind('<')?;
    let end = i + dom[i..].find('>')?;
    Some(&dom[start..=end])
}

/// One real campaign through the binary against the vulnerable reference target (no Python
/// needed): the JSON and the HTML report of the same run (`--out-html`).
fn reference_reports(dir: &Path) -> (Value, PathBuf) {
    let json_path = dir.join("report.json");
    let html_path = dir.join("report.html");
    let run = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "scan",
            "--spec",
            "examples/reference/vulnerable.toml",
            "--cases",
            "120",
            "--seed",
            "3",
            "--format",
            "json",
            "--quiet",
        ])
        .arg("--out")
        .arg(&json_path)
        .arg("--out-html")
        .arg(&html_path)
        .arg("--replay-dir")
        .arg(dir.join("replays"))
        .current_dir(crate::common::repo_path("."))
        .env_remove("RUST_LOG")
        .output()
        .expect("confab runs");
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).expect("json"))
        .expect("report is JSON");
    (report, html_path)
}

fn findings(report: &Value) -> &[Value] {
    report["findings"].as_array().map_or(&[], Vec::as_slice)
}

/// Every finding of the JSON report is in the page, with the remediation of its invariant.
fn assert_every_finding_with_remediation(report: &Value, page: &str) {
    assert!(!findings(report).is_empty());
    assert_eq!(
        page.matches("<details class=\"finding ").count(),
        findings(report).len(),
        "one <details> per finding"
    );
    for f in findings(report) {
        let fp = f["fingerprint"].as_str().unwrap_or_default();
        assert!(
            page.contains(&format!("<code>{}</code>", html::escape(fp))),
            "{fp} not in the page"
        );
        let inv: Invariant = serde_json::from_value(f["invariant"].clone()).expect("invariant");
        assert!(
            page.contains(&format!("id=\"fix-{}\"", inv.id())),
            "no remediation for {inv}"
        );
        let g = guidance(inv);
        let first_words: String = g
            .remediation
            .split('`')
            .next()
            .unwrap_or_default()
            .chars()
            .take(40)
            .collect();
        assert!(
            page.contains(&html::escape(&first_words)),
            "{inv}: remediation text missing"
        );
        assert!(page.contains(&html::escape(
            html::remedy(inv).flask.lines().next().unwrap_or_default()
        )));
    }
}

#[test]
fn a_real_report_renders_in_chromium_with_findings_chart_and_an_open_finding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (report, html_path) = reference_reports(dir.path());
    let page = std::fs::read_to_string(&html_path).expect("html written by --out-html");
    assert_eq!(external_loads(&page), Vec::<String>::new());
    assert_every_finding_with_remediation(&report, &page);
    let Some(browser) = chromium() else { return };

    let r = render_in_browser(&browser, &html_path, "finding-2");
    assert_clean_render(&r, "reference report");
    // The findings list, the chart, and finding 2 opened by its address (1 and 3 closed).
    assert_eq!(
        r.dom.matches("<details class=\"finding ").count(),
        findings(&report).len()
    );
    let chart = r.dom.find("id=\"chart-invariant\"").expect("chart");
    assert!(r.dom[chart..].contains("<svg") && r.dom[chart..].contains("<rect class=\"seg-high\""));
    let open = |n| details_tag(&r.dom, n).is_some_and(|t| t.contains(" open"));
    assert!(
        open(2),
        "finding-2 is not expanded: {:?}",
        details_tag(&r.dom, 2)
    );
    assert!(!open(1) && !open(3));
    // Its contents: observed, the reproducer, the remediation.
    let body = &r.dom[r.dom.find("id=\"finding-2\"").unwrap_or(0)..];
    let body = &body[..body.find("</details>").unwrap_or(body.len())];
    for part in [
        "<h4>Request</h4>",
        "class=\"curl\"",
        "class=\"replay\"",
        "<h4>How to fix</h4>",
    ] {
        assert!(body.contains(part), "expanded finding lacks {part}");
    }
}

#[test]
fn hostile_text_stays_text_in_chromium_and_injected_markup_is_blocked() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (report, ctx) = hostile_report();
    let page = html::render(&report, &ctx, &Gate::default());
    let path = dir.path().join("hostile.html");
    std::fs::write(&path, &page).expect("write");
    let r = render_in_browser(&browser, &path, "");
    assert_clean_render(&r, "hostile report");
    // One <script> element (confab's), no <img>; the markup shows as text.
    assert_eq!(r.dom.matches("<script").count(), 1);
    assert!(!r.dom.contains("<img"));
    assert!(
        r.dom
            .contains("&lt;script&gt;alert('pwned')&lt;/script&gt;")
    );
    // Without a hash, the first finding is open.
    assert!(details_tag(&r.dom, 1).is_some_and(|t| t.contains(" open")));

    // The control: had escaping failed, the CSP blocks the script and the load, and the
    // checks above see it (so they can fail).
    let injected = page.replacen(
        "<main>",
        "<main><img src=\"https://evil.example/x.png\"><script>document.title='pwned'</script>",
        1,
    );
    let bad = dir.path().join("injected.html");
    std::fs::write(&bad, injected).expect("write");
    let r = render_in_browser(&browser, &bad, "");
    assert!(
        r.dom.contains("data-errors=\"1\""),
        "CSP violations not noted"
    );
    assert!(errors_box(&r.dom).contains("Content-Security-Policy"));
    assert!(
        !r.dom.contains("<title>pwned</title>"),
        "an injected script ran"
    );
    assert!(
        !r.console.is_empty(),
        "Chromium logged no console message for the violations"
    );
}

// --- the Flask example target ------------------------------------------------------------

/// `confab scan --format html --out` (and the JSON beside it) of a Flask spec.
fn flask_scan(dir: &Path, spec: &str) -> (i32, Value, PathBuf) {
    let html_path = dir.join("report.html");
    let json_path = dir.join("report.json");
    let run = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "scan",
            "--spec",
            spec,
            "--cases",
            "400",
            "--seed",
            "1",
            "--concurrency",
            "4",
            "--format",
            "html",
            "--quiet",
        ])
        .arg("--out")
        .arg(&html_path)
        .arg("--out-json")
        .arg(&json_path)
        .arg("--replay-dir")
        .arg(dir.join("replays"))
        .current_dir(crate::common::repo_path("."))
        .env_remove("RUST_LOG")
        .output()
        .expect("confab runs");
    let code = run.status.code().unwrap_or(-1);
    let text = std::fs::read_to_string(&json_path).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stderr: {}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    (
        code,
        serde_json::from_str(&text).expect("report is JSON"),
        html_path,
    )
}

#[test]
fn vulnerable_flask_report_shows_every_finding_with_its_remediation() {
    if !flask_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, report, html_path) = flask_scan(dir.path(), "examples/flask/vulnerable.toml");
    assert_eq!(code, 1);
    let page = std::fs::read_to_string(&html_path).expect("html");
    assert_eq!(external_loads(&page), Vec::<String>::new());
    assert_every_finding_with_remediation(&report, &page);
    for inv in [
        "AUTHN",
        "AUTHZ",
        "PROVENANCE",
        "OWNERSHIP",
        "AGENCY",
        "ECHO",
        "ROBUST",
        "COST",
    ] {
        assert!(
            page.contains(&format!("id=\"fix-{inv}\"")),
            "{inv} has no remediation section"
        );
    }
    assert!(
        !page.contains("sk-confab-"),
        "the LLM API key canary is in the page"
    );
    if let Some(browser) = chromium() {
        let r = render_in_browser(&browser, &html_path, "finding-1");
        assert_clean_render(&r, "vulnerable Flask report");
        assert!(details_tag(&r.dom, 1).is_some_and(|t| t.contains(" open")));
    }
}

#[test]
fn hardened_flask_report_is_a_clean_bill() {
    if !flask_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, report, html_path) = flask_scan(dir.path(), "examples/flask/hardened.toml");
    let page = std::fs::read_to_string(&html_path).expect("html");
    assert!(
        findings(&report).iter().all(|f| f["severity"] == "low"),
        "the hardened Flask target has findings above low"
    );
    assert!(
        page.contains("Clean bill"),
        "no clean bill in the hardened report"
    );
    assert!(page.contains("class=\"verdict good\""));
    if let Some(browser) = chromium() {
        let r = render_in_browser(&browser, &html_path, "");
        assert_clean_render(&r, "hardened Flask report");
        assert!(r.dom.contains("Clean bill"));
    }
}
