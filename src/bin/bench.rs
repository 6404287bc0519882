//! Native kernel benchmark: `cargo run --release --bin bertlab-bench [-- --m 4096 --reps 3]`.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use std::time::Instant;

    use bertlab::bench::{self, BenchOptions};
    use bertlab::gpu::Gpu;

    let mut opts = BenchOptions { m: 4096, reps: 3 };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let val = args.get(i + 1).and_then(|v| v.parse().ok());
        match (args[i].as_str(), val) {
            ("--m", Some(v)) => opts.m = v,
            ("--reps", Some(v)) => opts.reps = v,
            (a, _) => {
                eprintln!("usage: bertlab-bench [--m ROWS] [--reps N]   (unknown or incomplete argument {a})");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let gpu = match Gpu::new_blocking() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!("adapter: {}", gpu.info.summary());
    let t0 = Instant::now();
    let now = move || t0.elapsed().as_secs_f64() * 1e3;
    let r = pollster::block_on(bench::run(&gpu, &opts, &now, &mut |l| println!("{l}")));
    if let Err(e) = r {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}
