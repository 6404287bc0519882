//! What the page calls (wasm only): the adapter in words, the self-check (every kernel check, then
//! every model check against PyTorch's fixtures) and the benchmark.
//! Every entry point resolves asynchronously; nothing blocks the browser's thread.

use wasm_bindgen::prelude::*;

use crate::bench::{self, BenchOptions};
use crate::gpu::Gpu;
use crate::kernels::checks;

use crate::gpu::now_ms;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The adapter's summary, or the reason there is none (with what to do).
#[wasm_bindgen]
pub async fn gpu_info() -> Result<String, JsValue> {
    let gpu = Gpu::new().await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    Ok(gpu.info.summary())
}

/// Runs every kernel check (`kernels::checks`), then every model check against PyTorch's tiny
/// fixtures (`parity`); calls `on_result(name, ok, message)` after each one and resolves to the
/// number that failed.
#[wasm_bindgen]
pub async fn self_check(on_result: js_sys::Function) -> Result<u32, JsValue> {
    let gpu = Gpu::new().await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    let mut failed = 0;
    for (name, check) in checks::all().into_iter().chain(crate::parity::all()) {
        let r = check(&gpu).await;
        if r.is_err() {
            failed += 1;
        }
        let (ok, msg) = match r {
            Ok(m) => (true, m),
            Err(m) => (false, m.to_string()),
        };
        let _ = on_result.call3(&JsValue::NULL, &name.into(), &ok.into(), &msg.into());
    }
    Ok(failed)
}

/// The kernel benchmark with `m` activation rows; calls `on_line(text)` per measurement.
#[wasm_bindgen]
pub async fn run_bench(m: usize, reps: usize, on_line: js_sys::Function) -> Result<(), JsValue> {
    let gpu = Gpu::new().await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    let _ = on_line.call1(&JsValue::NULL, &format!("adapter: {}", gpu.info.summary()).into());
    let opts = BenchOptions { m, reps };
    bench::run(&gpu, &opts, &now_ms, &mut |l| {
        let _ = on_line.call1(&JsValue::NULL, &l.to_string().into());
    })
    .await
    .map_err(|e| JsValue::from_str(&e.to_string()))?;
    Ok(())
}
