//! SARIF 2.1.0 and JUnit XML reports: the SARIF log of a real campaign (the vulnerable
//! reference target) and of hand-made findings with hostile text validates against the
//! official OASIS schema (vendored in tests/data/sarif/); a broken log does not; JUnit output
//! parses as XML and says per endpoint and invariant what failed; the gate (fail-on,
//! baseline) reads the same in every format.

use confab::harness::{self as campaign, Options};
use confab::oracle::{Invariant, Severity};
use confab::report::{
    Baseline, EndpointInfo, Example, Finding, Gate, Report, Reproduce, SpecContext, junit, sarif,
};
use confab::spec::Spec;
use confab::target::BuildRouter;
use confab_reference_target::{Flaws, served_target};
use quick_xml::events::Event;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::OnceLock;

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let text = std::fs::read_to_string(crate::common::repo_path(
            "tests/data/sarif/sarif-schema-2.1.0.json",
        ))
        .expect("schema file");
        let schema: Value = serde_json::from_str(&text).expect("schema json");
        assert_eq!(
            schema["id"],
            "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
        );
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&schema)
            .expect("schema compiles")
    })
}

fn schema_errors(doc: &Value) -> Vec<String> {
    validator()
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn assert_valid(doc: &Value) {
    let errors = schema_errors(doc);
    assert!(errors.is_empty(), "SARIF invalid:\n{}", errors.join("\n"));
}

fn finding(inv: Invariant, sev: Severity, endpoint: &str, kind: &str, observed: &str) -> Finding {
    Finding {
        invariant: inv,
        severity: sev,
        cwe: inv.cwe().iter().map(|s| s.to_string()).collect(),
        owasp: inv.owasp().iter().map(|s| s.to_string()).collect(),
        endpoint: endpoint.to_owned(),
        kind: kind.to_owned(),
        observed: observed.to_owned(),
        cases: 3,
        fingerprint: format!("{}/{endpoint}/{kind}", inv.id()),
        example: Example {
            case: "endpoint x, principal alice".to_owned(),
            request: "POST /assist".to_owned(),
            model_output: vec![json!({"content": "<script>&\u{0}"})],
            downstream: vec!["DELETE /docs/doc-a1".to_owned()],
            response_status: Some(500),
            response_excerpt: "]]> </failure> \"' \u{1b}[31m".to_owned(),
        },
        reproduce: Reproduce {
            curl: "curl -i -X POST 'http://127.0.0.1:1/assist' -H 'Authorization: Bearer a.b.c' --data-raw '{\"prompt\":\"<x>&\"}'".to_owned(),
            replay: Some(".confab/replays/X.json".to_owned()),
        },
    }
}

/// Hand-made findings with every kind of hostile text.
fn synthetic() -> (Report, SpecContext) {
    let report = Report {
        confab_version: env!("CARGO_PKG_VERSION").to_owned(),
        target: "http://127.0.0.1:1".to_owned(),
        spec: "examples/my api/spec.toml".to_owned(),
        findings: vec![
            finding(
                Invariant::Agency,
                Severity::High,
                "assist",
                "capability_exceeded_delete",
                "DELETE /docs/doc-a1 <is> outside & \"assist\" 'caps' \u{0}\u{7}\u{1b} — ünïcødé \u{200b}",
            ),
            finding(
                Invariant::Authn,
                Severity::Low,
                "assist",
                "status_not_rfc6750",
                "refused with 403; RFC 6750 wants 401",
            ),
            finding(
                Invariant::Cost,
                Severity::Medium,
                "read",
                "too_many_calls",
                "5 model calls > cap 4",
            ),
            finding(
                Invariant::Agree,
                Severity::Low,
                "ghost",
                "disagree",
                "an endpoint the spec context does not list",
            ),
        ],
        stats: crate::common::sample_stats(),
    };
    let ctx = SpecContext {
        path: "examples/my api/spec.toml".to_owned(),
        endpoints: crate::common::reference_endpoints(),
    };
    (report, ctx)
}

fn reference_target() -> BuildRouter {
    served_target(Some(Flaws::all()))
}

const VULNERABLE: &str = "examples/reference/vulnerable.toml";

/// One campaign against the vulnerable reference target, shared by the tests.
fn real_report() -> &'static (Report, SpecContext) {
    static R: OnceLock<(Report, SpecContext)> = OnceLock::new();
    R.get_or_init(|| {
        let spec = Spec::load(&crate::common::repo_path(VULNERABLE)).expect("spec");
        let ctx = SpecContext {
            path: VULNERABLE.to_owned(),
            endpoints: spec
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| EndpointInfo {
                    name: e.name.clone(),
                    method: e.method.to_string(),
                    path: e.path.clone(),
                    llm: e.llm,
                    line: spec.error_at(&format!("endpoint[{i}].name"), "").line,
                })
                .collect(),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let options = Options {
            cases: 80,
            seed: 5,
            shrink_budget: 2,
            ..Options::default()
        };
        let report = rt
            .block_on(async {
                tokio::time::timeout(
                    std::time::Duration::from_secs(120),
                    campaign::run(spec, options, Some(reference_target())),
                )
                .await
            })
            .expect("campaign in time")
            .expect("campaign runs");
        assert!(report.findings.len() >= 3, "{}", report.render_text(false));
        (report, ctx)
    })
}

#[test]
fn sarif_of_a_real_campaign_validates_against_the_official_schema() {
    let (report, ctx) = real_report();
    let doc = sarif::render(report, ctx, &Gate::default());
    assert_valid(&doc);

    let run = &doc["runs"][0];
    assert_eq!(doc["version"], "2.1.0");
    assert_eq!(run["tool"]["driver"]["name"], "confab");
    assert_eq!(run["tool"]["driver"]["version"], env!("CARGO_PKG_VERSION"));
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), Invariant::ALL.len());
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), report.findings.len());
    for (r, f) in results.iter().zip(&report.findings) {
        assert_eq!(r["ruleId"], f.invariant.id());
        let idx = r["ruleIndex"].as_u64().expect("index") as usize;
        assert_eq!(rules[idx]["id"], f.invariant.id());
        assert_eq!(
            r["partialFingerprints"][sarif::FINGERPRINT_KEY],
            f.fingerprint
        );
        let loc = &r["locations"][0];
        assert_eq!(loc["logicalLocations"][0]["name"], f.endpoint.as_str());
        assert_eq!(
            loc["physicalLocation"]["artifactLocation"]["uri"],
            VULNERABLE
        );
        let line = loc["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .expect("line of the endpoint") as usize;
        let text = std::fs::read_to_string(crate::common::repo_path(VULNERABLE)).expect("spec");
        assert_eq!(
            text.lines().nth(line - 1),
            Some(format!("name = \"{}\"", f.endpoint).as_str())
        );
        assert_eq!(
            r["properties"]["reproduce"]["curl"],
            f.reproduce.curl.as_str()
        );
        assert_eq!(r["properties"]["example"]["case"], f.example.case.as_str());
        assert!(r["properties"]["example"].get("response_excerpt").is_none());
        assert!(
            r["properties"]["reproduce"]["note"]
                .as_str()
                .is_some_and(|n| n.contains("test credentials"))
        );
        let level = match f.severity {
            Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low => "note",
        };
        assert_eq!(r["level"], level);
    }
}

#[test]
fn rules_carry_cwe_owasp_severity_and_remediation() {
    let (report, ctx) = synthetic();
    let doc = sarif::render(&report, &ctx, &Gate::default());
    let rules = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules")
        .clone();
    for (rule, inv) in rules.iter().zip(Invariant::ALL) {
        assert_eq!(rule["id"], inv.id());
        let tags: Vec<&str> = rule["properties"]["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for cwe in inv.cwe() {
            assert!(tags.contains(cwe), "{inv}: {tags:?}");
            assert!(tags.contains(&format!("external/cwe/{}", cwe.to_lowercase()).as_str()));
        }
        for o in inv.owasp() {
            let id = o.split_whitespace().next().expect("id");
            assert!(
                tags.contains(&format!("OWASP-{id}").as_str()),
                "{inv}: {tags:?}"
            );
        }
        let score: f64 = rule["properties"]["security-severity"]
            .as_str()
            .expect("a string score")
            .parse()
            .expect("a number");
        assert!((0.0..=10.0).contains(&score));
        let help = rule["help"]["text"].as_str().expect("help");
        assert!(help.contains("Remediation: "), "{help}");
        assert!(rule["help"]["markdown"].as_str().is_some());
        let uri = rule["helpUri"].as_str().expect("helpUri");
        match inv.cwe().first() {
            Some(c) => assert!(uri.ends_with(&format!("/{}.html", &c[4..])), "{uri}"),
            None => assert!(uri.starts_with("https://")),
        }
    }
    assert_eq!(rules[0]["properties"]["security-severity"], "8.0");
}

#[test]
fn hostile_text_and_a_baseline_still_give_a_valid_log() {
    let (report, ctx) = synthetic();
    let gate = Gate {
        fail_on: Severity::Medium,
        baseline: Some(Baseline {
            fingerprints: ["COST/read/too_many_calls".to_owned()].into(),
            ..Baseline::default()
        }),
    };
    let doc = sarif::render(&report, &ctx, &gate);
    assert_valid(&doc);
    let results = doc["runs"][0]["results"].as_array().expect("results");
    let cost = results
        .iter()
        .find(|r| r["ruleId"] == "COST")
        .expect("COST result");
    assert_eq!(cost["baselineState"], "unchanged");
    assert_eq!(cost["suppressions"][0]["kind"], "external");
    let agency = results
        .iter()
        .find(|r| r["ruleId"] == "AGENCY")
        .expect("AGENCY result");
    assert_eq!(agency["baselineState"], "new");
    assert!(agency.get("suppressions").is_none());
    // A path with a space is a valid URI reference.
    assert_eq!(
        agency["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "examples/my%20api/spec.toml"
    );
    // An endpoint the context does not know has no region, and still validates.
    let ghost = results
        .iter()
        .find(|r| r["ruleId"] == "AGREE")
        .expect("AGREE");
    assert!(
        ghost["locations"][0]["physicalLocation"]
            .get("region")
            .is_none()
    );
    // The text round-trips through JSON unchanged.
    assert!(
        agency["message"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("\u{0}\u{7}\u{1b} — ünïcødé \u{200b}"))
    );
}

#[test]
fn broken_logs_fail_validation() {
    let (report, ctx) = synthetic();
    let good = sarif::render(&report, &ctx, &Gate::default());
    assert_valid(&good);
    type Breaker = Box<dyn Fn(&mut Value)>;
    let breakers: Vec<(&str, Breaker)> = vec![
        ("wrong version", Box::new(|d| d["version"] = json!("2.0.0"))),
        (
            "unknown level",
            Box::new(|d| d["runs"][0]["results"][0]["level"] = json!("critical")),
        ),
        (
            "result without message",
            Box::new(|d| {
                if let Some(r) = d["runs"][0]["results"][0].as_object_mut() {
                    r.remove("message");
                }
            }),
        ),
        (
            "driver without name",
            Box::new(|d| {
                if let Some(r) = d["runs"][0]["tool"]["driver"].as_object_mut() {
                    r.remove("name");
                }
            }),
        ),
        (
            "region line 0",
            Box::new(|d| {
                d["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
                    json!(0)
            }),
        ),
        (
            "fingerprint not a string",
            Box::new(|d| d["runs"][0]["results"][0]["partialFingerprints"]["x"] = json!(1)),
        ),
        (
            "unknown top-level key",
            Box::new(|d| d["extra"] = json!(true)),
        ),
        (
            "helpUri not a URI",
            Box::new(|d| {
                d["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"] = json!("not a uri")
            }),
        ),
        (
            "duplicate tags",
            Box::new(|d| {
                d["runs"][0]["tool"]["driver"]["rules"][0]["properties"]["tags"] = json!(["a", "a"])
            }),
        ),
    ];
    for (what, breaker) in breakers {
        let mut doc = good.clone();
        breaker(&mut doc);
        assert!(
            !schema_errors(&doc).is_empty(),
            "a log with {what} passed the schema"
        );
    }
}

#[test]
fn fingerprints_are_stable_across_runs() {
    let (report, ctx) = synthetic();
    let a = sarif::render(&report, &ctx, &Gate::default());
    let mut other = report.clone();
    // Another run: other counts, other text, other order; same findings.
    other.findings.reverse();
    for f in &mut other.findings {
        f.cases += 10;
        f.observed.push_str(" (again)");
    }
    let b = sarif::render(&other, &ctx, &Gate::default());
    let prints = |d: &Value| -> std::collections::BTreeSet<String> {
        d["runs"][0]["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["partialFingerprints"][sarif::FINGERPRINT_KEY].to_string())
            .collect()
    };
    assert_eq!(prints(&a), prints(&b));
    assert_eq!(prints(&a).len(), report.findings.len());
}

/// Parses XML fully; returns (testsuite count, testcases as (classname, name, outcome)).
fn parse_junit(xml: &str) -> (usize, Vec<(String, String, String)>) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut suites = 0;
    let mut cases: Vec<(String, String, String)> = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let attr = |e: &quick_xml::events::BytesStart, name: &str| -> String {
        e.try_get_attribute(name)
            .expect("attribute parses")
            .map(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .expect("unescape")
                    .into_owned()
            })
            .unwrap_or_default()
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                let name = e.name().as_ref().to_owned();
                match name.as_str() {
                    "testsuite" => suites += 1,
                    "testcase" => {
                        cases.push((attr(&e, "classname"), attr(&e, "name"), "passed".into()))
                    }
                    "failure" => {
                        let last = cases.last_mut().expect("in a testcase");
                        last.2 = format!("failure:{}:{}", attr(&e, "type"), attr(&e, "message"));
                    }
                    _ => {}
                }
                stack.push(name);
            }
            Event::Empty(e) => {
                let name = e.name().as_ref().to_owned();
                match name.as_str() {
                    "testcase" => {
                        cases.push((attr(&e, "classname"), attr(&e, "name"), "passed".into()))
                    }
                    "skipped" => {
                        let last = cases.last_mut().expect("in a testcase");
                        last.2 = format!("skipped:{}", attr(&e, "message"));
                    }
                    _ => {}
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    (suites, cases)
}

#[test]
fn junit_has_a_case_per_endpoint_and_invariant_and_parses() {
    let (report, ctx) = synthetic();
    let gate = Gate {
        fail_on: Severity::Medium,
        baseline: Some(Baseline {
            fingerprints: ["COST/read/too_many_calls".to_owned()].into(),
            ..Baseline::default()
        }),
    };
    let xml = junit::render(&report, &ctx, &gate);
    let (suites, cases) = parse_junit(&xml);
    // read, assist, and the endpoint only a finding names.
    assert_eq!(suites, 3);
    assert_eq!(cases.len(), 3 * Invariant::ALL.len());
    let case = |class: &str, inv: Invariant| -> &str {
        &cases
            .iter()
            .find(|(c, n, _)| {
                c == &format!("confab.{class}") && n.starts_with(&format!("{} ", inv.id()))
            })
            .unwrap_or_else(|| panic!("{class} {inv}"))
            .2
    };
    let agency = case("assist", Invariant::Agency);
    assert!(
        agency.starts_with("failure:high:HIGH AGENCY on assist: capability_exceeded_delete"),
        "{agency}"
    );
    // Hostile text survives escaping (control characters are spelled out).
    assert!(
        agency.contains("<is> outside & \"assist\" 'caps' \\u{0}\\u{7}\\u{1b} — ünïcødé"),
        "{agency}"
    );
    assert!(
        case("assist", Invariant::Authn)
            .starts_with("skipped:not gating: 1 finding(s) below --fail-on medium")
    );
    assert!(case("read", Invariant::Cost).starts_with("skipped:not gating: 1 baselined"));
    assert_eq!(case("read", Invariant::Echo), "passed");
    assert!(case("read", Invariant::UnauthLlm).starts_with("skipped:not applicable"));
    assert_eq!(case("assist", Invariant::UnauthLlm), "passed");
    // The totals agree with the cases.
    assert!(
        xml.contains("<testsuites name=\"confab\" tests=\"30\" failures=\"1\""),
        "{xml}"
    );
    // The failure body has the reproducer and says the tokens are test credentials.
    assert!(xml.contains("reproduce: curl -i -X POST"));
    assert!(xml.contains("test credentials"));
}

#[test]
fn junit_of_a_real_campaign_fails_exactly_the_findings() {
    let (report, ctx) = real_report();
    let xml = junit::render(report, ctx, &Gate::default());
    let (suites, cases) = parse_junit(&xml);
    assert_eq!(suites, ctx.endpoints.len());
    let failed: std::collections::BTreeSet<(String, String)> = cases
        .iter()
        .filter(|(_, _, o)| o.starts_with("failure:"))
        .map(|(c, n, _)| {
            (
                c.clone(),
                n.split(' ').next().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: std::collections::BTreeSet<(String, String)> = report
        .findings
        .iter()
        .map(|f| {
            (
                format!("confab.{}", f.endpoint),
                f.invariant.id().to_owned(),
            )
        })
        .collect();
    assert_eq!(failed, expected);
}

#[test]
fn junit_escaping_is_exact() {
    assert_eq!(junit::escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
    assert_eq!(junit::escape("\u{0}x\u{1f}\t\n"), "\\u{0}x\\u{1f}\t\n");
    assert_eq!(junit::escape("ünï \u{200b}"), "ünï \u{200b}");
    assert_eq!(junit::escape("\u{fffe}"), "\\u{fffe}");
}

#[test]
fn the_gate_counts_failing_findings_only() {
    let (report, _) = synthetic();
    assert!(!Gate::default().passes(&report));
    let high = Gate {
        fail_on: Severity::High,
        baseline: None,
    };
    assert_eq!(high.failing(&report).len(), 1);
    let all_known = Gate {
        fail_on: Severity::Low,
        baseline: Some(Baseline::from_report(&report)),
    };
    assert!(all_known.passes(&report));
    let text = report.render_text_gated(false, &all_known);
    assert!(text.contains("baselined (4 known finding(s)"), "{text}");
    assert!(text.contains("The gate passes"), "{text}");
    // A stale entry is reported.
    let mut b = Baseline::from_report(&report);
    b.fingerprints.insert("ECHO/read/gone".to_owned());
    let stale = Gate {
        fail_on: Severity::Low,
        baseline: Some(b),
    };
    assert_eq!(stale.stale(&report), vec!["ECHO/read/gone"]);
    assert!(
        report
            .render_text_gated(false, &stale)
            .contains("ECHO/read/gone")
    );
    // The default rendering is what it always was.
    assert_eq!(
        report.render_text(false),
        report.render_text_gated(false, &Gate::default())
    );
    assert!(
        report
            .render_text(false)
            .ends_with("4 finding(s): 1 high, 1 medium, 2 low.\n")
    );
}

#[test]
fn baselines_round_trip_sorted_and_read_reports_too() {
    let (report, _) = synthetic();
    let b = Baseline::from_report(&report);
    let text = b.to_json();
    let v: Value = serde_json::from_str(&text).expect("json");
    let fps: Vec<&str> = v["fingerprints"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut sorted = fps.clone();
    sorted.sort();
    assert_eq!(fps, sorted);
    assert!(v["note"].as_str().is_some_and(|n| n.contains("baseline")));
    assert_eq!(
        Baseline::parse(&text, Path::new("b.json")).expect("parses"),
        b
    );
    let as_report = serde_json::to_string(&report).expect("json");
    assert_eq!(
        Baseline::parse(&as_report, Path::new("r.json"))
            .expect("a report is a baseline")
            .fingerprints,
        b.fingerprints
    );
    let err = Baseline::parse("[1, 2]", Path::new("x.json")).expect_err("not a baseline");
    assert!(
        err.to_string().starts_with("x.json: not a confab baseline"),
        "{err}"
    );
    let err = Baseline::parse(
        r#"{"fingerprints": [], "confab_baseline": 99}"#,
        Path::new("y.json"),
    )
    .expect_err("future format");
    assert!(err.to_string().contains("newer"), "{err}");
}
