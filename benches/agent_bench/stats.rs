//! Order statistics of the samples a mode collects: median and percentiles.
//!
//! Owns no measurement; `lambda` and `memory` hand it their samples. Percentiles are taken by
//! the nearest-rank method, so every figure printed is one that was actually measured.

/// The sample at percentile `percent` (0 to 100) by nearest rank; `NaN` for no samples.
pub fn percentile(samples: &[f64], percent: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median: the upper middle sample for an even count, so it too was measured.
pub fn median(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
