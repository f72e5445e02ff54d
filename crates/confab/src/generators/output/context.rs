//! What an output is fabricated from: the caller's ids, the declared tools, the texts the
//! target sent the model, and the credentials among them.

use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::MIN_TRACEABLE_CHARS;

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
    pub(crate) fn knows_value(&self, value: &str) -> bool {
        self.own_ids.iter().any(|own| own == value)
            || (value.chars().count() >= MIN_TRACEABLE_CHARS && self.sent.contain(value))
    }

    /// Whether the target declared a tool with exactly this name.
    pub(crate) fn declares_tool(&self, name: &str) -> bool {
        self.tools.iter().any(|tool| tool.name == name)
    }
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
pub(crate) fn shown_credentials(
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
