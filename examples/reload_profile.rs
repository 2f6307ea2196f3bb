//! Parse+compile+drop of a routes file: the fastest of N runs (N from the
//! second argument, default 20). With N = 1 it is a steady target for
//! `valgrind --tool=callgrind`.
fn main() {
    let mut args = std::env::args().skip(1);
    let file = args.next().expect("routes file");
    let runs: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(20);
    let text = std::fs::read_to_string(&file).expect("readable");
    let up = ["default".to_string()];
    let mut best = std::time::Duration::MAX;
    for _ in 0..runs {
        let t = std::time::Instant::now();
        let table =
            permgate::routes::parse(&text, std::path::Path::new(&file), &up).expect("valid");
        drop(table);
        best = best.min(t.elapsed());
    }
    println!("{file}: parse+compile+drop min of {runs}: {best:?}");
}
