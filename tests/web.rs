//! Every kernel check of `bertlab::kernels::checks` and every model check of `bertlab::model::checks`
//! (PyTorch parity), in headless Chrome's WebGPU
//! (`wasm-pack test --headless --chrome`, flags in webdriver.json). Without WebGPU every test fails
//! with instructions; nothing is skipped.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use bertlab::gpu::Gpu;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

thread_local! {
    static GPU: RefCell<Option<Rc<Gpu>>> = const { RefCell::new(None) };
}

async fn gpu() -> Rc<Gpu> {
    if let Some(g) = GPU.with(|g| g.borrow().clone()) {
        return g;
    }
    let g = Rc::new(Gpu::new().await.unwrap_or_else(|e| panic!("{e}")));
    GPU.with(|slot| *slot.borrow_mut() = Some(g.clone()));
    g
}

macro_rules! web_tests {
    ($($name:ident),*) => { web_tests!(@ kernels; $($name),*); };
    (@ $module:ident; $($name:ident),*) => {
        $(
            #[wasm_bindgen_test]
            async fn $name() {
                let g = gpu().await;
                match bertlab::$module::checks::$name(&g).await {
                    Ok(summary) => web_sys::console::log_1(&format!("{} on {}: {summary}", stringify!($name), g.info.name).into()),
                    Err(e) => panic!("{} on {}: {e}", stringify!($name), g.info.summary()),
                }
            }
        )*
    };
}

macro_rules! web_model_tests {
    ($($name:ident),*) => { web_tests!(@ model; $($name),*); };
}

bertlab::for_each_kernel_check!(web_tests);
bertlab::for_each_model_check!(web_model_tests);

#[wasm_bindgen_test]
async fn adapter_is_webgpu() {
    let g = gpu().await;
    assert_eq!(g.info.backend, "BrowserWebGpu", "{}", g.info.summary());
}

// The data layer's checks (no GPU): masking proportions, whole-word masking, sentence-order pairs and
// dataset messages, in the browser build with tokenizers' wasm features.
macro_rules! web_train_tests {
    ($($name:ident),*) => {
        $(
            #[wasm_bindgen_test]
            fn $name() {
                match bertlab::train::checks::$name() {
                    Ok(summary) => web_sys::console::log_1(&format!("{}: {summary}", stringify!($name)).into()),
                    Err(e) => panic!("{}: {e}", stringify!($name)),
                }
            }
        )*
    };
}

web_train_tests!(masking_proportions, whole_word_masking, sentence_order_pairs, dataset_messages);
