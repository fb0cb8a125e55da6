//! CI smoke of the reader fuzzer (issue 12): about 10,000 mutated inputs over all parsers, none
//! may panic or allocate more than the cap. The long runs use `examples/fuzz_readers.rs`.
use zerolabel::fuzz::{self, CapAllocator};

#[global_allocator]
static ALLOCATOR: CapAllocator = CapAllocator;

#[test]
fn every_reader_survives_ten_thousand_mutations() {
    std::panic::set_hook(Box::new(|_| {}));
    let per_parser = 10_000 / fuzz::PARSERS.len() as u64 + 1;
    let mut report = Vec::new();
    for parser in fuzz::PARSERS {
        let started = std::time::Instant::now();
        let tally = fuzz::fuzz(parser, per_parser, 7, None, |_| {});
        assert!(tally.accepted >= 1, "{parser}: even the seed file was refused");
        assert!(started.elapsed().as_secs_f64() < 30.0, "{parser}: {:.1} s", started.elapsed().as_secs_f64());
        report.push(format!("{parser}: {} executions, {} panics {:?}, {} oversized", tally.executions, tally.panics, tally.failures, tally.oversized_allocations));
        if tally.panics > 0 || tally.oversized_allocations > 0 {
            let _ = std::panic::take_hook();
            panic!("{}", report.join("\n"));
        }
    }
    eprintln!("{}", report.join("\n"));
}
