//! Resuming a failed chain at the step that failed: a chain that failed at step k in one
//! pass (or in an earlier `run` session) is run again from step k, with the saved outputs of
//! steps 1..k−1, instead of paying for those calls again. `--restart-chains`
//! ([`super::RetryPolicy::restart_chains`]) turns this off.
//!
//! Step k's prompt sees `{{previous}}` = the saved output of step k−1, exactly what it would
//! have seen had the chain run through, and row cells do not change between passes, so a
//! resumed chain sends the same prompts as a restarted one would (for a deterministic model).
//!
//! Memory: only failed rows' completed outputs are held (the batch already holds failed rows'
//! records until their next pass), so it does not grow with the rows that succeed.

use std::collections::HashMap;
use std::time::Duration;

use super::BatchState;
use crate::record::ChainRecord;

/// Where a resumed chain starts: the outputs and call latencies of the steps it completed
/// before it failed, in step order. The chain runs from step `outputs.len()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resumed {
    /// Each completed step's output text.
    pub outputs: Vec<String>,
    /// Each completed step's call latency (kept so the chain's record stays complete).
    pub step_latencies: Vec<Duration>,
}

impl Resumed {
    /// The completed steps of a failed chain's record; None when there is nothing to skip.
    pub fn of(record: &ChainRecord) -> Option<Resumed> {
        (!record.ok() && !record.outputs.is_empty()).then(|| Resumed {
            outputs: record.outputs.clone(),
            step_latencies: record.step_latencies.clone(),
        })
    }

    /// Calls this start does not repeat: one per completed step.
    pub fn calls_saved(&self) -> u64 {
        self.outputs.len() as u64
    }
}

/// Rows of a batch that start resumed in its first pass (`run --resume`: failed rows of an
/// earlier session), by row index in the batch.
pub type ResumeFrom = HashMap<usize, Resumed>;

impl BatchState {
    /// Where row `idx` starts this pass: after its completed steps when it failed before
    /// (an earlier pass, or an earlier session for the first pass), unless `restart` is set
    /// or nothing would be skipped. A start that would skip every one of `steps` steps is
    /// refused (it could not have failed). Counts the calls saved.
    pub(super) fn start_of(&mut self, idx: usize, steps: usize, restart: bool) -> Option<Resumed> {
        let seeded = self.resume_from.remove(&idx);
        if restart {
            return None;
        }
        let start = self
            .held
            .get(&idx)
            .and_then(Resumed::of)
            .or(seeded)
            .filter(|r| {
                !r.outputs.is_empty()
                    && r.outputs.len() < steps
                    && r.outputs.len() == r.step_latencies.len()
            })?;
        self.calls_saved += start.calls_saved();
        Some(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ChainFailure, ErrorKind};
    use tokio::time::Instant;

    fn failed_at(step: u16) -> ChainRecord {
        ChainRecord {
            row: 0,
            passes: 1,
            latency: Duration::ZERO,
            outputs: (0..step).map(|s| format!("out{s}")).collect(),
            step_latencies: vec![Duration::from_millis(5); usize::from(step)],
            failure: Some(ChainFailure {
                step,
                kind: ErrorKind::ServerError,
                status: Some(500),
                message: "boom".into(),
            }),
        }
    }

    #[test]
    fn a_held_failure_resumes_after_its_completed_steps_and_counts_them() {
        let mut state = BatchState::new(Instant::now());
        state.held.insert(0, failed_at(2));
        let start = state.start_of(0, 3, false).unwrap();
        assert_eq!(start.outputs, vec!["out0", "out1"]);
        assert_eq!(start.step_latencies.len(), 2);
        assert_eq!(state.calls_saved, 2);
    }

    #[test]
    fn restart_or_a_failure_at_the_first_step_starts_from_scratch() {
        let mut state = BatchState::new(Instant::now());
        state.held.insert(0, failed_at(2));
        state.held.insert(1, failed_at(0));
        assert_eq!(state.start_of(0, 3, true), None);
        assert_eq!(state.start_of(1, 3, false), None);
        assert_eq!(state.calls_saved, 0);
    }

    #[test]
    fn a_seed_from_an_earlier_session_is_used_once_and_must_leave_a_step_to_run() {
        let mut state = BatchState::new(Instant::now());
        let two = Resumed::of(&failed_at(2)).unwrap();
        state.resume_from.insert(0, two.clone());
        state.resume_from.insert(1, two);
        assert_eq!(
            state.start_of(0, 3, false).map(|r| r.outputs.len()),
            Some(2)
        );
        assert_eq!(state.start_of(0, 3, false), None, "a seed is consumed");
        // A chain of two steps cannot resume after two completed steps.
        assert_eq!(state.start_of(1, 2, false), None);
        assert_eq!(state.calls_saved, 2);
    }
}
