//! Provenance: values from untrusted places (above all, LLM output) cannot be used as
//! resource identifiers until they have been validated and authorized.
//!
//! The threat (docs/ARCHITECTURE.md §1, invariant PROVENANCE in §4): a model invents or is steered into
//! an identifier (`doc-b1` of another tenant, `../admin`, `%2e%2e%2f`, `dоc-a1` with a
//! Cyrillic `о`, `*`, `1'--`) and the API acts on it with the caller's token. Here the type
//! system closes that door:
//!
//! * [`Untrusted<T>`] wraps such a value together with its [`Source`]. It has no `Deref`, no
//!   `Display`, no `AsRef`, no `Serialize` and no accessor; its `Debug` shows the source only.
//!   The one way out that keeps the value usable as an identifier is [`Validator::authorize`].
//! * [`Validator::authorize`] applies, in a fixed order, the explicit rejections of
//!   [`IdRejection`] (traversal, encodings, control and look-alike characters, wildcards,
//!   injection strings), the kind's anchored, length-capped pattern ([`ResourceKind`]), the
//!   permission check ([`PermissionStore::permits`]) and the provenance rule (an id that did not
//!   come from the user's request must be one the user supplied or one the principal owns).
//! * The result, [`AuthorizedId`], has private fields and no public constructor: a handler
//!   that takes an `AuthorizedId` cannot be handed an unvalidated string.
//!
//! Errors ([`IdError`]) never carry more than [`EXCERPT_CHARS`] characters of the offending
//! value, escaped, so an LLM output that echoes a secret into an "id" cannot push that secret
//! into a log line through the guard.
//!
//! The module is split along those steps: `untrusted` (the wrapper, its source and the errors),
//! `kind` (resource kinds and the syntactic checks) and `validator` (permissions, the request
//! context and the validator that hands out [`AuthorizedId`]s).

mod kind;
mod untrusted;
mod validator;

pub use kind::{DEFAULT_MAX_LEN, DEFAULT_PATTERN, KindError, MAX_MAX_LEN, ResourceKind};
pub use untrusted::{EXCERPT_CHARS, Excerpt, IdError, IdRejection, Source, Untrusted};
pub use validator::{
    AuthorizedId, Basis, MemoryPermissions, PermissionStore, RequestContext, Validator,
};
