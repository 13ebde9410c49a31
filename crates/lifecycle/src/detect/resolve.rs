//! Deciding whether a group passes and what its build plan is, from the results of its
//! detects ([DET-023]..[DET-028], [DET-039]..[DET-049]).
//!
//! The group passes when every required element passed, at least one buildpack passed, and one
//! trial (one requires/provides alternative per passing element, enumerated depth-first) leaves
//! no require without an earlier provider and no provide without a later requirer. Optional
//! elements that break either rule are dropped from the trial and the checks repeated.

use std::collections::HashMap;

use cnb_buildpack_api::build_plan::{PlanSections, Require};

use super::log::DetectLog;
use super::{Element, ElementKey};
use crate::detect::run::DetectRun;

/// Why a group did not pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupFailure {
    /// Detection failed (exit 100s, unmet plan); no module errored.
    Failed,
    /// At least one required module errored.
    BuildpackError,
}

/// One dependency of the resolved plan.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedEntry {
    /// Modules that provide it.
    pub providers: Vec<Element>,
    /// Requirements for it, in group order.
    pub requires: Vec<Require>,
}

/// The elements that take part and the plan, or why the group failed.
pub fn resolve(
    done: &[Element],
    runs: &HashMap<ElementKey, DetectRun>,
    log: &mut DetectLog,
) -> Result<(Vec<Element>, Vec<ResolvedEntry>), GroupFailure> {
    let mut group_runs = Vec::with_capacity(done.len());
    for el in done {
        let run = runs
            .get(&el.key())
            .cloned()
            .unwrap_or_else(|| DetectRun::error(format!("missing detection of '{el}'")));
        let loud = !matches!(run.code, 0 | 100);
        if !run.output.is_empty() {
            log.output(loud, format!("======== Output: {el} ========"));
            log.output(
                loud,
                String::from_utf8_lossy(&run.output)
                    .trim_end_matches('\n')
                    .to_string(),
            );
        }
        if let Some(error) = &run.error {
            log.output(loud, format!("======== Error: {el} ========"));
            log.output(loud, error.clone());
        }
        group_runs.push(run);
    }
    log.debug("======== Results ========".into());

    let mut results: Vec<(Element, &PlanSectionsList)> = Vec::new();
    let mut detected = true;
    let mut any_buildpack = false;
    let mut buildpack_err = false;
    for (el, run) in done.iter().zip(&group_runs) {
        match run.code {
            0 => {
                log.debug(format!("pass: {el}"));
                results.push((el.clone(), &run.plan));
                any_buildpack |= !el.is_extension();
            }
            100 => {
                log.debug(format!(
                    "{}: {el}",
                    if el.optional { "skip" } else { "fail" }
                ));
                detected &= el.optional;
            }
            -1 => {
                log.info(format!("err:  {el}"));
                buildpack_err = true;
                detected &= el.optional;
            }
            code => {
                log.info(format!("err:  {el} ({code})"));
                buildpack_err = true;
                detected &= el.optional;
            }
        }
    }
    if !detected {
        return Err(if buildpack_err {
            GroupFailure::BuildpackError
        } else {
            GroupFailure::Failed
        });
    }
    if !any_buildpack {
        log.debug("fail: no viable buildpacks in group".into());
        return Err(GroupFailure::Failed);
    }

    let options: Vec<Vec<Option>> = results.iter().map(|(el, plan)| options(el, plan)).collect();
    let mut attempt = 0;
    let (deps, trial) = run_trials(&options, &mut Vec::new(), &mut |trial| {
        attempt += 1;
        run_trial(attempt, trial, log)
    })?;

    if done.len() != trial.len() {
        log.info(format!(
            "{} of {} buildpacks participating",
            trial.len(),
            done.len()
        ));
    }
    let width = trial
        .iter()
        .map(|o| o.element.id.as_str().len())
        .max()
        .unwrap_or(0);
    for option in &trial {
        log.info(format!(
            "{:<width$} {}",
            option.element.id.as_str(),
            option.element.version
        ));
    }
    let found = trial.into_iter().map(|o| o.element).collect();
    let entries = deps
        .into_iter()
        .map(|(_, e)| ResolvedEntry {
            providers: e.providers,
            requires: e.requires,
        })
        .collect();
    Ok((found, entries))
}

type PlanSectionsList = cnb_buildpack_api::build_plan::DetectPlan;

/// One alternative of one passing element.
#[derive(Clone, Debug)]
struct Option {
    element: Element,
    sections: PlanSections,
}

/// [DET-040] The primary alternative, then each `[[or]]`; only the last keeps the element's
/// `optional` flag, so an optional element is dropped only after all its alternatives failed.
fn options(el: &Element, plan: &PlanSectionsList) -> Vec<Option> {
    let count = 1 + plan.or.len();
    plan.alternatives()
        .enumerate()
        .map(|(i, sections)| {
            let mut element = el.clone();
            element.optional = el.optional && i == count - 1;
            Option {
                element,
                sections: sections.clone(),
            }
        })
        .collect()
}

type Deps = Vec<(String, DepEntry)>;

/// Depth-first over one option per element; the first viable trial wins.
fn run_trials(
    rest: &[Vec<Option>],
    prefix: &mut Vec<Option>,
    f: &mut dyn FnMut(Vec<Option>) -> Result<(Deps, Vec<Option>), GroupFailure>,
) -> Result<(Deps, Vec<Option>), GroupFailure> {
    let Some((first, rest)) = rest.split_first() else {
        return f(prefix.clone());
    };
    let mut last_err = GroupFailure::Failed;
    for option in first {
        prefix.push(option.clone());
        let result = run_trials(rest, prefix, f);
        prefix.pop();
        match result {
            Ok(found) => return Ok(found),
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

#[derive(Clone, Debug, Default)]
struct DepEntry {
    providers: Vec<Element>,
    requires: Vec<Require>,
    early_requires: Vec<Element>,
    extra_provides: Vec<Element>,
}

fn entry<'a>(deps: &'a mut Deps, name: &str) -> &'a mut DepEntry {
    let index = match deps.iter().position(|(n, _)| n == name) {
        Some(i) => i,
        None => {
            deps.push((name.to_string(), DepEntry::default()));
            deps.len() - 1
        }
    };
    &mut deps[index].1
}

/// Walks the trial in group order: a provide waits for a later require; a require with no
/// earlier provider is "early".
fn dep_map(trial: &[Option]) -> Deps {
    let mut deps = Deps::new();
    for option in trial {
        for provide in &option.sections.provides {
            entry(&mut deps, &provide.name)
                .extra_provides
                .push(option.element.clone());
        }
        for require in &option.sections.requires {
            let e = entry(&mut deps, &require.name);
            let extra = std::mem::take(&mut e.extra_provides);
            e.providers.extend(extra);
            if e.providers.is_empty() {
                e.early_requires.push(option.element.clone());
            } else {
                e.requires.push(require.clone());
            }
        }
    }
    deps
}

fn run_trial(
    attempt: usize,
    mut trial: Vec<Option>,
    log: &mut DetectLog,
) -> Result<(Deps, Vec<Option>), GroupFailure> {
    log.debug(format!("Resolving plan... (try #{attempt})"));
    loop {
        let deps = dep_map(&trial);
        let mut retry = false;
        let unmet = deps
            .iter()
            .flat_map(|(name, e)| {
                e.early_requires
                    .iter()
                    .map(move |el| (name, el, "requires"))
            })
            .chain(deps.iter().flat_map(|(name, e)| {
                e.extra_provides
                    .iter()
                    .map(move |el| (name, el, "provides unused"))
            }));
        for (name, el, what) in unmet {
            retry = true;
            if !el.optional {
                log.debug(format!("fail: {el} {what} {name}"));
                return Err(GroupFailure::Failed);
            }
            log.debug(format!("skip: {el} {what} {name}"));
            trial.retain(|o| &o.element != el);
        }
        if !retry {
            if trial.is_empty() {
                log.debug("fail: no viable buildpacks in group".into());
                return Err(GroupFailure::Failed);
            }
            return Ok((deps, trial));
        }
    }
}
