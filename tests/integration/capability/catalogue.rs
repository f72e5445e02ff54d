//! Every model output the generator catalogue fabricates (`confab::generators::output`),
//! checked against an endpoint's effective privilege.

use super::{persistence, read_policy};
use crate::common::{doc, store};
use confab::generators::output::{DeclaredTool, ModelTurn, OutputContext, ParamKind, outputs};
use confab::guard::ScopeSet;
use confab::guard::capability::{AuthorizedArg, Method, ToolDenial};
use confab::guard::provenance::{RequestContext, Untrusted, Validator};
use proptest::prelude::*;
use serde_json::json;

fn context() -> OutputContext {
    OutputContext {
        own_ids: vec!["doc-a1".into(), "doc-a2".into()],
        other_ids: vec!["doc-b1".into()],
        // The target declared a delete tool to the model, though the endpoint may not
        // delete: the model will call it.
        tools: vec![
            DeclaredTool::new(
                "get_doc",
                &[("id", ParamKind::String), ("max_chars", ParamKind::Integer)],
            ),
            DeclaredTool::new("delete_doc", &[("id", ParamKind::String)]),
        ],
        loopback_ports: vec![41234, 8080],
        ..OutputContext::default()
    }
}

proptest! {
    #![proptest_config(persistence("proptest-regressions/capability.txt"))]

    /// Every fabricated output of the catalogue, checked by the read endpoint for alice
    /// holding an overscoped token: invented ids and tools are refused, tool calls pass
    /// only as `get_doc` of her own documents, invented URLs reach nothing but her own
    /// documents on the declared downstream host.
    #[test]
    fn fabricated_outputs_gain_nothing(out in outputs(context())) {
        let policy = read_policy();
        let store = store();
        let ctx = RequestContext::new("alice");
        let own = ["doc-a1", "doc-a2"];
        let pv = policy.privilege(
            &ScopeSet::parse("docs:read docs:write docs:delete admin"),
            Validator::new(&store, &ctx),
        );
        for id in &out.invented.ids {
            let got = Validator::new(&store, &ctx).authorize(&doc(), Untrusted::from_llm(id.as_str()));
            prop_assert!(got.is_err(), "invented id {:?} authorized", id);
        }
        for tool in &out.invented.tools {
            let got = pv.authorize_tool_call(Untrusted::from_llm(tool.as_str()), Untrusted::from_llm(json!({})));
            prop_assert!(matches!(got, Err(ToolDenial::UnknownTool { .. })), "{:?}", tool);
        }
        for url in &out.invented.urls {
            if let Ok(r) = pv.authorize_downstream(Method::Get, Untrusted::from_llm(url.as_str())) {
                prop_assert!(r.params().values().all(|id| own.contains(&id.as_str())), "{}", url);
            }
        }
        for turn in &out.turns {
            let ModelTurn::ToolCalls { tool_calls } = turn else { continue };
            for call in tool_calls {
                let got = pv.authorize_tool_call(
                    Untrusted::from_llm(call.name.as_str()),
                    Untrusted::from_llm(serde_json::Value::String(call.arguments_json())),
                );
                if let Ok(c) = got {
                    prop_assert_eq!(c.tool(), "get_doc");
                    match c.arg("id") {
                        Some(AuthorizedArg::Resource(id)) => {
                            prop_assert!(own.contains(&id.as_str()), "{:?}", id)
                        }
                        other => prop_assert!(false, "id argument {:?}", other),
                    }
                }
            }
        }
    }
}
