//! The target's log shared out to the cases that caused its lines (see [`CaseLogs`]).

use crate::guard::scrub::{Encoding, MAX_SECRET_LEN, MIN_SECRET_LEN, encodings};
use memchr::memmem::Finder;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

/// Lines kept for [`CaseLogs::tail`] (why a target did not start).
const TAIL_LINES: usize = 64;

/// Log lines held for cases at most (across the cases in flight and those not yet settled);
/// past it, lines are dropped so memory stays bounded whatever the target prints. A case
/// holds only its own lines, a few: this is ample.
const MAX_HELD_LINES: usize = 16_384;

/// Closed cases kept waiting for late lines at most: the campaign settles them batch by
/// batch, so this only bounds memory if a caller never settles.
const MAX_UNSETTLED: usize = 4_096;

/// What ties a log line to one case: the case's nonce, or its bearer token, whole (raw or in
/// any encoding the oracle finds: base64, hex, percent) or its signature segment (raw, where
/// it stands apart from other base64url characters). Nothing else in a line is unique to a
/// case. An encoded signature alone does not tie a line (the oracle would still find it in
/// the case's own lines): looking for every encoding of every case's signature would cost
/// more per line than the rest of the case.
pub struct CaseMaterial {
    nonce: String,
    raw_token: Option<String>,
    /// Parsed when a line is first matched against the case: most cases never need it.
    token: Option<Token>,
}

/// Names nothing: the token is a secret.
impl std::fmt::Debug for CaseMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaseMaterial(..)")
    }
}

/// Bytes of a token whose encodings prefilter lines, as
/// [`TokenForms`](crate::guard::token_forms::TokenForms) does. Tokens of one run share their
/// header, so cases share this prefilter: a line is checked once for it.
const PREFIX_BYTES: usize = 12;

struct Token {
    whole: String,
    /// What finds the token raw: for a JWT its payload segment (between two dots, so it
    /// stands apart even where a line glues the token to other text, as threads writing at
    /// once do) and its signature segment, looked up by the runs of a line; else the whole
    /// token, searched for.
    raw: Raw,
    /// Every encoding of the whole token; built when a line holds its prefix.
    full: OnceLock<Vec<String>>,
}

enum Raw {
    Runs(Vec<String>),
    Search(String),
}

impl Token {
    /// As [`TokenForms::new`](crate::guard::token_forms::TokenForms::new): `None` for a token
    /// the oracle would not look for.
    fn new(token: &str) -> Option<Token> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&token.len()) {
            return None;
        }
        let mut runs: Vec<String> = match token.split('.').collect::<Vec<_>>().as_slice() {
            [_, payload, sig] => [payload, sig]
                .into_iter()
                .filter(|s| s.len() >= MIN_SECRET_LEN && is_run(s))
                .map(|s| (*s).to_owned())
                .collect(),
            _ => Vec::new(),
        };
        // Payload and signature alike (never, in practice) are one key.
        runs.dedup();
        let raw = if runs.is_empty() {
            Raw::Search(token.to_owned())
        } else {
            Raw::Runs(runs)
        };
        Some(Token {
            whole: token.to_owned(),
            raw,
            full: OnceLock::new(),
        })
    }

    fn prefix(&self) -> &[u8] {
        let raw = self.whole.as_bytes();
        &raw[..raw.len().min(PREFIX_BYTES)]
    }

    fn in_any_form(&self, line: &str) -> bool {
        self.full
            .get_or_init(|| ascii(encodings(self.whole.as_bytes())))
            .iter()
            .any(|f| line.contains(f.as_str()))
    }
}

fn is_base64url(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn is_run(s: &str) -> bool {
    s.chars().all(is_base64url)
}

/// Encodings as text (every encoding is ASCII; one that were not could not occur in a line
/// anyway, and is left out).
fn ascii(encoded: Vec<(Encoding, Vec<u8>)>) -> Vec<String> {
    encoded
        .into_iter()
        .filter_map(|(_, e)| String::from_utf8(e).ok())
        .collect()
}

impl CaseMaterial {
    /// What ties lines to a case with this nonce and bearer token (if it sends one).
    pub fn new(nonce: &str, token: Option<&str>) -> CaseMaterial {
        CaseMaterial {
            nonce: nonce.to_owned(),
            raw_token: token.map(str::to_owned),
            token: None,
        }
    }
}

/// Groups of tokens by first bytes kept, empty ones included (their searchers cost more to
/// build than to keep); past it, empty groups go.
const MAX_PREFIX_GROUPS: usize = 64;

/// Where the collecting cases' material is looked up: matching a line costs about the same
/// however many cases are collecting (a process's unsettled cases can be a hundred).
#[derive(Default)]
struct Index {
    /// Nonces, found where a line holds their first characters.
    nonces: HashMap<String, Vec<u64>>,
    /// The distinct (first three characters, length) of the nonces.
    nonce_shapes: Vec<(String, usize)>,
    /// Raw tokens that are runs of base64url characters, looked up by the runs of a line.
    runs: HashMap<String, Vec<u64>>,
    /// How many keys of `runs` have each length: a line's run of another length is not
    /// looked up (most words of a log line).
    run_lengths: HashMap<usize, usize>,
    /// Raw tokens searched for one by one.
    searched: Vec<(String, u64)>,
    /// Cases with a token, grouped by its first bytes, with the encodings of those bytes.
    prefixes: Vec<(Vec<u8>, Vec<Finder<'static>>, Vec<u64>)>,
}

impl Index {
    fn add(&mut self, ticket: u64, m: &CaseMaterial) {
        if !m.nonce.is_empty() {
            self.nonces.entry(m.nonce.clone()).or_default().push(ticket);
            let shape = (m.nonce.chars().take(3).collect::<String>(), m.nonce.len());
            if !self.nonce_shapes.contains(&shape) {
                self.nonce_shapes.push(shape);
            }
        }
        let Some(t) = &m.token else {
            return;
        };
        match &t.raw {
            Raw::Runs(runs) => {
                for run in runs {
                    if !self.runs.contains_key(run) {
                        *self.run_lengths.entry(run.len()).or_default() += 1;
                    }
                    self.runs.entry(run.clone()).or_default().push(ticket);
                }
            }
            Raw::Search(whole) => self.searched.push((whole.clone(), ticket)),
        }
        match self.prefixes.iter_mut().find(|(p, _, _)| p == t.prefix()) {
            Some((_, _, tickets)) => tickets.push(ticket),
            None => {
                // Not the raw prefix: a raw token is found by its run, and every line that
                // holds some case's token would otherwise be searched for all the others.
                let heads = encodings(t.prefix())
                    .into_iter()
                    .filter(|(_, h)| h.as_slice() != t.prefix())
                    .map(|(_, h)| Finder::new(&h).into_owned())
                    .collect();
                if self.prefixes.len() >= MAX_PREFIX_GROUPS {
                    self.prefixes.retain(|(_, _, tickets)| !tickets.is_empty());
                }
                self.prefixes
                    .push((t.prefix().to_vec(), heads, vec![ticket]));
            }
        }
    }

    fn remove(&mut self, ticket: u64, m: &CaseMaterial) {
        fn drop_from(map: &mut HashMap<String, Vec<u64>>, key: &str, ticket: u64) {
            if let Some(tickets) = map.get_mut(key) {
                tickets.retain(|t| *t != ticket);
                if tickets.is_empty() {
                    map.remove(key);
                }
            }
        }
        drop_from(&mut self.nonces, &m.nonce, ticket);
        if self.nonces.is_empty() {
            self.nonce_shapes.clear();
        }
        let Some(t) = &m.token else {
            return;
        };
        match &t.raw {
            Raw::Runs(runs) => {
                for run in runs {
                    drop_from(&mut self.runs, run, ticket);
                    if !self.runs.contains_key(run)
                        && let Some(n) = self.run_lengths.get_mut(&run.len())
                    {
                        *n -= 1;
                        if *n == 0 {
                            self.run_lengths.remove(&run.len());
                        }
                    }
                }
            }
            Raw::Search(_) => self.searched.retain(|(_, t)| *t != ticket),
        }
        for (_, _, tickets) in &mut self.prefixes {
            tickets.retain(|t| *t != ticket);
        }
    }
}

/// One case's share of the log.
struct CaseLines {
    material: CaseMaterial,
    /// In the index (see [`CaseLogs::claimants`]).
    indexed: bool,
    open: bool,
    /// Lines that arrived while the case was open.
    lines: Vec<String>,
    /// Lines carrying its material that arrived after it closed.
    late: Vec<String>,
}

/// What the target wrote to stdout and stderr, shared out to the cases that caused it.
///
/// A case opens its share before its request and closes it when the response is in. Each line
/// goes to exactly the cases whose material it carries ([`CaseMaterial`]), whenever it
/// arrives: a line with a case's token belongs to that case even when a neighbour's request
/// was in flight too. A line that carries no case's material (only run-wide secrets, say)
/// goes to one case only: the earliest-started case open when it arrived (the only one at
/// concurrency 1), else the case that closed last, else to none.
///
/// A process's lines reach the buffer through a pump and can arrive after the response: a
/// buffer made [`CaseLogs::with_late_lines`] keeps closed cases claimable until they are
/// settled, so such lines still reach their case.
#[derive(Default)]
pub struct CaseLogs {
    tail: VecDeque<String>,
    /// Open and unsettled cases, in the order they opened.
    cases: BTreeMap<u64, CaseLines>,
    /// The open ones among them.
    open: BTreeSet<u64>,
    /// The collecting cases' material.
    index: Index,
    /// Cases not in the index yet: a case is indexed when a line must be matched while it
    /// collects, which it never is when it runs alone.
    unindexed: Vec<u64>,
    next: u64,
    last_closed: Option<u64>,
    /// Closed cases stay claimable until settled.
    keep_closed: bool,
    held: usize,
    /// Lines that arrived.
    pushed: u64,
}

impl CaseLogs {
    /// A buffer whose closed cases keep collecting their late lines until settled: for a
    /// process, whose lines come through a pump.
    pub fn with_late_lines() -> CaseLogs {
        CaseLogs {
            keep_closed: true,
            ..CaseLogs::default()
        }
    }

    /// Starts collecting a case's lines; the returned ticket closes and settles it.
    pub fn open(&mut self, material: CaseMaterial) -> u64 {
        let ticket = self.next;
        self.next += 1;
        if self.cases.len() >= MAX_UNSETTLED {
            // Only closed cases can pile up (open ones are bounded by the concurrency).
            let oldest = self.cases.iter().find(|(_, c)| !c.open).map(|(t, _)| *t);
            if let Some(t) = oldest {
                self.settle(t);
            }
        }
        self.unindexed.push(ticket);
        self.open.insert(ticket);
        self.cases.insert(
            ticket,
            CaseLines {
                material,
                indexed: false,
                open: true,
                lines: Vec::new(),
                late: Vec::new(),
            },
        );
        ticket
    }

    /// The lines the case collected while open. Unless the buffer keeps closed cases, the
    /// case is settled too.
    pub fn close(&mut self, ticket: u64) -> Vec<String> {
        let Some(case) = self.cases.get_mut(&ticket) else {
            return Vec::new();
        };
        case.open = false;
        self.open.remove(&ticket);
        let lines = std::mem::take(&mut case.lines);
        self.held -= lines.len();
        self.last_closed = Some(ticket);
        if !self.keep_closed {
            self.settle(ticket);
        }
        lines
    }

    /// Forgets a closed case; returns the lines carrying its material that arrived after
    /// it closed.
    pub fn settle(&mut self, ticket: u64) -> Vec<String> {
        let Some(case) = self.cases.remove(&ticket) else {
            return Vec::new();
        };
        self.held -= case.lines.len() + case.late.len();
        if self.last_closed == Some(ticket) {
            self.last_closed = None;
        }
        if case.indexed {
            self.index.remove(ticket, &case.material);
        } else {
            self.unindexed.retain(|t| *t != ticket);
        }
        self.open.remove(&ticket);
        case.late
    }

    /// How many lines have arrived so far.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> Vec<String> {
        self.tail
            .iter()
            .skip(self.tail.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// The tickets of the cases whose material `line` carries. No case, or a single open
    /// one, gets the line whatever it holds: then nothing is matched.
    fn claimants(&mut self, line: &str) -> Vec<u64> {
        let mut cases = self.cases.values();
        match (cases.next(), cases.next()) {
            (None, _) => return Vec::new(),
            (Some(only), None) if only.open => return Vec::new(),
            _ => {}
        }
        for ticket in std::mem::take(&mut self.unindexed) {
            if let Some(c) = self.cases.get_mut(&ticket) {
                c.material.token = c.material.raw_token.as_deref().and_then(Token::new);
                self.index.add(ticket, &c.material);
                c.indexed = true;
            }
        }
        let ix = &self.index;
        let mut out = Vec::new();
        for (head, len) in &ix.nonce_shapes {
            for at in memchr::memmem::find_iter(line.as_bytes(), head.as_bytes()) {
                if let Some(tickets) = line.get(at..at + len).and_then(|w| ix.nonces.get(w)) {
                    out.extend(tickets);
                }
            }
        }
        for run in line.split(|c: char| !is_base64url(c)) {
            if run.len() >= MIN_SECRET_LEN
                && ix.run_lengths.contains_key(&run.len())
                && let Some(tickets) = ix.runs.get(run)
            {
                out.extend(tickets);
            }
        }
        out.extend(
            ix.searched
                .iter()
                .filter(|(whole, _)| line.contains(whole.as_str()))
                .map(|(_, t)| *t),
        );
        // Encoded: only where the encoding of a token's first bytes occurs.
        for (_, heads, tickets) in &ix.prefixes {
            if tickets.is_empty() || !heads.iter().any(|h| h.find(line.as_bytes()).is_some()) {
                continue;
            }
            for t in tickets {
                if !out.contains(t)
                    && self
                        .cases
                        .get(t)
                        .and_then(|c| c.material.token.as_ref())
                        .is_some_and(|tok| tok.in_any_form(line))
                {
                    out.push(*t);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Files a line under the cases `claimants` (found by their material), or under the
    /// rule for lines without material.
    fn file(&mut self, line: String, claimants: &[u64]) {
        self.pushed += 1;
        let mut owners: Vec<u64> = claimants
            .iter()
            .copied()
            .filter(|t| self.cases.contains_key(t))
            .collect();
        if claimants.is_empty() {
            let earliest_open = self.open.first().copied();
            owners.extend(earliest_open.or(self.last_closed));
        }
        for t in owners {
            if self.held >= MAX_HELD_LINES {
                continue;
            }
            if let Some(case) = self.cases.get_mut(&t) {
                if case.open {
                    case.lines.push(line.clone());
                } else {
                    case.late.push(line.clone());
                }
                self.held += 1;
            }
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }
}

/// Adds a line to the log, filed under the cases it belongs to.
pub fn push_line(log: &SharedLog, line: String) {
    let mut log = super::lock(log);
    let claimants = log.claimants(&line);
    log.file(line, &claimants);
}

/// The case log, shared by the process pumps (or a served target's writer) and the cases.
pub type SharedLog = Arc<Mutex<CaseLogs>>;

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN_A: &str =
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImp0aSI6IjEifQ.c2lnbmF0dXJlLW9mLWFsaWNl";
    const TOKEN_B: &str =
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IiLCJqdGkiOiIyIn0.c2lnbmF0dXJlLW9mLWJvYi0t";

    fn log(late: bool) -> SharedLog {
        Arc::new(Mutex::new(if late {
            CaseLogs::with_late_lines()
        } else {
            CaseLogs::default()
        }))
    }

    fn open(log: &SharedLog, nonce: &str, token: Option<&str>) -> u64 {
        crate::harness::lock(log).open(CaseMaterial::new(nonce, token))
    }

    #[test]
    fn interleaved_lines_go_to_the_case_whose_material_they_carry() {
        let log = log(false);
        let a = open(&log, "cfb000000000000000a", Some(TOKEN_A));
        let b = open(&log, "cfb000000000000000b", Some(TOKEN_B));
        push_line(&log, format!("b: Bearer {TOKEN_B}"));
        push_line(&log, format!("a: Bearer {TOKEN_A}"));
        push_line(&log, "prompt (request cfb000000000000000b)".to_owned());
        // The whole token hex-encoded, and the raw signature alone.
        let hex: String = TOKEN_B.bytes().map(|b| format!("{b:02x}")).collect();
        push_line(&log, format!("hex {hex}"));
        let sig = TOKEN_B.rsplit('.').next().unwrap_or_default();
        push_line(&log, format!("sig {sig}"));
        let lines_b = crate::harness::lock(&log).close(b);
        push_line(&log, format!("a again: {TOKEN_A}"));
        let lines_a = crate::harness::lock(&log).close(a);
        assert_eq!(
            lines_a,
            [
                format!("a: Bearer {TOKEN_A}"),
                format!("a again: {TOKEN_A}")
            ]
        );
        assert_eq!(
            lines_b,
            [
                format!("b: Bearer {TOKEN_B}"),
                "prompt (request cfb000000000000000b)".to_owned(),
                format!("hex {hex}"),
                format!("sig {sig}"),
            ]
        );
    }

    #[test]
    fn a_token_glued_to_other_text_still_ties_its_line() {
        let log = log(false);
        let a = open(&log, "cfb000000000000000a", Some(TOKEN_A));
        let b = open(&log, "cfb000000000000000b", Some(TOKEN_B));
        // Two threads' writes run together: the signature is glued to the next line's text.
        push_line(&log, format!("auth {TOKEN_B}answered; auth x"));
        assert!(crate::harness::lock(&log).close(a).is_empty());
        assert_eq!(
            crate::harness::lock(&log).close(b),
            [format!("auth {TOKEN_B}answered; auth x")]
        );
    }

    #[test]
    fn a_line_without_material_goes_to_one_case_only() {
        let log = log(false);
        let a = open(&log, "cfb000000000000000a", Some(TOKEN_A));
        let b = open(&log, "cfb000000000000000b", Some(TOKEN_B));
        push_line(&log, "model key sk-confab-0000 in a line".to_owned());
        let lines_b = crate::harness::lock(&log).close(b);
        let lines_a = crate::harness::lock(&log).close(a);
        // The earliest-started open case takes it; never both.
        assert_eq!(lines_a, ["model key sk-confab-0000 in a line"]);
        assert!(lines_b.is_empty());
        // With no case open it goes nowhere (the buffer keeps no closed case).
        push_line(&log, "between cases".to_owned());
        assert_eq!(crate::harness::lock(&log).tail(1), ["between cases"]);
    }

    #[test]
    fn late_lines_reach_their_closed_case_until_it_is_settled() {
        let log = log(true);
        let a = open(&log, "cfb000000000000000a", Some(TOKEN_A));
        assert!(crate::harness::lock(&log).close(a).is_empty());
        let b = open(&log, "cfb000000000000000b", Some(TOKEN_B));
        push_line(&log, format!("late a: {TOKEN_A}"));
        push_line(&log, "no material: the open case takes it".to_owned());
        assert_eq!(
            crate::harness::lock(&log).close(b),
            ["no material: the open case takes it"]
        );
        // Nothing open: the case that closed last takes a line without material.
        push_line(&log, "after b".to_owned());
        assert_eq!(
            crate::harness::lock(&log).settle(a),
            [format!("late a: {TOKEN_A}")]
        );
        assert_eq!(crate::harness::lock(&log).settle(b), ["after b"]);
        // Settled cases are forgotten: their material claims nothing any more.
        push_line(&log, format!("too late: {TOKEN_A}"));
        let l = crate::harness::lock(&log);
        assert!(l.cases.is_empty() && l.held == 0);
    }

    #[test]
    fn held_lines_are_bounded() {
        let log = log(false);
        let a = open(&log, "cfb000000000000000a", None);
        for i in 0..MAX_HELD_LINES + 10 {
            push_line(&log, format!("line {i}"));
        }
        assert_eq!(crate::harness::lock(&log).close(a).len(), MAX_HELD_LINES);
        assert_eq!(
            crate::harness::lock(&log).tail(usize::MAX).len(),
            TAIL_LINES
        );
    }

    #[test]
    fn material_debug_shows_no_token() {
        let m = CaseMaterial::new("cfb000000000000000a", Some(TOKEN_A));
        assert_eq!(format!("{m:?}"), "CaseMaterial(..)");
    }
}
