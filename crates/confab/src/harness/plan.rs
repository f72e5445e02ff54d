//! Planning a campaign: which cases run, in which order, on which shard. Pure: a function
//! of the spec and the options alone, so `--dry-run`, sharded runs and the campaign itself see
//! exactly the same cases.

use crate::generators::case::{CaseRecipe, nth_case};
use crate::spec::Spec;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Called after each case with (cases done, cases planned, violations so far).
pub type Progress = Arc<dyn Fn(u64, u64, u64) + Send + Sync>;

/// How to run a campaign.
#[derive(Clone)]
pub struct Options {
    /// Cases after the baselines (the budget).
    pub cases: u64,
    /// Same seed, same cases.
    pub seed: u64,
    /// Cases in flight at once (after a warm-up run one at a time).
    pub concurrency: usize,
    /// Only these endpoints (by name); empty for all.
    pub endpoints: Vec<String>,
    /// `(i, n)`, `i < n`: run only the cases with `index % n == i` (`--shard i/n`); `None`
    /// runs them all.
    pub shard: Option<(u64, u64)>,
    /// Where replay files go; `None` writes none.
    pub replay_dir: Option<PathBuf>,
    /// Cap on re-runs spent shrinking each finding.
    pub shrink_budget: u32,
    /// Called after each case (a progress bar).
    pub progress: Option<Progress>,
    /// Run exactly these cases (id, recipe) instead of generating them (replay).
    pub explicit: Vec<(u64, CaseRecipe)>,
    /// Stops the campaign when cancelled (the CLI cancels it on Ctrl-C): everything confab
    /// started is stopped and the run ends with [`CampaignError::Interrupted`](super::CampaignError::Interrupted).
    /// The library never installs a signal handler of its own.
    pub cancel: Option<CancellationToken>,
    /// Told what confab is waiting for (a slow target's start); the CLI prints it.
    pub status: Option<Status>,
}

/// Called with a line of status while confab waits.
pub type Status = Arc<dyn Fn(&str) + Send + Sync>;

impl Default for Options {
    fn default() -> Self {
        Options {
            cases: 200,
            seed: 0,
            concurrency: 4,
            endpoints: Vec::new(),
            shard: None,
            replay_dir: None,
            shrink_budget: 12,
            progress: None,
            explicit: Vec::new(),
            cancel: None,
            status: None,
        }
    }
}

/// The cases a campaign runs, in order: `(case id, recipe)` for the ids of this shard, each
/// aimed at one of the selected endpoints. A function of the spec and the options alone, so
/// `--dry-run` and sharded runs see exactly what the campaign will run.
pub fn planned(spec: &Spec, options: &Options) -> Vec<(u64, CaseRecipe)> {
    plan(spec, options).collect()
}

/// How many cases [`planned`] holds, without generating them.
pub fn planned_count(spec: &Spec, options: &Options) -> u64 {
    plan(spec, options).len() as u64
}

/// [`planned`] one case at a time, with the number of cases: a campaign of a million cases
/// never holds a million recipes.
pub(super) fn plan<'a>(
    spec: &Spec,
    options: &'a Options,
) -> impl ExactSizeIterator<Item = (u64, CaseRecipe)> + 'a {
    let endpoints = selected_endpoints(spec, options);
    let explicit = (!options.explicit.is_empty()).then(|| options.explicit.clone());
    let in_shard = move |i: &u64| options.shard.is_none_or(|(k, n)| n > 0 && i % n == k);
    let count = match &explicit {
        Some(e) => e.len() as u64,
        None if endpoints.is_empty() => 0,
        None => match options.shard {
            None => options.cases,
            Some((k, n)) if n > 0 && k < n => options.cases / n + u64::from(options.cases % n > k),
            Some(_) => 0,
        },
    };
    let generated = (0..options.cases).filter(in_shard).map(move |i| {
        let mut recipe = nth_case(options.seed, i);
        recipe.endpoint = endpoints[recipe.endpoint as usize % endpoints.len()] as u32;
        (i, recipe)
    });
    let cases: Box<dyn Iterator<Item = (u64, CaseRecipe)> + 'a> = match explicit {
        Some(e) => Box::new(e.into_iter()),
        None if count == 0 => Box::new(std::iter::empty()),
        None => Box::new(generated),
    };
    Counted { cases, left: count }
}

/// An iterator that knows how many items it has left.
struct Counted<I> {
    cases: I,
    left: u64,
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.cases.next()?;
        self.left = self.left.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.left).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}

pub(super) fn selected_endpoints(spec: &Spec, options: &Options) -> Vec<usize> {
    spec.endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| options.endpoints.is_empty() || options.endpoints.contains(&e.name))
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Endpoint, Principal};

    /// A spec imported from a large OpenAPI document: more endpoints than a byte can index.
    fn wide_spec(endpoints: usize) -> Spec {
        let mut b = Spec::builder().principal(Principal::new("alice").scope("s"));
        for i in 0..endpoints {
            b = b.endpoint(Endpoint::get(format!("e{i}"), format!("/e{i}")).scope("s"));
        }
        b.build().expect("spec")
    }

    #[test]
    fn every_endpoint_of_a_wide_spec_is_planned() {
        let spec = wide_spec(600);
        let options = Options {
            cases: 20_000,
            ..Options::default()
        };
        let reached: std::collections::BTreeSet<u32> = planned(&spec, &options)
            .iter()
            .map(|(_, r)| r.endpoint)
            .collect();
        assert!(reached.iter().any(|&e| e >= 256), "no endpoint past 255");
        assert!(reached.len() > 590, "only {} of 600 reached", reached.len());
    }

    #[test]
    fn an_endpoint_past_the_256th_is_selected_by_name() {
        let spec = wide_spec(600);
        let options = Options {
            cases: 50,
            endpoints: vec!["e300".to_owned()],
            ..Options::default()
        };
        let cases = planned(&spec, &options);
        assert_eq!(cases.len(), 50);
        assert!(cases.iter().all(|(_, r)| r.endpoint == 300));
    }
}
