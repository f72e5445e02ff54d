//! Baselines: the fingerprints of known findings, so that CI fails only on new ones.
//!
//! A baseline file is JSON: `{"note": "...", "confab_baseline": 1, "fingerprints": [...]}`,
//! fingerprints sorted, so that it diffs well in review. A `--format json` report is accepted
//! as a baseline too (its findings' fingerprints are read).

use super::Report;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The format version written in `confab_baseline`.
pub const FORMAT: u32 = 1;

const NOTE: &str = "confab baseline: fingerprints (INVARIANT/endpoint/kind) of known findings. \
`confab scan --baseline FILE` still reports them, as baselined, but they do not fail the run. \
Remove a line once its finding is fixed; regenerate with `confab scan --write-baseline FILE`.";

/// Known findings, by fingerprint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// Free text for people (why these findings are accepted).
    #[serde(default)]
    pub note: String,
    /// The file format's version.
    #[serde(default = "format_version")]
    pub confab_baseline: u32,
    /// Sorted, no duplicates.
    pub fingerprints: BTreeSet<String>,
}

fn format_version() -> u32 {
    FORMAT
}

/// Why a baseline could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The baseline's path.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The file is neither a baseline nor a JSON report.
    #[error(
        "{path}: not a confab baseline (want {{\"fingerprints\": [...]}} or a `--format json` report): {message}"
    )]
    Parse {
        /// The baseline's path.
        path: PathBuf,
        /// What the JSON parser said.
        message: String,
    },
    /// The file was written by a newer confab.
    #[error("{path}: baseline format {found} is newer than this confab understands ({FORMAT})")]
    Version {
        /// The baseline's path.
        path: PathBuf,
        /// The format version it declares.
        found: u32,
    },
}

impl Baseline {
    /// The fingerprints of every finding of a report.
    pub fn from_report(report: &Report) -> Baseline {
        Baseline {
            note: NOTE.to_owned(),
            confab_baseline: FORMAT,
            fingerprints: report
                .findings
                .iter()
                .map(|f| f.fingerprint.clone())
                .collect(),
        }
    }

    /// Parses a baseline file's text, or a `--format json` report's.
    pub fn parse(text: &str, path: &Path) -> Result<Baseline, BaselineError> {
        let parse_err = |message: String| BaselineError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        if value.get("fingerprints").is_none()
            && let Some(findings) = value.get("findings").and_then(|f| f.as_array())
        {
            let fingerprints = findings
                .iter()
                .map(|f| {
                    f.get("fingerprint")
                        .and_then(|x| x.as_str())
                        .map(str::to_owned)
                        .ok_or_else(|| parse_err("a finding without a fingerprint".to_owned()))
                })
                .collect::<Result<BTreeSet<String>, _>>()?;
            return Ok(Baseline {
                note: String::new(),
                confab_baseline: FORMAT,
                fingerprints,
            });
        }
        let baseline: Baseline =
            serde_json::from_value(value).map_err(|e| parse_err(e.to_string()))?;
        if baseline.confab_baseline > FORMAT {
            return Err(BaselineError::Version {
                path: path.to_path_buf(),
                found: baseline.confab_baseline,
            });
        }
        Ok(baseline)
    }

    /// Reads a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Baseline::parse(&text, path)
    }

    /// Adds another baseline's fingerprints (several `--baseline` files).
    pub fn merge(&mut self, other: Baseline) {
        self.fingerprints.extend(other.fingerprints);
    }

    /// Whether a finding with this fingerprint is known.
    pub fn contains(&self, fingerprint: &str) -> bool {
        self.fingerprints.contains(fingerprint)
    }

    /// Baselined fingerprints the report did not find.
    pub fn stale(&self, report: &Report) -> Vec<&str> {
        self.fingerprints
            .iter()
            .filter(|fp| !report.findings.iter().any(|f| &f.fingerprint == *fp))
            .map(String::as_str)
            .collect()
    }

    /// The file's text: pretty JSON, fingerprints sorted, a trailing newline.
    pub fn to_json(&self) -> String {
        let mut b = self.clone();
        if b.note.is_empty() {
            b.note = NOTE.to_owned();
        }
        serde_json::to_string_pretty(&b).map_or_else(|_| String::from("{}\n"), |t| t + "\n")
    }
}
