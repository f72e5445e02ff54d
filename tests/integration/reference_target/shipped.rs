//! The reference target as it ships: the hardened form end to end, the vulnerable form with
//! every flaw at once, and the example specs that name them.

use super::{
    JWT_SECRET, LLM_KEY, PROMPT, Turn, answer_text, bounded, signature, spec_path, text, tool, url,
    world, world_with,
};
use confab::spec::Spec;
use confab_reference_target::{
    CATALOGUE, Flaws, MAX_TOKENS, MODEL, ReferenceConfig, SYSTEM_PROMPT,
};
use serde_json::{Value, json};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// The hardened form end to end

#[tokio::test]
async fn hardened_happy_path_reads_own_document_through_the_model() {
    bounded(async {
        let w = world(Flaws::none(), |_| {
            vec![
                tool("get_doc", json!({"id": "doc-a1"})),
                text("Summary: all good."),
            ]
        })
        .await;
        let health = w
            .send(w.client.get(format!("{}/healthz", url(&w.target))), None)
            .await;
        assert_eq!(health.status, 200);

        let alice = w.token("alice");
        let a = w.assist(Some(&alice), "doc-a1").await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(answer_text(&a), "Summary: all good.");

        let hits = w.docs_hits("GET", "/docs/doc-a1");
        assert_eq!(hits.len(), 1);
        assert_eq!(
            hits[0].authorization.as_deref(),
            Some(format!("Bearer {alice}").as_str())
        );

        let calls = w.model.all();
        assert_eq!(calls.len(), 2);
        for c in &calls {
            assert_eq!(c.path, "/v1/chat/completions");
            assert_eq!(
                c.authorization.as_deref(),
                Some(format!("Bearer {LLM_KEY}").as_str())
            );
            assert!(!c.body.contains(&alice) && !c.body.contains(signature(&alice)));
        }
        let first: Value = serde_json::from_str(&calls[0].body).expect("json");
        assert_eq!(first["model"], MODEL);
        assert_eq!(first["max_tokens"], MAX_TOKENS);
        assert_eq!(first["tools"].as_array().map(Vec::len), Some(4));
        assert_eq!(first["messages"][0]["role"], "system");
        assert_eq!(first["messages"][0]["content"], SYSTEM_PROMPT);
        assert!(
            first["messages"][1]["content"]
                .as_str()
                .is_some_and(|s| s.contains(PROMPT))
        );
        assert!(
            calls[1].body.contains("MARKER-doc-a1"),
            "tool result fed back"
        );
        // confab's own fake model reads these requests the same way.
        let parsed = confab::wire::parse_request(calls[1].body.as_bytes()).expect("wire format");
        assert_eq!(parsed.system_prompt, SYSTEM_PROMPT);
        assert!(parsed.user_prompt.contains(PROMPT));
        assert_eq!(parsed.tool_results.len(), 1);
        assert_eq!(parsed.max_tokens, Some(u64::from(MAX_TOKENS)));

        let log = w.log.contents();
        assert!(log.contains("audit {"), "{log}");
        assert!(log.contains("token_fingerprint"), "{log}");
        assert!(
            !log.contains(&alice) && !log.contains(signature(&alice)),
            "{log}"
        );
    })
    .await;
}

#[tokio::test]
async fn hardened_read_endpoint_statuses() {
    bounded(async {
        let w = world(Flaws::none(), |_| vec![]).await;
        let alice = w.token("alice");
        let own = w.get_doc(Some(&alice), "doc-a1").await;
        assert_eq!(own.status, 200);
        assert!(own.body.contains("MARKER-doc-a1"));
        assert_eq!(w.get_doc(Some(&alice), "doc-zz9").await.status, 404);
        // (`%2e%2e` is not here: the client's URL parser already turns it into `..`.)
        for hostile in ["..%2Fadmin", "doc-a1%27--", "doc%2Da1", "*", "doc-a1;rm"] {
            let a = w.get_doc(Some(&alice), hostile).await;
            assert_eq!(a.status, 400, "{hostile}: {}", a.body);
        }
        assert!(w.docs.all().iter().all(|r| r.path != "/docs/*"));
        let none = w.get_doc(None, "doc-a1").await;
        assert_eq!(none.status, 401);
        assert_eq!(
            none.headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer realm=\"api\"")
        );
        assert_eq!(w.model.all().len(), 0);
    })
    .await;
}

#[tokio::test]
async fn hardened_model_ids_need_provenance_or_learned_ownership() {
    bounded(async {
        let w = world(Flaws::none(), |_| {
            vec![
                // Not yet known to be alice's: refused (unsourced), nothing sent downstream.
                tool("get_doc", json!({"id": "doc-a2"})),
                text("first"),
                // Learned from the GET /docs/doc-a2 below: now owned, so allowed.
                tool("get_doc", json!({"id": "doc-a2"})),
                text("second"),
            ]
        })
        .await;
        let alice = w.token("alice");
        assert_eq!(w.assist(Some(&alice), "doc-a1").await.status, 200);
        assert!(w.docs_hits("GET", "/docs/doc-a2").is_empty());
        assert!(w.model_bodies()[1].contains("unsourced"));

        assert_eq!(w.get_doc(Some(&alice), "doc-a2").await.status, 200);
        assert_eq!(w.assist(Some(&alice), "doc-a1").await.status, 200);
        assert_eq!(w.docs_hits("GET", "/docs/doc-a2").len(), 2);
        assert!(w.model_bodies()[3].contains("MARKER-doc-a2"));
    })
    .await;
}

#[tokio::test]
async fn hardened_maps_model_failures_to_gateway_errors() {
    bounded(async {
        let w = world(Flaws::none(), |_| vec![Turn::Fail(503)]).await;
        let alice = w.token("alice");
        let a = w.assist(Some(&alice), "doc-a1").await;
        assert_eq!(a.status, 502, "{}", a.body);
        assert!(!a.body.contains(&alice));

        let w = world_with(
            Flaws::none(),
            |_| vec![Turn::Stall(Duration::from_secs(3))],
            |cfg| cfg.outbound_timeout = Duration::from_millis(300),
        )
        .await;
        let a = w.assist(Some(&w.token("alice")), "doc-a1").await;
        assert_eq!(a.status, 504, "{}", a.body);
    })
    .await;
}

#[tokio::test]
async fn streaming_answers_are_parsed() {
    bounded(async {
        let w = world_with(
            Flaws::none(),
            |_| {
                vec![
                    tool("get_doc", json!({"id": "doc-a1"})),
                    text("streamed answer"),
                ]
            },
            |cfg| cfg.stream = true,
        )
        .await;
        let a = w.assist(Some(&w.token("alice")), "doc-a1").await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(answer_text(&a), "streamed answer");
        assert_eq!(w.docs_hits("GET", "/docs/doc-a1").len(), 1);
        assert!(
            w.model_bodies()
                .iter()
                .all(|b| b.contains("\"stream\":true"))
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The shipped forms

#[tokio::test]
async fn vulnerable_form_plants_every_flaw_at_once() {
    bounded(async {
        let w = world(Flaws::all(), |u| {
            vec![
                text("pre-auth"),
                tool("delete_doc", json!({"id": "doc-b1"})),
                tool("fetch_url", json!({"url": format!("{}/steal", u.attacker)})),
                text("done"),
            ]
        })
        .await;
        // No token: the model is called anyway (then 401 with the header echoed: none here).
        assert_eq!(w.assist(None, "doc-a1").await.status, 401);
        assert_eq!(w.model.all().len(), 1);
        let alice = w.token("alice");
        let a = w.assist(Some(&alice), "doc-a1").await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(w.docs_hits("DELETE", "/docs/doc-b1").len(), 1);
        assert_eq!(w.attacker.all().len(), 1);
        assert!(w.model_bodies()[1].contains(&alice));
        assert!(w.log.contents().contains(&alice));
    })
    .await;
}

#[test]
fn example_specs_parse_and_name_their_mode() {
    for (file, mode) in [
        ("hardened.toml", "hardened"),
        ("vulnerable.toml", "vulnerable"),
    ] {
        let spec = Spec::load(&spec_path(file)).expect("spec parses");
        assert!(spec.secret_is_generated());
        let target = spec.target.as_ref().expect("[target]");
        assert_eq!(
            target.command.as_deref(),
            Some(&["{confab}".to_owned(), "reference-target".to_owned()][..])
        );
        assert_eq!(
            target.env.get("CONFAB_REFERENCE_MODE").map(String::as_str),
            Some(mode)
        );
        for var in [
            "PORT",
            "OPENAI_BASE_URL",
            "OPENAI_API_KEY",
            "DOCS_API_URL",
            "JWT_SECRET",
            "JWT_ISSUER",
            "JWT_AUDIENCE",
        ] {
            assert!(target.env.contains_key(var), "{file}: {var}");
        }
        let names: Vec<&str> = spec.endpoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["read", "assist"]);
        assert_eq!(spec.limits.llm_calls_per_request, 4);
        assert_eq!(
            spec.downstream.as_ref().map(|d| d.resource.as_str()),
            Some("/docs/{id}")
        );
        // The env the spec gives the target is enough to configure it.
        let filled = |v: &String| {
            v.replace("{port}", "1")
                .replace("{llm_base_url}", "http://127.0.0.1:2/v1")
                .replace("{llm_api_key}", LLM_KEY)
                .replace("{downstream_url}", "http://127.0.0.1:3")
                .replace("{jwt_secret}", JWT_SECRET)
        };
        let cfg = ReferenceConfig::from_vars(|k| target.env.get(k).map(filled)).expect("config");
        assert_eq!(cfg.flaws.is_none(), mode == "hardened");
    }
    assert_eq!(CATALOGUE.len(), 13);
}
