//! The LLM serving lines of a `run` (terminal and summary.md): token source, per-request
//! token rate, SLO attainment and goodput. Sweeps show the same figures as a table.

use crate::metrics::LlmSummary;

/// Lines for the terminal summary of a run, each starting with a newline; empty when the
/// run neither streamed nor had an SLO. `latencies`: include ITL and TPOT (summary.md has
/// them in its latency table instead).
pub(crate) fn run_lines(llm: &LlmSummary, latencies: bool) -> String {
    let mut text = String::new();
    let ms = |us: u64| us as f64 / 1000.0;
    if let Some(itl) = llm.itl.as_ref().filter(|_| latencies) {
        text.push_str(&format!(
            "\ninter-token latency: p50 {:.1} ms, p99 {:.1} ms",
            ms(itl.p50_us),
            ms(itl.p99_us)
        ));
    }
    if let Some(tpot) = llm.tpot.as_ref().filter(|_| latencies) {
        text.push_str(&format!(
            "\ntime per output token: p50 {:.1} ms, p99 {:.1} ms",
            ms(tpot.p50_us),
            ms(tpot.p99_us)
        ));
    }
    if let (Some(rate), Some(from)) = (llm.request_output_tokens_per_s, llm.tokens_from) {
        text.push_str(&format!(
            "\noutput tokens/s per request: {rate:.0} (tokens from {})",
            from.as_str()
        ));
    }
    if let Some(slo) = &llm.slo {
        text.push_str(&format!(
            "\nSLO {slo}: met by {} of calls, goodput {}",
            super::table::attainment_cell(llm.slo_attainment),
            super::table::goodput_cell(llm.goodput)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{LatencySummary, TokenSource};

    #[test]
    fn run_lines_name_every_llm_figure_and_nothing_without_them() {
        assert_eq!(run_lines(&LlmSummary::default(), true), "");
        let llm = LlmSummary {
            itl: Some(LatencySummary {
                p50_us: 5000,
                p99_us: 9000,
                ..LatencySummary::default()
            }),
            tokens_from: Some(TokenSource::Usage),
            request_output_tokens_per_s: Some(150.0),
            slo: Some("ttft<500ms".into()),
            slo_attainment: Some(0.975),
            goodput: Some(42.0),
            ..LlmSummary::default()
        };
        assert!(!run_lines(&llm, false).contains("inter-token"));
        let text = run_lines(&llm, true);
        assert!(
            text.contains("inter-token latency: p50 5.0 ms, p99 9.0 ms"),
            "{text}"
        );
        assert!(text.contains("150 (tokens from usage)"), "{text}");
        assert!(
            text.contains("SLO ttft<500ms: met by 97.5 % of calls, goodput 42.0/s"),
            "{text}"
        );
    }
}
