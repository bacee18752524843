//! `run --resume` at the failed step: a row whose latest line in results.jsonl failed at
//! step k starts this session at step k, with the outputs of steps 1..k−1 that line saved
//! (see [`crate::runner::Resumed`]); its new line again holds every completed step.

use std::collections::HashMap;
use std::time::Duration;

use crate::manifest::{Picked, StepResult};
use crate::runner::{ResumeFrom, Resumed};

/// The rows of `todo` (by index in it) that start after their saved steps. A row's saved
/// steps are used only when their names are the chain's first step names, in order, and at
/// least one step is left to run: a chain edited since the earlier session (steps renamed,
/// added before, removed) restarts that row at step 1 rather than feeding it outputs of
/// other prompts. `restart` (`--restart-chains`) resumes none.
pub(super) fn resume_from(
    todo: &Picked,
    mut saved: HashMap<String, Vec<StepResult>>,
    steps: &[String],
    restart: bool,
) -> ResumeFrom {
    let mut from = ResumeFrom::new();
    if restart || saved.is_empty() {
        return from;
    }
    for i in 0..todo.len() {
        let Some(done) = saved.remove(&todo.id(i)) else {
            continue;
        };
        if let Some(start) = start(done, steps) {
            from.insert(i, start);
        }
        if saved.is_empty() {
            break;
        }
    }
    from
}

/// A row's saved steps as a start, when they fit the chain `steps` (see [`resume_from`]).
fn start(done: Vec<StepResult>, steps: &[String]) -> Option<Resumed> {
    let fits = !done.is_empty()
        && done.len() < steps.len()
        && done.iter().zip(steps).all(|(d, name)| &d.name == name);
    fits.then(|| {
        let (outputs, step_latencies) = done
            .into_iter()
            .map(|d| {
                let latency = Duration::from_secs_f64(d.latency_ms.max(0.0) / 1000.0);
                (d.output, latency)
            })
            .unzip();
        Resumed {
            outputs,
            step_latencies,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, output: &str) -> StepResult {
        StepResult {
            name: name.into(),
            output: output.into(),
            latency_ms: 12.5,
        }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn saved_steps_that_match_the_chain_become_a_start() {
        let s = start(
            vec![step("a", "x"), step("b", "y")],
            &names(&["a", "b", "c"]),
        )
        .unwrap();
        assert_eq!(s.outputs, vec!["x", "y"]);
        assert_eq!(s.step_latencies, vec![Duration::from_micros(12_500); 2]);
    }

    #[test]
    fn steps_of_an_edited_chain_or_with_nothing_left_to_run_are_not_used() {
        let chain = names(&["a", "b", "c"]);
        assert_eq!(start(vec![step("a", "x"), step("z", "y")], &chain), None);
        assert_eq!(
            start(vec![step("a", "x"), step("b", "y"), step("c", "z")], &chain),
            None
        );
        assert_eq!(start(Vec::new(), &chain), None);
    }
}
