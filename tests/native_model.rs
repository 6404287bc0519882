//! The model against PyTorch (tests/fixtures), natively on wgpu. Nothing is skipped.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use bertlab::gpu::Gpu;

fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    match GPU.get_or_init(|| Gpu::new_blocking().map_err(|e| e.to_string())) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

macro_rules! native_tests {
    ($($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let g = gpu();
                match pollster::block_on(bertlab::model::checks::$name(g)) {
                    Ok(summary) => println!("{} on {}: {summary}", stringify!($name), g.info.name),
                    Err(e) => panic!("{} on {}: {e}", stringify!($name), g.info.summary()),
                }
            }
        )*
    };
}

bertlab::for_each_model_check!(native_tests);
