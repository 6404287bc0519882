//! GPU-vs-CPU checks of every kernel, forward and backward, shared by the native tests
//! (`tests/native/kernels.rs`), the browser tests (`tests/web.rs`) and the app's self-check.
//! Each check returns `Ok(summary)` with the worst error it saw, or `Err(what failed)`.
//!
//! Conventions: CPU references run in f64 on the same f32 inputs the GPU gets. Backward references are
//! themselves checked against central finite differences in f64; each GPU backward is compared with its
//! CPU backward and gets one random-direction finite-difference check of its own, in f32 on the GPU.

use std::future::Future;
use std::pin::Pin;

use super::adamw::{AdamW, AdamWState, ParamSlice};
use super::attention::{HeadSplit, Scratch};
use super::layernorm::{Affine, AffineGrad, BackwardOpts, Fused, FusedBack, LayerNorm, Saved, Stats};
use super::matmul::{Kernel, Matmul, Operand};
use super::softmax::{Mask, RowKernel, Softmax};
use super::gelu::Gelu;
use super::{cpu, cross_entropy, dropout, elementwise, embedding, gelu, softmax};
use crate::error::{Error, Result};
use crate::gpu::{DType, Gpu, GpuBuf, GpuError, Shape, Step, View};

pub type CheckResult = Result<String>;
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckResult> + 'a>>;

/// Calls `$m!(name, name, ...)` with every check in this module: the one list that the native tests
/// and the self-check expand; `for_each_kernel_check!(m, browser)` gives the browser suite's share,
/// the checks that Chrome's WebGPU (Tint, SwiftShader) adds to: all but the second group below.
#[macro_export]
macro_rules! for_each_kernel_check {
    ($m:ident) => { $crate::for_each_kernel_check! { @ $m; all } };
    ($m:ident, browser) => { $crate::for_each_kernel_check! { @ $m; browser } };
    (@ $m:ident; $which:ident) => {
        $crate::checks_of! { $m; $which; [
            pipelines_build_in_error_scope,
            one_submit_per_step_and_counters,
            bad_arguments_are_errors,
            matmul_1x1x1,
            matmul_7x13x5_all_transposes,
            matmul_129x65x33_batched_all_transposes,
            matmul_vec4_edges_offsets_all_transposes,
            matmul_bias_gelu_accumulate,
            matmul_backward,
            softmax_forward_extremes_and_masks,
            softmax_backward,
            layernorm_forward_constant_rows,
            layernorm_backward,
            gelu_forward,
            gelu_backward,
            embedding_forward,
            embedding_backward_repeated_ids,
            matmul_heads_in_place,
            attention_forward,
            attention_backward,
            attention_grouped_query,
            dropout_matches_cpu_and_statistics,
            dropout_fused_into_layernorm_and_softmax,
            cross_entropy_forward_ignore,
            cross_entropy_backward,
            adamw_matches_torch_formula,
            adamw_skips_nonfinite_step,
            elementwise_ops,
            glu_forward_backward,
            rotary_matches_reference_and_turns_back,
            rmsnorm_forward_backward,
            matvec_layouts_splits_offsets,
            attention_cached_matches_reference,
            sample_top_k_matches_reference
        ]; [
            // natively only: the BERT-base shape runs the kernels the browser checks at the smaller
            // shapes and every edge (22 s of SwiftShader for nothing new), and decoding from packed
            // textures is off in the browser
            matmul_bert_67x768x3072,
            matvec_packed_matches_reference
        ] }
    };
}

/// `$m!` with both groups of a check list (`all`), or with the first alone (`browser`).
#[macro_export]
#[doc(hidden)]
macro_rules! checks_of {
    ($m:ident; all; [$($a:ident),*]; [$($n:ident),*]) => { $m! { $($a,)* $($n),* } };
    ($m:ident; browser; [$($a:ident),*]; [$($n:ident),*]) => { $m! { $($a),* } };
}

/// (name, check) for every check, in the order above.
pub fn all() -> Vec<(&'static str, for<'a> fn(&'a Gpu) -> CheckFuture<'a>)> {
    macro_rules! list {
        ($($name:ident),*) => {
            vec![$((stringify!($name), (|g| Box::pin($name(g))) as for<'a> fn(&'a Gpu) -> CheckFuture<'a>)),*]
        };
    }
    for_each_kernel_check!(list)
}

// ---------------------------------------------------------------------------------------------
// helpers

pub use crate::rng::Rng;

fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

async fn read(gpu: &Gpu, b: &GpuBuf) -> Result<Vec<f32>> {
    Ok(gpu.read_f32(b).await?)
}

fn up(gpu: &Gpu, label: &str, x: &[f32]) -> Result<GpuBuf> {
    Ok(gpu.upload_f32(label, x)?)
}

fn zeros(gpu: &Gpu, label: &str, n: usize) -> Result<GpuBuf> {
    Ok(gpu.zeros(label, n, DType::F32)?)
}

/// Every element within `tol(i)` of the reference; returns the worst |error| / tolerance.
fn close(what: &str, got: &[f32], want: &[f64], tol: impl Fn(usize) -> f64) -> Result<f64> {
    if got.len() != want.len() {
        return Err(Error::Check(format!("{what}: got {} values, expected {}", got.len(), want.len())));
    }
    let mut worst = 0.0f64;
    for i in 0..got.len() {
        let d = (got[i] as f64 - want[i]).abs();
        let t = tol(i);
        if !(d <= t) {
            return Err(Error::Check(format!("{what}[{i}]: GPU {} vs reference {} (|diff| {d:.3e} > tolerance {t:.3e})", got[i], want[i])));
        }
        worst = worst.max(d / t.max(1e-300));
    }
    Ok(worst)
}

/// max|diff| <= rel * max|reference|, the tolerance used for whole gradient tensors.
fn close_rel_max(what: &str, got: &[f32], want: &[f64], rel: f64) -> Result<f64> {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    close(what, got, want, |_| rel * scale)
}

/// Central finite differences in f64 of `f` at `x`, compared with `grad` along `k` coordinates and
/// along one random direction. Returns the worst relative error.
fn fd_check_cpu(what: &str, f: &dyn Fn(&[f64]) -> f64, x: &[f64], grad: &[f64], rng: &mut Rng, k: usize) -> Result<f64> {
    let h = 1e-6;
    let mut worst = 0.0f64;
    let gscale = grad.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    let mut probe = |dir: &[f64], analytic: f64, label: String| -> Result<()> {
        let xp: Vec<f64> = x.iter().zip(dir).map(|(a, d)| a + h * d).collect();
        let xm: Vec<f64> = x.iter().zip(dir).map(|(a, d)| a - h * d).collect();
        let numeric = (f(&xp) - f(&xm)) / (2.0 * h);
        let dnorm = dir.iter().map(|d| d * d).sum::<f64>().sqrt();
        let err = (numeric - analytic).abs() / (gscale * dnorm);
        if err > 1e-6 {
            return Err(Error::Check(format!("{what}: CPU backward {label} is {analytic:.9e}, finite differences give {numeric:.9e}")));
        }
        worst = worst.max(err);
        Ok(())
    };
    for _ in 0..k {
        let i = rng.below(x.len() as u32) as usize;
        let mut dir = vec![0.0; x.len()];
        dir[i] = 1.0;
        probe(&dir, grad[i], format!("d/dx[{i}]"))?;
    }
    let dir: Vec<f64> = (0..x.len()).map(|_| rng.normal()).collect();
    let analytic: f64 = grad.iter().zip(&dir).map(|(g, d)| g * d).sum();
    probe(&dir, analytic, "along a random direction".into())?;
    Ok(worst)
}

fn dot(a: &[f32], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * y).sum()
}

/// One random-direction finite-difference check of a GPU backward: `lp`, `lm` are <r, f(x ± eps u)>
/// computed by the GPU forward; `analytic` is <grad_gpu, u>.
fn fd_check_gpu(what: &str, lp: f64, lm: f64, eps: f64, analytic: f64, tol: f64) -> Result<f64> {
    let numeric = (lp - lm) / (2.0 * eps);
    let err = (numeric - analytic).abs() / analytic.abs().max(numeric.abs()).max(1e-6);
    if err > tol {
        return Err(Error::Check(format!("{what}: GPU backward gives {analytic:.6e} along a random direction, GPU finite differences {numeric:.6e}")));
    }
    Ok(err)
}

fn shift(x: &[f32], u: &[f64], eps: f64) -> Vec<f32> {
    x.iter().zip(u).map(|(a, d)| (*a as f64 + eps * d) as f32).collect()
}

// ---------------------------------------------------------------------------------------------
// runtime


pub async fn pipelines_build_in_error_scope(gpu: &Gpu) -> CheckResult {
    let all = super::all_pipelines(&Kernel::available(gpu));
    for (k, consts) in &all {
        gpu.check_pipeline(*k, consts).await?;
    }
    Ok(format!("{} pipelines built without a validation error on {}", all.len(), gpu.info.name))
}

pub async fn one_submit_per_step_and_counters(gpu: &Gpu) -> CheckResult {
    // Counters are global to the Gpu; other checks may run concurrently natively, so measure deltas
    // of this step's own dispatch kinds only through a dedicated step, and its queue submissions by
    // its label (no other check's).
    let x = up(gpu, "x", &[1.0; 300])?;
    let y = zeros(gpu, "y", 300)?;
    let before = gpu.counters();
    let mut step = gpu.begin_step("counted");
    for _ in 0..3 {
        gelu::forward(&mut step, Gelu::Erf, y.at([300]), x.at([300]))?;
    }
    elementwise::scale(&mut step, y.at([300]), 2.0)?;
    if step.dispatch_count() != 4 {
        return Err(Error::Check(format!("step recorded {} dispatches, expected 4", step.dispatch_count())));
    }
    let rb = step.read_back(&y, 0, 10)?;
    step.submit().await?;
    let v = rb.f32(gpu).await?;
    let after = gpu.counters();
    let want = 2.0 * cpu::gelu(1.0);
    if (v[0] as f64 - want).abs() > 1e-6 {
        return Err(Error::Check(format!("scaled gelu gave {} not {want}", v[0])));
    }
    let submits = after.queue_submits_of("counted") - before.queue_submits_of("counted");
    let gelus = after.dispatches_of("gelu_forward") - before.dispatches_of("gelu_forward");
    let bytes = after.bytes_read_back - before.bytes_read_back;
    if submits != 1 {
        return Err(Error::Check(format!("the step made {submits} queue submissions, not one")));
    }
    // other checks' dispatches and readbacks may be counted too: at least this step's
    if gelus < 3 || bytes < 40 {
        return Err(Error::Check(format!("counters saw {gelus} gelu dispatches, {bytes} bytes read back; the step made 3 and read 40")));
    }
    Ok(format!("4 dispatches, 1 submit, 40 bytes read back (counters: {submits} submits, {gelus} gelu_forward, {bytes} B)"))
}

pub async fn bad_arguments_are_errors(gpu: &Gpu) -> CheckResult {
    let a = zeros(gpu, "a", 10)?;
    let c = zeros(gpu, "c", 10)?;
    let mut step = gpu.begin_step("bad");
    let r = Matmul::new(4, 4, 4).record(&mut step, c.at([4, 4]), a.at([4, 4]), a.at([4, 4]), None);
    match r {
        Err(GpuError::Shape(m)) if m.contains("needs 16") => {}
        other => return Err(Error::Check(format!("an undersized matmul operand gave {other:?}"))),
    }
    let r = dropout::apply(&mut step, c.at([10]), a.at([10]), dropout::Dropout::new(1.5, 0));
    if r.is_ok() {
        return Err(Error::Check("dropout with p = 1.5 was accepted".into()));
    }
    // views: shapes that disagree, a view past its buffer's end, one that starts inside its buffer
    let r = gelu::forward(&mut step, Gelu::Erf, c.at([2, 5]), a.at([5, 2]));
    match r {
        Err(GpuError::Shape(m)) if m.contains("gelu_forward") && m.contains("[2, 5]") && m.contains("[5, 2]") => {}
        other => return Err(Error::Check(format!("views of shapes [2, 5] and [5, 2] gave {other:?}"))),
    }
    let r = elementwise::add(&mut step, c.at([12]), a.at([12]), a.at([12]));
    match r {
        Err(GpuError::Shape(m)) if m.contains("needs 12") => {}
        other => return Err(Error::Check(format!("a view of 12 elements in a buffer of 10 gave {other:?}"))),
    }
    let r = elementwise::scale(&mut step, c.at_off(2, [4]), 2.0);
    if r.is_ok() {
        return Err(Error::Check("a view from element 2 was bound as if from element 0".into()));
    }
    bad_product_views(&mut step, gpu)?;
    step.submit().await?;
    Ok("undersized operands, bad probabilities and mismatched views (the matmul's, the attention's and the one-row product's too) are refused with messages".into())
}

/// The products that take views with offsets (the matmul, attention's products through it, the
/// one-row product): a shape that disagrees with the descriptor, a view past its buffer's end, a
/// view from an offset that runs past it, and each with a message that names the kernel and operand.
fn bad_product_views(step: &mut Step, gpu: &Gpu) -> Result<()> {
    use super::matvec::Matvec;
    let refused = |r: std::result::Result<(), GpuError>, want: &[&str], what: &str| -> Result<()> {
        match r {
            Err(GpuError::Shape(m)) if want.iter().all(|w| m.contains(w)) => Ok(()),
            other => Err(Error::Check(format!("{what} gave {other:?}, not a shape error naming {want:?}"))),
        }
    };
    let (a, z) = (zeros(gpu, "a", 10)?, zeros(gpu, "z", 64)?);
    let y = zeros(gpu, "y", 64)?;
    // matmul
    let r = Matmul::new(2, 5, 1).record(step, y.at([2, 5]), z.at([5, 2]), z.at([1, 5]), None);
    refused(r, &["matmul", "a is [5, 2]", "[2, 1]"], "a matmul's A as [5, 2] for (2, 1)")?;
    let r = Matmul::new(2, 2, 2).trans_b().record(step, y.at([2, 2]), z.at([2, 2]), z.at([2, 2]), Some(z.at([3])));
    refused(r, &["matmul", "bias is [3]", "[2]"], "a matmul's bias of 3 for 2 columns")?;
    let r = Matmul::new(3, 4, 3).record(step, y.at([3, 4]), z.at([3, 3]), a.at([3, 4]), None);
    refused(r, &["matmul", "b needs 12", "holds 10"], "a matmul's B of 12 in a buffer of 10")?;
    let r = Matmul::new(2, 2, 2).record(step, y.at([2, 2]), z.at_off(62, [2, 2]), z.at([2, 2]), None);
    refused(r, &["matmul", "a needs 4 elements from offset 62"], "a matmul's A from element 62 of 64")?;
    let row = |ld: usize| Operand { ld, outer: 2 * ld, inner_stride: 0 };
    let r = Matmul::new(1, 2, 2).starts(0, 0, 3).strided(1, row(2), row(2), row(4)).record(step, y.at([1, 4]), z.at([1, 2]), z.at([2, 2]), None);
    refused(r, &["matmul", "c reads 2 elements from element 3 of its view [1, 4]"], "a strided C that starts 3 into a view of 4")?;
    // attention's products: qkv (B*T, 3C) = (2, 6), scores (B*H*T, T) = (2, 2)
    let hd = HeadSplit::new(1, 2, 1, 2);
    refused(hd.scores(step, y.at([2, 2]), z.at([2, 4])), &["attention scores", "qkv is [2, 4]", "[2, 6]"], "attention's qkv as [2, 4]")?;
    refused(hd.context(step, y.at([2, 2]), z.at([1, 4]), z.at([2, 6])), &["attention context", "probs is [1, 4]", "[2, 2]"], "attention's probs as [1, 4]")?;
    refused(hd.scores(step, y.at([2, 2]), a.at([2, 6])), &["matmul", "needs 12", "holds 10"], "attention's qkv of 12 in a buffer of 10")?;
    refused(hd.scores(step, y.at([2, 2]), z.at_off(60, [2, 6])), &["matmul", "needs 12 elements from offset 60"], "attention's qkv from element 60 of 64")?;
    // the one-row product: x (1, 4) · W (4, 4)ᵀ
    let mv = Matvec::new(1, 4, 4, true);
    refused(mv.record(step, y.at([1, 4]), z.at([4, 1]), z.at([4, 4]), None), &["matvec", "x is [4, 1]", "[1, 4]"], "matvec's x as [4, 1]")?;
    refused(mv.record(step, y.at([1, 4]), z.at([1, 4]), a.at([4, 4]), None), &["matvec", "W needs 16", "holds 10"], "matvec's W of 16 in a buffer of 10")?;
    refused(mv.record(step, y.at([1, 4]), z.at([1, 4]), z.at_off(52, [4, 4]), None), &["matvec", "W needs 16 elements from offset 52"], "matvec's W from element 52 of 64")?;
    refused(mv.record(step, y.at([1, 4]), z.at([1, 4]), z.at_off(2, [4, 4]), None), &["matvec", "4-aligned offset", "offset 2"], "matvec's W from element 2")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// matmul

/// One matmul (`mm`'s shape, transposes and alpha) against the f64 reference, by every kernel whose
/// contract the shape meets (the tiled kernel always, the vec4 kernel when [`Matmul::vec4_fits`]),
/// with every operand starting `off` elements into its buffer. Returns the worst error as a fraction
/// of the tolerance.
async fn matmul_case(gpu: &Gpu, rng: &mut Rng, mm: Matmul, off: usize) -> Result<f64> {
    let (batch, m, n, k, ta, tb, alpha) = (mm.batch, mm.m, mm.n, mm.k, mm.trans_a, mm.trans_b, mm.alpha);
    let a = rng.normals(batch * m * k, 1.0);
    let b = rng.normals(batch * k * n, 1.0);
    let pad = |x: &[f32]| -> Vec<f32> { let mut v = vec![7.0; off]; v.extend_from_slice(x); v };
    let (ga, gb) = (up(gpu, "a", &pad(&a))?, up(gpu, "b", &pad(&b))?);
    let (a64, b64) = (f64s(&a), f64s(&b));
    let want = cpu::matmul(&a64, &b64, None, &mm);
    let abs = cpu::matmul_abs(&a64, &b64, &mm);
    let mut worst = 0.0f64;
    let shape = |rows: usize, cols: usize| -> Shape { if batch == 1 { [rows, cols].into() } else { [batch, rows, cols].into() } };
    let (sa, sb) = (if ta { shape(k, m) } else { shape(m, k) }, if tb { shape(n, k) } else { shape(k, n) });
    for kernel in Kernel::available(gpu) {
        if kernel != Kernel::Tiled && !mm.vec4_fits([off; 3], None) {
            continue;
        }
        let gc = up(gpu, "c", &vec![7.0; off + batch * m * n])?;
        let mut step = gpu.begin_step("matmul");
        mm.kernel(kernel).record(&mut step, gc.at_off(off, shape(m, n)), ga.at_off(off, sa), gb.at_off(off, sb), None)?;
        step.submit().await?;
        let got = read(gpu, &gc).await?;
        if got[..off].iter().any(|&x| x != 7.0) {
            return Err(Error::Check(format!("matmul {kernel:?} {batch}x{m}x{n}x{k}: wrote before its output offset {off}")));
        }
        worst = worst.max(close(&format!("matmul {kernel:?} {batch}x{m}x{n}x{k} ta={ta} tb={tb} off={off}"), &got[off..], &want, |i| 1e-4 * abs[i] * (alpha as f64).abs() + 1e-30)?);
    }
    Ok(worst)
}

pub async fn matmul_1x1x1(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(1);
    let w = matmul_case(gpu, &mut rng, Matmul::new(1, 1, 1), 0).await?;
    Ok(format!("worst error {w:.3} of tolerance"))
}

pub async fn matmul_7x13x5_all_transposes(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(2);
    let mut w = 0.0f64;
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        w = w.max(matmul_case(gpu, &mut rng, Matmul { trans_a: ta, trans_b: tb, ..Matmul::new(7, 13, 5) }, 0).await?);
    }
    Ok(format!("A·B, Aᵀ·B, A·Bᵀ, Aᵀ·Bᵀ: worst error {w:.3} of tolerance 1e-4·(|A||B|)"))
}

pub async fn matmul_129x65x33_batched_all_transposes(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(3);
    let mut w = 0.0f64;
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        w = w.max(matmul_case(gpu, &mut rng, Matmul { trans_a: ta, trans_b: tb, ..Matmul::new(129, 65, 33).batch(3).alpha(0.7) }, 0).await?);
    }
    Ok(format!("batch 3, alpha 0.7: worst error {w:.3} of tolerance"))
}

/// Which matmul kernels a check ran, and why the subgroup kernel did not where it did not (checks
/// never skip a kernel silently).
fn kernels_named(gpu: &Gpu) -> String {
    let kernels = Kernel::available(gpu);
    let names = kernels.iter().map(|k| format!("{k:?}").to_lowercase()).collect::<Vec<_>>().join(", ");
    if kernels.contains(&Kernel::Subgroup) {
        format!("kernels {names}")
    } else {
        format!("kernels {names} (this device has no subgroups of 8, so no subgroup kernel)")
    }
}

/// The vec4 and subgroup kernels' edges: M and N not multiples of their 32x64 and 32x32 workgroup tiles (M not even a multiple
/// of 4 where A is not transposed), batches, and operands that start 8 elements into their buffers.
pub async fn matmul_vec4_edges_offsets_all_transposes(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(31);
    let mut w = 0.0f64;
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let m = if ta { 36 } else { 37 };
        let mm = Matmul { trans_a: ta, trans_b: tb, ..Matmul::new(m, 68, 20) };
        if !mm.vec4_fits([8; 3], None) {
            return Err(Error::Check(format!("{m}x68x20 ta={ta} tb={tb} should meet the vec4 kernel's contract")));
        }
        w = w.max(matmul_case(gpu, &mut rng, Matmul { trans_a: ta, trans_b: tb, ..Matmul::new(m, 68, 20).batch(2).alpha(0.9) }, 8).await?);
    }
    Ok(format!("{}, batch 2, 37|36 x 68 x 20 at offset 8: worst error {w:.3} of tolerance", kernels_named(gpu)))
}

pub async fn matmul_bert_67x768x3072(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(4);
    // x (67, 768) @ W^T with torch's W (3072, 768): the FFN's first projection.
    let w1 = matmul_case(gpu, &mut rng, Matmul::new(67, 3072, 768).trans_b(), 0).await?;
    // its backward for the weight: dW (3072, 768) = dY^T (3072, 67) @ x (67, 768)
    let w2 = matmul_case(gpu, &mut rng, Matmul::new(3072, 768, 67).trans_a(), 0).await?;
    // and the second projection: (67, 3072) @ W2^T, W2 (768, 3072)
    let w3 = matmul_case(gpu, &mut rng, Matmul::new(67, 768, 3072).trans_b(), 0).await?;
    Ok(format!("67x3072x768, 3072x768x67 (Aᵀ), 67x768x3072: worst {:.3} of tolerance", w1.max(w2).max(w3)))
}

pub async fn matmul_bias_gelu_accumulate(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(5);
    let mut out = Vec::new();
    // a shape only the tiled kernel takes, then one every kernel takes
    let mut cases = vec![(37, 70, 19, Kernel::Tiled)];
    cases.extend(Kernel::available(gpu).into_iter().map(|k| (37, 68, 20, k)));
    for (m, n, k, kernel) in cases {
        out.push(format!("{kernel:?} {m}x{n}x{k}: {}", matmul_bias_gelu_accumulate_case(gpu, &mut rng, m, n, k, kernel).await?));
    }
    Ok(out.join("; "))
}

async fn matmul_bias_gelu_accumulate_case(gpu: &Gpu, rng: &mut Rng, m: usize, n: usize, k: usize, kernel: Kernel) -> CheckResult {

    let a = rng.normals(m * k, 1.0);
    let w = rng.normals(n * k, 0.5);
    let bias = rng.normals(n, 1.0);
    let c0 = rng.normals(m * n, 1.0);
    let (ga, gw, gbias) = (up(gpu, "a", &a)?, up(gpu, "w", &w)?, up(gpu, "bias", &bias)?);
    let gc = zeros(gpu, "c", m * n)?;
    let gacc = up(gpu, "acc", &c0)?;
    let mut step = gpu.begin_step("bias_gelu");
    let (va, vw, vb) = (ga.at([m, k]), gw.at([n, k]), Some(gbias.at([n])));
    Matmul::new(m, n, k).kernel(kernel).trans_b().gelu().record(&mut step, gc.at([m, n]), va, vw, vb)?;
    Matmul::new(m, n, k).kernel(kernel).trans_b().accumulate().record(&mut step, gacc.at([m, n]), va, vw, vb)?;
    step.submit().await?;
    let (a64, w64, b64) = (f64s(&a), f64s(&w), f64s(&bias));
    let want = cpu::matmul(&a64, &w64, Some(&b64), &Matmul::new(m, n, k).trans_b().gelu());
    let abs = cpu::matmul_abs(&a64, &w64, &Matmul::new(m, n, k).trans_b());
    let w1 = close("matmul+bias+gelu", &read(gpu, &gc).await?, &want, |i| 1e-4 * (abs[i] + b64[i % n].abs()) + 2e-6)?;
    let lin = cpu::matmul(&a64, &w64, Some(&b64), &Matmul::new(m, n, k).trans_b());
    let want2: Vec<f64> = lin.iter().zip(&c0).map(|(x, c)| x + *c as f64).collect();
    let w2 = close("matmul accumulate", &read(gpu, &gacc).await?, &want2, |i| 1e-4 * (abs[i] + b64[i % n].abs() + (c0[i] as f64).abs()) + 1e-7)?;
    Ok(format!("fused bias+GELU worst {w1:.3}, accumulate worst {w2:.3} of tolerance"))
}

/// C = A W^T: dA = dC W, dW = dC^T A, dbias = column sums of dC. CPU backward vs finite differences,
/// GPU backward vs CPU, and a GPU finite-difference check along a random direction.
pub async fn matmul_backward(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(6);
    let (m, n, k) = (67, 45, 29);
    let a = rng.normals(m * k, 1.0);
    let w = rng.normals(n * k, 1.0);
    let bias = rng.normals(n, 1.0);
    let r = rng.normals(m * n, 1.0); // dC
    let (a64, w64, b64, r64) = (f64s(&a), f64s(&w), f64s(&bias), f64s(&r));
    // CPU backward
    let da = cpu::matmul(&r64, &w64, None, &Matmul::new(m, k, n));
    let dw = cpu::matmul(&r64, &a64, None, &Matmul::new(n, k, m).trans_a());
    let db: Vec<f64> = (0..n).map(|j| (0..m).map(|i| r64[i * n + j]).sum()).collect();
    let loss = |a: &[f64], w: &[f64], b: &[f64]| -> f64 {
        cpu::matmul(a, w, Some(b), &Matmul::new(m, n, k).trans_b()).iter().zip(&r64).map(|(c, r)| c * r).sum()
    };
    fd_check_cpu("matmul dA", &|x| loss(x, &w64, &b64), &a64, &da, &mut rng, 3)?;
    fd_check_cpu("matmul dW", &|x| loss(&a64, x, &b64), &w64, &dw, &mut rng, 3)?;
    fd_check_cpu("matmul dbias", &|x| loss(&a64, &w64, x), &b64, &db, &mut rng, 3)?;
    // GPU backward
    let (ga, gw, gr) = (up(gpu, "a", &a)?, up(gpu, "w", &w)?, up(gpu, "dc", &r)?);
    let (gda, gdw, gdb) = (zeros(gpu, "da", m * k)?, zeros(gpu, "dw", n * k)?, zeros(gpu, "db", n)?);
    let mut step = gpu.begin_step("matmul_backward");
    Matmul::new(m, k, n).record(&mut step, gda.at([m, k]), gr.at([m, n]), gw.at([n, k]), None)?;
    Matmul::new(n, k, m).trans_a().record(&mut step, gdw.at([n, k]), gr.at([m, n]), ga.at([m, k]), None)?;
    elementwise::bias_grad(&mut step, gdb.at([n]), gr.at([m, n]))?;
    step.submit().await?;
    let (gpu_da, gpu_dw, gpu_db) = (read(gpu, &gda).await?, read(gpu, &gdw).await?, read(gpu, &gdb).await?);
    let w1 = close_rel_max("matmul dA", &gpu_da, &da, 1e-5)?;
    let w2 = close_rel_max("matmul dW", &gpu_dw, &dw, 1e-5)?;
    let w3 = close_rel_max("matmul dbias", &gpu_db, &db, 1e-5)?;
    // GPU finite differences along a random direction in A
    let u: Vec<f64> = (0..m * k).map(|_| rng.normal()).collect();
    let eps = 1e-2;
    let mut l = [0.0; 2];
    for (s, sign) in [1.0, -1.0].iter().enumerate() {
        let ax = up(gpu, "a±", &shift(&a, &u, sign * eps))?;
        let gc = zeros(gpu, "c", m * n)?;
        let gbias = up(gpu, "bias", &bias)?;
        let mut step = gpu.begin_step("matmul_fd");
        Matmul::new(m, n, k).trans_b().record(&mut step, gc.at([m, n]), ax.at([m, k]), gw.at([n, k]), Some(gbias.at([n])))?;
        step.submit().await?;
        l[s] = dot(&read(gpu, &gc).await?, &r64);
    }
    let fd = fd_check_gpu("matmul dA", l[0], l[1], eps, dot(&gpu_da, &u), 1e-3)?;
    Ok(format!("CPU backward matches f64 finite differences; GPU vs CPU worst {:.3} of 1e-5·max|ref|; GPU finite differences within {fd:.1e}", w1.max(w2).max(w3)))
}

// ---------------------------------------------------------------------------------------------
// softmax

/// Both row kernels (one workgroup per row, one invocation per row) on every adapter.
pub async fn softmax_forward_extremes_and_masks(gpu: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for kernel in [RowKernel::Workgroup, RowKernel::Thread] {
        out.push(format!("{kernel:?}: {}", softmax_forward_case(gpu, kernel).await?));
    }
    Ok(out.join("; "))
}

async fn softmax_forward_case(gpu: &Gpu, kernel: RowKernel) -> CheckResult {
    let mut rng = Rng::new(7);
    let (b, h, t) = (2, 3, 37);
    let rows = b * h * t;
    let mut x = rng.normals(rows * t, 3.0);
    // logits of +-1e4 in some rows
    for j in 0..t {
        x[5 * t + j] = if j % 2 == 0 { 1e4 } else { -1e4 };
        x[6 * t + j] = if j == 3 { 1e4 } else { -1e4 + j as f32 };
    }
    // mask: batch 0 keeps 30 tokens; batch 1 masks every token (fully masked rows)
    let mut mask = vec![0.0f32; b * t];
    for j in 30..t {
        mask[j] = f32::NEG_INFINITY;
    }
    for j in 0..t {
        mask[t + j] = if j == 0 { softmax::MASKED } else { f32::NEG_INFINITY };
    }
    mask[2] = -3.5; // an ordinary additive value
    let (gx, gm, gy, gy2) = (up(gpu, "x", &x)?, up(gpu, "mask", &mask)?, zeros(gpu, "y", rows * t)?, zeros(gpu, "y2", rows * t)?);
    let mut step = gpu.begin_step("softmax");
    let gmask = Some(Mask { mask: &gm, rows_per_mask: h * t });
    Softmax::new(0.125).mask(gmask).kernel(kernel).forward(&mut step, gy.at([rows, t]), gx.at([rows, t]), None)?;
    Softmax::new(1.0).kernel(kernel).forward(&mut step, gy2.at([rows, t]), gx.at([rows, t]), None)?;
    step.submit().await?;
    let (x64, m64): (Vec<f64>, Vec<f64>) = (f64s(&x), mask.iter().map(|&v| if v.is_finite() { v as f64 } else { cpu::MASKED }).collect());
    let got = read(gpu, &gy).await?;
    if got.iter().any(|v| !v.is_finite()) {
        return Err(Error::Check("softmax produced a non-finite value".into()));
    }
    let want = cpu::softmax(&x64, Some(&m64), rows, t, h * t, 0.125);
    let w1 = close("masked softmax", &got, &want, |_| 2e-6)?;
    if got[h * t * t..].iter().any(|&v| v != 0.0) {
        return Err(Error::Check("fully masked rows are not all zeros".into()));
    }
    for r in 0..h * t {
        let s: f32 = got[r * t..(r + 1) * t].iter().sum();
        if (s - 1.0).abs() > 1e-5 {
            return Err(Error::Check(format!("row {r} sums to {s}")));
        }
    }
    let w2 = close("softmax with ±1e4 logits", &read(gpu, &gy2).await?, &cpu::softmax(&x64, None, rows, t, 1, 1.0), |_| 2e-6)?;
    // causal (a decoder's self-attention) with the padding mask: row r sees columns j <= r % t
    let gy3 = zeros(gpu, "y3", rows * t)?;
    let mut step = gpu.begin_step("softmax causal");
    Softmax::new(0.125).mask(gmask).causal(true).kernel(kernel).forward(&mut step, gy3.at([rows, t]), gx.at([rows, t]), None)?;
    step.submit().await?;
    let per_row: Vec<f64> = (0..rows).flat_map(|r| (0..t).map(move |j| (r, j))).map(|(r, j)| if j > r % t { cpu::MASKED } else { m64[(r / (h * t)) * t + j] }).collect();
    let got3 = read(gpu, &gy3).await?;
    let w3 = close("causal softmax", &got3, &cpu::softmax(&x64, Some(&per_row), rows, t, 1, 0.125), |_| 2e-6)?;
    if (0..rows).any(|r| got3[r * t + r % t + 1..(r + 1) * t].iter().any(|&v| v != 0.0)) {
        return Err(Error::Check("causal softmax: a probability above the diagonal is not 0".into()));
    }
    // a sliding window (ModernBERT's local layers) with the padding mask: |j - r % t| <= 5
    let (gy4, w) = (zeros(gpu, "y4", rows * t)?, 5usize);
    let mut step = gpu.begin_step("softmax window");
    Softmax::new(0.125).mask(gmask).window(w).kernel(kernel).forward(&mut step, gy4.at([rows, t]), gx.at([rows, t]), None)?;
    step.submit().await?;
    let near: Vec<f64> = (0..rows).flat_map(|r| (0..t).map(move |j| (r, j))).map(|(r, j)| if j.abs_diff(r % t) > w { cpu::MASKED } else { m64[(r / (h * t)) * t + j] }).collect();
    let got4 = read(gpu, &gy4).await?;
    let w4 = close("sliding-window softmax", &got4, &cpu::softmax(&x64, Some(&near), rows, t, 1, 0.125), |_| 2e-6)?;
    Ok(format!("masked (incl. fully masked rows -> 0) worst {w1:.3}, unmasked with ±1e4 logits worst {w2:.3}, causal worst {w3:.3}, window of 5 worst {w4:.3} of 2e-6"))
}

pub async fn softmax_backward(gpu: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for kernel in [RowKernel::Workgroup, RowKernel::Thread] {
        out.push(format!("{kernel:?}: {}", softmax_backward_case(gpu, kernel).await?));
    }
    Ok(out.join("; "))
}

async fn softmax_backward_case(gpu: &Gpu, kernel: RowKernel) -> CheckResult {
    let mut rng = Rng::new(8);
    let (rows, cols) = (41, 29);
    let scale = 0.3;
    let x = rng.normals(rows * cols, 2.0);
    let r = rng.normals(rows * cols, 1.0);
    let (x64, r64) = (f64s(&x), f64s(&r));
    let y = cpu::softmax(&x64, None, rows, cols, 1, scale);
    let dx = cpu::softmax_backward(&y, &r64, rows, cols, scale);
    let loss = |x: &[f64]| cpu::softmax(x, None, rows, cols, 1, scale).iter().zip(&r64).map(|(a, b)| a * b).sum::<f64>();
    fd_check_cpu("softmax", &loss, &x64, &dx, &mut rng, 4)?;
    let (gx, gy, gr, gdx) = (up(gpu, "x", &x)?, zeros(gpu, "y", rows * cols)?, up(gpu, "dy", &r)?, zeros(gpu, "dx", rows * cols)?);
    let mut step = gpu.begin_step("softmax_backward");
    let sm = Softmax::new(scale as f32).kernel(kernel);
    sm.forward(&mut step, gy.at([rows, cols]), gx.at([rows, cols]), None)?;
    sm.backward(&mut step, gdx.at([rows, cols]), gy.at([rows, cols]), gr.at([rows, cols]), None)?;
    step.submit().await?;
    let got = read(gpu, &gdx).await?;
    let w = close_rel_max("softmax dx", &got, &dx, 1e-5)?;
    let u: Vec<f64> = (0..rows * cols).map(|_| rng.normal()).collect();
    let eps = 1e-2;
    let mut l = [0.0; 2];
    for (s, sign) in [1.0, -1.0].iter().enumerate() {
        let gxs = up(gpu, "x±", &shift(&x, &u, sign * eps))?;
        let mut step = gpu.begin_step("softmax_fd");
        sm.forward(&mut step, gy.at([rows, cols]), gxs.at([rows, cols]), None)?;
        step.submit().await?;
        l[s] = dot(&read(gpu, &gy).await?, &r64);
    }
    let fd = fd_check_gpu("softmax", l[0], l[1], eps, dot(&got, &u), 1e-2)?;
    Ok(format!("GPU vs CPU worst {w:.3} of 1e-5·max|ref|; GPU finite differences within {fd:.1e}"))
}

// ---------------------------------------------------------------------------------------------
// layernorm

/// Both row kernels on every adapter.
pub async fn layernorm_forward_constant_rows(gpu: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for kernel in [RowKernel::Workgroup, RowKernel::Thread] {
        out.push(format!("{kernel:?}: {}", layernorm_forward_case(gpu, kernel).await?));
    }
    Ok(out.join("; "))
}

async fn layernorm_forward_case(gpu: &Gpu, kernel: RowKernel) -> CheckResult {
    let mut rng = Rng::new(9);
    let (rows, cols) = (19, 768);
    let mut x = rng.normals(rows * cols, 2.0);
    for j in 0..cols {
        x[3 * cols + j] = 4.25; // constant row: variance 0
        x[4 * cols + j] = 0.0;
        x[5 * cols + j] += 100.0; // large mean
    }
    let g = rng.normals(cols, 1.0);
    let b = rng.normals(cols, 1.0);
    let (gx, gg, gb) = (up(gpu, "x", &x)?, up(gpu, "g", &g)?, up(gpu, "b", &b)?);
    let (gy, gmean, grstd) = (zeros(gpu, "y", rows * cols)?, zeros(gpu, "mean", rows)?, zeros(gpu, "rstd", rows)?);
    let mut step = gpu.begin_step("layernorm");
    let (stats, w) = (Stats { mean: &gmean, rstd: &grstd }, Affine { gamma: &gg, beta: &gb });
    LayerNorm::new(1e-12).kernel(kernel).forward(&mut step, gy.at([rows, cols]), stats, gx.at([rows, cols]), w, Fused::None)?;
    step.submit().await?;
    let (want, mean, rstd) = cpu::layernorm(&f64s(&x), &f64s(&g), &f64s(&b), rows, cols, 1e-12);
    let got = read(gpu, &gy).await?;
    if got.iter().any(|v| !v.is_finite()) {
        return Err(Error::Check("layernorm produced a non-finite value".into()));
    }
    let w = close("layernorm y", &got, &want, |i| 2e-5 * (1.0 + want[i].abs()))?;
    close("layernorm mean", &read(gpu, &gmean).await?, &mean, |i| 1e-6 * (1.0 + mean[i].abs()))?;
    // rstd of a constant row is 1/sqrt(eps) = 1e6: compare relatively
    close("layernorm rstd", &read(gpu, &grstd).await?, &rstd, |i| 1e-5 * rstd[i].abs())?;
    Ok(format!("768 columns, constant rows (eps 1e-12) and a mean of 100: worst {w:.3} of 2e-5·(1+|y|)"))
}

pub async fn layernorm_backward(gpu: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for kernel in [RowKernel::Workgroup, RowKernel::Thread] {
        out.push(format!("{kernel:?}: {}", layernorm_backward_case(gpu, kernel).await?));
    }
    Ok(out.join("; "))
}

async fn layernorm_backward_case(gpu: &Gpu, kernel: RowKernel) -> CheckResult {
    let mut rng = Rng::new(10);
    let (rows, cols) = (23, 97);
    let eps = 1e-5;
    let x = rng.normals(rows * cols, 1.5);
    let g = rng.normals(cols, 1.0);
    let b = rng.normals(cols, 1.0);
    let r = rng.normals(rows * cols, 1.0);
    let (x64, g64, b64, r64) = (f64s(&x), f64s(&g), f64s(&b), f64s(&r));
    let (_, mean, rstd) = cpu::layernorm(&x64, &g64, &b64, rows, cols, eps);
    let (dx, dg, db) = cpu::layernorm_backward(&r64, &x64, &g64, &mean, &rstd, rows, cols);
    let loss = |x: &[f64], g: &[f64], b: &[f64]| cpu::layernorm(x, g, b, rows, cols, eps).0.iter().zip(&r64).map(|(a, c)| a * c).sum::<f64>();
    fd_check_cpu("layernorm dx", &|v| loss(v, &g64, &b64), &x64, &dx, &mut rng, 3)?;
    fd_check_cpu("layernorm dgamma", &|v| loss(&x64, v, &b64), &g64, &dg, &mut rng, 3)?;
    fd_check_cpu("layernorm dbeta", &|v| loss(&x64, &g64, v), &b64, &db, &mut rng, 3)?;
    let (gx, gg, gb, gr) = (up(gpu, "x", &x)?, up(gpu, "g", &g)?, up(gpu, "b", &b)?, up(gpu, "dy", &r)?);
    let (gy, gmean, grstd) = (zeros(gpu, "y", rows * cols)?, zeros(gpu, "mean", rows)?, zeros(gpu, "rstd", rows)?);
    let (gdx, gdg, gdb) = (zeros(gpu, "dx", rows * cols)?, zeros(gpu, "dg", cols)?, zeros(gpu, "db", cols)?);
    let ln = LayerNorm::new(eps as f32).kernel(kernel);
    let (stats, w) = (Stats { mean: &gmean, rstd: &grstd }, Affine { gamma: &gg, beta: &gb });
    let dw = AffineGrad { gamma: &gg, dgamma: Some(&gdg), dbeta: Some(&gdb) };
    let mut step = gpu.begin_step("layernorm_backward");
    ln.forward(&mut step, gy.at([rows, cols]), stats, gx.at([rows, cols]), w, Fused::None)?;
    let saved = Saved { x: gx.at([rows, cols]), stats };
    ln.backward(&mut step, gdx.at([rows, cols]), gr.at([rows, cols]), saved, dw, BackwardOpts::default())?;
    step.submit().await?;
    let got_dx = read(gpu, &gdx).await?;
    let w1 = close_rel_max("layernorm dx", &got_dx, &dx, 1e-4)?;
    let w2 = close_rel_max("layernorm dgamma", &read(gpu, &gdg).await?, &dg, 1e-4)?;
    let w3 = close_rel_max("layernorm dbeta", &read(gpu, &gdb).await?, &db, 1e-4)?;
    let u: Vec<f64> = (0..rows * cols).map(|_| rng.normal()).collect();
    let fe = 1e-2;
    let mut l = [0.0; 2];
    for (s, sign) in [1.0, -1.0].iter().enumerate() {
        let gxs = up(gpu, "x±", &shift(&x, &u, sign * fe))?;
        let mut step = gpu.begin_step("layernorm_fd");
        ln.forward(&mut step, gy.at([rows, cols]), stats, gxs.at([rows, cols]), w, Fused::None)?;
        step.submit().await?;
        l[s] = dot(&read(gpu, &gy).await?, &r64);
    }
    let fd = fd_check_gpu("layernorm dx", l[0], l[1], fe, dot(&got_dx, &u), 1e-2)?;
    Ok(format!("dx, dgamma, dbeta: GPU vs CPU worst {:.3} of 1e-4·max|ref|; GPU finite differences within {fd:.1e}", w1.max(w2).max(w3)))
}

/// The dropouts fused into layernorm and softmax give what the separate kernels give: the residual
/// `res = skip + dropout(branch)` before a layernorm, `dropout(dx)` beside its backward, dropout on a
/// layernorm's output (and the backward through it), and dropout on softmax probabilities (and the
/// backward through it); each against the CPU references composed with the CPU dropout, both row
/// kernels.
pub async fn dropout_fused_into_layernorm_and_softmax(gpu: &Gpu) -> CheckResult {
    let mut worst = 0.0f64;
    for kernel in [RowKernel::Workgroup, RowKernel::Thread] {
        worst = worst.max(dropout_fused_case(gpu, kernel).await.map_err(|m| Error::Check(format!("{kernel:?}: {m}")))?);
    }
    Ok(format!("residual, dx, output and probability dropouts, both row kernels: worst {worst:.3} of 1e-5·max|ref|"))
}

/// A function that views a buffer as (rows, cols).
fn matrix(rows: usize, cols: usize) -> impl for<'a> Fn(&'a GpuBuf) -> View<'a> {
    move |b| b.at([rows, cols])
}

async fn dropout_fused_case(gpu: &Gpu, kernel: RowKernel) -> Result<f64> {
    let mut rng = Rng::new(31);
    let (rows, cols, eps, prob, seed) = (37, 48, 1e-5, 0.25f32, 0xfeed_beef_0123u64);
    let drop = dropout::Dropout::new(prob, seed);
    let (skip, branch, x) = (rng.normals(rows * cols, 1.0), rng.normals(rows * cols, 1.0), rng.normals(rows * cols, 1.0));
    let (g, b, dy) = (rng.normals(cols, 1.0), rng.normals(cols, 1.0), rng.normals(rows * cols, 1.0));
    let (g64, b64, dy64, x64) = (f64s(&g), f64s(&b), f64s(&dy), f64s(&x));
    // CPU: residual + layernorm, its backward with dropout(dx); dropout(layernorm(x)) and its backward
    let res64: Vec<f64> = f64s(&skip).iter().zip(cpu::dropout(&f64s(&branch), prob, seed)).map(|(a, c)| a + c).collect();
    let (y_res, mean_r, rstd_r) = cpu::layernorm(&res64, &g64, &b64, rows, cols, eps);
    let (dx_res, _, _) = cpu::layernorm_backward(&dy64, &res64, &g64, &mean_r, &rstd_r, rows, cols);
    let dxd_res = cpu::dropout(&dx_res, prob, seed);
    let (y_x, mean_x, rstd_x) = cpu::layernorm(&x64, &g64, &b64, rows, cols, eps);
    let y_out = cpu::dropout(&y_x, prob, seed);
    let (dx_out, dg_out, db_out) = cpu::layernorm_backward(&cpu::dropout(&dy64, prob, seed), &x64, &g64, &mean_x, &rstd_x, rows, cols);
    // CPU: softmax with dropout on its probabilities, and the backward through it
    let sm = cpu::softmax(&x64, None, rows, cols, 1, 0.5);
    let sm_d = cpu::dropout(&sm, prob, seed);
    let sm_dx = cpu::softmax_backward(&sm, &cpu::dropout(&dy64, prob, seed), rows, cols, 0.5);

    let (gskip, gbranch, gx, gg, gb, gdy) = (up(gpu, "skip", &skip)?, up(gpu, "branch", &branch)?, up(gpu, "x", &x)?, up(gpu, "g", &g)?, up(gpu, "b", &b)?, up(gpu, "dy", &dy)?);
    let z = |n: usize| zeros(gpu, "out", n);
    let (gres, gy1, gm1, gr1, gdx1, gdxd1) = (z(rows * cols)?, z(rows * cols)?, z(rows)?, z(rows)?, z(rows * cols)?, z(rows * cols)?);
    let (gy2, gm2, gr2, gdx2, gdg2, gdb2) = (z(rows * cols)?, z(rows)?, z(rows)?, z(rows * cols)?, z(cols)?, z(cols)?);
    let (scratch_g, scratch_b) = (z(cols)?, z(cols)?);
    let (gsm, gsmd, gsmdx) = (z(rows * cols)?, z(rows * cols)?, z(rows * cols)?);
    let (ln, w) = (LayerNorm::new(eps as f32).kernel(kernel), Affine { gamma: &gg, beta: &gb });
    let v = matrix(rows, cols);
    let (st1, st2) = (Stats { mean: &gm1, rstd: &gr1 }, Stats { mean: &gm2, rstd: &gr2 });
    let mut step = gpu.begin_step("fused_dropout");
    let residual = Fused::Residual { res: v(&gres), branch: v(&gbranch), drop };
    ln.forward(&mut step, v(&gy1), st1, v(&gskip), w, residual)?;
    let (dw1, dxd) = (AffineGrad { gamma: &gg, dgamma: Some(&scratch_g), dbeta: Some(&scratch_b) }, FusedBack::DropDx(v(&gdxd1), drop));
    ln.backward(&mut step, v(&gdx1), v(&gdy), Saved { x: v(&gres), stats: st1 }, dw1, BackwardOpts { accumulate: false, fused: dxd })?;
    ln.forward(&mut step, v(&gy2), st2, v(&gx), w, Fused::DropOutput(drop))?;
    let dw2 = AffineGrad { gamma: &gg, dgamma: Some(&gdg2), dbeta: Some(&gdb2) };
    ln.backward(&mut step, v(&gdx2), v(&gdy), Saved { x: v(&gx), stats: st2 }, dw2, BackwardOpts { accumulate: false, fused: FusedBack::DropDy(drop) })?;
    let soft = Softmax::new(0.5).kernel(kernel);
    soft.forward(&mut step, v(&gsm), v(&gx), Some((v(&gsmd), drop)))?;
    soft.backward(&mut step, v(&gsmdx), v(&gsm), v(&gdy), Some(drop))?;
    step.submit().await?;
    let mut worst = 0.0f64;
    for (what, buf, want) in [
        ("residual sum", &gres, &res64),
        ("layernorm of the residual", &gy1, &y_res),
        ("its dx", &gdx1, &dx_res),
        ("dropout(dx)", &gdxd1, &dxd_res),
        ("dropout(layernorm(x))", &gy2, &y_out),
        ("dx through the output dropout", &gdx2, &dx_out),
        ("dgamma through the output dropout", &gdg2, &dg_out),
        ("dbeta through the output dropout", &gdb2, &db_out),
        ("softmax", &gsm, &sm),
        ("dropout(softmax)", &gsmd, &sm_d),
        ("softmax dx through its dropout", &gsmdx, &sm_dx),
    ] {
        worst = worst.max(close_rel_max(what, &read(gpu, buf).await?, want, 1e-5)?);
    }
    let dropped = read(gpu, &gsmd).await?.iter().filter(|&&v| v == 0.0).count();
    if dropped == 0 {
        return Err(Error::Check("the fused softmax dropout dropped nothing".into()));
    }
    Ok(worst)
}

// ---------------------------------------------------------------------------------------------
// gelu

/// The two GELUs and their f64 references: BERT's erf form, GPT-2's tanh approximation.
fn gelus() -> [(Gelu, &'static str, fn(f64) -> f64, fn(f64) -> f64); 2] {
    [(Gelu::Erf, "erf", cpu::gelu, cpu::gelu_grad), (Gelu::Tanh, "tanh", cpu::gelu_tanh, cpu::gelu_tanh_grad)]
}

pub async fn gelu_forward(gpu: &Gpu) -> CheckResult {
    let mut x: Vec<f32> = (0..4001).map(|i| -10.0 + i as f32 * 0.005).collect();
    x.extend([-1e4f32, -50.0, 50.0, 1e4, 0.0, 1e-8, -1e-8]);
    let n = x.len();
    let mut out = Vec::new();
    for (kind, what, f, _) in gelus() {
        let (gx, gy) = (up(gpu, "x", &x)?, zeros(gpu, "y", n)?);
        let mut step = gpu.begin_step("gelu");
        gelu::forward(&mut step, kind, gy.at([n]), gx.at([n]))?;
        step.submit().await?;
        let want: Vec<f64> = x.iter().map(|&v| f(v as f64)).collect();
        let w = close(&format!("gelu ({what})"), &read(gpu, &gy).await?, &want, |i| 3e-7 * (x[i].abs() as f64).max(1.0))?;
        out.push(format!("{what}: worst {w:.3}"));
    }
    Ok(format!("x in [-10, 10] step 0.005 and ±1e4, of 3e-7·max(1,|x|) against f64: {}", out.join(", ")))
}

pub async fn gelu_backward(gpu: &Gpu) -> CheckResult {
    let mut out = Vec::new();
    for (kind, what, f, grad) in gelus() {
        let mut rng = Rng::new(11);
        let n = 3001;
        let x = rng.normals(n, 3.0);
        let r = rng.normals(n, 1.0);
        let (x64, r64) = (f64s(&x), f64s(&r));
        let dx: Vec<f64> = x64.iter().zip(&r64).map(|(v, d)| d * grad(*v)).collect();
        fd_check_cpu("gelu", &|v| v.iter().zip(&r64).map(|(a, b)| f(*a) * b).sum(), &x64, &dx, &mut rng, 4)?;
        let (gx, gr, gdx, gy) = (up(gpu, "x", &x)?, up(gpu, "dy", &r)?, zeros(gpu, "dx", n)?, zeros(gpu, "y", n)?);
        let mut step = gpu.begin_step("gelu_backward");
        gelu::backward(&mut step, kind, gdx.at([n]), gx.at([n]), gr.at([n]))?;
        step.submit().await?;
        let got = read(gpu, &gdx).await?;
        let w = close(&format!("gelu ({what}) dx"), &got, &dx, |i| 1e-6 * (1.0 + r64[i].abs() * (1.0 + x64[i].abs())))?;
        let u: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let fe = 1e-2;
        let mut l = [0.0; 2];
        for (s, sign) in [1.0, -1.0].iter().enumerate() {
            let gxs = up(gpu, "x±", &shift(&x, &u, sign * fe))?;
            let mut step = gpu.begin_step("gelu_fd");
            gelu::forward(&mut step, kind, gy.at([n]), gxs.at([n]))?;
            step.submit().await?;
            l[s] = dot(&read(gpu, &gy).await?, &r64);
        }
        let fd = fd_check_gpu("gelu", l[0], l[1], fe, dot(&got, &u), 1e-2)?;
        out.push(format!("{what}: GPU vs CPU worst {w:.3} of tolerance, GPU finite differences within {fd:.1e}"));
    }
    Ok(out.join("; "))
}

// ---------------------------------------------------------------------------------------------
// embedding

pub async fn embedding_forward(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(12);
    let (vocab, dim, tokens) = (53, 131, 77);
    let table = rng.normals(vocab * dim, 1.0);
    let pos = rng.normals(tokens * dim, 1.0);
    let ids: Vec<u32> = (0..tokens).map(|_| rng.below(vocab as u32)).collect();
    let (gt, gi, gp) = (up(gpu, "table", &table)?, gpu.upload_u32("ids", &ids)?, up(gpu, "pos", &pos)?);
    let go = zeros(gpu, "out", tokens * dim)?;
    let pos_ids: Vec<u32> = (0..tokens as u32).collect();
    let gpi = gpu.upload_u32("pos_ids", &pos_ids)?;
    let mut step = gpu.begin_step("embedding");
    embedding::forward(&mut step, go.at([tokens, dim]), &gi, gt.at([vocab, dim]), false)?;
    embedding::forward(&mut step, go.at([tokens, dim]), &gpi, gp.at([tokens, dim]), true)?;
    step.submit().await?;
    let mut want = cpu::embedding(&ids, &f64s(&table), dim);
    for (w, p) in want.iter_mut().zip(&pos) {
        *w += *p as f64;
    }
    close("embedding word + position", &read(gpu, &go).await?, &want, |i| 1e-6 * (1.0 + want[i].abs()))?;
    Ok(format!("{tokens} tokens of {dim} from a {vocab}-row table plus positions: exact to f32 rounding"))
}

pub async fn embedding_backward_repeated_ids(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(13);
    let (vocab, dim, tokens) = (11, 70, 120);
    // every id repeated many times; id 7 never appears
    let ids: Vec<u32> = (0..tokens).map(|t| [3, 0, 10, 3, 3, 5, 1, 0][t % 8]).collect();
    let dout = rng.normals(tokens * dim, 1.0);
    let table = rng.normals(vocab * dim, 1.0);
    let want = cpu::embedding_backward(&ids, &f64s(&dout), vocab, dim);
    let d64 = f64s(&dout);
    fd_check_cpu("embedding", &|tab| cpu::embedding(&ids, tab, dim).iter().zip(&d64).map(|(a, b)| a * b).sum(), &f64s(&table), &want, &mut rng, 4)?;
    let grouping = embedding::EmbeddingGrouping::new(gpu, &ids)?;
    let (gd, gdt) = (up(gpu, "dout", &dout)?, up(gpu, "dtable", &vec![0.5; vocab * dim])?);
    let mut results = Vec::new();
    for _ in 0..2 {
        gpu.write(&gdt, 0, &vec![0.5f32; vocab * dim])?;
        let mut step = gpu.begin_step("embedding_backward");
        embedding::backward(&mut step, gdt.at([vocab, dim]), &gd, &grouping)?;
        step.submit().await?;
        results.push(read(gpu, &gdt).await?);
    }
    let want_acc: Vec<f64> = want.iter().map(|v| v + 0.5).collect();
    let w = close("embedding dtable (accumulating onto 0.5)", &results[0], &want_acc, |i| 1e-5 * (1.0 + want_acc[i].abs()))?;
    if results[0] != results[1] {
        return Err(Error::Check("embedding backward is not deterministic across runs".into()));
    }
    // GPU finite differences: the forward is linear in the table, so use a random direction
    let u: Vec<f64> = (0..vocab * dim).map(|_| rng.normal()).collect();
    let gi = gpu.upload_u32("ids", &ids)?;
    let go = zeros(gpu, "out", tokens * dim)?;
    let fe = 1e-2;
    let mut l = [0.0; 2];
    for (s, sign) in [1.0, -1.0].iter().enumerate() {
        let gt = up(gpu, "table±", &shift(&table, &u, sign * fe))?;
        let mut step = gpu.begin_step("embedding_fd");
        embedding::forward(&mut step, go.at([tokens, dim]), &gi, gt.at([vocab, dim]), false)?;
        step.submit().await?;
        l[s] = dot(&read(gpu, &go).await?, &d64);
    }
    let grad_only: Vec<f32> = results[0].iter().map(|v| v - 0.5).collect();
    let fd = fd_check_gpu("embedding", l[0], l[1], fe, dot(&grad_only, &u), 1e-3)?;
    Ok(format!("{tokens} tokens over 5 distinct ids: worst {w:.3} of tolerance, bit-identical on rerun, GPU finite differences within {fd:.1e}"))
}

// ---------------------------------------------------------------------------------------------
// attention

/// Attention's products read heads in place from a fused (B*T, 3C) matrix and write them into
/// (B*T, C) or a block of (B*T, 3C): both kernels, against per-head CPU products, with the columns
/// around a written block left untouched.
pub async fn matmul_heads_in_place(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(14);
    let (b, t, h, d) = (2, 8, 3, 8);
    let c = h * d;
    let hd = HeadSplit::new(b, t, h, d);
    let qkv = rng.normals(b * t * 3 * c, 1.0);
    let p = rng.normals(b * h * t * t, 1.0);
    let dctx = rng.normals(b * t * c, 1.0);
    let (q64, p64, dctx64) = (f64s(&qkv), f64s(&p), f64s(&dctx));
    let head = |x: &[f64], cols: usize, off: usize| cpu::split_heads(x, HeadSplit::new(b, t, h, d), cols, off);
    let (qh, kh, vh, dch) = (head(&q64, 3 * c, 0), head(&q64, 3 * c, c), head(&q64, 3 * c, 2 * c), head(&dctx64, c, 0));
    // per-head references: S = Q K^T, ctx = P V, dV = P^T dctx
    let (mut s_ref, mut ctx_ref, mut dv_ref) = (vec![0.0; b * h * t * t], vec![0.0; b * h * t * d], vec![0.0; b * h * t * d]);
    for z in 0..b * h {
        let (qz, kz, vz, pz, dz) = (&qh[z * t * d..][..t * d], &kh[z * t * d..][..t * d], &vh[z * t * d..][..t * d], &p64[z * t * t..][..t * t], &dch[z * t * d..][..t * d]);
        for i in 0..t {
            for j in 0..t {
                s_ref[z * t * t + i * t + j] = (0..d).map(|x| qz[i * d + x] * kz[j * d + x]).sum();
            }
            for x in 0..d {
                ctx_ref[z * t * d + i * d + x] = (0..t).map(|j| pz[i * t + j] * vz[j * d + x]).sum();
                dv_ref[z * t * d + i * d + x] = (0..t).map(|j| pz[j * t + i] * dz[j * d + x]).sum();
            }
        }
    }
    let (gqkv, gp, gdctx) = (up(gpu, "qkv", &qkv)?, up(gpu, "p", &p)?, up(gpu, "dctx", &dctx)?);
    let sentinel = vec![7.0f32; b * t * 3 * c];
    let mut worst = 0.0f64;
    for kernel in Kernel::available(gpu) {
        let (gs, gctx, gdqkv) = (zeros(gpu, "s", b * h * t * t)?, zeros(gpu, "ctx", b * t * c)?, up(gpu, "dqkv", &sentinel)?);
        let mut step = gpu.begin_step("heads_in_place");
        let st = |m: Matmul| m.kernel(kernel);
        let (qkv, p) = (hd.qkv_rows(&gqkv), hd.score_rows(&gp));
        st(Matmul::new(t, t, d).batch(b * h).trans_b().starts(0, c, 0).strided(h, hd.tokens(3 * c), hd.tokens(3 * c), hd.blocks(t, t))).record(&mut step, hd.score_rows(&gs), qkv, qkv, None)?;
        st(Matmul::new(t, d, t).batch(b * h).starts(0, 2 * c, 0).strided(h, hd.blocks(t, t), hd.tokens(3 * c), hd.tokens(c))).record(&mut step, hd.ctx_rows(&gctx), p, qkv, None)?;
        st(Matmul::new(t, d, t).batch(b * h).trans_a().starts(0, 0, 2 * c).strided(h, hd.blocks(t, t), hd.tokens(c), hd.tokens(3 * c))).record(&mut step, hd.qkv_rows(&gdqkv), p, hd.ctx_rows(&gdctx), None)?;
        step.submit().await?;
        let name = format!("{kernel:?}");
        worst = worst.max(close(&format!("{name} Q K^T per head"), &read(gpu, &gs).await?, &s_ref, |i| 1e-5 * (1.0 + s_ref[i].abs()))?);
        let f32s = |x: Vec<f64>| x.into_iter().map(|v| v as f32).collect::<Vec<f32>>();
        worst = worst.max(close(&format!("{name} P V into tokens"), &f32s(head(&f64s(&read(gpu, &gctx).await?), c, 0)), &ctx_ref, |i| 1e-5 * (1.0 + ctx_ref[i].abs()))?);
        let got = read(gpu, &gdqkv).await?;
        worst = worst.max(close(&format!("{name} P^T dctx into the V block"), &f32s(head(&f64s(&got), 3 * c, 2 * c)), &dv_ref, |i| 1e-5 * (1.0 + dv_ref[i].abs()))?);
        if (0..b * t).any(|r| got[r * 3 * c..r * 3 * c + 2 * c].iter().any(|&v| v != 7.0)) {
            return Err(Error::Check(format!("{name}: writing the V block touched the Q or K block")));
        }
    }
    Ok(format!("B=2 T=8 H=3 D=8, {}: worst {worst:.3} of tolerance; neighbouring blocks untouched", kernels_named(gpu)))
}

/// (B, H, T, D) q, k, v -> the fused (B*T, 3C) matrix attention reads.
fn fuse_qkv(q: &[f32], k: &[f32], v: &[f32], b: usize, h: usize, t: usize, d: usize) -> Vec<f32> {
    let c = h * d;
    let mut out = vec![0.0f64; b * t * 3 * c];
    for (i, x) in [q, k, v].iter().enumerate() {
        cpu::merge_heads(&f64s(x), &mut out, HeadSplit::new(b, t, h, d), 3 * c, i * c);
    }
    out.iter().map(|&x| x as f32).collect()
}

#[allow(clippy::type_complexity)]
fn attention_inputs(rng: &mut Rng, b: usize, h: usize, t: usize, d: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = b * h * t * d;
    let (q, k, v) = (rng.normals(n, 1.0), rng.normals(n, 1.0), rng.normals(n, 1.0));
    // batch element 0 is padded after 4 tokens; the others attend everywhere
    let mut mask = vec![0.0f32; b * t];
    for j in 4..t {
        mask[j] = f32::NEG_INFINITY;
    }
    (q, k, v, mask)
}

fn mask64(mask: &[f32]) -> Vec<f64> {
    mask.iter().map(|&v| if v.is_finite() { v as f64 } else { cpu::MASKED }).collect()
}

pub async fn attention_forward(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(15);
    let (b, h, t, d) = (2, 3, 9, 16);
    let (q, k, v, mask) = attention_inputs(&mut rng, b, h, t, d);
    let hd = HeadSplit::new(b, t, h, d);
    let (gqkv, gm) = (up(gpu, "qkv", &fuse_qkv(&q, &k, &v, b, h, t, d))?, up(gpu, "mask", &mask)?);
    let (ctx, probs, scores) = (zeros(gpu, "ctx", b * h * t * d)?, zeros(gpu, "probs", b * h * t * t)?, zeros(gpu, "scores", b * h * t * t)?);
    let mut step = gpu.begin_step("attention");
    hd.forward(&mut step, hd.ctx_rows(&ctx), hd.score_rows(&probs), hd.score_rows(&scores), hd.qkv_rows(&gqkv), Some(&gm))?;
    step.submit().await?;
    let (wp, wc) = cpu::attention(&f64s(&q), &f64s(&k), &f64s(&v), Some(&mask64(&mask)), hd);
    let gp = read(gpu, &probs).await?;
    let w1 = close("attention probs", &gp, &wp, |_| 2e-6)?;
    let got_ctx: Vec<f32> = cpu::split_heads(&f64s(&read(gpu, &ctx).await?), hd, h * d, 0).iter().map(|&x| x as f32).collect();
    let w2 = close("attention ctx", &got_ctx, &wc, |_| 2e-5)?;
    for r in 0..b * h * t {
        let s: f32 = gp[r * t..(r + 1) * t].iter().sum();
        if (s - 1.0).abs() > 1e-5 {
            return Err(Error::Check(format!("attention row {r} sums to {s}")));
        }
    }
    if (0..h * t).any(|r| gp[r * t + 4..(r + 1) * t].iter().any(|&p| p != 0.0)) {
        return Err(Error::Check("padded keys got attention".into()));
    }
    Ok(format!("B=2 H=3 T=9 D=16 with padding: probs worst {w1:.3}, ctx worst {w2:.3} of tolerance; rows sum to 1, padding gets 0"))
}

/// Grouped-query attention (H query heads over KV key/value heads, as the Llama-shaped models
/// attend) from a fused (B*T, (H + 2KV) D) matrix: probabilities, context and the gradients of Q,
/// K and V against the multi-head reference run on K and V repeated per group (transformers'
/// `repeat_kv`), whose K and V gradients are summed over each group.
pub async fn attention_grouped_query(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(17);
    let (b, h, kv, t, d) = (2, 6, 2, 7, 8);
    let g = h / kv;
    let (q, _, _, mask) = attention_inputs(&mut rng, b, h, t, d);
    let (k, v) = (rng.normals(b * kv * t * d, 1.0), rng.normals(b * kv * t * d, 1.0));
    // (B, KV, T, D) -> (B, H, T, D): head j of the group reads key/value head j / G
    let repeat = |x: &[f32]| -> Vec<f64> { (0..b * h * t * d).map(|i| { let (bi, hi, r) = (i / (h * t * d), (i / (t * d)) % h, i % (t * d)); x[(bi * kv + hi / g) * t * d + r] as f64 }).collect() };
    let sum_groups = |x: &[f64]| -> Vec<f64> { let mut out = vec![0.0; b * kv * t * d]; for (i, v) in x.iter().enumerate() { let (bi, hi, r) = (i / (h * t * d), (i / (t * d)) % h, i % (t * d)); out[(bi * kv + hi / g) * t * d + r] += v; } out };
    let full = HeadSplit::new(b, t, h, d);
    let (q64, k64, v64, m64) = (f64s(&q), repeat(&k), repeat(&v), mask64(&mask));
    let (wp, wc) = cpu::attention(&q64, &k64, &v64, Some(&m64), full);
    let r = rng.normals(b * h * t * d, 1.0);
    let (dq, dk, dv) = cpu::attention_backward(&f64s(&r), &q64, &k64, &v64, &wp, full);
    let (dk, dv) = (sum_groups(&dk), sum_groups(&dv));
    // the fused rows: Q (H heads) | K (KV heads) | V (KV heads)
    let w = (h + 2 * kv) * d;
    let mut fused = vec![0.0f64; b * t * w];
    cpu::merge_heads(&q64, &mut fused, full, w, 0);
    let kvs = HeadSplit::new(b, t, kv, d);
    cpu::merge_heads(&f64s(&k), &mut fused, kvs, w, h * d);
    cpu::merge_heads(&f64s(&v), &mut fused, kvs, w, (h + kv) * d);
    let mut r_tok = vec![0.0f64; b * t * h * d];
    cpu::merge_heads(&f64s(&r), &mut r_tok, full, h * d, 0);
    let f32s = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    let hd = full.grouped(kv);
    let (gqkv, gm, gr) = (up(gpu, "qkv", &f32s(&fused))?, up(gpu, "mask", &mask)?, up(gpu, "dctx", &f32s(&r_tok))?);
    let (ctx, probs, scores) = (zeros(gpu, "ctx", b * t * h * d)?, zeros(gpu, "probs", b * h * t * t)?, zeros(gpu, "scores", b * h * t * t)?);
    let (gdqkv, dp, ds) = (up(gpu, "dqkv", &vec![7.0; b * t * w])?, zeros(gpu, "dprobs", b * h * t * t)?, zeros(gpu, "dscores", b * h * t * t)?);
    let mut step = gpu.begin_step("attention_gqa");
    let (vprobs, vqkv) = (hd.score_rows(&probs), hd.qkv_rows(&gqkv));
    hd.forward(&mut step, hd.ctx_rows(&ctx), vprobs, hd.score_rows(&scores), vqkv, Some(&gm))?;
    hd.backward(&mut step, hd.qkv_rows(&gdqkv), Scratch { dprobs: hd.score_rows(&dp), dscores: hd.score_rows(&ds) }, hd.ctx_rows(&gr), vqkv, vprobs)?;
    step.submit().await?;
    let w1 = close("grouped attention probs", &read(gpu, &probs).await?, &wp, |_| 2e-6)?;
    let got_ctx = f32s(&cpu::split_heads(&f64s(&read(gpu, &ctx).await?), full, h * d, 0));
    let w2 = close("grouped attention ctx", &got_ctx, &wc, |_| 2e-5)?;
    let dqkv = f64s(&read(gpu, &gdqkv).await?);
    let w3 = close_rel_max("grouped attention dq", &f32s(&cpu::split_heads(&dqkv, full, w, 0)), &dq, 1e-4)?;
    let w4 = close_rel_max("grouped attention dk (summed over each group)", &f32s(&cpu::split_heads(&dqkv, kvs, w, h * d)), &dk, 1e-4)?;
    let w5 = close_rel_max("grouped attention dv (summed over each group)", &f32s(&cpu::split_heads(&dqkv, kvs, w, (h + kv) * d)), &dv, 1e-4)?;
    Ok(format!("B=2 H=6 over KV=2 T=7 D=8 with padding: probs {w1:.3}, ctx {w2:.3}, dq {w3:.1e}, dk {w4:.1e}, dv {w5:.1e} of tolerance"))
}

pub async fn attention_backward(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(16);
    let (b, h, t, d) = (2, 2, 7, 8);
    let (q, k, v, mask) = attention_inputs(&mut rng, b, h, t, d);
    let n = b * h * t * d;
    let r = rng.normals(n, 1.0);
    let (q64, k64, v64, m64, r64) = (f64s(&q), f64s(&k), f64s(&v), mask64(&mask), f64s(&r));
    let hd = HeadSplit::new(b, t, h, d);
    let (probs64, _) = cpu::attention(&q64, &k64, &v64, Some(&m64), hd);
    let (dq, dk, dv) = cpu::attention_backward(&r64, &q64, &k64, &v64, &probs64, hd);
    let loss = |q: &[f64], k: &[f64], v: &[f64]| cpu::attention(q, k, v, Some(&m64), hd).1.iter().zip(&r64).map(|(a, c)| a * c).sum::<f64>();
    fd_check_cpu("attention dq", &|x| loss(x, &k64, &v64), &q64, &dq, &mut rng, 3)?;
    fd_check_cpu("attention dk", &|x| loss(&q64, x, &v64), &k64, &dk, &mut rng, 3)?;
    fd_check_cpu("attention dv", &|x| loss(&q64, &k64, x), &v64, &dv, &mut rng, 3)?;
    let c = h * d;
    // dctx arrives as a token matrix; r is its (B, H, T, D) form
    let mut r_tok = vec![0.0f64; b * t * c];
    cpu::merge_heads(&r64, &mut r_tok, hd, c, 0);
    let r_tok: Vec<f32> = r_tok.iter().map(|&x| x as f32).collect();
    let (gqkv, gm, gr) = (up(gpu, "qkv", &fuse_qkv(&q, &k, &v, b, h, t, d))?, up(gpu, "mask", &mask)?, up(gpu, "dctx", &r_tok)?);
    let (ctx, probs, scores) = (zeros(gpu, "ctx", n)?, zeros(gpu, "probs", b * h * t * t)?, zeros(gpu, "scores", b * h * t * t)?);
    let gdqkv = zeros(gpu, "dqkv", 3 * n)?;
    let (dp, ds) = (zeros(gpu, "dprobs", b * h * t * t)?, zeros(gpu, "dscores", b * h * t * t)?);
    let mut step = gpu.begin_step("attention_backward");
    let (vctx, vprobs, vscores, vqkv) = (hd.ctx_rows(&ctx), hd.score_rows(&probs), hd.score_rows(&scores), hd.qkv_rows(&gqkv));
    hd.forward(&mut step, vctx, vprobs, vscores, vqkv, Some(&gm))?;
    hd.backward(&mut step, hd.qkv_rows(&gdqkv), Scratch { dprobs: hd.score_rows(&dp), dscores: hd.score_rows(&ds) }, hd.ctx_rows(&gr), vqkv, vprobs)?;
    step.submit().await?;
    let dqkv = f64s(&read(gpu, &gdqkv).await?);
    let part = |i: usize| cpu::split_heads(&dqkv, hd, 3 * c, i * c);
    let got_dq: Vec<f32> = part(0).iter().map(|&x| x as f32).collect();
    let w1 = close_rel_max("attention dq", &got_dq, &dq, 1e-4)?;
    let w2 = close_rel_max("attention dk", &part(1).iter().map(|&x| x as f32).collect::<Vec<_>>(), &dk, 1e-4)?;
    let w3 = close_rel_max("attention dv", &part(2).iter().map(|&x| x as f32).collect::<Vec<_>>(), &dv, 1e-4)?;
    let u: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let fe = 1e-2;
    let mut l = [0.0; 2];
    for (s, sign) in [1.0, -1.0].iter().enumerate() {
        let gqs = up(gpu, "qkv±", &fuse_qkv(&shift(&q, &u, sign * fe), &k, &v, b, h, t, d))?;
        let mut step = gpu.begin_step("attention_fd");
        hd.forward(&mut step, vctx, vprobs, vscores, hd.qkv_rows(&gqs), Some(&gm))?;
        step.submit().await?;
        l[s] = dot(&read(gpu, &ctx).await?, &f64s(&r_tok));
    }
    let fd = fd_check_gpu("attention dq", l[0], l[1], fe, dot(&got_dq, &u), 1e-2)?;
    Ok(format!("dq, dk, dv: GPU vs CPU worst {:.3} of 1e-4·max|ref|; GPU finite differences within {fd:.1e}", w1.max(w2).max(w3)))
}

// ---------------------------------------------------------------------------------------------
// dropout

pub async fn dropout_matches_cpu_and_statistics(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(17);
    let n = 100_003;
    let prob = 0.1f32;
    let x = rng.normals(n, 1.0);
    let dy = rng.normals(n, 1.0);
    let (gx, gy, gdy, gdx, gy2) = (up(gpu, "x", &x)?, zeros(gpu, "y", n)?, up(gpu, "dy", &dy)?, zeros(gpu, "dx", n)?, zeros(gpu, "y2", n)?);
    let seed = 0x1234_5678_9abc_def0u64;
    let mut step = gpu.begin_step("dropout");
    dropout::apply(&mut step, gy.at([n]), gx.at([n]), dropout::Dropout::new(prob, seed))?;
    dropout::apply(&mut step, gdx.at([n]), gdy.at([n]), dropout::Dropout::new(prob, seed))?;
    dropout::apply(&mut step, gy2.at([n]), gx.at([n]), dropout::Dropout::new(prob, seed + 1))?;
    step.submit().await?;
    let y = read(gpu, &gy).await?;
    let want = cpu::dropout(&f64s(&x), prob, seed);
    close("dropout vs CPU hash", &y, &want, |i| 1e-6 * want[i].abs())?;
    let dx = read(gpu, &gdx).await?;
    let want_dx = cpu::dropout(&f64s(&dy), prob, seed);
    close("dropout backward", &dx, &want_dx, |i| 1e-6 * want_dx[i].abs())?;
    // keep rate within 4 standard deviations of 0.9
    let kept = y.iter().filter(|&&v| v != 0.0).count() as f64;
    let sd = (n as f64 * 0.1 * 0.9).sqrt();
    if (kept - 0.9 * n as f64).abs() > 4.0 * sd {
        return Err(Error::Check(format!("kept {kept} of {n}, expected {} ± {:.0}", 0.9 * n as f64, 4.0 * sd)));
    }
    // another seed gives a different, uncorrelated mask: agreement ~ 0.9^2 + 0.1^2 = 0.82
    let y2 = read(gpu, &gy2).await?;
    let agree = y.iter().zip(&y2).filter(|(a, b)| (**a == 0.0) == (**b == 0.0)).count() as f64 / n as f64;
    if (agree - 0.82).abs() > 0.01 {
        return Err(Error::Check(format!("masks of seeds s and s+1 agree on {agree:.4} of elements, expected 0.82")));
    }
    // expectation preserved: mean of y/x over kept elements is 1/(1-p)
    Ok(format!("bit-exact with the CPU hash, kept {:.4} (p = 0.1), seed s vs s+1 agree {agree:.4}", kept / n as f64))
}

// ---------------------------------------------------------------------------------------------
// cross-entropy

pub async fn cross_entropy_forward_ignore(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(18);
    let (rows, classes) = (37, 1003);
    let mut logits = rng.normals(rows * classes, 3.0);
    for j in 0..classes {
        logits[2 * classes + j] = if j == 5 { 1e4 } else { -1e4 };
    }
    let labels: Vec<i32> = (0..rows).map(|r| if r % 4 == 1 { cross_entropy::IGNORE } else { rng.below(classes as u32) as i32 }).collect();
    // some rows predicted right (the label's logit the largest), for the accuracy
    for r in (0..rows).filter(|r| r % 3 == 0 && *r != 2 && labels[*r] >= 0) {
        logits[r * classes + labels[r] as usize] = 20.0;
    }
    let (gl, glab) = (up(gpu, "logits", &logits)?, gpu.upload_i32("labels", &labels)?);
    let (stats, scratch) = (zeros(gpu, "stats", 3)?, zeros(gpu, "rows", rows * 3)?);
    let mut step = gpu.begin_step("ce");
    cross_entropy::forward(&mut step, &stats, &scratch, gl.at([rows, classes]), &glab)?;
    step.submit().await?;
    let got = read(gpu, &stats).await?;
    let want = cpu::cross_entropy(&f64s(&logits), &labels, classes);
    let count = labels.iter().filter(|&&l| l >= 0).count();
    close("cross-entropy", &got[..1], &[want], |_| 1e-5 * want.abs().max(1.0))?;
    if got[1] as usize != count {
        return Err(Error::Check(format!("counted {} labels, expected {count}", got[1])));
    }
    // accuracy: the fraction of counted rows whose label has the largest logit
    let correct = (0..rows)
        .filter(|&r| labels[r] >= 0 && (0..classes).all(|j| logits[r * classes + j] <= logits[r * classes + labels[r] as usize]))
        .count();
    let acc = correct as f32 / count as f32;
    if (got[2] - acc).abs() > 1e-6 || correct == 0 {
        return Err(Error::Check(format!("accuracy {} on the GPU, {acc} ({correct} of {count}) expected", got[2])));
    }
    // nothing to predict: loss 0, not NaN
    let none = gpu.upload_i32("none", &vec![cross_entropy::IGNORE; rows])?;
    let mut step = gpu.begin_step("ce_none");
    cross_entropy::forward(&mut step, &stats, &scratch, gl.at([rows, classes]), &none)?;
    step.submit().await?;
    let got0 = read(gpu, &stats).await?;
    if got0[..3] != [0.0, 0.0, 0.0] {
        return Err(Error::Check(format!("a batch with nothing to predict gave loss {} (count {})", got0[0], got0[1])));
    }
    Ok(format!("loss {:.6} vs {want:.6} over {count} counted rows of {rows} (±1e4 logits included); all-ignored batch gives 0; accuracy {:.3} = {correct}/{count}", got[0], got[2]))
}

pub async fn cross_entropy_backward(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(19);
    let (rows, classes) = (13, 37);
    let logits = rng.normals(rows * classes, 2.0);
    let labels: Vec<i32> = (0..rows).map(|r| if r % 5 == 2 { -100 } else { rng.below(classes as u32) as i32 }).collect();
    let weight = 0.7;
    let l64 = f64s(&logits);
    let want = cpu::cross_entropy_backward(&l64, &labels, classes, weight);
    fd_check_cpu("cross-entropy", &|x| weight * cpu::cross_entropy(x, &labels, classes), &l64, &want, &mut rng, 4)?;
    let (gl, glab) = (up(gpu, "logits", &logits)?, gpu.upload_i32("labels", &labels)?);
    let (stats, scratch, gd) = (zeros(gpu, "stats", 3)?, zeros(gpu, "rows", rows * 3)?, zeros(gpu, "dlogits", rows * classes)?);
    let mut step = gpu.begin_step("ce_backward");
    cross_entropy::forward(&mut step, &stats, &scratch, gl.at([rows, classes]), &glab)?;
    cross_entropy::backward(&mut step, gd.at([rows, classes]), gl.at([rows, classes]), &glab, &stats, weight as f32)?;
    step.submit().await?;
    let got = read(gpu, &gd).await?;
    let w = close_rel_max("cross-entropy dlogits", &got, &want, 1e-5)?;
    let u: Vec<f64> = (0..rows * classes).map(|_| rng.normal()).collect();
    let fe = 1e-2;
    let mut l = [0.0; 2];
    for (s, sign) in [1.0, -1.0].iter().enumerate() {
        let gls = up(gpu, "logits±", &shift(&logits, &u, sign * fe))?;
        let mut step = gpu.begin_step("ce_fd");
        cross_entropy::forward(&mut step, &stats, &scratch, gls.at([rows, classes]), &glab)?;
        step.submit().await?;
        l[s] = weight * read(gpu, &stats).await?[0] as f64;
    }
    let fd = fd_check_gpu("cross-entropy", l[0], l[1], fe, dot(&got, &u), 2e-2)?;
    Ok(format!("GPU vs CPU worst {w:.3} of 1e-5·max|ref|; GPU finite differences within {fd:.1e}"))
}

// ---------------------------------------------------------------------------------------------
// AdamW

/// Five steps on two tensors (one with weight decay, one without), with a max norm small enough to
/// clip, against torch.optim.AdamW's update formula and clip_grad_norm_ in f64.
pub async fn adamw_matches_torch_formula(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(20);
    let (n1, n2) = (5000, 300);
    let opt = AdamW { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, max_grad_norm: 1.0 };
    let wd = [0.01f32, 0.0];
    let p_init = [rng.normals(n1, 1.0), rng.normals(n2, 1.0)];
    let (gp, gg) = (
        [up(gpu, "p1", &p_init[0])?, up(gpu, "p2", &p_init[1])?],
        [zeros(gpu, "g1", n1)?, zeros(gpu, "g2", n2)?],
    );
    let (gm, gv) = ([zeros(gpu, "m1", n1)?, zeros(gpu, "m2", n2)?], [zeros(gpu, "v1", n1)?, zeros(gpu, "v2", n2)?]);
    let st = AdamWState::new(gpu, super::adamw::slots_for(&[n1, n2]))?;
    let mut p64: Vec<Vec<f64>> = p_init.iter().map(|p| f64s(p)).collect();
    let mut m64 = vec![vec![0.0; n1], vec![0.0; n2]];
    let mut v64 = m64.clone();
    let mut clipped = 0;
    for t in 1..=5u32 {
        let g = [rng.normals(n1, 0.05 * t as f64), rng.normals(n2, 0.05)];
        gpu.write(&gg[0], 0, &g[0])?;
        gpu.write(&gg[1], 0, &g[1])?;
        let lr = opt.lr * (1.0 - 0.1 * t as f32); // a schedule
        let mut step = gpu.begin_step("adamw");
        let slices: Vec<ParamSlice> = (0..2)
            .map(|i| ParamSlice { param: gp[i].clone(), grad: gg[i].clone(), m: gm[i].clone(), v: gv[i].clone(), off: 0, len: [n1, n2][i], weight_decay: wd[i] })
            .collect();
        opt.record(&mut step, &st, &slices, lr)?;
        step.submit().await?;
        let g64: Vec<Vec<f64>> = g.iter().map(|x| f64s(x)).collect();
        let (clip, _norm) = cpu::clip_factor(&[&g64[0], &g64[1]], 1.0);
        if clip < 1.0 {
            clipped += 1;
        }
        for i in 0..2 {
            let gc: Vec<f64> = g64[i].iter().map(|x| x * clip).collect();
            let s = cpu::AdamWSettings { lr: lr as f64, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: wd[i] as f64 };
            cpu::adamw_step(&mut p64[i], &gc, &mut m64[i], &mut v64[i], t, s);
        }
    }
    if clipped == 0 {
        return Err(Error::Check("the test's gradients never reached the clipping threshold".into()));
    }
    let mut worst = 0.0f64;
    for i in 0..2 {
        let got = read(gpu, &gp[i]).await?;
        // every update moves a weight by about lr; judge the error against the total movement
        let w = close("AdamW parameters after 5 steps", &got, &p64[i], |j| 1e-5 * (1.0 + p64[i][j].abs()))?;
        worst = worst.max(w);
    }
    let state = read(gpu, &st.state).await?;
    if state[0] != 5.0 || state[4] != 0.0 {
        return Err(Error::Check(format!("optimizer state says step {} with {} skipped", state[0], state[4])));
    }
    Ok(format!("5 steps, weight decay 0.01 and 0, bias correction, {clipped} steps clipped at norm 1: worst {worst:.3} of 1e-5·(1+|p|)"))
}

pub async fn adamw_skips_nonfinite_step(gpu: &Gpu) -> CheckResult {
    let n = 1000;
    let opt = AdamW::default();
    let p0: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
    let (gp, gg, gm, gv) = (up(gpu, "p", &p0)?, zeros(gpu, "g", n)?, zeros(gpu, "m", n)?, zeros(gpu, "v", n)?);
    let st = AdamWState::new(gpu, super::adamw::slots_for(&[n]))?;
    let mut out = Vec::new();
    for bad in [f32::NAN, f32::INFINITY, 3e38] {
        let mut g = vec![0.1f32; n];
        g[n / 2] = bad;
        g[n - 1] = bad;
        gpu.write(&gg, 0, &g)?;
        let mut step = gpu.begin_step("adamw_nonfinite");
        let s = [ParamSlice { param: gp.clone(), grad: gg.clone(), m: gm.clone(), v: gv.clone(), off: 0, len: n, weight_decay: 0.1 }];
        opt.record(&mut step, &st, &s, 1e-3)?;
        step.submit().await?;
        let p = read(gpu, &gp).await?;
        if p != p0 {
            return Err(Error::Check(format!("a step with gradient {bad} changed the weights")));
        }
        if read(gpu, &gm).await?.iter().any(|&v| v != 0.0) {
            return Err(Error::Check(format!("a step with gradient {bad} changed the first moment")));
        }
        out.push(bad);
    }
    let state = read(gpu, &st.state).await?;
    if state[0] != 0.0 || state[4] != 3.0 {
        return Err(Error::Check(format!("after 3 skipped steps the state says step {} and {} skipped", state[0], state[4])));
    }
    // a finite step after the skips does update
    gpu.write(&gg, 0, &vec![0.1f32; n])?;
    let mut step = gpu.begin_step("adamw_ok");
    let s = [ParamSlice { param: gp.clone(), grad: gg.clone(), m: gm.clone(), v: gv.clone(), off: 0, len: n, weight_decay: 0.1 }];
    opt.record(&mut step, &st, &s, 1e-3)?;
    step.submit().await?;
    let p = read(gpu, &gp).await?;
    if p == p0 {
        return Err(Error::Check("a finite step after the skipped ones did not update".into()));
    }
    Ok("gradients holding NaN, Inf, or overflowing the norm skip the step (weights, moments, step count unchanged); the next finite step updates".into())
}

// ---------------------------------------------------------------------------------------------
// elementwise

pub async fn elementwise_ops(gpu: &Gpu) -> CheckResult {
    let mut rng = Rng::new(21);
    let n = 70_001;
    let a = rng.normals(n, 5.0);
    let b = rng.normals(n, 1.0);
    let (ga, gb, gy, gt, gdx) = (up(gpu, "a", &a)?, up(gpu, "b", &b)?, zeros(gpu, "y", n)?, zeros(gpu, "t", n)?, zeros(gpu, "dx", n)?);
    let mut step = gpu.begin_step("elementwise");
    elementwise::add(&mut step, gy.at([n]), ga.at([n]), gb.at([n]))?;
    elementwise::scale(&mut step, gy.at([n]), -0.5)?;
    elementwise::tanh_forward(&mut step, gt.at([n]), ga.at([n]))?;
    elementwise::tanh_backward(&mut step, gdx.at([n]), gt.at([n]), gb.at([n]))?;
    let (gr, grdx) = (zeros(gpu, "relu", n)?, zeros(gpu, "relu_dx", n)?);
    elementwise::relu_forward(&mut step, gr.at([n]), ga.at([n]))?;
    elementwise::relu_backward(&mut step, grdx.at([n]), gr.at([n]), gb.at([n]))?;
    step.submit().await?;
    let want: Vec<f64> = a.iter().zip(&b).map(|(x, y)| -0.5 * (*x as f64 + *y as f64)).collect();
    close("add+scale", &read(gpu, &gy).await?, &want, |i| 1e-6 * (1.0 + want[i].abs()))?;
    let tw: Vec<f64> = a.iter().map(|&x| (x as f64).tanh()).collect();
    close("tanh", &read(gpu, &gt).await?, &tw, |_| 2e-6)?;
    let dw: Vec<f64> = tw.iter().zip(&b).map(|(t, d)| *d as f64 * (1.0 - t * t)).collect();
    close("tanh backward", &read(gpu, &gdx).await?, &dw, |i| 1e-5 * (1.0 + (b[i] as f64).abs()))?;
    let rw: Vec<f64> = a.iter().map(|&x| (x as f64).max(0.0)).collect();
    close("relu", &read(gpu, &gr).await?, &rw, |_| 0.0)?;
    let rdw: Vec<f64> = a.iter().zip(&b).map(|(x, d)| if *x > 0.0 { *d as f64 } else { 0.0 }).collect();
    close("relu backward", &read(gpu, &grdx).await?, &rdw, |_| 0.0)?;
    Ok(format!("add, scale, tanh, ReLU and their backwards over {n} elements"))
}

// ---------------------------------------------------------------------------------------------
// gated linear units and rotary positions (ModernBERT's GeGLU and rotary, the Llama family's SwiGLU)

pub async fn glu_forward_backward(gpu: &Gpu) -> CheckResult {
    use crate::kernels::glu::{self, GluAct};
    let mut rng = Rng::new(31);
    let (rows, width) = (37, 53);
    let u = rng.normals(rows * 2 * width, 2.0);
    let dy = rng.normals(rows * width, 1.0);
    let mut worst = 0.0f64;
    for act in GluAct::ALL {
        let (f, g): (fn(f64) -> f64, fn(f64) -> f64) = match act {
            GluAct::Gelu => (cpu::gelu, cpu::gelu_grad),
            GluAct::GeluTanh => (cpu::gelu_tanh, cpu::gelu_tanh_grad),
            GluAct::Silu => (cpu::silu, cpu::silu_grad),
        };
        let (gu, gdy, gy, gdu) = (up(gpu, "u", &u)?, up(gpu, "dy", &dy)?, zeros(gpu, "y", rows * width)?, zeros(gpu, "du", rows * 2 * width)?);
        let mut step = gpu.begin_step("glu");
        glu::forward(&mut step, act, gy.at([rows, width]), gu.at([rows, 2 * width]))?;
        glu::backward(&mut step, act, gdu.at([rows, 2 * width]), gu.at([rows, 2 * width]), gdy.at([rows, width]))?;
        step.submit().await?;
        let want = cpu::glu(&f64s(&u), width, f);
        worst = worst.max(close(&format!("{act:?} GLU"), &read(gpu, &gy).await?, &want, |i| 1e-5 * (1.0 + want[i].abs()))?);
        let dwant = cpu::glu_backward(&f64s(&u), &f64s(&dy), width, f, g);
        worst = worst.max(close(&format!("{act:?} GLU backward"), &read(gpu, &gdu).await?, &dwant, |i| 1e-5 * (1.0 + dwant[i].abs()))?);
    }
    Ok(format!("GeGLU (erf and tanh) and SwiGLU over {rows}x{width}, forward and backward: worst {worst:.2} of tolerance"))
}

/// Rotary embeddings on a fused q|k|v row with grouped keys (3 query heads, 1 key head, head size
/// 8, and a value part that must not move), against the f64 rotate_half formula; turning back
/// (the backward) restores the input, and is the transpose (<R x, y> = <x, R^T y>).
pub async fn rotary_matches_reference_and_turns_back(gpu: &Gpu) -> CheckResult {
    use crate::kernels::rotary::{self, Heads};
    let mut rng = Rng::new(32);
    let (b, t, d, qh, kh) = (3, 11, 8, 3, 1);
    let ld = (qh + 2 * kh) * d;
    let rows = b * t;
    let theta = 10_000.0;
    let x = rng.normals(rows * ld, 1.0);
    let (c, s) = rotary::tables(theta, d, t);
    let (gx, gc, gs) = (up(gpu, "x", &x)?, up(gpu, "cos", &c)?, up(gpu, "sin", &s)?);
    let h = Heads { rows, t, ld, q_heads: qh, k_heads: kh, d, q_off: 0, k_off: qh * d, pos_base: 0 };
    let mut step = gpu.begin_step("rotary");
    rotary::apply(&mut step, gx.at([rows * ld]), &gc, &gs, h, false)?;
    step.submit().await?;
    let got = read(gpu, &gx).await?;
    let cols: Vec<usize> = (0..qh + kh).map(|k| k * d).collect();
    let want = cpu::rotary(&f64s(&x), ld, t, &cols, d, theta, 1.0);
    let w1 = close("rotary", &got, &want, |_| 2e-6)?;
    // the value columns are untouched, bit for bit
    for r in 0..rows {
        for j in (qh + kh) * d..ld {
            if got[r * ld + j].to_bits() != x[r * ld + j].to_bits() {
                return Err(Error::Check(format!("rotary moved the value at row {r}, column {j}")));
            }
        }
    }
    // turning back: the input again, and the transpose of the rotation
    let mut step = gpu.begin_step("rotary-back");
    rotary::apply(&mut step, gx.at([rows * ld]), &gc, &gs, h, true)?;
    step.submit().await?;
    let back = read(gpu, &gx).await?;
    let w2 = close("rotary, then back", &back, &f64s(&x), |_| 2e-6)?;
    let yv = rng.normals(rows * ld, 1.0);
    let rt = cpu::rotary(&f64s(&yv), ld, t, &cols, d, theta, -1.0);
    let lhs: f64 = want.iter().zip(&yv).map(|(a, b)| a * *b as f64).sum();
    let rhs: f64 = x.iter().zip(&rt).map(|(a, b)| *a as f64 * b).sum();
    if (lhs - rhs).abs() > 1e-9 * lhs.abs().max(1.0) {
        return Err(Error::Check(format!("the reference's inverse is not the transpose: {lhs} vs {rhs}")));
    }
    Ok(format!("{qh} query heads and {kh} key head of {d} over {rows} rows (positions to {}): worst {w1:.2} of tolerance; back to the input within {w2:.2} of tolerance; the value untouched", t - 1))
}

/// RMSNorm (the Llama family's) against its f64 reference: forward, the input's gradient written
/// and added, the weight's added, on rows of an odd width and a row of zeros (rstd = 1/sqrt(eps)).
pub async fn rmsnorm_forward_backward(gpu: &Gpu) -> CheckResult {
    use crate::kernels::rmsnorm;
    let mut rng = Rng::new(33);
    let (rows, cols, eps) = (19, 77, 1e-6f32);
    let mut x = rng.normals(rows * cols, 2.0);
    for v in &mut x[3 * cols..4 * cols] {
        *v = 0.0;
    }
    let w = rng.normals(cols, 1.0).iter().map(|v| 1.0 + 0.3 * v).collect::<Vec<f32>>();
    let dy = rng.normals(rows * cols, 1.0);
    let dx0 = rng.normals(rows * cols, 1.0);
    let dw0 = rng.normals(cols, 1.0);
    let (gx, gw, gdy, gy, gr, gdx, gdxa, gdw) = (up(gpu, "x", &x)?, up(gpu, "w", &w)?, up(gpu, "dy", &dy)?, zeros(gpu, "y", rows * cols)?, zeros(gpu, "rstd", rows)?, zeros(gpu, "dx", rows * cols)?, up(gpu, "dxa", &dx0)?, up(gpu, "dw", &dw0)?);
    let mut step = gpu.begin_step("rmsnorm");
    rmsnorm::forward(&mut step, gy.at([rows, cols]), &gr, gx.at([rows, cols]), &gw, eps)?;
    rmsnorm::backward(&mut step, gdx.at([rows, cols]), gdy.at([rows, cols]), gx.at([rows, cols]), &gr, &gw, Some(&gdw), false)?;
    rmsnorm::backward(&mut step, gdxa.at([rows, cols]), gdy.at([rows, cols]), gx.at([rows, cols]), &gr, &gw, None, true)?;
    step.submit().await?;
    let (mut y, mut dx, mut dw) = (vec![0.0f64; rows * cols], vec![0.0f64; rows * cols], dw0.iter().map(|&v| v as f64).collect::<Vec<f64>>());
    for r in 0..rows {
        let row = &x[r * cols..(r + 1) * cols];
        let rs = 1.0 / (row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / cols as f64 + eps as f64).sqrt();
        let m: f64 = (0..cols).map(|j| dy[r * cols + j] as f64 * w[j] as f64 * row[j] as f64 * rs).sum::<f64>() / cols as f64;
        for j in 0..cols {
            let xhat = row[j] as f64 * rs;
            y[r * cols + j] = xhat * w[j] as f64;
            dx[r * cols + j] = rs * (dy[r * cols + j] as f64 * w[j] as f64 - xhat * m);
            dw[j] += dy[r * cols + j] as f64 * xhat;
        }
    }
    let w1 = close("rmsnorm", &read(gpu, &gy).await?, &y, |i| 1e-5 * (1.0 + y[i].abs()))?;
    let w2 = close("rmsnorm backward (dx)", &read(gpu, &gdx).await?, &dx, |i| 1e-4 * (1.0 + dx[i].abs()))?;
    let acc: Vec<f64> = dx.iter().zip(&dx0).map(|(a, b)| a + *b as f64).collect();
    let w3 = close("rmsnorm backward (dx +=)", &read(gpu, &gdxa).await?, &acc, |i| 1e-4 * (1.0 + acc[i].abs()))?;
    let w4 = close("rmsnorm backward (dw +=)", &read(gpu, &gdw).await?, &dw, |i| 1e-4 * (1.0 + dw[i].abs()))?;
    // heads inside wider rows (Qwen3's q_norm on the query heads of a fused q|k|v): 5 rows 40 wide,
    // 3 heads of 8 from column 4; the columns around them untouched
    let (hr, heads, d, ld, off) = (5, 3, 8, 40, 4);
    let (hx, hdy, hw) = (rng.normals(hr * ld, 1.5), rng.normals(hr * ld, 1.0), rng.normals(d, 1.0).iter().map(|v| 1.0 + 0.3 * v).collect::<Vec<f32>>());
    let layout = rmsnorm::Rows::heads(hr, heads, d, ld, off);
    let (gx, gdy, gw, gy, gr, gdx, gdw) = (up(gpu, "x", &hx)?, up(gpu, "dy", &hdy)?, up(gpu, "w", &hw)?, up(gpu, "y", &vec![7.0; hr * ld])?, zeros(gpu, "rstd", hr * heads)?, up(gpu, "dx", &vec![7.0; hr * ld])?, zeros(gpu, "dw", d)?);
    let mut step = gpu.begin_step("rmsnorm_heads");
    rmsnorm::forward_rows(&mut step, &gy, &gr, &gx, &gw, eps, layout)?;
    rmsnorm::backward_rows(&mut step, &gdx, &gdy, &gx, &gr, &gw, Some(&gdw), false, layout)?;
    step.submit().await?;
    let (mut y, mut dx, mut dw) = (vec![7.0f64; hr * ld], vec![7.0f64; hr * ld], vec![0.0f64; d]);
    for r in 0..hr {
        for hh in 0..heads {
            let b = r * ld + off + hh * d;
            let rs = 1.0 / ((0..d).map(|j| (hx[b + j] as f64).powi(2)).sum::<f64>() / d as f64 + eps as f64).sqrt();
            let m: f64 = (0..d).map(|j| hdy[b + j] as f64 * hw[j] as f64 * hx[b + j] as f64 * rs).sum::<f64>() / d as f64;
            for j in 0..d {
                let xhat = hx[b + j] as f64 * rs;
                y[b + j] = xhat * hw[j] as f64;
                dx[b + j] = rs * (hdy[b + j] as f64 * hw[j] as f64 - xhat * m);
                dw[j] += hdy[b + j] as f64 * xhat;
            }
        }
    }
    let w5 = close("rmsnorm on heads in wider rows", &read(gpu, &gy).await?, &y, |i| 1e-5 * (1.0 + y[i].abs()))?;
    let w6 = close("rmsnorm on heads: dx", &read(gpu, &gdx).await?, &dx, |i| 1e-4 * (1.0 + dx[i].abs()))?;
    let w7 = close("rmsnorm on heads: dw", &read(gpu, &gdw).await?, &dw, |i| 1e-4 * (1.0 + dw[i].abs()))?;
    Ok(format!("{rows}x{cols} (a row of zeros among them): forward {w1:.2}, dx {w2:.2}, dx += {w3:.2}, dw += {w4:.2} of tolerance; 3 heads of 8 inside rows of 40 (the rest untouched): {w5:.2}, {w6:.2}, {w7:.2}"))
}

// ---------------------------------------------------------------------------------------------
// decoding: products with a few rows, attention over a key-value cache, the draw of a token

/// The matvec kernel in both weight layouts, both workgroup shapes, with and without a bias, at
/// offsets and widths that are not multiples of its workgroups, against the f64 product.
pub async fn matvec_layouts_splits_offsets(gpu: &Gpu) -> CheckResult {
    use super::matvec::{Matvec, Split};
    let mut rng = Rng::new(41);
    let mut worst = 0.0f64;
    let mut cases = 0;
    for (rows, n, k) in [(1, 37 * 4, 20), (2, 68, 36), (1, 300, 64), (3, 12, 776)] {
        for trans_w in [false, true] {
            for bias in [false, true] {
                let (x_off, y_off, off_w) = (3, 5, 8);
                let x = rng.normals(x_off + rows * k, 1.0);
                let w = rng.normals(off_w + n * k, 1.0);
                let bv = rng.normals(4 + n, 1.0);
                let (gx, gw, gb) = (up(gpu, "x", &x)?, up(gpu, "w", &w)?, up(gpu, "b", &bv)?);
                let (x64, w64) = (f64s(&x[x_off..]), f64s(&w[off_w..]));
                let b64 = f64s(&bv[4..]);
                let want = cpu::matmul(&x64, &w64, bias.then_some(&b64[..]), &Matmul { trans_b: trans_w, ..Matmul::new(rows, n, k) });
                let abs = cpu::matmul_abs(&x64, &w64, &Matmul { trans_b: trans_w, ..Matmul::new(rows, n, k) });
                for split in Split::ALL {
                    let mv = Matvec::new(rows, n, k, trans_w).split(split);
                    if !mv.fits(off_w) {
                        return Err(Error::Check(format!("matvec {rows}x{n}x{k} trans_w={trans_w} should fit its kernel")));
                    }
                    let gy = up(gpu, "y", &vec![7.0; y_off + rows * n + 3])?;
                    let mut step = gpu.begin_step("matvec");
                    let vw = gw.at_off(off_w, if trans_w { [n, k] } else { [k, n] });
                    mv.record(&mut step, gy.at_off(y_off, [rows, n]), gx.at_off(x_off, [rows, k]), vw, bias.then(|| gb.at_off(4, [n])))?;
                    step.submit().await?;
                    let got = read(gpu, &gy).await?;
                    if got[..y_off].iter().chain(&got[y_off + rows * n..]).any(|&v| v != 7.0) {
                        return Err(Error::Check(format!("matvec {split:?} {rows}x{n}x{k} wrote outside its rows")));
                    }
                    let what = format!("matvec {split:?} {rows}x{n}x{k} trans_w={trans_w} bias={bias}");
                    worst = worst.max(close(&what, &got[y_off..y_off + rows * n], &want, |i| 1e-4 * (abs[i] + 1.0))?);
                    cases += 1;
                }
            }
        }
    }
    let mut step = gpu.begin_step("matvec-bad");
    let (a, b) = (zeros(gpu, "a", 64)?, zeros(gpu, "b", 64)?);
    if Matvec::new(1, 6, 5, true).record(&mut step, b.at([1, 6]), a.at([1, 5]), a.at([6, 5]), None).is_ok() {
        return Err(Error::Check("a (N, K) weight with K = 5 (not whole vec4s) was accepted".into()));
    }
    drop(step);
    Ok(format!("{cases} cases (1-3 rows; W (K, N) and (N, K); bias or none; one thread or a workgroup per output): worst {worst:.3} of tolerance 1e-4·(|x||W| + 1)"))
}

/// The packed one-row kernel (a texture copy of W, CPU adapters' decoding) in both weight layouts,
/// with and without a bias, with no activation, GELU and GPT-2's tanh GELU, with K cut into
/// several chunks (texture rows narrower than the device allows) and whole, N and K not multiples
/// of its bands and quads, the (N, K) weight packed in two shards of rows, against f64.
pub async fn matvec_packed_matches_reference(gpu: &Gpu) -> CheckResult {
    use super::matvec::{Act, Packed};
    let mut rng = Rng::new(44);
    let mut worst = 0.0f64;
    let mut cases = 0;
    for (n, k, width) in [(37, 20, 80), (300, 64, usize::MAX), (12, 776, 400), (50, 6, 32)] {
        let width = width.min(gpu.info.max_texture_dimension_2d as usize);
        for trans_w in [false, true] {
            let (x_off, y_off, off_w) = (3, 5, 8);
            let x = rng.normals(x_off + k, 1.0);
            let w = rng.normals(off_w + n * k, 1.0);
            let bv = rng.normals(4 + n, 1.0);
            let (gx, gw, gb) = (up(gpu, "x", &x)?, up(gpu, "w", &w)?, up(gpu, "b", &bv)?);
            let packed = Packed::with_width(gpu, "packed", n, k, width)?;
            let mut step = gpu.begin_step("pack");
            if trans_w {
                // two shards of rows, split off a band boundary
                let a = n / 3;
                packed.pack(&mut step, gw.at_off(off_w, [a, k]), true, 0)?;
                packed.pack(&mut step, gw.at_off(off_w + a * k, [n - a, k]), true, a)?;
            } else {
                packed.pack(&mut step, gw.at_off(off_w, [k, n]), false, 0)?;
            }
            step.submit().await?;
            let (x64, w64, b64) = (f64s(&x[x_off..]), f64s(&w[off_w..]), f64s(&bv[4..]));
            let mm = Matmul { trans_b: trans_w, ..Matmul::new(1, n, k) };
            let abs = cpu::matmul_abs(&x64, &w64, &mm);
            for bias in [false, true] {
                let lin = cpu::matmul(&x64, &w64, bias.then_some(&b64[..]), &mm);
                for act in [Act::None, Act::Gelu, Act::GeluTanh] {
                    let want: Vec<f64> = lin.iter().map(|&v| match act { Act::None => v, Act::Gelu => cpu::gelu(v), Act::GeluTanh => cpu::gelu_tanh(v) }).collect();
                    let gy = up(gpu, "y", &vec![7.0; y_off + n + 3])?;
                    let mut step = gpu.begin_step("matvec_packed");
                    packed.record(&mut step, gy.at_off(y_off, [1, n]), gx.at_off(x_off, [1, k]), bias.then(|| gb.at_off(4, [n])), act)?;
                    step.submit().await?;
                    let got = read(gpu, &gy).await?;
                    if got[..y_off].iter().chain(&got[y_off + n..]).any(|&v| v != 7.0) {
                        return Err(Error::Check(format!("packed matvec {n}x{k} wrote outside its row")));
                    }
                    let what = format!("packed matvec {n}x{k} (rows of {width} texels) trans_w={trans_w} bias={bias} {act:?}");
                    worst = worst.max(close(&what, &got[y_off..y_off + n], &want, |i| 1e-4 * (abs[i] + 1.0))?);
                    cases += 1;
                }
            }
        }
    }
    Ok(format!("{cases} cases (W (K, N) and (N, K) in two shards; bias or none; none, GELU, tanh GELU; K whole and in chunks): worst {worst:.3} of tolerance 1e-4·(|x||W| + 1)"))
}

/// One new query over n cached q|k|v rows against softmax(q k^T / sqrt(D)) v in f64, for every
/// n from 1 to 13 (the query is always the last row: it sees itself and what came before).
pub async fn attention_cached_matches_reference(gpu: &Gpu) -> CheckResult {
    use super::matvec::attend_cached_with;
    let mut rng = Rng::new(42);
    let mut worst = 0.0f64;
    // multi-head (3 heads over 3) and grouped-query (6 query heads over 2 key/value heads)
    for (h, kv, d, cap) in [(3, 3, 8, 13), (6, 2, 8, 9)] {
        let (c, w) = (h * d, (h + 2 * kv) * d);
        let rows = rng.normals(cap * w, 1.0);
        let (gc, scores, ctx) = (up(gpu, "cache", &rows)?, zeros(gpu, "scores", h * cap)?, zeros(gpu, "ctx", c)?);
        for (n, threads) in (1..=cap).flat_map(|n| [(n, 8), (n, 64)]) {
            let mut step = gpu.begin_step("attend_cached");
            attend_cached_with(&mut step, ctx.at([h * d]), scores.at([h, cap]), gc.at([n, w]), kv, threads)?;
            step.submit().await?;
            let got = read(gpu, &ctx).await?;
            // query head hh reads key/value head hh / (h / kv)
            let q = |hh: usize, dd: usize| rows[(n - 1) * w + hh * d + dd] as f64;
            let k = |j: usize, hh: usize, dd: usize| rows[j * w + c + (hh / (h / kv)) * d + dd] as f64;
            let v = |j: usize, hh: usize, dd: usize| rows[j * w + c + kv * d + (hh / (h / kv)) * d + dd] as f64;
            let mut want = vec![0.0f64; c];
            for hh in 0..h {
                let s: Vec<f64> = (0..n).map(|j| (0..d).map(|dd| q(hh, dd) * k(j, hh, dd)).sum::<f64>() / (d as f64).sqrt()).collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                for dd in 0..d {
                    want[hh * d + dd] = (0..n).map(|j| (s[j] - m).exp() / z * v(j, hh, dd)).sum();
                }
            }
            worst = worst.max(close(&format!("cached attention, H={h} over KV={kv}, {n} positions, {threads} threads"), &got, &want, |_| 2e-5)?);
        }
    }
    Ok(format!("H=3 D=8 (1 to 13 cached positions) and H=6 over 2 key/value heads (1 to 9), workgroups of 8 and 64 threads: worst {worst:.3} of tolerance 2e-5"))
}

/// The draw of a token: candidates (ids and probabilities) as a stable sort of the logits gives
/// them, ties to the lower id, NaN never chosen; greedy picks the first; a sampled draw picks what
/// the f64 reference picks for the same uniform number.
pub async fn sample_top_k_matches_reference(gpu: &Gpu) -> CheckResult {
    use super::sample::{self, Draw};
    let mut rng = Rng::new(43);
    let v = 1000;
    let mut logits = rng.normals(v, 3.0);
    // ties (to the lower id), a NaN, and an infinitely unlikely token
    logits[17] = 9.0;
    logits[400] = 9.0;
    logits[3] = f32::NAN;
    logits[999] = f32::NEG_INFINITY;
    let off = 5;
    let mut padded = vec![1e9f32; off];
    padded.extend_from_slice(&logits);
    let gl = up(gpu, "logits", &padded)?;
    let out = gpu.zeros("out", sample::out_len(40), DType::U32)?;
    let mut draws = 0;
    for (k, top_k, temperature) in [(1, 1, 1.0), (5, 1, 1.0), (40, 40, 0.7), (8, 8, 2.5)] {
        let want = cpu::top_k(&logits, k);
        let cands: Vec<(u32, f64)> = want.iter().map(|&(i, _)| (i, logits[i as usize] as f64)).collect();
        for trial in 0..6 {
            let u = (rng.uniform() as f32).min(0.999_999_9);
            let mut step = gpu.begin_step("sample");
            sample::record(&mut step, &out, gl.at_off(off, [v]), Draw { k, top_k, temperature, u })?;
            step.submit().await?;
            let got = gpu.read_u32(&out).await?;
            let (chosen, found) = sample::parse(&got[..sample::out_len(k)]);
            let ids: Vec<u32> = found.iter().map(|c| c.0).collect();
            let want_ids: Vec<u32> = want.iter().map(|c| c.0).collect();
            if ids != want_ids {
                return Err(Error::Check(format!("top-{k} candidates {ids:?}, reference {want_ids:?}")));
            }
            let probs: Vec<f32> = found.iter().map(|c| c.1).collect();
            let want_p: Vec<f64> = want.iter().map(|c| c.1).collect();
            close(&format!("top-{k} probabilities"), &probs, &want_p, |_| 1e-6)?;
            let (id, margin) = cpu::draw(&cands, top_k, temperature as f64, u as f64).ok_or_else(|| Error::Check("the reference drew nothing".into()))?;
            if chosen != Some(id) && margin > 1e-5 {
                return Err(Error::Check(format!("top-{top_k} T={temperature} u={u}: drew {chosen:?}, the reference {id}")));
            }
            if top_k == 1 && trial > 0 {
                break;
            }
            draws += 1;
        }
    }
    if cpu::top_k(&logits, 2)[0].0 != 17 {
        return Err(Error::Check("the reference does not break ties to the lower id".into()));
    }
    let nan = up(gpu, "nan", &[f32::NAN; 10])?;
    let mut step = gpu.begin_step("sample-nan");
    sample::record(&mut step, &out, nan.at([10]), Draw { k: 3, top_k: 3, temperature: 1.0, u: 0.5 })?;
    step.submit().await?;
    if sample::parse(&gpu.read_u32(&out).await?[..sample::out_len(3)]) != (None, vec![]) {
        return Err(Error::Check("a row of NaN logits gave a token".into()));
    }
    Ok(format!("V=1000 with ties, NaN and -inf: top-1/5/8/40 candidates and probabilities as the reference; {draws} draws as the reference; all-NaN gives no token"))
}
