//! confab: a fuzzing and property-testing harness for HTTP APIs that put an LLM behind
//! bearer-token (JWT) authorization.
//!
//! Most users run the `confab` command (`confab scan --spec target.toml`, see the README).
//! As a library it offers:
//!
//! * [`testing`]: **in-process campaigns in your own tests**: hand confab any
//!   `tower::Service` (an axum `Router`) and it plays the caller, the model and the
//!   downstream API as function calls, checks every invariant and fails the test with the
//!   shrunk case; [`testing::Harness`] drives single cases from `proptest!`;
//! * [`guard`]: the reference guard (RFC 6750 / 7519 / 8725 bearer-token checks), usable on its
//!   own in front of any Rust service.
//!
//! Inside, the modules follow the data flow of `docs/ARCHITECTURE.md` §2: [`generators`] make
//! cases with their ground truth, [`spec`] describes the target, [`harness`] runs cases (the
//! fake model, the sink, the target process or service) and records each exchange as an
//! [`observation`], [`wire`] is the model APIs the fake model speaks, [`oracle`] checks each
//! exchange against the invariants, [`triage`] groups violations into findings, and [`report`]
//! turns findings into text, JSON, SARIF, JUnit and HTML.
#![forbid(unsafe_code)]

pub mod generators;
pub mod harness;
pub mod observation;
pub mod oracle;
pub mod report;
pub mod spec;
pub mod testing;
pub mod triage;
pub mod wire;

/// The reference guard (the `confab-guard` crate).
pub use confab_guard as guard;
/// The contract a target built in Rust is written against (the `confab-target` crate).
pub use confab_target as target;

#[doc(hidden)]
pub mod internal;
