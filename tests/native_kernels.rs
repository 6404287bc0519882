//! Every kernel check of `bertlab::kernels::checks`, natively on wgpu (lavapipe on a machine without a
//! GPU). A missing adapter fails every test with instructions; nothing is skipped.
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
                match pollster::block_on(bertlab::kernels::checks::$name(g)) {
                    Ok(summary) => println!("{} on {}: {summary}", stringify!($name), g.info.name),
                    Err(e) => panic!("{} on {}: {e}", stringify!($name), g.info.summary()),
                }
            }
        )*
    };
}

bertlab::for_each_kernel_check!(native_tests);

#[test]
fn adapter_is_named_and_not_gl() {
    let g = gpu();
    assert!(!g.info.name.is_empty());
    assert_ne!(g.info.backend, "Gl", "fell back to GL: {}", g.info.summary());
    println!("adapter: {}", g.info.summary());
}
