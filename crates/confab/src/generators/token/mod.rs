//! Token generators: valid tokens and every forged, malformed, misconfigured and overscoped
//! family of docs/ARCHITECTURE.md §5, each labelled with what a correct guard decides for it.
//!
//! A [`TokenRecipe`] is a handful of small numbers (so proptest shrinks it and `arbitrary`
//! builds it from fuzzer bytes); [`TokenRecipe::mint`] turns it into a [`TokenCase`] against
//! a [`MintContext`], with real signatures from real keys.
//!
//! The module is split where the data changes hands; every public item is re-exported here,
//! so its path stays `generators::token::…`:
//!
//! * `family`: the attack catalogue, [`TokenFamily`], and what making each family takes
//!   ([`MadeBy`]). Reports, corpus files and severity read only this, so it stays free of
//!   keys and JSON.
//! * `context`: [`MintContext`], what minting needs from the spec (the issuer's key, the
//!   policy, the principals), and how a valid token's header and claims start out.
//! * `keys`: the keys a forger holds and the signing keys parsed once ([`MintContext`]
//!   signs thousands of tokens per campaign, so parsing per signature was the cost).
//! * `recipe`: [`TokenRecipe`], its proptest strategies, and [`TokenRecipe::mint`]: the one
//!   place where each family's token and ground truth ([`Expected`]) are built.

mod context;
mod family;
mod keys;
mod recipe;

pub use context::{ATTACKER_BASE, MintContext, MintError, TokenPrincipal};
pub use family::{MadeBy, TokenFamily};
pub use recipe::{Expected, TokenCase, TokenRecipe, token_recipe, token_recipe_of};
