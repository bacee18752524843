//! What a batch cost: `--price 'in=0.15,out=0.60'` (currency units per million input and
//! output tokens, as providers list them) times the tokens the API reported, per run, per
//! step, per chain, and the part spent on retries (backoff retries and retry passes), which
//! is what concurrency beyond the provider's limits costs on top of the work itself.
//!
//! Only tokens the API reports are priced: a call without `usage` (raw API, a stream cut
//! short) costs 0 here and is counted in `calls_without_usage`, so an underestimate says so.

use std::fmt;
use std::str::FromStr;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::record::CallRecord;

/// Prices per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Per million input (prompt) tokens.
    pub input: f64,
    /// Per million output (completion) tokens.
    pub output: f64,
}

impl Price {
    /// The cost of `input` and `output` tokens.
    pub fn of(&self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input + output as f64 * self.output) / 1_000_000.0
    }
}

impl FromStr for Price {
    type Err = String;

    /// `in=0.15,out=0.60` (either order; both required; non-negative, finite).
    fn from_str(s: &str) -> Result<Price, String> {
        let expected = "expected 'in=PRICE,out=PRICE' per 1M tokens, e.g. 'in=0.15,out=0.60'";
        let (mut input, mut output) = (None, None);
        for part in s.split(',') {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{s:?}: {expected}"))?;
            let value: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("{s:?}: {:?} is not a price", value.trim()))?;
            let slot = match name.trim() {
                "in" | "input" => &mut input,
                "out" | "output" => &mut output,
                other => return Err(format!("{s:?}: unknown part {other:?}; {expected}")),
            };
            if slot.replace(value).is_some() {
                return Err(format!("{s:?}: {} given twice", name.trim()));
            }
        }
        match (input, output) {
            (Some(input), Some(output)) => Ok(Price { input, output }),
            _ => Err(format!("{s:?}: {expected}")),
        }
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in={},out={}", self.input, self.output)
    }
}

/// Tokens reported so far, per step and for retries; fed every call of a run.
#[derive(Debug, Clone, Default)]
pub struct TokenTally {
    /// `[input, output]` per step, every try included.
    steps: Vec<[u64; 2]>,
    /// `[input, output]` of calls that were retries (try > 0 or pass > 0).
    retries: [u64; 2],
    /// Successful calls whose response reported no usage.
    without_usage: u64,
    /// Calls seen, failed ones included.
    calls: u64,
    /// `[input, output]` of the last successful call of each (row, step): a later success
    /// of the same step means this one was paid for and thrown away.
    last_ok: HashMap<(u32, u16), [u64; 2]>,
    /// `[input, output]` of successful calls whose step was run again and succeeded again.
    redone: [u64; 2],
}

impl TokenTally {
    /// A tally for a chain of `steps` steps.
    pub fn new(steps: usize) -> TokenTally {
        TokenTally {
            steps: vec![[0; 2]; steps],
            ..TokenTally::default()
        }
    }

    /// Counts one call's reported tokens.
    pub fn add(&mut self, call: &CallRecord) {
        self.calls += 1;
        let (i, o) = (
            u64::from(call.input_tokens.unwrap_or(0)),
            u64::from(call.tokens.unwrap_or(0)),
        );
        if call.error.is_none() && (call.input_tokens.is_none() || call.tokens.is_none()) {
            self.without_usage += 1;
        }
        let step = usize::from(call.step);
        if self.steps.len() <= step {
            self.steps.resize(step + 1, [0; 2]);
        }
        self.steps[step][0] += i;
        self.steps[step][1] += o;
        if call.try_no > 0 || call.pass > 0 {
            self.retries[0] += i;
            self.retries[1] += o;
        }
        if call.error.is_none()
            && let Some([pi, po]) = self.last_ok.insert((call.row, call.step), [i, o])
        {
            self.redone[0] += pi;
            self.redone[1] += po;
        }
    }

    /// A row's chain is final (it succeeded, or failed its last pass): no step of it runs
    /// again, so its successes need not be remembered. Keeps the tally's memory to the rows
    /// awaiting a retry pass, not every call of a soak.
    pub fn row_final(&mut self, row: u32) {
        if self.last_ok.is_empty() {
            return;
        }
        for step in 0..self.steps.len() {
            self.last_ok.remove(&(row, step as u16));
        }
    }

    /// The run's cost at `price`; `chains` chains ran, `names` names the steps.
    pub fn cost(&self, price: Price, chains: usize, names: &[String]) -> Cost {
        let per_step: Vec<StepCost> = self
            .steps
            .iter()
            .enumerate()
            .map(|(k, &[i, o])| StepCost {
                step: names
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| format!("step{}", k + 1)),
                input_tokens: i,
                output_tokens: o,
                cost: price.of(i, o),
            })
            .collect();
        let input_tokens = per_step.iter().map(|s| s.input_tokens).sum();
        let output_tokens = per_step.iter().map(|s| s.output_tokens).sum();
        let total = price.of(input_tokens, output_tokens);
        Cost {
            price_in: price.input,
            price_out: price.output,
            total,
            per_chain: (chains > 0).then(|| total / chains as f64),
            per_call: (self.calls > 0).then(|| total / self.calls as f64),
            retries: price.of(self.retries[0], self.retries[1]),
            redone: price.of(self.redone[0], self.redone[1]),
            input_tokens,
            output_tokens,
            calls_without_usage: self.without_usage,
            per_step,
        }
    }
}

/// What one run cost, in the currency of `--price`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Price per million input tokens used.
    pub price_in: f64,
    /// Price per million output tokens used.
    pub price_out: f64,
    /// Every call of the run, retries included.
    pub total: f64,
    /// `total` / chains that ran (succeeded or failed); None when none ran.
    pub per_chain: Option<f64>,
    /// `total` / calls sent (failed calls and retries included); None when none was sent.
    pub per_call: Option<f64>,
    /// The part of `total` spent on backoff retries and retry passes.
    pub retries: f64,
    /// The part of `total` paid twice: successful calls whose step a retry pass ran again
    /// (a chain that failed at step 3 and was re-run from step 1 pays for steps 1–2 twice).
    #[serde(default)]
    pub redone: f64,
    /// Input tokens reported over the run.
    pub input_tokens: u64,
    /// Output tokens reported over the run.
    pub output_tokens: u64,
    /// Successful calls that reported no usage, priced at 0: `total` is a lower bound if > 0.
    pub calls_without_usage: u64,
    /// Cost per chain step, retries included, in step order.
    pub per_step: Vec<StepCost>,
}

/// One step's share of a run's cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepCost {
    /// Step name.
    pub step: String,
    /// Input tokens of the step's calls.
    pub input_tokens: u64,
    /// Output tokens of the step's calls.
    pub output_tokens: u64,
    /// What the step's calls cost.
    pub cost: f64,
}

impl Cost {
    /// `$0.0123 (per chain $0.0012, retries $0.0003)`-style one-liner without a currency sign.
    pub fn line(&self) -> String {
        let mut s = money(self.total);
        if let Some(c) = self.per_chain {
            s.push_str(&format!(" total, {} per chain", money(c)));
        }
        if let Some(c) = self.per_call {
            s.push_str(&format!(", {} per call", money(c)));
        }
        s.push_str(&format!(
            ", {} on retries ({} paid twice)",
            money(self.retries),
            money(self.redone)
        ));
        s.push_str(&format!(
            " ({} in + {} out tokens at in={},out={} per 1M)",
            self.input_tokens, self.output_tokens, self.price_in, self.price_out
        ));
        if self.calls_without_usage > 0 {
            s.push_str(&format!(
                "; {} calls reported no usage and are not counted",
                self.calls_without_usage
            ));
        }
        s
    }
}

/// A cost with enough digits for the small sums single calls cost.
pub fn money(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.6}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn call(row: u32, step: u16, pass: u16, try_no: u16, tokens: Option<(u32, u32)>) -> CallRecord {
        CallRecord {
            row,
            step,
            pass,
            try_no,
            start: Duration::ZERO,
            latency: Duration::ZERO,
            status: Some(200),
            error: None,
            bytes: 0,
            tokens: tokens.map(|t| t.1),
            input_tokens: tokens.map(|t| t.0),
            ttft: None,
            finish: Default::default(),
        }
    }

    fn failed(row: u32, step: u16, pass: u16, try_no: u16) -> CallRecord {
        CallRecord {
            status: Some(429),
            error: Some(crate::record::ErrorKind::RateLimited),
            ..call(row, step, pass, try_no, None)
        }
    }

    #[test]
    fn prices_parse_in_either_order_and_refuse_what_is_not_a_price() {
        let p: Price = "in=0.15,out=0.60".parse().unwrap();
        assert_eq!((p.input, p.output), (0.15, 0.60));
        let p: Price = " out=3 , in=1.5 ".parse().unwrap();
        assert_eq!((p.input, p.output), (1.5, 3.0));
        for bad in [
            "",
            "in=1",
            "in=1,out=x",
            "in=-1,out=1",
            "in=1,out=1,in=2",
            "up=1,out=1",
        ] {
            assert!(bad.parse::<Price>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cost_per_step_per_chain_and_retries_add_up() {
        // in=2, out=10 per 1M tokens: (1000 in, 500 out) costs 0.007, (2000, 100) 0.005.
        let price = Price {
            input: 2.0,
            output: 10.0,
        };
        let (a, b) = (Some((1_000, 500)), Some((2_000, 100)));
        let mut t = TokenTally::new(2);
        // Row 0: step 1 is rate limited once, its backoff retry succeeds.
        t.add(&call(0, 0, 0, 0, a));
        t.add(&failed(0, 1, 0, 0));
        t.add(&call(0, 1, 0, 1, b));
        // Row 1: step 1 fails; the retry pass runs the chain again from step 0.
        t.add(&call(1, 0, 0, 0, a));
        t.add(&failed(1, 1, 0, 0));
        t.add(&call(1, 0, 1, 0, a));
        t.add(&call(1, 1, 1, 0, b));
        // Row 2: a success whose response reported no usage.
        t.add(&call(2, 0, 0, 0, None));
        let c = t.cost(price, 3, &["a".into(), "b".into()]);
        let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
        assert!(close(c.total, 3.0 * 0.007 + 2.0 * 0.005), "{c:?}");
        assert!(close(c.retries, 0.005 + 0.007 + 0.005), "{c:?}");
        assert!(
            close(c.redone, 0.007),
            "row 1's first step 0 was paid twice: {c:?}"
        );
        assert!(close(c.per_chain.unwrap(), c.total / 3.0));
        assert!(close(c.per_call.unwrap(), c.total / 8.0));
        assert_eq!((c.input_tokens, c.output_tokens), (7_000, 1_700));
        assert_eq!(c.per_step[0].step, "a");
        assert!(close(c.per_step[0].cost, 0.021));
        assert!(close(c.per_step[1].cost, 0.010));
        assert_eq!(c.calls_without_usage, 1);
        assert!(
            c.line().contains("1 calls reported no usage"),
            "{}",
            c.line()
        );
        assert_eq!(t.cost(price, 0, &[]).per_chain, None);
    }
}
