//! Group-relative advantages (TRL 1.16 `_generate_and_score_completions`), in plain `f64`.

use serde::{Deserialize, Serialize};

/// How the centred rewards are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// Divide by the std of the reward's own group (original GRPO).
    Group,
    /// Divide by one std over the whole batch of rewards.
    Batch,
    /// Don't divide (Dr. GRPO).
    None,
}

/// Added to the std (not the variance) before dividing, as in TRL.
pub const REWARD_STD_EPS: f64 = 1e-4;

/// A group whose std is at most this counts as a zero-std group (TRL's
/// `torch.isclose(std, 0)`, whose absolute tolerance is 1e-8).
pub const ZERO_STD_ATOL: f64 = 1e-8;

/// Advantages of one batch of rewards.
#[derive(Debug, Clone, PartialEq)]
pub struct Advantages {
    /// One advantage per reward, in the rewards' order.
    pub values: Vec<f64>,
    /// Groups whose rewards are all equal (their std is ≤ [`ZERO_STD_ATOL`]): their advantages
    /// are 0 (exactly 0 when the rewards are exactly equal), so they contribute no policy
    /// gradient.
    pub zero_std_groups: usize,
    /// Mean over groups of each group's (Bessel-corrected) reward std, whatever `scale` is;
    /// 0 for no rewards.
    pub group_std_mean: f64,
}

/// Advantages of `rewards`, grouped in consecutive blocks of `group_size`: each reward minus its
/// group's mean, divided by `std + REWARD_STD_EPS` per `scale` (see [`ScaleRewards`]). Stds are
/// Bessel-corrected (divide by n − 1), as `torch.std`.
///
/// # Panics
/// If `group_size < 2`, `rewards.len()` is not a multiple of `group_size`, or a reward is not
/// finite.
pub fn advantages(rewards: &[f64], group_size: usize, scale: ScaleRewards) -> Advantages {
    assert!(
        group_size >= 2,
        "group_size must be at least 2 to compare completions, got {group_size}"
    );
    assert!(
        rewards.len().is_multiple_of(group_size),
        "{} rewards do not split into groups of {group_size}",
        rewards.len()
    );
    if let Some(bad) = rewards.iter().find(|r| !r.is_finite()) {
        panic!("reward {bad} is not finite");
    }

    let stats: Vec<(f64, f64)> = rewards.chunks(group_size).map(mean_std).collect();
    let batch_std = match scale {
        ScaleRewards::Batch if !rewards.is_empty() => mean_std(rewards).1,
        _ => 0.0,
    };
    let values = rewards
        .chunks(group_size)
        .zip(&stats)
        .flat_map(|(group, &(mean, std))| {
            group.iter().map(move |&r| {
                let centred = r - mean;
                match scale {
                    ScaleRewards::Group => centred / (std + REWARD_STD_EPS),
                    ScaleRewards::Batch => centred / (batch_std + REWARD_STD_EPS),
                    ScaleRewards::None => centred,
                }
            })
        })
        .collect();
    let zero_std_groups = stats
        .iter()
        .filter(|&&(_, std)| std <= ZERO_STD_ATOL)
        .count();
    let group_std_mean = if stats.is_empty() {
        0.0
    } else {
        stats.iter().map(|&(_, std)| std).sum::<f64>() / stats.len() as f64
    };
    Advantages {
        values,
        zero_std_groups,
        group_std_mean,
    }
}

/// Whether a group's rewards differ (std above [`ZERO_STD_ATOL`]): a group whose rewards are all
/// equal has zero advantages and gives no policy gradient (DAPO's dynamic sampling drops it).
pub fn group_has_signal(rewards: &[f64]) -> bool {
    rewards.len() >= 2 && mean_std(rewards).1 > ZERO_STD_ATOL
}

/// Mean and Bessel-corrected std of `xs` (at least 2 values). Exactly equal values give their
/// own value as the mean and a std of exactly 0, so their advantages are exactly 0.
fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.iter().all(|&x| x == xs[0]) {
        return (xs[0], 0.0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|&x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}
