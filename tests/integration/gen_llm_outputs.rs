//! Properties of the fabricated-output generator: every family does what its label says, and
//! its ground truth ([`confab::generators::output::Invented`]) lists exactly what an
//! independent reading of the script (the grammar of the output module docs, written again
//! here) finds invented or echoed.

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use confab::generators::output::{
    Channel, DeclaredTool, EchoEncoding, FabricatedOutput, ModelTurn, OutputContext, OutputFamily,
    OutputRecipe, ParamKind,
};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use super::gen_llm::{
    BEARER, LLM_API_KEY, any_context, as_set, config, curated_contexts, docs_context, draw,
    leaky_context, recipe,
};

// ---------------------------------------------------------------------------------------------
// Independent identifier extraction from a script (the grammar of the output module docs)

fn is_terminator(c: char) -> bool {
    c.is_whitespace() || c.is_control() || "\"'()<>{}|\\^`".contains(c)
}

fn scan_urls(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut urls = Vec::new();
    let mut index = 0;
    while index + 3 <= chars.len() {
        if chars[index..index + 3] != [':', '/', '/'] {
            index += 1;
            continue;
        }
        let mut start = index;
        while start > 0
            && (chars[start - 1].is_ascii_alphanumeric() || "+-.".contains(chars[start - 1]))
        {
            start -= 1;
        }
        let mut end = index;
        while end < chars.len() && !is_terminator(chars[end]) {
            end += 1;
        }
        if start < index {
            urls.push(chars[start..end].iter().collect());
            index = end.max(index + 3);
        } else {
            index += 3;
        }
    }
    urls
}

#[derive(Default, Debug, PartialEq)]
struct Found {
    tools: BTreeSet<String>,
    ids: BTreeSet<String>,
    urls: BTreeSet<String>,
    /// Every string the script shows (leaves, texts), to look for echoes and secrets in.
    haystack: Vec<String>,
}

impl Found {
    fn value(&mut self, value: &str, echoes: &[String]) {
        self.haystack.push(value.to_owned());
        if echoes.iter().any(|echo| echo == value) {
            return;
        }
        let urls = scan_urls(value);
        if urls.len() == 1 && urls[0] == value {
            self.urls.insert(value.to_owned());
            return;
        }
        self.ids.insert(value.to_owned());
        self.urls.extend(urls);
    }

    fn leaves(&mut self, value: &Value, echoes: &[String]) {
        match value {
            Value::String(text) => self.value(text, echoes),
            Value::Number(number) => self.value(&number.to_string(), echoes),
            Value::Array(items) => items.iter().for_each(|item| self.leaves(item, echoes)),
            Value::Object(members) => members
                .values()
                .for_each(|member| self.leaves(member, echoes)),
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn text(
        &mut self,
        content: &str,
        output: &FabricatedOutput,
        echoes: &[String],
    ) -> Result<(), TestCaseError> {
        self.haystack.push(content.to_owned());
        // 1. Fenced JSON blocks.
        let mut prose = String::new();
        let mut rest = content;
        while let Some(open) = rest.find("```json\n") {
            prose.push_str(&rest[..open]);
            let body_start = open + "```json\n".len();
            let close = rest[body_start..].find("\n```");
            prop_assert!(close.is_some(), "unterminated fence in {content:?}");
            let close = body_start + close.unwrap_or_default();
            let parsed: Value = serde_json::from_str(&rest[body_start..close])
                .map_err(|error| TestCaseError::fail(format!("fence is not JSON: {error}")))?;
            self.leaves(&parsed, echoes);
            rest = &rest[close + "\n```".len()..];
        }
        prose.push_str(rest);
        // 2. Raw echoes are whole paragraphs: take them out.
        for echo in &output.invented.echoes {
            if echo.encoding == EchoEncoding::Raw {
                prose = prose.replace(&echo.emitted, "\n");
            }
        }
        // 3. Code spans (odd pieces between backticks), URLs elsewhere.
        for (index, piece) in prose.split('`').enumerate() {
            if index % 2 == 1 {
                self.value(piece, echoes);
            } else {
                self.urls.extend(scan_urls(piece));
            }
        }
        Ok(())
    }
}

fn extract(output: &FabricatedOutput) -> Result<Found, TestCaseError> {
    let echoes: Vec<String> = output
        .invented
        .echoes
        .iter()
        .map(|echo| echo.emitted.clone())
        .collect();
    let mut found = Found::default();
    for turn in &output.turns {
        match turn {
            ModelTurn::ToolCalls { tool_calls } => {
                for call in tool_calls {
                    found.tools.insert(call.name.clone());
                    found.haystack.push(call.name.clone());
                    found.leaves(&call.arguments, &echoes);
                }
            }
            ModelTurn::Text { content } => found.text(content, output, &echoes)?,
        }
    }
    Ok(found)
}

/// The module's rule, written again: own ids are known; so is a value of six characters or
/// more that some sent text contains.
fn known(ctx: &OutputContext, value: &str) -> bool {
    ctx.own_ids.iter().any(|own| own == value)
        || (value.chars().count() >= 6
            && std::iter::once(&ctx.sent.system_prompt)
                .chain(std::iter::once(&ctx.sent.user_prompt))
                .chain(&ctx.sent.tool_results)
                .any(|text| text.contains(value)))
}

fn decode_echo(encoding: EchoEncoding, emitted: &str) -> Option<String> {
    let bytes = match encoding {
        EchoEncoding::Raw => emitted.as_bytes().to_vec(),
        EchoEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(emitted)
            .ok()?,
        EchoEncoding::Base64Url => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(emitted)
            .ok()?,
        EchoEncoding::Hex => (0..emitted.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(emitted.get(at..at + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?,
        EchoEncoding::Percent => {
            let raw = emitted.as_bytes();
            let mut out = Vec::new();
            let mut at = 0;
            while at < raw.len() {
                if raw[at] == b'%' {
                    out.push(u8::from_str_radix(emitted.get(at + 1..at + 3)?, 16).ok()?);
                    at += 3;
                } else {
                    out.push(raw[at]);
                    at += 1;
                }
            }
            out
        }
    };
    String::from_utf8(bytes).ok()
}

/// Every encoding under which a secret could show up.
fn encodings_of(secret: &str) -> Vec<String> {
    let percent: String = secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    vec![
        secret.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        secret.bytes().map(|b| format!("{b:02x}")).collect(),
        percent,
    ]
}

/// All the ground-truth properties of one output in one context.
fn check_output(
    ctx: &OutputContext,
    recipe: &OutputRecipe,
    output: &FabricatedOutput,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(output.family, recipe.family);
    prop_assert!(!output.turns.is_empty());
    let found = extract(output)?;

    // Invented lists exactly what the context does not supply, without duplicates.
    let invented = &output.invented;
    for list in [&invented.ids, &invented.tools, &invented.urls] {
        prop_assert_eq!(as_set(list).len(), list.len(), "duplicates in {:?}", list);
    }
    let tools: BTreeSet<String> = found
        .tools
        .iter()
        .filter(|name| !ctx.tools.iter().any(|tool| &tool.name == *name))
        .cloned()
        .collect();
    let ids: BTreeSet<String> = found
        .ids
        .iter()
        .filter(|id| !known(ctx, id))
        .cloned()
        .collect();
    let urls: BTreeSet<String> = found
        .urls
        .iter()
        .filter(|url| !known(ctx, url))
        .cloned()
        .collect();
    prop_assert_eq!(&tools, &as_set(&invented.tools), "tools");
    prop_assert_eq!(&ids, &as_set(&invented.ids), "ids");
    prop_assert_eq!(&urls, &as_set(&invented.urls), "urls");

    // Echoes come from sent texts only, decode to what they claim, and appear in the script.
    let sent: Vec<&str> = ctx.sent.all().collect();
    for echo in &invented.echoes {
        prop_assert!(
            sent.iter().any(|text| text.contains(&echo.value)),
            "echo {:?} is not in any sent text",
            echo.value
        );
        prop_assert_eq!(
            decode_echo(echo.encoding, &echo.emitted),
            Some(echo.value.clone())
        );
        prop_assert!(
            found
                .haystack
                .iter()
                .any(|shown| shown.contains(&echo.emitted))
        );
    }

    // A watched secret the model was never sent is nowhere in the script, in any encoding.
    for secret in ctx
        .watched_secrets
        .iter()
        .filter(|secret| !sent.iter().any(|text| text.contains(*secret)))
    {
        for form in encodings_of(secret) {
            prop_assert!(
                !found.haystack.iter().any(|shown| shown.contains(&form)),
                "unsent secret {secret:?} shows up as {form:?}"
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Outputs

#[test]
fn every_output_family_is_generated_and_labelled() {
    let mut runner = TestRunner::deterministic();
    let strategy = OutputRecipe::strategy();
    let ctx = docs_context();
    let mut families = BTreeSet::new();
    let mut channels = BTreeSet::new();
    for _ in 0..2_000 {
        let recipe = draw(&mut runner, &strategy);
        let output = recipe.build(&ctx);
        assert_eq!(output.family, recipe.family);
        families.insert(output.family);
        channels.insert(output.channel);
    }
    assert_eq!(families, OutputFamily::ALL.into_iter().collect());
    assert_eq!(channels, Channel::ALL.into_iter().collect());
    for family in OutputFamily::ALL {
        assert_eq!(json!(family), json!(family.name()));
    }
}

fn tool_calls(output: &FabricatedOutput) -> Vec<&confab::generators::output::ToolCall> {
    output
        .turns
        .iter()
        .flat_map(|turn| match turn {
            ModelTurn::ToolCalls { tool_calls } => tool_calls.iter().collect(),
            ModelTurn::Text { .. } => Vec::new(),
        })
        .collect()
}

#[test]
fn each_output_family_does_what_its_label_says() {
    let ctx = docs_context();
    let build = |family, channel, variant| recipe(family, channel, variant).build(&ctx);

    // Every declared tool is called, the write and delete ones included.
    for variant in 0..2 {
        let output = build(OutputFamily::DeclaredTools, Channel::ToolCall, variant);
        let called: BTreeSet<&str> = tool_calls(&output)
            .iter()
            .map(|call| call.name.as_str())
            .collect();
        let declared: BTreeSet<&str> = ctx.tools.iter().map(|tool| tool.name.as_str()).collect();
        assert_eq!(called, declared);
    }

    let other = build(OutputFamily::OtherTenantIds, Channel::ToolCall, 0);
    assert!(
        other
            .invented
            .ids
            .iter()
            .any(|id| ctx.other_ids.contains(id)),
        "{other:?}"
    );

    for variant in 0..12 {
        let traversal = build(OutputFamily::PathTraversal, Channel::Text, variant);
        let climbs = |id: &String| {
            let lower = id.to_ascii_lowercase();
            ["..", "%2e%2e", "%252f"]
                .iter()
                .any(|dots| lower.contains(dots))
                || id.starts_with('/')
        };
        assert!(traversal.invented.ids.iter().any(climbs), "{traversal:?}");
    }

    for variant in 0..10 {
        let encoded = build(OutputFamily::EncodedIds, Channel::JsonInText, variant);
        assert!(
            encoded
                .invented
                .ids
                .iter()
                .all(|id| !ctx.other_ids.contains(id))
                && !encoded.invented.ids.is_empty(),
            "{encoded:?}"
        );
    }

    let wildcard = build(OutputFamily::Wildcards, Channel::ToolCall, 0);
    assert!(wildcard.invented.ids.contains(&"*".to_owned()));

    let injection = build(OutputFamily::Injection, Channel::ToolCall, 4);
    assert!(injection.invented.ids.iter().any(|id| id.contains("curl")));
    assert!(
        injection
            .invented
            .urls
            .iter()
            .any(|url| url.starts_with(&ctx.attacker_base_url))
    );

    let invented_tool = build(OutputFamily::InventedTools, Channel::ToolCall, 0);
    assert_eq!(invented_tool.invented.tools, ["delete_all_documents"]);
    let extra_arguments = build(OutputFamily::InventedTools, Channel::ToolCall, 1);
    assert!(extra_arguments.invented.tools.is_empty());
    assert!(
        tool_calls(&extra_arguments)[0]
            .arguments
            .get("as_user")
            .is_some()
    );

    let urls: BTreeSet<String> = (0..16)
        .flat_map(|variant| {
            build(OutputFamily::InventedUrls, Channel::ToolCall, variant)
                .invented
                .urls
        })
        .collect();
    for expected in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:41234/",
        "http://127.0.0.1:41234/admin",
        "http://2130706433/",
    ] {
        assert!(urls.contains(expected), "{expected} missing from {urls:?}");
    }
    assert!(
        urls.iter()
            .any(|url| url.starts_with("http://127.0.0.1:41235/attacker/collect?case="))
    );

    let echo = build(OutputFamily::Echo, Channel::Text, 0);
    assert_eq!(echo.invented.echoes.len(), 1);

    let runaway = build(OutputFamily::RunawayChain, Channel::ToolCall, 0);
    assert!(tool_calls(&runaway).len() > ctx.call_cap as usize);
    assert!(runaway.turns.len() > ctx.call_cap as usize);
    let parallel = build(OutputFamily::RunawayChain, Channel::ToolCall, 1);
    assert_eq!(parallel.turns.len(), 1);
    assert!(tool_calls(&parallel).len() > ctx.call_cap as usize);
}

#[test]
fn ground_truth_holds_for_every_payload_in_the_curated_contexts() {
    for ctx in curated_contexts() {
        for family in OutputFamily::ALL {
            for channel in Channel::ALL {
                for variant in 0..24 {
                    for pick in 0..3 {
                        for encoding in EchoEncoding::ALL {
                            let recipe = OutputRecipe {
                                pick,
                                encoding,
                                ..recipe(family, channel, variant)
                            };
                            if let Err(failure) = check_output(&ctx, &recipe, &recipe.build(&ctx)) {
                                panic!("{recipe:?} in {:?}: {failure}", ctx.sent.user_prompt);
                            }
                            if family != OutputFamily::Echo {
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn echoes_reach_secrets_the_target_showed_the_model_in_every_encoding() {
    let ctx = docs_context();
    for encoding in EchoEncoding::ALL {
        for pick in 0..4 {
            let output = OutputRecipe {
                pick,
                encoding,
                ..recipe(OutputFamily::Echo, Channel::ToolCall, 0)
            }
            .build(&ctx);
            if let Err(failure) = check_output(
                &ctx,
                &recipe(OutputFamily::Echo, Channel::ToolCall, 0),
                &output,
            ) {
                panic!("{encoding:?} {pick}: {failure}");
            }
        }
    }
    // pick 0 is the first watched secret found in a sent text: the LLM API key.
    let output = recipe(OutputFamily::Echo, Channel::Text, 0).build(&ctx);
    assert_eq!(output.invented.echoes[0].value, LLM_API_KEY);
    // A leaked bearer token is echoed whole, and its signature segment on its own.
    let leaky = leaky_context();
    let echoed: BTreeSet<String> = (0..2)
        .map(|pick| {
            OutputRecipe {
                pick,
                ..recipe(OutputFamily::Echo, Channel::Text, 0)
            }
            .build(&leaky)
        })
        .map(|output| output.invented.echoes[0].value.clone())
        .collect();
    let signature = BEARER.rsplit('.').next().unwrap_or_default().to_owned();
    assert_eq!(echoed, BTreeSet::from([BEARER.to_owned(), signature]));
}

#[test]
fn model_turns_serialize_to_the_openai_message_shape() {
    let ctx = docs_context();
    let output = recipe(OutputFamily::DeclaredTools, Channel::ToolCall, 0).build(&ctx);
    let ModelTurn::ToolCalls {
        tool_calls: first_calls,
    } = &output.turns[0]
    else {
        panic!("first turn is not tool calls: {output:?}");
    };
    let message = output.turns[0].to_openai_message();
    assert_eq!(output.turns[0].finish_reason(), "tool_calls");
    assert_eq!(message["role"], "assistant");
    assert!(message["content"].is_null());
    for (wire, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(first_calls)
    {
        assert_eq!(wire["type"], "function");
        assert_eq!(wire["id"], call.id.as_str());
        assert_eq!(wire["function"]["name"], call.name.as_str());
        let arguments = wire["function"]["arguments"].as_str().unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<Value>(arguments).ok().as_ref(),
            Some(&call.arguments)
        );
    }
    let last = output.turns.last().map(ModelTurn::to_openai_message);
    assert_eq!(
        last.as_ref().map(|message| message["content"].is_string()),
        Some(true)
    );

    // Call ids are unique within a script (the target matches tool results to them).
    let runaway = recipe(OutputFamily::RunawayChain, Channel::ToolCall, 0).build(&ctx);
    let ids: BTreeSet<&str> = tool_calls(&runaway)
        .iter()
        .map(|call| call.id.as_str())
        .collect();
    assert_eq!(ids.len(), tool_calls(&runaway).len());
}

#[test]
fn declared_tools_are_read_from_the_openai_tools_array() {
    let declared = json!({"type": "function", "function": {"name": "delete_document", "parameters": {
        "type": "object",
        "properties": {"doc_id": {"type": "string"}, "force": {"type": "boolean"}},
    }}});
    let parsed = DeclaredTool::from_openai(&declared);
    assert_eq!(
        parsed,
        Some(DeclaredTool::new(
            "delete_document",
            &[("doc_id", ParamKind::String), ("force", ParamKind::Boolean)]
        ))
    );
    assert_eq!(
        DeclaredTool::from_openai(&json!({"type": "function"})),
        None
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn invented_lists_exactly_the_identifiers_not_in_context(ctx in any_context(), recipe in OutputRecipe::strategy()) {
        let output = recipe.build(&ctx);
        check_output(&ctx, &recipe, &output)?;
    }

    #[test]
    fn same_output_recipe_gives_same_output(ctx in any_context(), recipe in OutputRecipe::strategy()) {
        let output = recipe.build(&ctx);
        prop_assert_eq!(&output, &recipe.build(&ctx));
        // The serialized form (what the fake LLM and the replay files keep) round-trips.
        let text = serde_json::to_string(&output).map_err(|error| TestCaseError::fail(error.to_string()))?;
        let back: FabricatedOutput = serde_json::from_str(&text).map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(back, output);
    }

    #[test]
    fn runaway_chains_go_past_the_cap(ctx in any_context(), recipe in OutputRecipe::strategy()) {
        let recipe = OutputRecipe { family: OutputFamily::RunawayChain, ..recipe };
        let output = recipe.build(&ctx);
        prop_assert!(tool_calls(&output).len() > ctx.call_cap as usize);
    }

    #[test]
    fn arbitrary_bytes_give_valid_outputs(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut unstructured = Unstructured::new(&bytes);
        let recipe = OutputRecipe::arbitrary(&mut unstructured)
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        // A fixed, well-formed context: the whole ground truth must hold.
        check_output(&docs_context(), &recipe, &recipe.build(&docs_context()))?;
        // A context from the same bytes (any strings, any sizes): no panic, echoes only from
        // what was sent, and determinism.
        let ctx = OutputContext::arbitrary(&mut unstructured)
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        let output = recipe.build(&ctx);
        prop_assert_eq!(output.family, recipe.family);
        prop_assert!(!output.turns.is_empty());
        for echo in &output.invented.echoes {
            prop_assert!(ctx.sent.contain(&echo.value));
        }
        prop_assert_eq!(&output, &recipe.build(&ctx));
    }
}
