//! OAuth scopes as RFC 8693 §4.2 / RFC 6749 §3.3 define them: a set of case-sensitive
//! strings, written space-delimited in `scope` (or as an array in `scp`).

use std::fmt;

/// A set of scope tokens. Matching is exact byte equality: `docs:read,docs:write`,
/// `docs:*`, `DOCS:READ`, `docs:read:extra` and look-alikes are distinct tokens that grant
/// nothing beyond themselves.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet {
    // Sorted and deduplicated; scope sets are small, so a vector beats a hash set.
    tokens: Vec<String>,
}

impl ScopeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a space-delimited scope string. Empty items (from repeated spaces) are ignored;
    /// nothing else is normalized.
    pub fn parse(s: &str) -> Self {
        s.split(' ').filter(|t| !t.is_empty()).collect()
    }

    /// Adds one scope token, as is.
    pub fn insert(&mut self, token: &str) {
        if let Err(at) = self.tokens.binary_search_by(|t| t.as_str().cmp(token)) {
            self.tokens.insert(at, token.to_owned());
        }
    }

    /// True when `token` is in the set, compared byte for byte.
    pub fn contains(&self, token: &str) -> bool {
        self.tokens
            .binary_search_by(|t| t.as_str().cmp(token))
            .is_ok()
    }

    /// True when every token of `required` is in `self`.
    pub fn includes(&self, required: &ScopeSet) -> bool {
        required.tokens.iter().all(|t| self.contains(t))
    }

    /// Tokens of `self` that are also in `other`.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        self.tokens
            .iter()
            .filter(|t| other.contains(t))
            .map(String::as_str)
            .collect()
    }

    /// The tokens, in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(String::as_str)
    }

    /// How many distinct tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when the set holds no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl<'a> FromIterator<&'a str> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut tokens: Vec<String> = iter.into_iter().map(str::to_owned).collect();
        tokens.sort_unstable();
        tokens.dedup();
        ScopeSet { tokens }
    }
}

impl fmt::Display for ScopeSet {
    /// The RFC 8693 form: tokens joined by single spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.tokens.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.tokens.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_exact_and_space_delimited() {
        let s = ScopeSet::parse("docs:read  docs:write");
        assert!(s.contains("docs:read") && s.contains("docs:write"));
        let commas = ScopeSet::parse("docs:read,docs:write");
        assert!(!commas.contains("docs:read"));
        assert!(!ScopeSet::parse("DOCS:READ docs:*").contains("docs:read"));
    }

    #[test]
    fn includes_needs_every_token() {
        let have = ScopeSet::parse("a b");
        assert!(have.includes(&ScopeSet::parse("a")));
        assert!(!have.includes(&ScopeSet::parse("a c")));
        assert!(have.includes(&ScopeSet::new()));
    }
}
