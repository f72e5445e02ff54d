//! Capabilities: what an endpoint may do downstream on the caller's behalf, and the checks
//! that keep a model (or a confused handler) inside that.
//!
//! Invariant AGENCY of docs/ARCHITECTURE.md §4: no downstream call outside the endpoint's declared
//! capabilities, no request to a URL the model invented. Each endpoint declares
//!
//! * HTTP capabilities, parsed from strings like `"GET /docs/{id}"` ([`Capability`]); a
//!   concrete request matches one only with the same method, the same literal segments, and one
//!   non-empty segment per `{placeholder}`, whose value comes back as an [`Untrusted`] that
//!   still has to pass provenance;
//! * tools ([`ToolSpec`]): a name, the scope it needs and a small argument schema (resource
//!   ids of some kind, integers, booleans; no extra arguments);
//! * allowed URL hosts ([`HostAllowlist`]), matched exactly after a strict parse.
//!
//! Every capability and tool names the scope it needs (by default from the method:
//! [`MethodScopes`]). The **effective privilege** of a request is the token's scopes
//! intersected with the scopes the endpoint's own capabilities name
//! ([`EndpointPolicy::effective_scopes`]): an overscoped token gives the model nothing extra,
//! because an undeclared capability never matches whatever the token says.
//!
//! The checks hand back authorized types with private fields ([`AuthorizedRequest`],
//! [`AuthorizedCall`], [`AllowedUrl`]) or a typed denial.
//!
//! The module is split along those lines: `http` (methods, path templates, [`Capability`]),
//! `tool` ([`ToolSpec`] and its checks), `url` (the strict URL parser and [`HostAllowlist`])
//! and `policy` ([`EndpointPolicy`] and [`EffectivePrivilege`], where the three meet).
//!
//! [`Untrusted`]: crate::provenance::Untrusted

mod http;
mod policy;
mod tool;
mod url;

pub use http::{
    Capability, CapabilityParseError, MAX_TEMPLATE_LEN, Method, MethodScopes, PathTemplate,
    RenderError, Segment, parse_method,
};
pub use policy::{
    AuthorizedRequest, EffectivePrivilege, EndpointPolicy, PolicyError, RequestDenial,
};
pub use tool::{
    ArgSpec, ArgType, AuthorizedArg, AuthorizedCall, MAX_ARGUMENTS_BYTES, ToolDenial, ToolSpec,
};
pub use url::{AllowedUrl, Host, HostAllowlist, MAX_URL_LEN, Scheme, UrlDenial};
