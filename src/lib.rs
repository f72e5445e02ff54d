//! confab: a fuzzing and property-testing harness for HTTP APIs that put an LLM behind
//! bearer-token (JWT) authorization.
//!
//! The crate follows the data flow of `DESIGN.md` §2:
//!
//! * [`generators`] (`src/gen/`): generators that produce values together with their ground truth;
//! * [`guard`]: the reference guard, usable on its own by any Rust service;
//! * [`spec`]: the target spec (TOML) that configures the guard and, later, the harness.
#![forbid(unsafe_code)]

// `gen` is a reserved word in Rust 2024; the folder keeps the name of DESIGN.md §2.
pub mod fuzzing;
#[path = "gen/mod.rs"]
pub mod generators;
pub mod guard;
pub mod harness;
pub mod observation;
pub mod oracle;
pub mod report;
pub mod spec;
pub mod targets;
pub mod wire;
