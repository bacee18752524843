//! Tests of [`super`]: interval formatting, verdicts, the regressed check, noise warnings.

use super::*;

#[test]
fn intervals_print_in_the_unit_of_their_value() {
    assert_eq!(duration_pm(5_810.0, 120.0), "5.81 s ± 0.12");
    assert_eq!(duration_pm(925.0, 31.4), "925 ms ± 31");
    assert_eq!(duration_pm(42_100.0, 1_260.0), "42.1 s ± 1.3");
    assert_eq!(speedup_pm(4.6, 0.21), "×4.6 ± 0.2");
}

#[test]
fn repeated_wall_times_decide_with_welch() {
    use crate::sweep::Repeats;
    let a = crate::report::tests::fixture();
    let with_walls = |report: &SweepReport, walls: [f64; 3]| {
        let mut r = report.runs[0].clone();
        r.wall_ms = walls.iter().sum::<f64>() / 3.0;
        r.repeats = Some(Repeats {
            walls_ms: walls.to_vec(),
            retry_walls_ms: vec![0.0; 3],
            order: vec![0, 4, 8],
            wall_ms: stats::mean_interval(&walls),
            speedup: None,
        });
        r
    };
    let base = with_walls(&a, [600.0, 605.0, 598.0]);
    let slow = with_walls(&a, [720.0, 724.0, 716.0]);
    let noisy = with_walls(&a, [600.0, 900.0, 650.0]);
    let c = cell_change(&base, &slow);
    assert_eq!(c.verdict, Verdict::Slower, "{c:?}");
    assert!((c.change - 0.1978).abs() < 1e-3, "{c:?}");
    assert!(c.interval[0] > 0.15 && c.interval[1] < 0.25, "{c:?}");
    // Same calls (latency: no change), walls too noisy to call: no change.
    let c = cell_change(&base, &noisy);
    assert_eq!(c.verdict, Verdict::NoChange, "{c:?}");
    assert_eq!(wall_cell(&base), "601 ms ± 9");
}

#[test]
fn noisy_cells_are_named_few_calls_and_retry_dominated_repeats() {
    use crate::sweep::Repeats;
    let mut report = crate::report::tests::fixture();
    for r in &mut report.runs {
        r.retry_wall_ms = 0.0;
    }
    assert!(
        noise_warnings(&report).is_empty(),
        "the fixture has ≥ 30 calls a cell"
    );
    report.runs[0].calls = 12;
    report.runs[1].repeats = Some(Repeats {
        walls_ms: vec![1000.0, 2600.0],
        retry_walls_ms: vec![0.0, 1900.0],
        order: vec![1, 9],
        wall_ms: None,
        speedup: None,
    });
    let w = noise_warnings(&report);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].contains("only 12 calls"), "{w:?}");
    assert!(
        w[1].contains("repeat 2 spent 73 % of its wall time in retry passes"),
        "{w:?}"
    );
}

#[test]
fn reports_written_before_repeats_still_load() {
    let report = crate::report::tests::fixture();
    let mut v = serde_json::to_value(&report).unwrap();
    assert!(
        v["runs"][0].get("repeats").is_none(),
        "absent without --repeat"
    );
    v["settings"].as_object_mut().unwrap().remove("repeat");
    let old: SweepReport = serde_json::from_value(v).unwrap();
    assert_eq!(old.settings.repeat, 1);
    assert!(old.runs.iter().all(|r| r.repeats.is_none()));
}

#[test]
fn regressed_check_parses_and_counts_slower_cells() {
    assert_eq!(parse_regressed("regressed>0"), Ok(0));
    assert_eq!(parse_regressed(" regressed > 2 "), Ok(2));
    assert!(parse_regressed("p99>1s").is_err());
}

#[test]
fn identical_reports_compare_as_no_change_and_shifted_ones_as_slower() {
    let a = crate::report::tests::fixture();
    let c = comparison(&a, &a.clone());
    assert!(!c.cells.is_empty());
    assert!(
        c.cells.iter().all(|x| x.verdict == Verdict::NoChange),
        "{c:?}"
    );
    // Every call twice as slow (the fixture's 30 calls of 30–150 ms are too few to
    // call a 20 % shift significant).
    let mut b = a.clone();
    for r in &mut b.runs {
        for row in &mut r.call_distribution {
            row.value_us *= 2;
        }
    }
    let c = comparison(&a, &b);
    assert!(
        c.cells.iter().all(|x| x.verdict == Verdict::Slower),
        "{c:?}"
    );
    assert_eq!(c.regressed, c.cells.len());
    assert!(regressed_verdict(&c, 0).into_result().is_err());
    assert!(
        c.cells.iter().all(|x| (x.change - 1.0).abs() < 0.01),
        "{c:?}"
    );
}
