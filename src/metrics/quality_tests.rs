//! Unit tests of the quality module: token sets, Jaccard, sampling and comparison.

use super::*;

fn sample(rows: &[Option<&str>]) -> Sample {
    Sample(rows.iter().map(|r| r.map(token_set)).collect())
}

#[test]
fn token_sets_lowercase_split_on_punctuation_and_dedupe() {
    assert_eq!(token_set("The cat, the CAT!"), token_set("cat the"));
    assert_eq!(token_set("the cat").len(), 2);
    assert!(token_set("  ,;  ").is_empty());
    let s = token_set("b a c a b");
    assert!(
        s.windows(2).all(|w| w[0] < w[1]),
        "sorted and deduped: {s:?}"
    );
}

#[test]
fn jaccard_is_intersection_over_union() {
    let j = |a: &str, b: &str| jaccard(&token_set(a), &token_set(b));
    assert_eq!(j("a b c", "a b c"), 1.0);
    assert_eq!(j("a b c", "C b A"), 1.0);
    assert_eq!(j("a b", "c d"), 0.0);
    // {a b c} ∩ {b c d} = {b c}; ∪ = {a b c d}.
    assert_eq!(j("a b c", "b c d"), 0.5);
    assert_eq!(j("a", "a b c"), 1.0 / 3.0);
    assert_eq!(j("", ""), 1.0);
    assert_eq!(j("", "a"), 0.0);
}

#[test]
fn long_outputs_are_capped_and_estimated_from_the_smallest_hashes() {
    let words: Vec<String> = (0..5000).map(|i| format!("w{i}")).collect();
    let all = words.join(" ");
    let a = token_set(&all);
    assert_eq!(a.len(), MAX_ROW_TOKENS);
    assert_eq!(jaccard(&a, &a), 1.0);
    // Half the words shared: true Jaccard 2500 / 7500 = 1/3; the bottom-k estimate of
    // 1,024 hashes lands near it.
    let other: Vec<String> = (2500..5000).map(|i| format!("x{i}")).collect();
    let b = token_set(&format!("{} {}", words[..2500].join(" "), other.join(" ")));
    let est = jaccard(&a, &b);
    assert!((0.25..0.42).contains(&est), "{est}");
}

#[test]
fn comparison_counts_exact_matches_over_rows_both_runs_finished() {
    // Row 2 failed in the run (hash 0); row 3 differs.
    let base = [11, 12, 13, 14];
    let run = [11, 12, 0, 99];
    let s_base = sample(&[Some("a b"), Some("c d"), Some("e f"), Some("g h i j")]);
    let s_run = sample(&[Some("a b"), Some("c d"), None, Some("g h i k")]);
    let c = compare(&base, &s_base, &run, &s_run).unwrap();
    assert_eq!((c.compared, c.exact_matches), (3, 2));
    let sim = c.similarity.unwrap();
    assert_eq!((sim.metric.as_str(), sim.rows), ("jaccard", 3));
    // Scores 0.6, 1, 1: p10 is the lowest, p50 the second.
    assert_eq!((sim.p10, sim.p50), (0.6, 1.0));
    assert_eq!(compare(&[], &Sample::default(), &run, &s_run), None);
}

#[test]
fn the_recorder_samples_only_its_first_rows_and_counts_empty_outputs() {
    let mut q = QualityRecorder::new(10_000);
    assert!(q.samples(0) && q.samples(4095) && !q.samples(4096));
    q.row_done(3, Some(" \n"), Some(token_set(" \n")));
    q.row_done(5000, Some(""), None);
    q.row_done(1, None, None);
    assert_eq!(q.summary().empty, 2);
    let s = q.take_sample();
    assert_eq!(s.0.len(), 4);
    assert_eq!(s.0[3], Some(Vec::new()));
    assert!(!QualityRecorder::new(0).samples(0));
}

#[test]
fn finishes_and_tokens_count_successful_calls_only() {
    let call = |finish, error, tokens| CallRecord {
        row: 0,
        step: 0,
        pass: 0,
        try_no: 0,
        start: std::time::Duration::ZERO,
        latency: std::time::Duration::ZERO,
        status: Some(200),
        error,
        bytes: 0,
        tokens,
        input_tokens: None,
        ttft: None,
        finish,
    };
    let mut q = QualityRecorder::new(0);
    q.call_done(&call(Finish::Stop, None, Some(10)));
    q.call_done(&call(Finish::Length, None, Some(50)));
    q.call_done(&call(
        Finish::Unknown,
        Some(crate::record::ErrorKind::Timeout),
        Some(999),
    ));
    let s = q.summary();
    assert_eq!(
        s.finish,
        FinishCounts {
            stop: 1,
            length: 1,
            other: 0,
            unknown: 0
        }
    );
    let t = s.output_tokens.unwrap();
    assert_eq!((t.p50, t.p99), (10, 50));
    assert_eq!(QualityRecorder::new(0).summary().output_tokens, None);
}
