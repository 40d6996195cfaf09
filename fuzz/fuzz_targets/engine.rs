//! The engine under random request sequences, checked against invariants.
//!
//! The op model, the mapping to `roost_nodes::Request`s and the invariant checker live
//! in `nodes/tests/invariants/model.rs`, shared with the `invariants` test (which drives
//! it with a PRNG in `cargo test`); here libFuzzer's bytes make the choices. A violated
//! invariant panics, which libFuzzer reports as a crash.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

#[path = "../../nodes/tests/invariants/model.rs"]
mod model;

/// Each choice takes as few bytes as its range needs; an exhausted input yields zeros.
struct Bytes<'a>(Unstructured<'a>);

impl model::Source for Bytes<'_> {
    fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        self.0.int_in_range(0..=n - 1).unwrap_or(0)
    }

    fn exhausted(&self) -> bool {
        self.0.is_empty()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes(Unstructured::new(data));
    let ops = model::Gen(&mut bytes).ops(64);
    // Replaying a crash input with ROOST_FUZZ_PRINT=1 shows the op sequence.
    static PRINT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *PRINT.get_or_init(|| std::env::var_os("ROOST_FUZZ_PRINT").is_some()) {
        eprintln!("{ops:#?}");
    }
    model::run(&ops);
});
