//! Permissions ([`PermissionStore`]), what one request established ([`RequestContext`]) and the
//! [`Validator`] that turns an [`Untrusted`] id into an [`AuthorizedId`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use super::kind::{ResourceKind, check_syntax};
use super::untrusted::{IdError, IdRejection, Source, Untrusted};
use serde::Serialize;

/// Who may access what. Implement it over your own store; [`MemoryPermissions`] is the
/// simple in-memory one.
pub trait PermissionStore {
    /// May `principal` access the resource `id` of `kind` at all? (Owned, shared, public.)
    fn permits(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool;

    /// Does `principal` own it? Only owned ids (and ids the user supplied) may be introduced
    /// by the model. The default treats every permitted resource as owned; override it when
    /// some permitted resources (shared, public) must not be reachable through the model
    /// unless the user names them.
    fn owns(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        self.permits(principal, kind, id)
    }
}

impl<P: PermissionStore + ?Sized> PermissionStore for &P {
    fn permits(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        (**self).permits(principal, kind, id)
    }
    fn owns(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        (**self).owns(principal, kind, id)
    }
}

impl<P: PermissionStore + ?Sized> PermissionStore for Arc<P> {
    fn permits(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        (**self).permits(principal, kind, id)
    }
    fn owns(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        (**self).owns(principal, kind, id)
    }
}

/// An in-memory [`PermissionStore`]: owned resources (permitted and model-reachable) and
/// shared ones (permitted, reachable only when the user names them).
#[derive(Clone, Debug, Default)]
pub struct MemoryPermissions {
    // (principal, kind name, id)
    owned: BTreeSet<(String, String, String)>,
    shared: BTreeSet<(String, String, String)>,
}

impl MemoryPermissions {
    /// An empty store: nobody may access anything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `principal` owns `id` of kind `kind`.
    pub fn own(&mut self, principal: &str, kind: &str, id: &str) -> &mut Self {
        self.owned
            .insert((principal.to_owned(), kind.to_owned(), id.to_owned()));
        self
    }

    /// Records that `principal` may access (but does not own) `id` of kind `kind`.
    pub fn share(&mut self, principal: &str, kind: &str, id: &str) -> &mut Self {
        self.shared
            .insert((principal.to_owned(), kind.to_owned(), id.to_owned()));
        self
    }

    fn has(set: &BTreeSet<(String, String, String)>, p: &str, k: &str, id: &str) -> bool {
        // Scoped tuple lookup without allocating on the happy path would need a custom
        // Borrow; sets are small and this is not hot, so allocate.
        set.contains(&(p.to_owned(), k.to_owned(), id.to_owned()))
    }
}

impl PermissionStore for MemoryPermissions {
    fn permits(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        Self::has(&self.owned, principal, kind.name(), id)
            || Self::has(&self.shared, principal, kind.name(), id)
    }

    fn owns(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        Self::has(&self.owned, principal, kind.name(), id)
    }
}

/// What one request established: the authenticated principal (the token's `sub`) and the
/// identifiers the user supplied in it (path parameters, body fields).
///
/// User-supplied ids are recorded per kind and compared byte for byte; they are not trusted
/// by being recorded (they still have to pass syntax and permission), they only satisfy the
/// provenance rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    principal: String,
    supplied: BTreeSet<(String, String)>,
}

impl RequestContext {
    /// A context for `principal` with no user-supplied ids.
    pub fn new(principal: impl Into<String>) -> Self {
        RequestContext {
            principal: principal.into(),
            supplied: BTreeSet::new(),
        }
    }

    /// Records that the user's request named `id` as a resource of `kind`.
    pub fn supply(&mut self, kind: &ResourceKind, id: impl Into<String>) -> &mut Self {
        self.supplied.insert((kind.name().to_owned(), id.into()));
        self
    }

    /// Builder form of [`RequestContext::supply`].
    pub fn with_supplied(mut self, kind: &ResourceKind, id: impl Into<String>) -> Self {
        self.supply(kind, id);
        self
    }

    /// The principal.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Did the user supply `id` as a `kind`?
    pub fn is_supplied(&self, kind: &ResourceKind, id: &str) -> bool {
        // Linear scan avoids allocating a key; a request supplies a handful of ids.
        self.supplied
            .iter()
            .any(|(k, i)| k == kind.name() && i == id)
    }
}

/// Why an [`AuthorizedId`] was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The value came from the user's request itself.
    UserRequest,
    /// The value came from elsewhere (the model) but equals an id the user supplied.
    UserSupplied,
    /// The value came from elsewhere (the model) and the principal owns it.
    Owned,
}

/// A resource id that passed every check for a principal: the only thing a handler should
/// ever put into a path, query or downstream call.
///
/// The fields are private and there is no public constructor or `Deserialize`: only
/// [`Validator::authorize`] makes one. Unlike [`Untrusted`] it may be displayed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthorizedId {
    kind: Arc<str>,
    id: String,
    source: Source,
    basis: Basis,
}

impl AuthorizedId {
    /// The validated id.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The name of its resource kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Where the value came from before it was validated.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Why it was accepted.
    pub fn basis(&self) -> Basis {
        self.basis
    }
}

impl fmt::Display for AuthorizedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl AsRef<str> for AuthorizedId {
    fn as_ref(&self) -> &str {
        &self.id
    }
}

/// Validates untrusted ids for one request: syntax, permission, provenance.
#[derive(Clone, Copy)]
pub struct Validator<'a> {
    // `Sync` so a validator can live across `.await` points in async handlers.
    store: &'a (dyn PermissionStore + Sync),
    ctx: &'a RequestContext,
}

impl fmt::Debug for Validator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator").field("ctx", self.ctx).finish()
    }
}

impl<'a> Validator<'a> {
    /// A validator for the request described by `ctx`, deciding permissions with `store`.
    pub fn new(store: &'a (dyn PermissionStore + Sync), ctx: &'a RequestContext) -> Self {
        Validator { store, ctx }
    }

    /// The request context.
    pub fn context(&self) -> &'a RequestContext {
        self.ctx
    }

    /// Turns an untrusted value into an [`AuthorizedId`] of `kind`, or says why not.
    ///
    /// Order: the syntactic checks of [`IdRejection`] (first failing one reported), then
    /// [`PermissionStore::permits`] ([`IdRejection::NotPermitted`]), then the provenance
    /// rule ([`IdRejection::Unsourced`]): a value whose source is not
    /// [`Source::UserRequest`] is accepted only if the user supplied the same id of the same
    /// kind in this request, or the principal owns it.
    pub fn authorize<T: AsRef<str>>(
        &self,
        kind: &ResourceKind,
        value: Untrusted<T>,
    ) -> Result<AuthorizedId, IdError> {
        let source = value.source;
        let id = value.value.as_ref();
        let fail = |reason| IdError::new(reason, kind, source, id);
        check_syntax(id, kind).map_err(fail)?;
        let principal = self.ctx.principal();
        if !self.store.permits(principal, kind, id) {
            return Err(fail(IdRejection::NotPermitted));
        }
        let basis = if source == Source::UserRequest {
            Basis::UserRequest
        } else if self.ctx.is_supplied(kind, id) {
            Basis::UserSupplied
        } else if self.store.owns(principal, kind, id) {
            Basis::Owned
        } else {
            return Err(fail(IdRejection::Unsourced));
        };
        Ok(AuthorizedId {
            kind: kind.name.clone(),
            id: id.to_owned(),
            source,
            basis,
        })
    }
}
