//! The reference guard: what a correct bearer-token API decides for any request.
//!
//! It depends on no other confab crate and on no async runtime, HTTP stack or CLI library, so
//! a Rust service can use it as is. The token
//! half checks, in this order, and reports the first failure as a [`Rejection`]:
//!
//! 1. the `Authorization` header (RFC 6750 §2.1): present once, `Bearer 1*SP b64token`,
//!    no longer than the size cap;
//! 2. structure: three base64url segments (no padding), JSON objects, no duplicate members;
//! 3. the JOSE header (RFC 8725): `alg` not `none`, no `crit`, no `jwk`/`jku`/`x5u`/`x5c`,
//!    a `kid` only from the configured map, `alg` equal to the selected key's pinned
//!    algorithm, the required `typ` (RFC 9068);
//! 4. the signature;
//! 5. claims: NumericDates are numbers, `exp` required and in the future, `nbf` honoured,
//!    `iss`/`aud` exactly as configured, `sub` present;
//! 6. scopes (RFC 8693 §4.2): every required scope token granted, compared exactly.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

// The README's example runs as a doctest, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;

pub mod audit;
pub mod bearer;
pub mod capability;
pub mod config;
pub mod error;
mod jose;
pub mod provenance;
pub mod scope;
pub mod scrub;
pub mod secret;
pub mod token;
pub mod token_forms;

/// What only confab's fuzz targets, tests and benchmarks need. Not part of the API: it may
/// change in any release.
#[doc(hidden)]
pub mod internal {
    /// For the `jose_flat` fuzz target: `None` when the guard's flat JSON scanner leaves
    /// `json` to serde, else whether it read it (as a JOSE header and as a claims set) exactly
    /// as serde does.
    pub fn jose_flat_agrees_with_serde(json: &[u8]) -> Option<bool> {
        crate::jose::agrees_with_serde(json)
    }
}

pub use capability::{
    AllowedUrl, AuthorizedCall, AuthorizedRequest, Capability, EffectivePrivilege, EndpointPolicy,
    HostAllowlist, Method, MethodScopes, RequestDenial, ToolDenial, ToolSpec, UrlDenial,
};
pub use config::{AuthConfig, ConfigError, SigningKey};
pub use error::Rejection;
pub use provenance::{
    AuthorizedId, IdError, IdRejection, MemoryPermissions, PermissionStore, RequestContext,
    ResourceKind, Source, Untrusted, Validator,
};
pub use scope::ScopeSet;
pub use secret::Secret;
pub use token::{Authenticated, Guard, unix_now};
