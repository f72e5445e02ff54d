//! The small, shrinkable input of one output: which family, which channel, which payload.

use arbitrary::Arbitrary;
use proptest::prelude::*;
use proptest::sample::select;
use serde::{Deserialize, Serialize};

use super::builder;
use super::context::OutputContext;
use super::script::{EchoEncoding, FabricatedOutput};
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
    /// Runaway chains: how many calls past the cap (modulo [`RUNAWAY_EXTRA_MAX`](super::RUNAWAY_EXTRA_MAX), plus one).
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
        builder::build(self, ctx)
    }
}

/// A strategy over built outputs for one context.
pub fn outputs(ctx: OutputContext) -> impl Strategy<Value = FabricatedOutput> {
    OutputRecipe::strategy().prop_map(move |recipe| recipe.build(&ctx))
}
