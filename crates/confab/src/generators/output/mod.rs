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
//!
//! # Where things live
//!
//! Every public item is re-exported here, so its path stays `generators::output::…`.
//!
//! * `context`: what an output is fabricated from ([`OutputContext`]: the caller's ids, the
//!   declared tools, the texts sent) and which credentials the target showed the model
//!   (`shown_credentials`).
//! * `script`: what comes out ([`FabricatedOutput`], its [`Invented`] ground truth, the
//!   [`Echo`]es and their encodings), and the URL grammar that decides what a script holds.
//! * `recipe`: the families and channels and the [`OutputRecipe`] that picks among them,
//!   with its proptest strategy: the small, shrinkable input.
//! * `catalogue`: the payload lists (traversals, wildcards, injections, URLs, invented tool
//!   names) and the parameter-name hints; data only, so adding a payload touches nothing else.
//! * `builder`: the one pass that turns a recipe and a context into turns, recording every
//!   identifier it writes as it writes it (so the ground truth cannot drift from the script).

mod builder;
mod catalogue;
mod context;
mod recipe;
mod script;

pub(crate) use context::shown_credentials;
pub use context::{DeclaredTool, OutputContext, ParamKind, SentTexts, ToolParam};
pub use recipe::{Channel, OutputFamily, OutputRecipe, outputs};
pub use script::{Echo, EchoEncoding, EchoSource, FabricatedOutput, Invented, ModelTurn, ToolCall};

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
