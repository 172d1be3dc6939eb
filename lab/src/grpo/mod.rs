//! GRPO (DeepSeekMath, R1 §2.2.1) as pure functions, with TRL 1.16's semantics.
//!
//! - [`advantages`](advantages()): group-relative advantages from rewards (plain `f64`, no burn).
//! - [`grpo_objective`]: the clipped surrogate plus the k3 KL penalty, reduced per [`LossType`],
//!   differentiable in the current policy's log-probs.
//!
//! # The formulas
//! Rewards come in consecutive groups of `G` completions of one prompt. With `mean_g` the mean of
//! the reward's own group and `std` Bessel-corrected (divide by `G - 1`):
//! ```text
//! group: A_i = (r_i - mean_g) / (std_g + 1e-4)       std of the reward's own group
//! batch: A_i = (r_i - mean_g) / (std_all + 1e-4)     one std over all rewards (around the global mean)
//! none:  A_i =  r_i - mean_g                         Dr. GRPO
//! ```
//! Per token `(b, t)` of the completion, with `A = A_b` broadcast over the row:
//! ```text
//! r    = exp(logp - old_logp)
//! rc   = clamp(r, 1 - epsilon_low, 1 + epsilon_high)
//! k3   = exp(ref - logp) - (ref - logp) - 1            (>= 0)
//! kl   = k3 · r   if kl_ratio_correction (TRL's use_bias_correction_kl), else k3
//! L    = -min(r·A, rc·A) + beta · kl
//! ```
//! and the masked losses `L·mask` are reduced by [`LossType`]:
//! ```text
//! grpo:    (1/B) Σ_b (Σ_t L·mask) / max(n_b, 1)        an empty row adds 0 but counts in B
//! bnpo:    Σ L·mask / max(N, 1)                        N = Σ mask
//! dr_grpo: Σ L·mask / (B · max_completion_length)
//! dapo:    Σ L·mask / max(N, 1)                        equals bnpo in one process
//! ```
//! The golden test vectors in `tests/fixtures/grpo_trl_golden.json` come from TRL's own
//! `_compute_loss` and `_generate_and_score_completions`; the tests check this module against
//! them (see `tests.rs` for the tolerances).

pub mod advantages;
pub mod objective;

#[cfg(test)]
mod tests;

pub use advantages::{
    advantages, group_has_signal, Advantages, ScaleRewards, REWARD_STD_EPS, ZERO_STD_ATOL,
};
pub use objective::{
    grpo_objective, micro_batch_share, LossType, Objective, ObjectiveConfig, ObjectiveInputs,
    ObjectiveStats,
};
