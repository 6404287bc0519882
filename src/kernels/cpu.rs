//! Plain-Rust references for every kernel, in f64. They exist for the tests (GPU vs CPU, and
//! finite differences on these references); the training path never calls them.

use super::attention::HeadSplit;
use super::matmul::Matmul;

/// C (batch, m, n) = alpha * op(A) op(B) (+ bias) (gelu) as `mm` says, with its operands packed as
/// the GPU kernel packs them by default (`mm`'s offsets, strided layouts, accumulation and kernel
/// are not read).
pub fn matmul(a: &[f64], b: &[f64], bias: Option<&[f64]>, mm: &Matmul) -> Vec<f64> {
    let (batch, m, n, k, ta, tb) = (mm.batch, mm.m, mm.n, mm.k, mm.trans_a, mm.trans_b);
    let (alpha, gelu_act) = (mm.alpha as f64, mm.gelu);
    let mut c = vec![0.0; batch * m * n];
    for bi in 0..batch {
        let (a, b) = (&a[bi * m * k..], &b[bi * k * n..]);
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    s += av * bv;
                }
                let mut v = alpha * s;
                if let Some(bias) = bias {
                    v += bias[j];
                }
                c[bi * m * n + i * n + j] = if gelu_act { gelu(v) } else { v };
            }
        }
    }
    c
}

/// (|A| |B|) elementwise: the scale against which matmul's rounding error is judged.
/// `mm`'s alpha and GELU are not applied.
pub fn matmul_abs(a: &[f64], b: &[f64], mm: &Matmul) -> Vec<f64> {
    let aa: Vec<f64> = a.iter().map(|x| x.abs()).collect();
    let bb: Vec<f64> = b.iter().map(|x| x.abs()).collect();
    matmul(&aa, &bb, None, &Matmul { alpha: 1.0, gelu: false, ..*mm })
}

pub const MASKED: f64 = -1e30;

/// Row softmax of scale * x + mask (mask row = row / rows_per_mask; <= -1e30 removes a column).
pub fn softmax(x: &[f64], mask: Option<&[f64]>, rows: usize, cols: usize, rows_per_mask: usize, scale: f64) -> Vec<f64> {
    let mut y = vec![0.0; rows * cols];
    for r in 0..rows {
        let l: Vec<Option<f64>> = (0..cols)
            .map(|j| {
                let v = scale * x[r * cols + j];
                match mask {
                    Some(m) => {
                        let mv = m[(r / rows_per_mask) * cols + j];
                        if mv <= MASKED {
                            None
                        } else {
                            Some(v + mv)
                        }
                    }
                    None => Some(v),
                }
            })
            .collect();
        let mx = l.iter().flatten().cloned().fold(f64::NEG_INFINITY, f64::max);
        if mx == f64::NEG_INFINITY {
            continue;
        }
        let s: f64 = l.iter().flatten().map(|v| (v - mx).exp()).sum();
        for j in 0..cols {
            y[r * cols + j] = l[j].map(|v| (v - mx).exp() / s).unwrap_or(0.0);
        }
    }
    y
}

pub fn softmax_backward(y: &[f64], dy: &[f64], rows: usize, cols: usize, scale: f64) -> Vec<f64> {
    let mut dx = vec![0.0; rows * cols];
    for r in 0..rows {
        let row = r * cols..(r + 1) * cols;
        let d: f64 = y[row.clone()].iter().zip(&dy[row.clone()]).map(|(a, b)| a * b).sum();
        for j in row {
            dx[j] = scale * y[j] * (dy[j] - d);
        }
    }
    dx
}

/// Returns (y, mean, rstd).
pub fn layernorm(x: &[f64], g: &[f64], b: &[f64], rows: usize, cols: usize, eps: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut y = vec![0.0; rows * cols];
    let (mut mean, mut rstd) = (vec![0.0; rows], vec![0.0; rows]);
    for r in 0..rows {
        let row = &x[r * cols..(r + 1) * cols];
        let mu = row.iter().sum::<f64>() / cols as f64;
        let var = row.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / cols as f64;
        let rs = 1.0 / (var + eps).sqrt();
        for j in 0..cols {
            y[r * cols + j] = (row[j] - mu) * rs * g[j] + b[j];
        }
        mean[r] = mu;
        rstd[r] = rs;
    }
    (y, mean, rstd)
}

/// Returns (dx, dgamma, dbeta).
pub fn layernorm_backward(dy: &[f64], x: &[f64], g: &[f64], mean: &[f64], rstd: &[f64], rows: usize, cols: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut dx = vec![0.0; rows * cols];
    let (mut dg, mut db) = (vec![0.0; cols], vec![0.0; cols]);
    for r in 0..rows {
        let (mu, rs) = (mean[r], rstd[r]);
        let mut s1 = 0.0;
        let mut s2 = 0.0;
        for j in 0..cols {
            let gg = dy[r * cols + j] * g[j];
            let xh = (x[r * cols + j] - mu) * rs;
            s1 += gg;
            s2 += gg * xh;
            dg[j] += dy[r * cols + j] * xh;
            db[j] += dy[r * cols + j];
        }
        s1 /= cols as f64;
        s2 /= cols as f64;
        for j in 0..cols {
            let gg = dy[r * cols + j] * g[j];
            let xh = (x[r * cols + j] - mu) * rs;
            dx[r * cols + j] = rs * (gg - s1 - xh * s2);
        }
    }
    (dx, dg, db)
}

/// erf by its Taylor series (|x| < 3) or continued fraction for erfc, accurate to ~1e-15.
pub fn erf(x: f64) -> f64 {
    let ax = x.abs();
    if ax < 3.0 {
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    } else {
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) (Lentz, backwards)
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (ax + f);
        }
        let erfc = (-ax * ax).exp() / std::f64::consts::PI.sqrt() / (ax + f);
        (1.0 - erfc).copysign(x)
    }
}

pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

pub fn gelu_grad(x: f64) -> f64 {
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2)) + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// SiLU, x·sigmoid(x), and its derivative.
pub fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

pub fn silu_grad(x: f64) -> f64 {
    let s = 1.0 / (1.0 + (-x).exp());
    s * (1.0 + x * (1.0 - s))
}

/// A gated linear unit over rows of `[a | b]` (each 2·width): `act(a) * b`, and its backward
/// (du = [dy b act'(a) | dy act(a)]).
pub fn glu(u: &[f64], width: usize, act: fn(f64) -> f64) -> Vec<f64> {
    u.chunks(2 * width).flat_map(|r| (0..width).map(move |j| act(r[j]) * r[width + j])).collect()
}

pub fn glu_backward(u: &[f64], dy: &[f64], width: usize, act: fn(f64) -> f64, grad: fn(f64) -> f64) -> Vec<f64> {
    let mut du = vec![0.0; u.len()];
    for (r, (row, g)) in u.chunks(2 * width).zip(dy.chunks(width)).enumerate() {
        for j in 0..width {
            du[r * 2 * width + j] = g[j] * row[width + j] * grad(row[j]);
            du[r * 2 * width + width + j] = g[j] * act(row[j]);
        }
    }
    du
}

/// Rotary embeddings in f64 as transformers applies them (rotate_half): for each row (position
/// `row % t`) and each head of `d` at the columns `cols` lists, x·cos + rotate_half(x)·sin, with the
/// angles of `theta` (`sign` -1: the transpose).
pub fn rotary(x: &[f64], ld: usize, t: usize, cols: &[usize], d: usize, theta: f64, sign: f64) -> Vec<f64> {
    let half = d / 2;
    let mut y = x.to_vec();
    for (r, row) in x.chunks(ld).enumerate() {
        let pos = (r % t) as f64;
        for &c in cols {
            for j in 0..half {
                let a = pos / theta.powf((2 * j) as f64 / d as f64);
                let (co, si) = (a.cos(), sign * a.sin());
                let (x1, x2) = (row[c + j], row[c + j + half]);
                y[r * ld + c + j] = x1 * co - x2 * si;
                y[r * ld + c + j + half] = x2 * co + x1 * si;
            }
        }
    }
    y
}

/// GPT-2's `gelu_new`: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
pub fn gelu_tanh(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
}

pub fn gelu_tanh_grad(x: f64) -> f64 {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    let t = (k * (x + 0.044715 * x * x * x)).tanh();
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x)
}

/// out (tokens, dim) = table[ids].
pub fn embedding(ids: &[u32], table: &[f64], dim: usize) -> Vec<f64> {
    ids.iter().flat_map(|&i| table[i as usize * dim..(i as usize + 1) * dim].iter().cloned()).collect()
}

pub fn embedding_backward(ids: &[u32], dout: &[f64], vocab: usize, dim: usize) -> Vec<f64> {
    let mut d = vec![0.0; vocab * dim];
    for (t, &i) in ids.iter().enumerate() {
        for c in 0..dim {
            d[i as usize * dim + c] += dout[t * dim + c];
        }
    }
    d
}

/// (B, H, T, D) -> columns off..off+H*D of `dst` (B*T, cols); the inverse of [`split_heads`].
pub fn merge_heads(src: &[f64], dst: &mut [f64], hs: HeadSplit, cols: usize, off: usize) {
    let HeadSplit { b, t, h, d, .. } = hs;
    for bi in 0..b {
        for hi in 0..h {
            for ti in 0..t {
                for di in 0..d {
                    dst[(bi * t + ti) * cols + off + hi * d + di] = src[((bi * h + hi) * t + ti) * d + di];
                }
            }
        }
    }
}

/// (B*T, cols)[:, off..off+H*D] -> (B, H, T, D)
pub fn split_heads(src: &[f64], hs: HeadSplit, cols: usize, off: usize) -> Vec<f64> {
    let HeadSplit { b, t, h, d, .. } = hs;
    let mut out = vec![0.0; b * h * t * d];
    for bi in 0..b {
        for hi in 0..h {
            for ti in 0..t {
                for di in 0..d {
                    out[((bi * h + hi) * t + ti) * d + di] = src[(bi * t + ti) * cols + off + hi * d + di];
                }
            }
        }
    }
    out
}

/// Attention forward: returns (probs (B,H,T,T), ctx (B,H,T,D)).
pub fn attention(q: &[f64], k: &[f64], v: &[f64], mask: Option<&[f64]>, hs: HeadSplit) -> (Vec<f64>, Vec<f64>) {
    let HeadSplit { b, t, h, d, .. } = hs;
    let scores = matmul(q, k, None, &Matmul::new(t, t, d).batch(b * h).trans_b());
    let probs = softmax(&scores, mask, b * h * t, t, h * t, 1.0 / (d as f64).sqrt());
    let ctx = matmul(&probs, v, None, &Matmul::new(t, d, t).batch(b * h));
    (probs, ctx)
}

/// Returns (dq, dk, dv).
pub fn attention_backward(dctx: &[f64], q: &[f64], k: &[f64], v: &[f64], probs: &[f64], hs: HeadSplit) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (bh, t, d) = (hs.b * hs.h, hs.t, hs.d);
    let dprobs = matmul(dctx, v, None, &Matmul::new(t, t, d).batch(bh).trans_b());
    let dv = matmul(probs, dctx, None, &Matmul::new(t, d, t).batch(bh).trans_a());
    let ds = softmax_backward(probs, &dprobs, bh * t, t, 1.0 / (d as f64).sqrt());
    let dq = matmul(&ds, k, None, &Matmul::new(t, d, t).batch(bh));
    let dk = matmul(&ds, q, None, &Matmul::new(t, d, t).batch(bh).trans_a());
    (dq, dk, dv)
}

fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Whether dropout keeps element `i` under `seed`: the same hash as shaders/dropout.wgsl.
pub fn dropout_keep(seed: u64, i: u32, prob: f32) -> bool {
    let k1 = fmix32(seed as u32 ^ 0x3c6e_f372);
    let k2 = fmix32(((seed >> 32) as u32).wrapping_add(k1));
    let h = fmix32(fmix32(i.wrapping_add(k1)) ^ k2);
    ((h >> 8) as f32) * (1.0 / 16_777_216.0) >= prob
}

pub fn dropout(x: &[f64], prob: f32, seed: u64) -> Vec<f64> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| if dropout_keep(seed, i as u32, prob) { v / (1.0 - prob as f64) } else { 0.0 })
        .collect()
}

/// Mean cross-entropy over rows whose label is in [0, classes); 0 when there are none.
pub fn cross_entropy(logits: &[f64], labels: &[i32], classes: usize) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for (r, &l) in labels.iter().enumerate() {
        if l < 0 || l as usize >= classes {
            continue;
        }
        let row = &logits[r * classes..(r + 1) * classes];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        s += lse - row[l as usize];
        c += 1.0;
    }
    if c > 0.0 {
        s / c
    } else {
        0.0
    }
}

pub fn cross_entropy_backward(logits: &[f64], labels: &[i32], classes: usize, weight: f64) -> Vec<f64> {
    let count = labels.iter().filter(|&&l| l >= 0 && (l as usize) < classes).count() as f64;
    let mut d = vec![0.0; logits.len()];
    for (r, &l) in labels.iter().enumerate() {
        if l < 0 || l as usize >= classes {
            continue;
        }
        let row = &logits[r * classes..(r + 1) * classes];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
        for j in 0..classes {
            let p = (row[j] - m).exp() / s;
            d[r * classes + j] = weight * (p - if j == l as usize { 1.0 } else { 0.0 }) / count;
        }
    }
    d
}

/// AdamW's settings for [`adamw_step`], in f64.
#[derive(Clone, Copy, Debug)]
pub struct AdamWSettings {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// torch.optim.AdamW's update for one tensor at step `t` (1-based), gradients already clipped.
pub fn adamw_step(p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64], t: u32, s: AdamWSettings) {
    let AdamWSettings { lr, beta1: b1, beta2: b2, eps, weight_decay: wd } = s;
    let bc1 = 1.0 - b1.powi(t as i32);
    let bc2 = 1.0 - b2.powi(t as i32);
    for i in 0..p.len() {
        p[i] *= 1.0 - lr * wd;
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        let denom = v[i].sqrt() / bc2.sqrt() + eps;
        p[i] -= lr / bc1 * m[i] / denom;
    }
}

/// torch.nn.utils.clip_grad_norm_'s factor: min(1, max_norm / (norm + 1e-6)), and the norm.
pub fn clip_factor(grads: &[&[f64]], max_norm: f64) -> (f64, f64) {
    let norm = grads.iter().flat_map(|g| g.iter()).map(|x| x * x).sum::<f64>().sqrt();
    let f = if max_norm > 0.0 { (max_norm / (norm + 1e-6)).min(1.0) } else { 1.0 };
    (f, norm)
}

/// The `k` most likely entries of one row of logits, (id, softmax probability), in (logit
/// descending, id ascending) order: the reference of shaders/sample.wgsl's candidates.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f64)> {
    let mut idx: Vec<u32> = (0..logits.len() as u32).filter(|&i| !logits[i as usize].is_nan()).collect();
    idx.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]).then(a.cmp(&b)));
    idx.truncate(k);
    let m = idx.first().map(|&i| logits[i as usize] as f64).unwrap_or(0.0);
    let z: f64 = logits.iter().filter(|x| !x.is_nan()).map(|&x| (x as f64 - m).exp()).sum();
    idx.into_iter().map(|i| (i, (logits[i as usize] as f64 - m).exp() / z)).collect()
}

/// The token a draw with uniform `u` in [0, 1) picks among the first `top_k` of `cands` (id,
/// logit), most likely first: weights exp((l_i - l_0) / T), i.e. softmax(logits / T) over the top
/// k; the first when `top_k` is 1. Also returns how close `u` fell to a boundary between two
/// tokens, as a fraction of the total weight (a float kernel may round across one that close).
pub fn draw(cands: &[(u32, f64)], top_k: usize, temperature: f64, u: f64) -> Option<(u32, f64)> {
    let n = top_k.min(cands.len());
    if n <= 1 {
        return cands.first().map(|c| (c.0, 1.0));
    }
    let w: Vec<f64> = cands[..n].iter().map(|c| ((c.1 - cands[0].1) / temperature).exp()).collect();
    let total: f64 = w.iter().sum();
    let mut t = u * total;
    for (c, wi) in cands.iter().zip(&w) {
        if t < *wi {
            return Some((c.0, t.min(wi - t) / total));
        }
        t -= wi;
    }
    Some((cands[n - 1].0, 0.0))
}
