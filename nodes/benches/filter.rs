//! Content filters (issue 15): matching one item against a node's filtered subscriptions,
//! through the index and, in the same run, by a linear scan of `Filter::eval`.
//!
//! The subscriptions: each filter is an equality on one of 1 000 `host` values and a set of
//! `level`s, `@host = 'host-042' and (@level = 'warn' or @level = 'error')` (host and
//! non-empty level set drawn at random from 4 levels: 15 sets, so 15 000 distinct filters);
//! the items: log payloads as `roost-log-ship --attr host=…` publishes them, a different
//! host for each iteration.
//!
//! - `filter/match_100k/{index,linear}` and `filter/match_1m/…`: one item against 100 000 and
//!   1 000 000 filtered subscriptions; the time includes reading the payload (once).
//! - `filter/match_100k_distinct/{index,linear}`: 100 000 subscriptions whose filters are all
//!   different (100 000 hosts), where sharing identical filters does not help.
//! - `filter/extract`: reading the two attributes alone.
//! - `filter/no_filter/{baseline,empty_index}`: what a node without filters pays (nothing
//!   but an emptiness check) next to doing nothing.
//!
//! Before the benches it prints the heap bytes per subscription of each index, measured by
//! a counting allocator, and of a parsed `Filter`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use roost_nodes::filter::{Filter, FilterIndex};

/// Counts the bytes currently allocated, to measure what an index holds.
struct Counting;

static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocated() -> isize {
    ALLOCATED.load(Ordering::Relaxed)
}

const HOSTS: usize = 1_000;
const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];

/// xorshift64: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn filter_text(host: usize, levels: usize) -> String {
    let set: Vec<String> = (0..4)
        .filter(|b| levels & (1 << b) != 0)
        .map(|b| format!("@level = '{}'", LEVELS[b]))
        .collect();
    let set = if set.len() == 1 {
        set[0].clone()
    } else {
        format!("({})", set.join(" or "))
    };
    format!("@host = 'host-{host:03}' and {set}")
}

/// `n` filters: hosts drawn from `hosts`, level sets from the 15 non-empty ones.
fn filters(n: usize, hosts: usize, seed: u64) -> Vec<Filter> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let host = if hosts >= n { i } else { rng.below(hosts) };
            let levels = 1 + rng.below(15);
            Filter::parse(&filter_text(host, levels)).expect("bench filter parses")
        })
        .collect()
}

/// Items like `roost-log-ship --attr host=… --attr app=…` publishes: a batch of lines.
fn payloads(n: usize, hosts: usize) -> Vec<String> {
    let mut rng = Rng(7);
    (0..n)
        .map(|i| {
            let host = rng.below(hosts);
            let level = LEVELS[rng.below(4)];
            let lines: String = (0..4)
                .map(|j| {
                    format!(
                        "<line>2026-12-04T20:00:{j:02}Z {level} request {i} served in {} ms by worker {j}</line>",
                        rng.below(500)
                    )
                })
                .collect();
            format!(
                "<lines xmlns='urn:roost:log:0' first='{}' host='host-{host:03}' app='nginx' level='{level}'>{lines}</lines>",
                i * 4
            )
        })
        .collect()
}

struct Setup {
    filters: Vec<Filter>,
    index: FilterIndex<u32>,
    index_bytes: isize,
}

fn setup(n: usize, hosts: usize) -> Setup {
    let filters = filters(n, hosts, 0x5eed ^ n as u64);
    let before = allocated();
    let mut index = FilterIndex::new();
    for (i, f) in filters.iter().enumerate() {
        index.insert(i as u32, f);
    }
    let index_bytes = allocated() - before;
    Setup {
        filters,
        index,
        index_bytes,
    }
}

fn linear(filters: &[Filter], index: &FilterIndex<u32>, payload: &str) -> usize {
    let values = index.extract(payload);
    filters.iter().filter(|f| f.eval(&values)).count()
}

fn match_group(c: &mut Criterion, name: &str, n: usize, hosts: usize) {
    let s = setup(n, hosts);
    let items = payloads(1_000, hosts);
    // A bench that measures nothing would be worse than none: the index must agree with the
    // scan, and match something.
    let mut matched = 0;
    for p in items.iter().take(20) {
        let got = s.index.matching(p).count();
        assert_eq!(
            got,
            linear(&s.filters, &s.index, p),
            "index and scan disagree"
        );
        matched += got;
    }
    assert!(matched > 0, "nothing matched");
    println!(
        "{name}: {n} subscriptions, index {:.1} MB = {:.0} bytes per subscription, {:.1} matches per item",
        s.index_bytes as f64 / 1e6,
        s.index_bytes as f64 / n as f64,
        matched as f64 / 20.0
    );
    let mut g = c.benchmark_group(format!("filter/{name}"));
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("index", |b| {
        b.iter(|| {
            i = (i + 1) % items.len();
            black_box(s.index.matching(&items[i]).count())
        })
    });
    g.sample_size(10);
    g.bench_function("linear", |b| {
        b.iter(|| {
            i = (i + 1) % items.len();
            black_box(linear(&s.filters, &s.index, &items[i]))
        })
    });
    g.finish();
}

fn match_100k(c: &mut Criterion) {
    match_group(c, "match_100k", 100_000, HOSTS);
}

fn match_1m(c: &mut Criterion) {
    match_group(c, "match_1m", 1_000_000, HOSTS);
}

fn match_100k_distinct(c: &mut Criterion) {
    match_group(c, "match_100k_distinct", 100_000, 100_000);
}

fn extract_and_no_filter(c: &mut Criterion) {
    let s = setup(100_000, HOSTS);
    let items = payloads(1_000, HOSTS);
    let mut g = c.benchmark_group("filter");
    let mut i = 0;
    g.bench_function("extract", |b| {
        b.iter(|| {
            i = (i + 1) % items.len();
            black_box(
                s.index
                    .extract(&items[i])
                    .get(s.filters[0].paths()[0])
                    .is_some(),
            )
        })
    });
    g.finish();

    let empty: FilterIndex<u32> = FilterIndex::new();
    let mut g = c.benchmark_group("filter/no_filter");
    g.bench_function("baseline", |b| {
        b.iter(|| {
            i = (i + 1) % items.len();
            black_box(&items[i]);
        })
    });
    g.bench_function("empty_index", |b| {
        b.iter(|| {
            i = (i + 1) % items.len();
            black_box(empty.matching(&items[i]).count())
        })
    });
    g.finish();
}

/// Heap bytes of parsed filters, for an engine that keeps them beside the index.
fn report_filter_size() {
    let before = allocated();
    let fs = filters(10_000, HOSTS, 1);
    let bytes = allocated() - before;
    let text: usize = fs.iter().map(|f| f.to_string().len()).sum();
    println!(
        "a parsed Filter: {:.0} heap bytes + {} inline (its canonical text: {:.0} bytes)",
        bytes as f64 / fs.len() as f64,
        std::mem::size_of::<Filter>(),
        text as f64 / fs.len() as f64
    );
}

fn all(c: &mut Criterion) {
    report_filter_size();
    extract_and_no_filter(c);
    match_100k(c);
    match_100k_distinct(c);
    match_1m(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = all
}
criterion_main!(benches);
