//! Classification metrics: accuracy, macro-F1 and the confusion matrix.

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    pub loss: f32,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// confusion[true][predicted]
    pub confusion: Vec<Vec<usize>>,
}

pub fn argmax(p: &[f32]) -> usize {
    p.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0
}

/// Metrics of predicted class probabilities against true classes; `loss` is the mean cross-entropy.
pub fn evaluate(probs: &[Vec<f32>], truth: &[usize], classes: usize) -> Metrics {
    let mut confusion = vec![vec![0usize; classes]; classes];
    let mut loss = 0.0f64;
    for (p, &t) in probs.iter().zip(truth) {
        confusion[t][argmax(p)] += 1;
        loss -= (p[t].max(1e-12) as f64).ln();
    }
    let n = truth.len().max(1);
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let mut f1 = 0.0;
    for c in 0..classes {
        let tp = confusion[c][c] as f64;
        let fp: f64 = (0..classes).filter(|&r| r != c).map(|r| confusion[r][c] as f64).sum();
        let fneg: f64 = (0..classes).filter(|&p| p != c).map(|p| confusion[c][p] as f64).sum();
        let denom = 2.0 * tp + fp + fneg;
        f1 += if denom > 0.0 { 2.0 * tp / denom } else { 0.0 };
    }
    Metrics { loss: (loss / n as f64) as f32, accuracy: correct as f64 / n as f64, macro_f1: f1 / classes.max(1) as f64, confusion }
}

/// Accuracy of always predicting the most frequent class of `train` on `truth`.
pub fn majority_baseline(train: &[usize], truth: &[usize], classes: usize) -> f64 {
    let mut counts = vec![0usize; classes];
    for &t in train {
        counts[t] += 1;
    }
    let maj = counts.iter().enumerate().max_by_key(|(_, c)| **c).map(|(i, _)| i).unwrap_or(0);
    truth.iter().filter(|&&t| t == maj).count() as f64 / truth.len().max(1) as f64
}
