//! Random request sequences checked against the engine's invariants (see
//! `invariants/model.rs`, shared with the `engine` fuzz target in `fuzz/`).
//!
//! Deterministic: sequence `i` comes from seed `i`. `ROOST_INVARIANT_CASES` and
//! `ROOST_INVARIANT_SEED` widen or shift the search; a failure prints the seed and a
//! shrunk sequence that still fails.

#[path = "invariants/model.rs"]
mod model;

use std::panic::{self, AssertUnwindSafe};

fn fails(ops: &[model::Op]) -> Option<String> {
    let r = panic::catch_unwind(AssertUnwindSafe(|| model::run(ops)));
    r.err().map(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// Drop ops one at a time (from the end) while the sequence still fails.
fn shrink(mut ops: Vec<model::Op>) -> Vec<model::Op> {
    loop {
        let mut smaller = false;
        let mut i = ops.len();
        while i > 0 {
            i -= 1;
            let mut fewer = ops.clone();
            fewer.remove(i);
            if fails(&fewer).is_some() {
                ops = fewer;
                smaller = true;
            }
        }
        if !smaller {
            return ops;
        }
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_sequences_keep_the_invariants() {
    let cases = env("ROOST_INVARIANT_CASES", 2_000);
    let first = env("ROOST_INVARIANT_SEED", 0);
    // Shrinking panics many times: keep them quiet (this is the only test that does).
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let mut failure = None;
    for seed in first..first + cases {
        let ops = model::Gen(&mut model::Rng::new(seed)).ops(60);
        if fails(&ops).is_some() {
            let small = shrink(ops);
            let why = fails(&small).unwrap_or_default();
            failure = Some((seed, small, why));
            break;
        }
    }
    panic::set_hook(hook);
    if let Some((seed, ops, why)) = failure {
        panic!(
            "seed {seed}: {why}\nshrunk sequence ({} ops):\n{ops:#?}",
            ops.len()
        );
    }
}

/// The universe is reachable: a plain publish to a subscriber passes every check.
#[test]
fn a_simple_sequence_passes() {
    use model::Op;
    model::run(&[
        Op::Create {
            actor: 0,
            node: 0,
            cfg: None,
        },
        Op::Subscribe {
            actor: 3,
            node: 0,
            jid: 3,
            deliver: None,
            expire: None,
        },
        Op::Publish {
            actor: 0,
            node: 0,
            item: true,
            id: 1,
            payload: 1,
            precondition: None,
        },
        Op::Publish {
            actor: 1,
            node: 0,
            item: true,
            id: 1,
            payload: 2,
            precondition: None,
        },
        Op::FailNext,
        Op::Retract {
            actor: 0,
            node: 0,
            ids: vec![1],
            notify: true,
        },
        Op::Retract {
            actor: 0,
            node: 0,
            ids: vec![1],
            notify: true,
        },
        Op::Delete {
            actor: 0,
            node: 0,
            redirect: false,
        },
    ]);
}

/// The checker itself catches notifications the engine must never send.
#[test]
fn the_checker_catches_forged_notifications() {
    // (The caught panics print into this test's captured output only.)
    let missed = model::forged_notifications_missed();
    assert!(missed.is_empty(), "not caught: {missed:?}");
}
