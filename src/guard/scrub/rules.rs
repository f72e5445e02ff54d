//! Credential and PII patterns: one multi-pattern regex scanned once over the text.
//!
//! All patterns compile in ASCII mode (`unicode(false)`, `utf8(false)`): a byte-oriented lazy
//! DFA keeps its speed on text with non-ASCII bytes and never fails on invalid UTF-8 (FACTS.md:
//! Unicode mode with boundaries drops to ~2 MB/s). Word boundaries are not written as `\b` but
//! checked on the candidate's neighbouring bytes in code, so the DFA never needs look-around.
//! Every repetition that may be long is unbounded in the regex (`+`, `{n,}`) and checked in
//! code, because a bounded repetition like `{0,4096}` is unrolled into thousands of NFA states.

use super::{FindingKind, Hit, HitDetail};
use regex_automata::{Input, meta, util::syntax};
use std::sync::LazyLock;

/// Longest span a PEM private-key block may have from `-----BEGIN` to the end of `-----END …`
/// (an 8192-bit RSA key is ~6.5 KB). A longer block is redacted from BEGIN over its base64 body
/// up to this cap; the rest of the body is a high-entropy run and is caught by that rule.
pub const PEM_CAP: usize = 12 * 1024;

/// How a candidate is checked before it counts.
#[derive(Clone, Copy)]
enum Check {
    /// Neighbouring bytes must not be token characters.
    Bounded,
    /// Bounded, then narrowed to capture group 1 of a per-rule regex run on the match only.
    Value(usize),
    OpenAi,
    Bearer,
    Pem,
    Phone,
    Card,
    Ssn,
}

struct Rule {
    id: &'static str,
    kind: FindingKind,
    re: &'static str,
    check: Check,
}

const CRED: FindingKind = FindingKind::Credential;
const PII: FindingKind = FindingKind::Pii;

/// Order matters: the combined regex is leftmost-first, so at one start position the rule
/// listed first wins (Anthropic before OpenAI; SSN and US phone before the card rule).
const RULES: &[Rule] = &[
    Rule {
        id: "private_key",
        kind: CRED,
        re: r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        check: Check::Pem,
    },
    Rule {
        id: "bearer_credential",
        kind: CRED,
        re: r"(?i:bearer)[ \t]+[A-Za-z0-9._~+/-]+=*",
        check: Check::Bearer,
    },
    Rule {
        id: "jwt",
        kind: CRED,
        re: r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
        check: Check::Bounded,
    },
    Rule {
        id: "aws_access_key_id",
        kind: CRED,
        re: r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}",
        check: Check::Bounded,
    },
    Rule {
        id: "aws_secret_access_key",
        kind: CRED,
        re: r#"(?i:aws)[A-Za-z0-9_.-]{0,20}(?i:secret)[A-Za-z0-9_.-]{0,20}["']?[ \t]*(?::=|=>|:|=)[ \t]*["']?[A-Za-z0-9/+]{40}"#,
        check: Check::Value(0),
    },
    Rule {
        id: "github_token",
        kind: CRED,
        re: r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}",
        check: Check::Bounded,
    },
    Rule {
        id: "github_pat",
        kind: CRED,
        re: r"github_pat_[A-Za-z0-9_]{22,}",
        check: Check::Bounded,
    },
    Rule {
        id: "gitlab_token",
        kind: CRED,
        re: r"glpat-[A-Za-z0-9_-]{20,}",
        check: Check::Bounded,
    },
    Rule {
        id: "slack_token",
        kind: CRED,
        re: r"xox[bpars]-[A-Za-z0-9-]{10,}",
        check: Check::Bounded,
    },
    Rule {
        id: "slack_webhook",
        kind: CRED,
        re: r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}",
        check: Check::Bounded,
    },
    Rule {
        id: "stripe_key",
        kind: CRED,
        re: r"(?:sk|rk)_live_[A-Za-z0-9]{20,}",
        check: Check::Bounded,
    },
    Rule {
        id: "google_api_key",
        kind: CRED,
        re: r"AIza[A-Za-z0-9_-]{35}",
        check: Check::Bounded,
    },
    Rule {
        id: "anthropic_api_key",
        kind: CRED,
        re: r"sk-ant-[A-Za-z0-9_-]{20,}",
        check: Check::Bounded,
    },
    Rule {
        id: "openai_api_key",
        kind: CRED,
        re: r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
        check: Check::OpenAi,
    },
    Rule {
        id: "us_ssn",
        kind: PII,
        re: r"[0-9]{3}-[0-9]{2}-[0-9]{4}",
        check: Check::Ssn,
    },
    Rule {
        id: "phone",
        kind: PII,
        re: r"(?:\([0-9]{3}\) ?|[0-9]{3}[.-])[0-9]{3}[.-][0-9]{4}",
        check: Check::Phone,
    },
    Rule {
        id: "phone",
        kind: PII,
        re: r"0[1-9][0-9]{1,3}[ /-][0-9]{3,4}[ -][0-9]{3,4}",
        check: Check::Phone,
    },
    Rule {
        id: "payment_card",
        kind: PII,
        re: r"[0-9](?:[ -]?[0-9]){12,18}",
        check: Check::Card,
    },
    Rule {
        id: "phone",
        kind: PII,
        re: r"\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,4}\)?){1,5}",
        check: Check::Phone,
    },
    Rule {
        id: "email",
        kind: PII,
        re: r"[A-Za-z0-9_.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
        check: Check::Bounded,
    },
];

/// The ids of the pattern rules (deduplicated), for marker checks and documentation.
pub fn rule_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = RULES.iter().map(|r| r.id).collect();
    ids.dedup();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Per-rule regexes that narrow an accepted match to the secret value (group 1).
static VALUE_RES: LazyLock<Vec<regex::bytes::Regex>> = LazyLock::new(|| {
    [r#"(?-u)[:=>]\s*["']?([A-Za-z0-9/+]{40})$"#]
        .iter()
        // Compile-time constant patterns: a failure is a bug caught by every test run.
        .map(|p| regex::bytes::Regex::new(p).expect("constant value regex"))
        .collect()
});

/// The combined automaton: one lazy DFA over all rules.
pub struct Patterns {
    re: meta::Regex,
}

static PATTERNS: LazyLock<Result<Patterns, String>> = LazyLock::new(Patterns::compile);

impl Patterns {
    fn compile() -> Result<Patterns, String> {
        let pats: Vec<&str> = RULES.iter().map(|r| r.re).collect();
        let re = meta::Regex::builder()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(
                meta::Config::new()
                    // A bigger lazy-DFA cache keeps the DFA from thrashing on 20 rules
                    // (FACTS.md: 285 MB/s with the default, 630 MB/s with a larger cache).
                    .hybrid_cache_capacity(16 << 20)
                    .nfa_size_limit(Some(64 << 20))
                    .dfa_size_limit(Some(64 << 20)),
            )
            .build_many(&pats)
            .map_err(|e| format!("pattern rules do not compile: {e}"))?;
        Ok(Patterns { re })
    }

    /// The shared, compiled rule set (built once per process).
    pub fn get() -> Result<&'static Patterns, String> {
        PATTERNS.as_ref().map_err(Clone::clone)
    }

    /// Appends every accepted candidate in `hay` to `out`.
    pub fn scan(&self, hay: &[u8], out: &mut Vec<Hit>) {
        self.scan_window(hay, 0, hay.len(), out);
    }

    /// [`Patterns::scan`] of the candidates that start in `pos..until`, where `until` is a line
    /// end (a `\n` or the end of `hay`): no rule's regex matches a line break, so a candidate
    /// never crosses `until`, and the scan resumes at a match's end (an accepted PEM block may extend
    /// past it; neighbouring bytes are read from all of `hay`). So each line is scanned on its
    /// own, and scanning only some lines finds exactly what one scan of the whole text finds on
    /// them. Returns where the scan stopped.
    pub fn scan_window(
        &self,
        hay: &[u8],
        mut pos: usize,
        until: usize,
        out: &mut Vec<Hit>,
    ) -> usize {
        while pos < until {
            let Some(m) = self.re.search(&Input::new(hay).range(pos..until)) else {
                return until;
            };
            let rule = &RULES[m.pattern().as_usize()];
            match accept(rule, hay, m.start(), m.end()) {
                Some((s, e)) => {
                    out.push(Hit {
                        start: s,
                        end: e,
                        ctx: m.start(),
                        rule: rule.id,
                        kind: rule.kind,
                        detail: HitDetail::None,
                    });
                    pos = m.end().max(m.start() + 1);
                }
                // A rejected candidate may hide a real one that starts inside it.
                None => pos = m.start() + 1,
            }
        }
        pos
    }
}

/// A byte that continues an identifier or token: a match must not be glued to one.
fn tokenish(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn left_ok(hay: &[u8], s: usize, also: &[u8]) -> bool {
    s == 0 || !(tokenish(hay[s - 1]) || also.contains(&hay[s - 1]))
}

fn right_ok(hay: &[u8], e: usize, also: &[u8]) -> bool {
    e >= hay.len() || !(tokenish(hay[e]) || also.contains(&hay[e]))
}

fn accept(rule: &Rule, hay: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
    let m = &hay[s..e];
    match rule.check {
        Check::Bounded => (left_ok(hay, s, b"-") && right_ok(hay, e, b"")).then_some((s, e)),
        Check::Value(i) => {
            // The key name is context enough on the left (`MY_AWS_SECRET_KEY=` must count).
            if !right_ok(hay, e, b"/+") {
                return None;
            }
            let caps = VALUE_RES.get(i)?.captures(m)?;
            let g = caps.get(1)?;
            Some((s + g.start(), s + g.end()))
        }
        Check::OpenAi => {
            let ok = left_ok(hay, s, b"-")
                && right_ok(hay, e, b"")
                && m.iter().any(u8::is_ascii_digit)
                && m[3..].iter().any(u8::is_ascii_alphabetic);
            ok.then_some((s, e))
        }
        Check::Bearer => {
            if !left_ok(hay, s, b"-") {
                return None;
            }
            // The credential is what follows the scheme and its blanks.
            let v = 6 + m[6..]
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t')
                .count();
            let tok = &m[v..];
            // Prose ("a Bearer token", "Bearer authentication") is not a credential: ask for
            // some length and a digit or mixed case, as real tokens have.
            let digit = tok.iter().any(u8::is_ascii_digit);
            let mixed =
                tok.iter().any(u8::is_ascii_uppercase) && tok.iter().any(u8::is_ascii_lowercase);
            (tok.len() >= 16 && (digit || mixed)).then_some((s + v, e))
        }
        Check::Pem => Some((s, pem_end(hay, e))),
        Check::Phone => {
            let digits = m.iter().filter(|b| b.is_ascii_digit()).count();
            let ok = (10..=15).contains(&digits)
                && left_ok(hay, s, b"-.+/")
                && right_ok(hay, e, b"-/")
                && !(e < hay.len()
                    && hay[e] == b'.'
                    && hay.get(e + 1).is_some_and(u8::is_ascii_digit));
            ok.then_some((s, e))
        }
        Check::Card => {
            let digits: Vec<u8> = m
                .iter()
                .filter(|b| b.is_ascii_digit())
                .map(|b| b - b'0')
                .collect();
            let ok = left_ok(hay, s, b"-.+/")
                && right_ok(hay, e, b"-/")
                && !(e < hay.len()
                    && hay[e] == b'.'
                    && hay.get(e + 1).is_some_and(u8::is_ascii_digit))
                && card_prefix(&digits)
                && luhn(&digits);
            ok.then_some((s, e))
        }
        Check::Ssn => {
            let ok = left_ok(hay, s, b"-.+/") && right_ok(hay, e, b"-/") && ssn_valid(m);
            ok.then_some((s, e))
        }
    }
}

/// Issuer prefixes of the major networks (Visa, Mastercard, Amex, Discover, JCB, Diners):
/// with Luhn this keeps long order numbers and timestamps out.
fn card_prefix(d: &[u8]) -> bool {
    let n = |k: usize| d.iter().take(k).fold(0u32, |a, x| a * 10 + u32::from(*x));
    let len = d.len();
    match d.first() {
        Some(4) => matches!(len, 13 | 16 | 19),
        Some(5) => (51..=55).contains(&n(2)) && len == 16,
        Some(2) => (2221..=2720).contains(&n(4)) && len == 16,
        Some(3) => {
            (matches!(n(2), 34 | 37) && len == 15)
                || ((3528..=3589).contains(&n(4)) && len >= 16)
                || (matches!(n(2), 36 | 38 | 39) && len >= 14)
                || ((300..=305).contains(&n(3)) && len >= 14)
        }
        Some(6) => (n(4) == 6011 || n(2) == 65 || (644..=649).contains(&n(3))) && len >= 16,
        _ => false,
    }
}

/// The Luhn checksum (ISO/IEC 7812-1).
pub fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, x)| {
            let x = u32::from(*x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    !d.is_empty() && sum.is_multiple_of(10)
}

/// SSA rules: area 000, 666 and 900–999, group 00 and serial 0000 are never issued; the
/// Woolworth wallet number 078-05-1120 and the 1940s advert 219-09-9999 are well-known fakes.
pub fn ssn_valid(m: &[u8]) -> bool {
    if m.len() != 11 {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        m[r].iter()
            .fold(0u32, |a, b| a * 10 + u32::from(b.wrapping_sub(b'0')))
    };
    let (area, group, serial) = (num(0..3), num(4..6), num(7..11));
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && m != b"078-05-1120"
        && m != b"219-09-9999"
}

/// Where a PEM private-key block whose BEGIN line ends at `after` ends: at the end of its
/// `-----END …-----` line if that comes within [`PEM_CAP`] over PEM body bytes only (base64,
/// line breaks, escaped `\n`, `Proc-Type:`/`DEK-Info:` header lines); else at the end of the
/// base64 body that follows (capped), so a truncated block is still redacted.
fn pem_end(hay: &[u8], after: usize) -> usize {
    let limit = hay.len().min(after.saturating_add(PEM_CAP));
    let window = &hay[after..limit];
    let body_or_header = |b: &u8| b.is_ascii_alphanumeric() || b" \t\r\n+/=\\:,-".contains(b);
    if let Some(p) = memchr::memmem::find(window, b"-----END ")
        && window[..p].iter().all(body_or_header)
        && let Some(q) = memchr::memmem::find(&window[p + 9..], b"-----")
    {
        return after + p + 9 + q + 5;
    }
    let body = |b: &u8| b.is_ascii_alphanumeric() || b"\r\n+/=\\".contains(b);
    after + window.iter().take_while(|b| body(b)).count()
}
