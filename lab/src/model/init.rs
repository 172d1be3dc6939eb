//! Deterministic weight initialisation, independent of burn's RNG.
//!
//! burn seeds its initialisers through a per-backend generator (`Device::seed`), whose stream is
//! the backend's business and may change between versions. The lab draws every initial weight
//! itself from [`crate::rng::Rng`], one stream per tensor named by the tensor
//! (`Rng::derive(init_seed, "model/init/<name>")`), so a weight depends only on the seed, the
//! tensor's name and its shape: not on the backend, the order tensors are built in, or the
//! process.
//!
//! Scheme (GPT-2 style):
//! - norm gains: 1;
//! - every matrix (embedding included): normal with std 0.02;
//! - matrices that write into the residual stream (`attn.wo`, `mlp.w_down`): std
//!   `0.02 / sqrt(2·n_layers)`.
//!
//! The normal variate is Irwin–Hall: the sum of 12 uniforms on [0, 1) minus 6 (mean 0,
//! variance 1, bounded by ±6). It uses only additions and multiplications, so the values are
//! bit-identical on every platform (no `ln`/`cos` from the system's libm).

use super::config::ModelConfig;
use crate::rng::Rng;

/// The initial values of the tensor `name`, row-major, `shape.iter().product()` of them.
pub fn initial_values(config: &ModelConfig, name: &str, shape: &[usize]) -> Vec<f32> {
    let count: usize = shape.iter().product();
    if shape.len() == 1 {
        return vec![1.0; count];
    }
    let mut std = 0.02;
    if name.ends_with("attn.wo.weight") || name.ends_with("mlp.w_down.weight") {
        std /= (2.0 * config.n_layers as f64).sqrt();
    }
    let mut rng = Rng::derive(config.init_seed, &format!("model/init/{name}"));
    (0..count)
        .map(|_| {
            let z: f64 = (0..12).map(|_| rng.next_f64()).sum::<f64>() - 6.0;
            (z * std) as f32
        })
        .collect()
}
