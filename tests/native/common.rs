//! The one native GPU shared by the tests of a test binary. A missing adapter fails every test with
//! instructions; nothing is skipped.

use std::sync::OnceLock;

use bertlab::gpu::Gpu;

pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    match GPU.get_or_init(|| Gpu::new_blocking().map_err(|e| e.to_string())) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}
