//! The GRPO objective over burn tensors (TRL 1.16 `GRPOTrainer._compute_loss`, token-level
//! importance sampling, one process, no gradient accumulation).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// How the masked per-token losses are normalised (see the module docs of [`crate::grpo`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// Per-sequence mean, then mean over all rows (original GRPO; favours short wrong answers
    /// less than long ones).
    Grpo,
    /// Sum over the batch divided by the batch's token count.
    Bnpo,
    /// Sum over the batch divided by `rows · max_completion_length` (Dr. GRPO).
    DrGrpo,
    /// Sum over the batch divided by the generation batch's token count (DAPO); in one process
    /// with one optimisation batch per generation batch this is bnpo.
    Dapo,
}

/// Settings of the objective, named as in TRL where they have a TRL counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveConfig {
    pub loss_type: LossType,
    /// The ratio's lower clip bound is `1 - epsilon_low`.
    pub epsilon_low: f64,
    /// The ratio's upper clip bound is `1 + epsilon_high` (clip-higher when above `epsilon_low`).
    pub epsilon_high: f64,
    /// Weight of the k3 KL penalty to the reference policy; 0 turns it off.
    pub beta: f64,
    /// Multiply the per-token KL by the importance ratio (TRL's `use_bias_correction_kl`,
    /// default true there).
    pub kl_ratio_correction: bool,
    /// dr_grpo's normalising constant (per row); the other loss types ignore it.
    pub max_completion_length: usize,
}

impl ObjectiveConfig {
    /// Every problem at once, as `(field, reason)`.
    pub fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut bad = |field: &str, reason: String| problems.push((field.to_string(), reason));
        if !(self.epsilon_low.is_finite() && (0.0..=1.0).contains(&self.epsilon_low)) {
            bad(
                "epsilon_low",
                format!("must be in [0, 1], got {}", self.epsilon_low),
            );
        }
        if !(self.epsilon_high.is_finite() && self.epsilon_high >= 0.0) {
            bad(
                "epsilon_high",
                format!("must be finite and >= 0, got {}", self.epsilon_high),
            );
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            bad(
                "beta",
                format!("must be finite and >= 0, got {}", self.beta),
            );
        }
        if self.loss_type == LossType::DrGrpo && self.max_completion_length == 0 {
            bad(
                "max_completion_length",
                "must be > 0 for loss_type dr_grpo".into(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// One optimisation batch: `B` completions (rows) of `T` positions, right-padded.
#[derive(Debug, Clone)]
pub struct ObjectiveInputs {
    /// `[B, T]` log-probs of the sampled tokens under the current policy; the loss is
    /// differentiated with respect to this.
    pub logp: Tensor<2>,
    /// `[B, T]` log-probs under the policy that sampled the data (equal to `logp`'s values on the
    /// first step after sampling). Treated as a constant.
    pub old_logp: Tensor<2>,
    /// `[B, T]` log-probs under the frozen reference. Required when `beta != 0`; when given with
    /// `beta == 0` it only feeds [`ObjectiveStats::kl_mean`]. Treated as a constant.
    pub ref_logp: Option<Tensor<2>>,
    /// `[B, T]` float 0/1 completion mask. Values of the other inputs where it is 0 never affect
    /// the loss, its gradient or the stats.
    pub mask: Tensor<2>,
    /// `[B]` one advantage per row. Treated as a constant.
    pub advantages: Tensor<1>,
}

/// The loss and what to log about it.
#[derive(Debug, Clone)]
pub struct Objective {
    /// One element, differentiable in [`ObjectiveInputs::logp`]; minimise it.
    pub loss: Tensor<1>,
    pub stats: ObjectiveStats,
}

/// Diagnostics over the masked tokens, read out without gradients. All are 0 when no token is
/// unmasked.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ObjectiveStats {
    /// Masked mean of the k3 estimator before the ratio correction; 0 without `ref_logp`.
    /// (TRL logs `kl` after the correction; on-policy the two agree.)
    pub kl_mean: f64,
    /// Share of tokens with `r < 1 - epsilon_low` and `A < 0`.
    pub clip_ratio_low: f64,
    /// Share of tokens with `r > 1 + epsilon_high` and `A > 0`.
    pub clip_ratio_high: f64,
    /// Share of tokens clipped on either side (the tokens with no policy gradient).
    pub clip_ratio_region: f64,
}

/// The GRPO loss of one batch (see the module docs of [`crate::grpo`] for the formulas).
///
/// Masked positions are replaced by a log-ratio of 0 *before* exponentiating, so arbitrary
/// (even huge) values there cannot overflow into `inf · 0 = NaN`, and their gradient is exactly
/// 0.
///
/// # Panics
/// If `config` is invalid ([`ObjectiveConfig::validate`]), the shapes disagree, or `beta != 0`
/// without `ref_logp`.
pub fn grpo_objective(inputs: ObjectiveInputs, config: &ObjectiveConfig) -> Objective {
    if let Err(problems) = config.validate() {
        panic!("invalid objective config: {problems:?}");
    }
    let ObjectiveInputs {
        logp,
        old_logp,
        ref_logp,
        mask,
        advantages,
    } = inputs;
    let [rows, cols] = logp.dims();
    assert_eq!(
        old_logp.dims(),
        [rows, cols],
        "old_logp's shape differs from logp's"
    );
    assert_eq!(
        mask.dims(),
        [rows, cols],
        "mask's shape differs from logp's"
    );
    assert_eq!(
        advantages.dims(),
        [rows],
        "need one advantage per row of logp"
    );
    if let Some(reference) = &ref_logp {
        assert_eq!(
            reference.dims(),
            [rows, cols],
            "ref_logp's shape differs from logp's"
        );
    }
    assert!(
        config.beta == 0.0 || ref_logp.is_some(),
        "beta = {} needs ref_logp",
        config.beta
    );

    let mask = mask.detach();
    let padding = mask.clone().lower_elem(0.5);
    let adv = advantages.detach().unsqueeze_dim::<2>(1); // [B, 1], broadcast over the row

    let log_ratio = (logp.clone() - old_logp.detach()).mask_fill(padding.clone(), 0.0);
    let ratio = log_ratio.exp();
    let clipped = ratio
        .clone()
        .clamp(1.0 - config.epsilon_low, 1.0 + config.epsilon_high);
    let surrogate = (ratio.clone() * adv.clone()).min_pair(clipped * adv.clone());
    let mut per_token = surrogate.neg();

    let k3 = ref_logp.map(|reference| {
        let delta = (reference.detach() - logp).mask_fill(padding, 0.0);
        delta.clone().exp() - delta - 1.0
    });
    if let (Some(k3), true) = (&k3, config.beta != 0.0) {
        let kl = if config.kl_ratio_correction {
            k3.clone() * ratio.clone()
        } else {
            k3.clone()
        };
        per_token = per_token + kl.mul_scalar(config.beta);
    }

    let masked = per_token * mask.clone();
    let loss = match config.loss_type {
        LossType::Grpo => {
            let tokens = mask.clone().sum_dim(1).clamp_min(1.0);
            (masked.sum_dim(1) / tokens).mean()
        }
        LossType::Bnpo | LossType::Dapo => masked.sum() / mask.clone().sum().clamp_min(1.0),
        LossType::DrGrpo => masked
            .sum()
            .div_scalar((rows * config.max_completion_length) as f64),
    };

    let stats = stats(
        config,
        cols,
        &values(ratio.detach()),
        k3.map(|k3| values(k3.detach())).as_deref(),
        &values(mask),
        &values(adv),
    );
    Objective { loss, stats }
}

/// The factor that turns the loss of a micro-batch (computed by [`grpo_objective`] on its rows
/// alone) into its share of the whole batch's loss, so that the shares add up to the loss of
/// the batch: `rows` and `tokens` (unmasked) are the micro-batch's, `batch_rows` and
/// `batch_tokens` the whole batch's. Exactly 1 when the micro-batch is the whole batch.
pub fn micro_batch_share(
    loss_type: LossType,
    rows: usize,
    tokens: usize,
    batch_rows: usize,
    batch_tokens: usize,
) -> f64 {
    if rows == batch_rows && tokens == batch_tokens {
        return 1.0;
    }
    match loss_type {
        // Per-row means averaged over rows; a constant per row: both divide by the rows.
        LossType::Grpo | LossType::DrGrpo => rows as f64 / batch_rows.max(1) as f64,
        // Token sums over the number of unmasked tokens (at least 1).
        LossType::Bnpo | LossType::Dapo => tokens.max(1) as f64 / batch_tokens.max(1) as f64,
    }
}

impl ObjectiveStats {
    /// The statistics of a batch from those of its micro-batches and their unmasked tokens:
    /// every statistic is a mean over tokens, so the merge weighs by tokens.
    pub fn merge(parts: &[(ObjectiveStats, usize)]) -> ObjectiveStats {
        let tokens: usize = parts.iter().map(|p| p.1).sum();
        if tokens == 0 {
            return ObjectiveStats::default();
        }
        let weighted = |f: fn(&ObjectiveStats) -> f64| {
            parts.iter().map(|(s, n)| f(s) * *n as f64).sum::<f64>() / tokens as f64
        };
        ObjectiveStats {
            kl_mean: weighted(|s| s.kl_mean),
            clip_ratio_low: weighted(|s| s.clip_ratio_low),
            clip_ratio_high: weighted(|s| s.clip_ratio_high),
            clip_ratio_region: weighted(|s| s.clip_ratio_region),
        }
    }
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float tensor data")
}

/// TRL's clip and KL metrics, from the read-out ratio, k3, mask and advantages. The bounds are
/// compared in f32, as the clamp in the loss does.
fn stats(
    config: &ObjectiveConfig,
    cols: usize,
    ratio: &[f32],
    k3: Option<&[f32]>,
    mask: &[f32],
    adv: &[f32],
) -> ObjectiveStats {
    let low = (1.0 - config.epsilon_low) as f32;
    let high = (1.0 + config.epsilon_high) as f32;
    let (mut tokens, mut kl, mut n_low, mut n_high) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (i, (&r, &m)) in ratio.iter().zip(mask).enumerate() {
        if m < 0.5 {
            continue;
        }
        tokens += 1.0;
        let a = adv[i / cols];
        if r < low && a < 0.0 {
            n_low += 1.0;
        }
        if r > high && a > 0.0 {
            n_high += 1.0;
        }
        if let Some(k3) = k3 {
            kl += f64::from(k3[i]);
        }
    }
    if tokens == 0.0 {
        return ObjectiveStats::default();
    }
    ObjectiveStats {
        kl_mean: kl / tokens,
        clip_ratio_low: n_low / tokens,
        clip_ratio_high: n_high / tokens,
        // A token cannot be clipped on both sides (A < 0 and A > 0), so the shares add up.
        clip_ratio_region: (n_low + n_high) / tokens,
    }
}
