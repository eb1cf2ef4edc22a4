//! Turning what the user typed (a run id, an id prefix, a name, or nothing) into one run.

use moat_home::RunId;

use crate::{RunError, RunRecord};

/// Pick the run `arg` names among `runs` (newest first, as [`crate::RunStore::list`] gives).
///
/// * nothing: the most recent run;
/// * `run_<12 hex>`: that run;
/// * `run_<fewer hex>`: the one run whose id starts so;
/// * otherwise a name, which must belong to exactly one run.
///
/// An unknown or ambiguous argument is an error that carries the candidates.
pub fn resolve_run(runs: &[RunRecord], arg: Option<&str>) -> Result<RunRecord, RunError> {
    let Some(arg) = arg else {
        return runs.first().cloned().ok_or(RunError::NoRuns);
    };
    if let Ok(id) = arg.parse::<RunId>() {
        return runs
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| unknown(runs, arg));
    }
    let matches: Vec<&RunRecord> = if RunId::is_prefix(arg) {
        runs.iter()
            .filter(|r| r.id.as_str().starts_with(arg))
            .collect()
    } else {
        runs.iter().filter(|r| r.name == arg).collect()
    };
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(unknown(runs, arg)),
        many => Err(RunError::AmbiguousRun {
            arg: arg.to_owned(),
            candidates: many.iter().map(|r| (*r).clone()).collect(),
        }),
    }
}

fn unknown(runs: &[RunRecord], arg: &str) -> RunError {
    RunError::NoSuchRun {
        arg: arg.to_owned(),
        candidates: runs.iter().take(10).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::record;

    fn runs() -> Vec<RunRecord> {
        vec![
            record("run_abc000000002", "feature-auth", 300),
            record("run_abc000000001", "feature-auth", 200),
            record("run_def000000000", "solo", 100),
        ]
    }

    fn pick(arg: Option<&str>) -> Result<String, RunError> {
        resolve_run(&runs(), arg).map(|r| r.id.to_string())
    }

    #[test]
    fn nothing_means_the_newest() {
        assert_eq!(pick(None).unwrap(), "run_abc000000002");
        assert!(matches!(resolve_run(&[], None), Err(RunError::NoRuns)));
    }

    #[test]
    fn full_ids_prefixes_and_names() {
        assert_eq!(pick(Some("run_abc000000001")).unwrap(), "run_abc000000001");
        assert_eq!(pick(Some("run_d")).unwrap(), "run_def000000000");
        assert_eq!(pick(Some("solo")).unwrap(), "run_def000000000");
    }

    #[test]
    fn ambiguity_lists_the_candidates() {
        for arg in ["run_abc", "feature-auth"] {
            match pick(Some(arg)) {
                Err(RunError::AmbiguousRun { candidates, .. }) => assert_eq!(candidates.len(), 2),
                other => panic!("{arg}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_lists_what_exists() {
        for arg in ["run_fff", "run_ffffffffffff", "nope"] {
            match pick(Some(arg)) {
                Err(RunError::NoSuchRun { candidates, .. }) => assert_eq!(candidates.len(), 3),
                other => panic!("{arg}: {other:?}"),
            }
        }
    }
}
