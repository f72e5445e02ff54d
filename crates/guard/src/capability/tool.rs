//! Tools a model may call: their declaration ([`ToolSpec`], [`ArgSpec`]), the validated call
//! ([`AuthorizedCall`]) and why a call was refused ([`ToolDenial`]).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::provenance::{AuthorizedId, Excerpt, IdError};

/// The type of one tool argument.
///
/// Deserializes as `"integer"`, `"bool"` or `{ resource = "doc" }`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgType {
    /// A JSON string that must pass provenance as an id of the named [`ResourceKind`](crate::provenance::ResourceKind).
    Resource(String),
    /// A JSON integer that fits `i64` (no floats, no numeric strings).
    Integer,
    /// A JSON boolean (no `"true"` strings).
    Bool,
}

impl ArgType {
    pub(super) fn name(&self) -> &'static str {
        match self {
            ArgType::Resource(_) => "resource id string",
            ArgType::Integer => "integer",
            ArgType::Bool => "bool",
        }
    }
}

fn default_true() -> bool {
    true
}

/// One declared argument of a tool.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgSpec {
    /// The JSON member name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ArgType,
    /// Whether it must be present (default true). A JSON `null` counts as absent.
    #[serde(default = "default_true")]
    pub required: bool,
}

impl ArgSpec {
    /// A required argument.
    pub fn required(name: &str, ty: ArgType) -> Self {
        ArgSpec {
            name: name.to_owned(),
            ty,
            required: true,
        }
    }

    /// An optional argument.
    pub fn optional(name: &str, ty: ArgType) -> Self {
        ArgSpec {
            name: name.to_owned(),
            ty,
            required: false,
        }
    }
}

/// A tool an endpoint lets the model call: its exact name, the scope it needs and its
/// arguments (no others are accepted).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// The exact tool name (`[A-Za-z_][A-Za-z0-9_-]{0,63}`); compared byte for byte.
    pub name: String,
    /// The scope a call needs.
    pub scope: String,
    /// The arguments.
    #[serde(default)]
    pub args: Vec<ArgSpec>,
}

impl ToolSpec {
    /// A tool with no arguments yet.
    pub fn new(name: &str, scope: &str) -> Self {
        ToolSpec {
            name: name.to_owned(),
            scope: scope.to_owned(),
            args: Vec::new(),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: ArgSpec) -> Self {
        self.args.push(arg);
        self
    }
}

/// One validated tool argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizedArg {
    /// A resource id that passed provenance.
    Resource(AuthorizedId),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Bool(bool),
}

impl AuthorizedArg {
    /// The argument as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            AuthorizedArg::Resource(id) => Value::String(id.as_str().to_owned()),
            AuthorizedArg::Integer(i) => Value::from(*i),
            AuthorizedArg::Bool(b) => Value::Bool(*b),
        }
    }
}

/// A tool call that passed every check; only [`EffectivePrivilege::authorize_tool_call`](super::EffectivePrivilege::authorize_tool_call)
/// makes one. Execute this, not the model's original JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizedCall {
    pub(super) tool: String,
    pub(super) scope: String,
    pub(super) args: BTreeMap<String, AuthorizedArg>,
}

impl AuthorizedCall {
    /// The declared tool name.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// The scope it was authorized under.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// One argument (absent optional arguments are absent).
    pub fn arg(&self, name: &str) -> Option<&AuthorizedArg> {
        self.args.get(name)
    }

    /// All arguments, by name.
    pub fn args(&self) -> &BTreeMap<String, AuthorizedArg> {
        &self.args
    }

    /// The arguments as a JSON object rebuilt from validated values.
    pub fn arguments_json(&self) -> Value {
        Value::Object(
            self.args
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }
}

/// Maximum size of a tool call's arguments when they arrive as a JSON string.
pub const MAX_ARGUMENTS_BYTES: usize = 64 * 1024;

/// Why a tool call proposed by the model was refused. Checked in the order of the variants.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolDenial {
    /// The endpoint declares no tool of this exact name (invented, look-alike, other
    /// endpoint's).
    #[error("undeclared tool {name}")]
    UnknownTool {
        /// An excerpt of the proposed name.
        name: Excerpt,
    },
    /// The tool's scope is not in the effective privilege.
    #[error("tool {tool} needs scope {required}, not in the effective privilege")]
    InsufficientScope {
        /// The tool's name.
        tool: String,
        /// The scope it needs.
        required: String,
    },
    /// The arguments are not a JSON object (nor a string holding one, of at most
    /// [`MAX_ARGUMENTS_BYTES`]).
    #[error("tool {tool}: arguments are not a JSON object")]
    ArgumentsNotObject {
        /// The tool's name.
        tool: String,
    },
    /// An argument the schema does not declare.
    #[error("tool {tool}: undeclared argument {arg}")]
    UnexpectedArgument {
        /// The tool's name.
        tool: String,
        /// An excerpt of the argument's name.
        arg: Excerpt,
    },
    /// A required argument is absent or null.
    #[error("tool {tool}: missing argument {arg}")]
    MissingArgument {
        /// The tool's name.
        tool: String,
        /// The argument's name.
        arg: String,
    },
    /// An argument of the wrong JSON type.
    #[error("tool {tool}: argument {arg} must be a {expected}")]
    WrongType {
        /// The tool's name.
        tool: String,
        /// The argument's name.
        arg: String,
        /// The type the schema declares.
        expected: &'static str,
    },
    /// A resource argument that failed provenance.
    #[error("tool {tool}: argument {arg}: {error}")]
    Id {
        /// The tool's name.
        tool: String,
        /// The argument's name.
        arg: String,
        #[source]
        /// Why provenance refused it.
        error: IdError,
    },
}

impl ToolDenial {
    /// A stable snake_case name for the kind of denial.
    pub fn as_str(&self) -> &'static str {
        match self {
            ToolDenial::UnknownTool { .. } => "unknown_tool",
            ToolDenial::InsufficientScope { .. } => "insufficient_scope",
            ToolDenial::ArgumentsNotObject { .. } => "arguments_not_object",
            ToolDenial::UnexpectedArgument { .. } => "unexpected_argument",
            ToolDenial::MissingArgument { .. } => "missing_argument",
            ToolDenial::WrongType { .. } => "wrong_type",
            ToolDenial::Id { .. } => "id",
        }
    }
}
