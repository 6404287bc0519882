//! Every kernel check of `bertlab::kernels::checks`, natively on wgpu (lavapipe on a machine without a
//! GPU). A missing adapter fails every test with instructions; nothing is skipped.
#![cfg(not(target_arch = "wasm32"))]


mod common;
use common::gpu;

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
