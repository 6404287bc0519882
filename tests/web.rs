//! The kernel checks of `bertlab::kernels::checks` and the model checks of `bertlab::parity`
//! (PyTorch parity) that Chrome's WebGPU adds to (the lists' browser share: the few left out run
//! natively and in the page's self-check), in headless Chrome's WebGPU
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

use bertlab::kernels::checks as kernel_checks;
use bertlab::parity;
use bertlab::train::checks as train_checks;

macro_rules! web_tests {
    ($($name:ident),*) => { web_tests!(@ kernel_checks; $($name),*); };
    (@ $module:ident; $($name:ident),*) => {
        $(
            #[wasm_bindgen_test]
            async fn $name() {
                let g = gpu().await;
                match $module::$name(&g).await {
                    Ok(summary) => web_sys::console::log_1(&format!("{} on {}: {summary}", stringify!($name), g.info.name).into()),
                    Err(e) => panic!("{} on {}: {e}", stringify!($name), g.info.summary()),
                }
            }
        )*
    };
}

macro_rules! web_model_tests {
    ($($name:ident),*) => { web_tests!(@ parity; $($name),*); };
}

bertlab::for_each_kernel_check!(web_tests, browser);
bertlab::for_each_model_check!(web_model_tests, browser);
bertlab::for_each_family_check!(web_model_tests, browser);

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

// A steady-state training step creates no buffer or bind group, in Chrome's WebGPU too (the browser
// tests run one at a time, so the shared device's counters see only this test).
web_tests!(@ train_checks; steady_state_step_creates_nothing);

// Leptos components of the page, mounted into the test page's DOM.
mod components {
    use bertlab::app::protocol::{bars, preview};
    use bertlab::app::ui::{DataPreviewView, PredictionBars};
    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_test::*;

    fn host() -> web_sys::HtmlElement {
        let doc = web_sys::window().unwrap().document().unwrap();
        let el: web_sys::HtmlElement = doc.create_element("div").unwrap().dyn_into().unwrap();
        doc.body().unwrap().append_child(&el).unwrap();
        el
    }

    #[wasm_bindgen_test]
    fn data_preview_shows_every_message_with_its_line_and_renders_text_as_text() {
        let text = "label\ttext\npositive\tgood <b>bold</b> <script>alert(1)</script>\npositive\tgreat\n\tno label here\npositive\tgreat\n";
        let ds = bertlab::text::dataset::parse(text.as_bytes(), None);
        let p = preview("pasted", &ds, 5);
        let want: Vec<String> = p.messages.iter().map(|m| m.text.clone()).collect();
        assert!(want.len() >= 2, "expected an unlabeled-row and a duplicate message: {want:?}");
        let el = host();
        let _h = leptos::mount::mount_to(el.clone(), move || view! { <DataPreviewView preview=p/> });
        let shown = el.text_content().unwrap_or_default();
        for m in &want {
            assert!(shown.contains(m.as_str()), "message {m:?} not shown in {shown:?}");
        }
        assert!(shown.contains("line 4"), "{shown}");
        assert!(shown.contains("Cannot fine-tune on this"), "a single class must be refused in the preview: {shown}");
        // user text is text: the markup shows literally and creates no elements
        assert!(shown.contains("<b>bold</b>"), "{shown}");
        assert!(el.query_selector("b").unwrap().is_none() && el.query_selector("script").unwrap().is_none());
        let items = el.query_selector_all("ul.messages li").unwrap().length() as usize;
        assert_eq!(items, want.len());
    }

    /// Types a bad value into every numeric field of the fine-tuning and pretraining panels and
    /// presses each panel's start: every field shows its message beside it, and no command leaves.
    /// Lets Leptos run the effects that redraw the DOM (they are scheduled, not immediate).
    async fn settle() {
        let p = js_sys::Promise::new(&mut |resolve, _| {
            web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 20).unwrap();
        });
        wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
    }

    #[wasm_bindgen_test]
    async fn every_bad_numeric_field_is_refused_beside_it_and_no_run_starts() {
        use bertlab::app::protocol::ModelSummary;
        use bertlab::app::ui::{commands_sent, FinetunePanel, PretrainPanel, St};
        let el = host();
        let _h = leptos::mount::mount_to(el.clone(), move || {
            let st = St::new();
            st.model.set(Some(ModelSummary { layers: 2, max_len: 64, hidden: 32, heads: 2, vocab: 300, ..Default::default() }));
            provide_context(st);
            view! { <PretrainPanel/><FinetunePanel/> }
        });
        let doc = web_sys::window().unwrap().document().unwrap();
        let select: web_sys::HtmlSelectElement = doc.get_element_by_id("ft-mode").unwrap().dyn_into().unwrap();
        select.set_value("last");
        select.dispatch_event(&web_sys::Event::new("change").unwrap()).unwrap();
        settle().await;
        let bad = [("ft-last", "9"), ("ft-lr", "1e-4x"), ("ft-epochs", "-1"), ("ft-batch", "0"), ("ft-maxlen", "4096"), ("pt-steps", "many"), ("pt-lr", "nan"), ("pt-batch", "2.5")];
        for (id, v) in bad {
            let input: web_sys::HtmlInputElement = doc.get_element_by_id(id).unwrap_or_else(|| panic!("no #{id}")).dyn_into().unwrap();
            input.set_value(v);
            input.dispatch_event(&web_sys::Event::new("input").unwrap()).unwrap();
        }
        let before = commands_sent();
        for b in ["ft-start", "pt-start"] {
            doc.get_element_by_id(b).unwrap().dyn_into::<web_sys::HtmlElement>().unwrap().click();
        }
        settle().await;
        for (id, v) in bad {
            let msg = doc.get_element_by_id(&format!("{id}-error")).unwrap_or_else(|| panic!("#{id} = {v:?} was not refused beside it")).text_content().unwrap_or_default();
            assert!(!msg.is_empty(), "#{id}: an empty message");
        }
        let ft_last = doc.get_element_by_id("ft-last-error").unwrap().text_content().unwrap();
        assert!(ft_last.contains("from 1 to 2"), "the layers' range comes from the model: {ft_last}");
        assert_eq!(commands_sent(), before, "a run was started");
    }

    #[wasm_bindgen_test]
    fn prediction_bars_are_sorted_with_widths_matching_probabilities() {
        let labels = vec!["negative".to_string(), "neutral".to_string(), "positive".to_string()];
        let b = bars(&labels, &[0.15, 0.05, 0.80]);
        let el = host();
        let _h = leptos::mount::mount_to(el.clone(), move || view! { <PredictionBars bars=b/> });
        let rows = el.query_selector_all(".bar-row").unwrap();
        assert_eq!(rows.length(), 3);
        let label = |i: u32| rows.item(i).unwrap().dyn_into::<web_sys::Element>().unwrap().query_selector(".bar-label").unwrap().unwrap().text_content().unwrap();
        assert_eq!([label(0), label(1), label(2)], ["positive", "negative", "neutral"]);
        let fill: web_sys::HtmlElement = el.query_selector(".bar-fill").unwrap().unwrap().dyn_into().unwrap();
        assert_eq!(fill.style().get_property_value("width").unwrap(), "80%");
        assert!(el.text_content().unwrap().contains("0.800"));
    }
}
