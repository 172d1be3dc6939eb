//! GRPO against TRL's golden vectors and hand-worked examples.
//!
//! # Tolerance
//! burn computes in f32 while TRL's golden values are float64, so losses and gradients are
//! compared with `|got - want| <= 1e-5 · |want| + 1e-6` ([`REL_TOL`], [`ABS_TOL`]). Advantages
//! are plain f64 and must agree to 1e-9 ([`ADV_TOL`]).

use burn::prelude::*;
use serde::Deserialize;

use super::*;

const REL_TOL: f64 = 1e-5;
const ABS_TOL: f64 = 1e-6;
const ADV_TOL: f64 = 1e-9;

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= REL_TOL * want.abs() + ABS_TOL
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!(close(got, want), "{what}: got {got}, want {want}");
}

fn assert_all_close(got: &[Vec<f64>], want: &[Vec<f64>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: rows");
    for (b, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: row {b} length");
        for (t, (&g, &w)) in g.iter().zip(w).enumerate() {
            assert_close(g, w, &format!("{what} [{b}, {t}]"));
        }
    }
}

fn device() -> Device {
    Device::flex().autodiff()
}

fn matrix(rows: &[Vec<f64>], device: &Device) -> Tensor<2> {
    let cols = rows[0].len();
    assert!(rows.iter().all(|r| r.len() == cols), "ragged matrix");
    let flat: Vec<f32> = rows.iter().flatten().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), cols]), device)
}

fn vector(xs: &[f64], device: &Device) -> Tensor<1> {
    let flat: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(flat, [xs.len()]), device)
}

/// A 0/1 mask with `lens[b]` leading ones in row `b`.
fn mask_of(lens: &[usize], cols: usize) -> Vec<Vec<f64>> {
    lens.iter()
        .map(|&n| (0..cols).map(|t| if t < n { 1.0 } else { 0.0 }).collect())
        .collect()
}

struct Case<'a> {
    logp: &'a [Vec<f64>],
    old_logp: &'a [Vec<f64>],
    ref_logp: Option<&'a [Vec<f64>]>,
    mask: &'a [Vec<f64>],
    advantages: &'a [f64],
}

struct Run {
    loss: f64,
    grad: Vec<Vec<f64>>,
    stats: ObjectiveStats,
}

/// The loss, `d loss / d logp` and the stats of `case` on the autodiff flex device.
fn run(case: &Case, config: &ObjectiveConfig) -> Run {
    let device = device();
    let logp = matrix(case.logp, &device).require_grad();
    let objective = grpo_objective(
        ObjectiveInputs {
            logp: logp.clone(),
            old_logp: matrix(case.old_logp, &device),
            ref_logp: case.ref_logp.map(|r| matrix(r, &device)),
            mask: matrix(case.mask, &device),
            advantages: vector(case.advantages, &device),
        },
        config,
    );
    assert_eq!(objective.loss.dims(), [1]);
    let grads = objective.loss.backward();
    let loss = f64::from(objective.loss.into_scalar::<f32>());
    let grad: Vec<f64> = logp
        .grad(&grads)
        .expect("logp has a gradient")
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect();
    let cols = case.logp[0].len();
    Run {
        loss,
        grad: grad.chunks(cols).map(<[f64]>::to_vec).collect(),
        stats: objective.stats,
    }
}

fn config(loss_type: LossType) -> ObjectiveConfig {
    ObjectiveConfig {
        loss_type,
        epsilon_low: 0.2,
        epsilon_high: 0.2,
        beta: 0.0,
        kl_ratio_correction: true,
        max_completion_length: 4,
    }
}

const LOSS_TYPES: [LossType; 4] = [
    LossType::Grpo,
    LossType::Bnpo,
    LossType::DrGrpo,
    LossType::Dapo,
];

// ---------------------------------------------------------------------------------------------
// Golden vectors from TRL 1.16 (tests/fixtures/grpo_trl_golden.md explains them)

#[derive(Deserialize)]
struct Golden {
    loss_cases: Vec<GoldenLoss>,
    advantage_cases: Vec<GoldenAdvantages>,
}

#[derive(Deserialize)]
struct GoldenLoss {
    name: String,
    loss_type: LossType,
    epsilon_low: f64,
    epsilon_high: f64,
    beta: f64,
    use_bias_correction_kl: bool,
    max_completion_length: usize,
    num_items_in_batch: usize,
    logp: Vec<Vec<f64>>,
    old_logp: Vec<Vec<f64>>,
    ref_logp: Option<Vec<Vec<f64>>>,
    mask: Vec<Vec<f64>>,
    advantages: Vec<f64>,
    expected_loss: f64,
    expected_grad_logp: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
struct GoldenAdvantages {
    name: String,
    scale_rewards: ScaleRewards,
    group_size: usize,
    rewards: Vec<f64>,
    expected_advantages: Vec<f64>,
}

impl GoldenLoss {
    fn config(&self) -> ObjectiveConfig {
        ObjectiveConfig {
            loss_type: self.loss_type,
            epsilon_low: self.epsilon_low,
            epsilon_high: self.epsilon_high,
            beta: self.beta,
            kl_ratio_correction: self.use_bias_correction_kl,
            max_completion_length: self.max_completion_length,
        }
    }

    /// The whole batch of the case.
    fn whole(&self) -> Case<'_> {
        Case {
            logp: &self.logp,
            old_logp: &self.old_logp,
            ref_logp: self.ref_logp.as_deref(),
            mask: &self.mask,
            advantages: &self.advantages,
        }
    }
}

fn golden() -> Golden {
    let path = std::env::var("GRPO_GOLDEN").unwrap_or(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/grpo_trl_golden.json"
        )
        .into(),
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

#[test]
fn golden_losses_and_gradients_match_trl() {
    let golden = golden();
    assert!(golden.loss_cases.len() >= 15);
    let mut seen = std::collections::BTreeSet::new();
    let (mut loss_abs, mut loss_rel, mut grad_abs, mut grad_rel) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for case in &golden.loss_cases {
        seen.insert(format!("{:?}", case.loss_type));
        let total: f64 = case.mask.iter().flatten().sum();
        assert_eq!(total as usize, case.num_items_in_batch, "{}", case.name);
        let config = case.config();
        let got = run(&case.whole(), &config);
        assert_close(got.loss, case.expected_loss, &format!("{} loss", case.name));
        assert_all_close(
            &got.grad,
            &case.expected_grad_logp,
            &format!("{} d loss / d logp", case.name),
        );
        let err = (got.loss - case.expected_loss).abs();
        loss_abs = loss_abs.max(err);
        loss_rel = loss_rel.max(err / case.expected_loss.abs());
        for (g, w) in got
            .grad
            .iter()
            .flatten()
            .zip(case.expected_grad_logp.iter().flatten())
        {
            if *w == 0.0 {
                assert_eq!(*g, 0.0, "{}: a zero gradient must be exactly 0", case.name);
            } else {
                grad_abs = grad_abs.max((g - w).abs());
                grad_rel = grad_rel.max((g - w).abs() / w.abs());
            }
        }
    }
    assert_eq!(seen.len(), 4, "every loss type has golden cases: {seen:?}");
    println!(
        "golden: loss max abs {loss_abs:.2e} rel {loss_rel:.2e}; \
         grad max abs {grad_abs:.2e} rel {grad_rel:.2e} (nonzero entries)"
    );
}

#[test]
fn golden_losses_and_gradients_match_trl_over_micro_batches() {
    // Cut each case's rows into micro-batches of 2 (and the rest), weigh each micro-batch's
    // loss by `micro_batch_share`: the shares must add up to TRL's loss of the whole batch,
    // and each micro-batch's gradient must be TRL's gradient of those rows.
    let golden = golden();
    let mut split_cases = 0;
    for case in golden.loss_cases.iter().filter(|c| c.logp.len() > 2) {
        split_cases += 1;
        let config = case.config();
        let rows = case.logp.len();
        let tokens = |mask: &[Vec<f64>]| mask.iter().flatten().filter(|&&m| m > 0.5).count();
        let batch_tokens = tokens(&case.mask);
        let mut loss = 0.0;
        let mut grad = Vec::new();
        let mut stats = Vec::new();
        for start in (0..rows).step_by(2) {
            let range = start..(start + 2).min(rows);
            let part_tokens = tokens(&case.mask[range.clone()]);
            let got = run(
                &Case {
                    logp: &case.logp[range.clone()],
                    old_logp: &case.old_logp[range.clone()],
                    ref_logp: case.ref_logp.as_deref().map(|r| &r[range.clone()]),
                    mask: &case.mask[range.clone()],
                    advantages: &case.advantages[range.clone()],
                },
                &config,
            );
            let share =
                micro_batch_share(case.loss_type, range.len(), part_tokens, rows, batch_tokens);
            loss += share * got.loss;
            grad.extend(
                got.grad
                    .iter()
                    .map(|row| row.iter().map(|g| g * share).collect::<Vec<f64>>()),
            );
            stats.push((got.stats, part_tokens));
        }
        assert_close(loss, case.expected_loss, &format!("{} loss", case.name));
        assert_all_close(
            &grad,
            &case.expected_grad_logp,
            &format!("{} d loss / d logp", case.name),
        );
        let whole = run(&case.whole(), &config);
        let merged = ObjectiveStats::merge(&stats);
        for (got, want, what) in [
            (merged.kl_mean, whole.stats.kl_mean, "kl"),
            (merged.clip_ratio_low, whole.stats.clip_ratio_low, "low"),
            (merged.clip_ratio_high, whole.stats.clip_ratio_high, "high"),
            (
                merged.clip_ratio_region,
                whole.stats.clip_ratio_region,
                "region",
            ),
        ] {
            assert_close(got, want, &format!("{} merged {what}", case.name));
        }
    }
    assert!(split_cases >= 5, "only {split_cases} cases have 3+ rows");
}

#[test]
fn golden_advantages_match_trl() {
    let golden = golden();
    assert!(golden.advantage_cases.len() >= 6);
    let mut worst = 0.0f64;
    for case in &golden.advantage_cases {
        let got = advantages(&case.rewards, case.group_size, case.scale_rewards);
        assert_eq!(
            got.values.len(),
            case.expected_advantages.len(),
            "{}",
            case.name
        );
        for (i, (g, w)) in got.values.iter().zip(&case.expected_advantages).enumerate() {
            assert!(
                (g - w).abs() <= ADV_TOL,
                "{} [{i}]: got {g}, want {w}",
                case.name
            );
            worst = worst.max((g - w).abs());
        }
    }
    println!("golden advantages: max abs error {worst:.2e}");
}

// ---------------------------------------------------------------------------------------------
// Hand-worked examples

/// Every loss type × every reward scaling on one worked example.
///
/// Rewards `[0, 1, 2 | 3, 3, 3]`, groups of 3:
/// - group 1: mean 1, std² = ((-1)² + 0² + 1²) / 2 = 1; group 2: all equal, std 0.
/// - batch: mean 2, std² = (4 + 1 + 0 + 1 + 1 + 1) / 5 = 1.6.
/// - so `A = [-a, 0, a, 0, 0, 0]` with `a = 1 / (1 + 1e-4)` (group),
///   `a = 1 / (sqrt(1.6) + 1e-4)` (batch), `a = 1` (none); group 2 always gives 0 and is one
///   zero-std group; the mean of the group stds is (1 + 0) / 2 = 0.5 in every scaling.
///
/// On-policy (`old_logp = logp`) every ratio is 1, inside the clip range, so a token's loss is
/// `-A` and `d L / d logp = -A · r = -A`. Row lengths `n = [1, 2, 3, 0, 2, 1]` (B = 6, N = 9,
/// `max_completion_length` 4); only rows 0 (A = -a, 1 token) and 2 (A = a, 3 tokens) matter:
/// - grpo: loss = (1/6)·(a·1/1 - a·3/3) = 0: each row weighs the same, whatever its length;
///   grad row 0 = a / (6·1), row 2 = -a / (6·3).
/// - bnpo, dapo: loss = (a·1 - a·3) / 9 = -2a/9; grad row 0 = a/9, row 2 = -a/9.
/// - dr_grpo: loss = (a·1 - a·3) / (6·4) = -a/12; grad row 0 = a/24, row 2 = -a/24.
#[test]
fn every_loss_type_and_reward_scaling_by_hand() {
    let rewards = [0.0, 1.0, 2.0, 3.0, 3.0, 3.0];
    let lens = [1, 2, 3, 0, 2, 1];
    let mask = mask_of(&lens, 3);
    // Arbitrary log-probs; masked positions hold junk that must not matter.
    let logp: Vec<Vec<f64>> = (0..6)
        .map(|b| {
            (0..3)
                .map(|t| {
                    if t < lens[b] {
                        -0.3 - 0.4 * (b * 3 + t) as f64 / 7.0
                    } else {
                        50.0
                    }
                })
                .collect()
        })
        .collect();
    for scale in [ScaleRewards::Group, ScaleRewards::Batch, ScaleRewards::None] {
        let a = match scale {
            ScaleRewards::Group => 1.0 / (1.0 + REWARD_STD_EPS),
            ScaleRewards::Batch => 1.0 / (1.6f64.sqrt() + REWARD_STD_EPS),
            ScaleRewards::None => 1.0,
        };
        let adv = advantages(&rewards, 3, scale);
        let want = [-a, 0.0, a, 0.0, 0.0, 0.0];
        for (g, w) in adv.values.iter().zip(want) {
            assert!((g - w).abs() <= ADV_TOL, "{scale:?}: got {g}, want {w}");
        }
        assert_eq!(
            &adv.values[3..],
            &[0.0; 3],
            "{scale:?}: equal rewards give exactly 0"
        );
        assert_eq!(adv.zero_std_groups, 1, "{scale:?}");
        assert!((adv.group_std_mean - 0.5).abs() <= ADV_TOL, "{scale:?}");

        for loss_type in LOSS_TYPES {
            let (loss, g0, g2) = match loss_type {
                LossType::Grpo => (0.0, a / 6.0, -a / 18.0),
                LossType::Bnpo | LossType::Dapo => (-2.0 * a / 9.0, a / 9.0, -a / 9.0),
                LossType::DrGrpo => (-a / 12.0, a / 24.0, -a / 24.0),
            };
            let mut grad = vec![vec![0.0; 3]; 6];
            grad[0][0] = g0;
            grad[2] = vec![g2; 3];
            let got = run(
                &Case {
                    logp: &logp,
                    old_logp: &logp,
                    ref_logp: None,
                    mask: &mask,
                    advantages: &adv.values,
                },
                &config(loss_type),
            );
            let what = format!("{loss_type:?} × {scale:?}");
            assert_close(got.loss, loss, &format!("{what} loss"));
            assert_all_close(&got.grad, &grad, &format!("{what} grad"));
            assert_eq!(
                got.stats,
                ObjectiveStats::default(),
                "{what}: nothing clipped"
            );
        }
    }
}

/// A positive advantage makes gradient descent raise the log-probs of that row's tokens, a
/// negative one lower them, in every loss type; one small step lowers the loss.
#[test]
fn gradient_sign_follows_the_advantage() {
    let logp = vec![vec![-1.0, -0.5, -2.0], vec![-0.7, -1.5, -0.2]];
    let old = vec![vec![-1.05, -0.45, -2.1], vec![-0.65, -1.45, -0.25]];
    let mask = mask_of(&[3, 3], 3);
    let adv = [0.8, -1.2];
    for loss_type in LOSS_TYPES {
        let cfg = config(loss_type);
        let case = Case {
            logp: &logp,
            old_logp: &old,
            ref_logp: None,
            mask: &mask,
            advantages: &adv,
        };
        let before = run(&case, &cfg);
        assert!(
            before.grad[0].iter().all(|&g| g < 0.0),
            "{loss_type:?}: A > 0"
        );
        assert!(
            before.grad[1].iter().all(|&g| g > 0.0),
            "{loss_type:?}: A < 0"
        );
        let stepped: Vec<Vec<f64>> = logp
            .iter()
            .zip(&before.grad)
            .map(|(row, g)| row.iter().zip(g).map(|(x, g)| x - 0.01 * g).collect())
            .collect();
        assert!(stepped[0].iter().zip(&logp[0]).all(|(new, old)| new > old));
        assert!(stepped[1].iter().zip(&logp[1]).all(|(new, old)| new < old));
        let after = run(
            &Case {
                logp: &stepped,
                ..case
            },
            &cfg,
        );
        assert!(after.loss < before.loss, "{loss_type:?}: a descent step");
    }
}

/// The pessimistic clip, token by token (eps 0.2, so the range is [0.8, 1.2]); grpo with 4 rows
/// of 2 tokens, so each token's gradient is `-A·r / (4·2)` unless clipped:
///
/// | row | A  | r   | -min(rA, rcA)        | grad ·8 | clipped |
/// |-----|----|-----|----------------------|---------|---------|
/// | 0   | 1  | 1.5 | -min(1.5, 1.2) = -1.2 | 0       | high    |
/// | 0   | 1  | 0.5 | -min(0.5, 0.8) = -0.5 | -0.5    |         |
/// | 1   | -1 | 1.5 | -min(-1.5,-1.2) = 1.5 | 1.5     |         |
/// | 1   | -1 | 0.5 | -min(-0.5,-0.8) = 0.8 | 0       | low     |
/// | 2   | 2  | 1.1 | -2.2                  | -2.2    |         |
/// | 2   | 2  | 0.9 | -1.8                  | -1.8    |         |
/// | 3   | -2 | 1.1 | 2.2                   | 2.2     |         |
/// | 3   | -2 | 0.9 | 1.8                   | 1.8     |         |
///
/// Loss = (1/4)·((-1.2-0.5)/2 + (1.5+0.8)/2 + (-2.2-1.8)/2 + (2.2+1.8)/2) = 0.3/4 = 0.075.
#[test]
fn clipping_region_by_hand() {
    let ratios: [[f64; 2]; 4] = [[1.5, 0.5], [1.5, 0.5], [1.1, 0.9], [1.1, 0.9]];
    let old: Vec<Vec<f64>> = vec![vec![-1.0, -2.0]; 4];
    let logp: Vec<Vec<f64>> = ratios
        .iter()
        .zip(&old)
        .map(|(r, o)| vec![o[0] + r[0].ln(), o[1] + r[1].ln()])
        .collect();
    let mask = mask_of(&[2, 2, 2, 2], 2);
    let got = run(
        &Case {
            logp: &logp,
            old_logp: &old,
            ref_logp: None,
            mask: &mask,
            advantages: &[1.0, -1.0, 2.0, -2.0],
        },
        &config(LossType::Grpo),
    );
    assert_close(got.loss, 0.075, "loss");
    let want: Vec<Vec<f64>> = [[0.0, -0.5], [1.5, 0.0], [-2.2, -1.8], [2.2, 1.8]]
        .iter()
        .map(|row| row.iter().map(|g| g / 8.0).collect())
        .collect();
    assert_all_close(&got.grad, &want, "grad");
    assert_eq!(got.grad[0][0], 0.0, "A > 0, r > 1 + eps: no gradient");
    assert_eq!(got.grad[1][1], 0.0, "A < 0, r < 1 - eps: no gradient");
    assert_eq!(
        got.stats,
        ObjectiveStats {
            kl_mean: 0.0,
            clip_ratio_low: 1.0 / 8.0,
            clip_ratio_high: 1.0 / 8.0,
            clip_ratio_region: 2.0 / 8.0,
        }
    );
}

/// Clip-higher: with eps_low = 0.2, a token with A = 1 and r = 1.25 is clipped by a symmetric
/// eps_high = 0.2 (no gradient) but not by eps_high = 0.28 (gradient -A·r / (2 rows) = -0.625);
/// a token with A = -1 and r = 0.75 stays clipped by the unchanged lower bound.
#[test]
fn clip_higher_changes_which_tokens_are_clipped() {
    let old = vec![vec![-1.0], vec![-1.0]];
    let logp = vec![vec![-1.0 + 1.25f64.ln()], vec![-1.0 + 0.75f64.ln()]];
    let mask = mask_of(&[1, 1], 1);
    let case = Case {
        logp: &logp,
        old_logp: &old,
        ref_logp: None,
        mask: &mask,
        advantages: &[1.0, -1.0],
    };
    let symmetric = run(&case, &config(LossType::Grpo));
    assert_eq!(symmetric.grad, vec![vec![0.0], vec![0.0]]);
    // -(1.2·1 + 0.8·(-1)) / 2 = -0.2
    assert_close(symmetric.loss, -0.2, "symmetric loss");
    assert_eq!(symmetric.stats.clip_ratio_high, 0.5);
    assert_eq!(symmetric.stats.clip_ratio_low, 0.5);
    assert_eq!(symmetric.stats.clip_ratio_region, 1.0);

    let higher = run(
        &case,
        &ObjectiveConfig {
            epsilon_high: 0.28,
            ..config(LossType::Grpo)
        },
    );
    assert_all_close(&higher.grad, &[vec![-0.625], vec![0.0]], "clip-higher grad");
    // -(1.25·1 + 0.8·(-1)) / 2 = -0.225
    assert_close(higher.loss, -0.225, "clip-higher loss");
    assert_eq!(higher.stats.clip_ratio_high, 0.0);
    assert_eq!(higher.stats.clip_ratio_low, 0.5);
    assert_eq!(higher.stats.clip_ratio_region, 0.5);
}

/// The k3 penalty on-policy (r = 1, A = 0), one row of 2 tokens, grpo, beta = 0.1, with
/// `d = ref - logp = [0.5, -0.3]`: `k3 = e^d - d - 1`, loss = beta·mean(k3). Per token,
/// `d k3 / d logp = 1 - e^d`; with the ratio correction `d (k3·r) / d logp = (1 - e^d) + k3`
/// (since `d r / d logp = r = 1`). Each gradient is divided by the row's 2 tokens.
#[test]
fn kl_penalty_by_hand() {
    let logp = vec![vec![-1.0, -2.0, 9.0]];
    let d = [0.5f64, -0.3];
    let reference = vec![vec![-1.0 + d[0], -2.0 + d[1], -9.0]];
    let mask = mask_of(&[2], 3);
    let k3: Vec<f64> = d.iter().map(|d| d.exp() - d - 1.0).collect();
    let beta = 0.1;
    for correction in [true, false] {
        let got = run(
            &Case {
                logp: &logp,
                old_logp: &logp,
                ref_logp: Some(&reference),
                mask: &mask,
                advantages: &[0.0],
            },
            &ObjectiveConfig {
                beta,
                kl_ratio_correction: correction,
                ..config(LossType::Grpo)
            },
        );
        assert_close(got.loss, beta * (k3[0] + k3[1]) / 2.0, "loss");
        let grad = |i: usize| {
            let base = 1.0 - d[i].exp();
            beta * if correction { base + k3[i] } else { base } / 2.0
        };
        assert_all_close(&got.grad, &[vec![grad(0), grad(1), 0.0]], "grad");
        assert_close(got.stats.kl_mean, (k3[0] + k3[1]) / 2.0, "kl_mean");
    }

    // beta = 0 with a reference: the KL is reported but adds nothing to the loss.
    let got = run(
        &Case {
            logp: &logp,
            old_logp: &logp,
            ref_logp: Some(&reference),
            mask: &mask,
            advantages: &[0.0],
        },
        &config(LossType::Grpo),
    );
    assert_eq!(got.loss, 0.0);
    assert_close(
        got.stats.kl_mean,
        (k3[0] + k3[1]) / 2.0,
        "kl_mean at beta 0",
    );
}

/// Off-policy with the correction, the KL term is `k3·r`: one token, grpo, A = 0,
/// `logp - old = 0.2` (r = e^0.2), `d = ref - logp = -0.4`. Loss = beta·k3·r and
/// `d/dlogp (k3·r) = (1 - e^d)·r + k3·r`.
#[test]
fn kl_ratio_correction_off_policy_by_hand() {
    let (lr, d, beta) = (0.2f64, -0.4f64, 0.05);
    let r = lr.exp();
    let k3 = d.exp() - d - 1.0;
    let got = run(
        &Case {
            logp: &[vec![-1.0]],
            old_logp: &[vec![-1.0 - lr]],
            ref_logp: Some(&[vec![-1.0 + d]]),
            mask: &[vec![1.0]],
            advantages: &[0.0],
        },
        &ObjectiveConfig {
            beta,
            ..config(LossType::Grpo)
        },
    );
    assert_close(got.loss, beta * k3 * r, "loss");
    assert_close(
        got.grad[0][0],
        beta * ((1.0 - d.exp()) * r + k3 * r),
        "grad",
    );
}

/// Huge values at masked positions (exp would overflow to inf, and inf·0 = NaN) change nothing:
/// the loss, the gradient and the stats are bit-identical to zeros there, and the gradient is
/// exactly 0 at masked positions.
#[test]
fn masked_positions_with_huge_values_change_nothing() {
    let mask = mask_of(&[3, 1, 0, 2], 4);
    let base_logp = vec![
        vec![-0.5, -1.2, -0.1, 0.0],
        vec![-2.0, 0.0, 0.0, 0.0],
        vec![0.0, 0.0, 0.0, 0.0],
        vec![-0.9, -0.3, 0.0, 0.0],
    ];
    let base_old = vec![
        vec![-0.6, -1.0, -0.4, 0.0],
        vec![-1.5, 0.0, 0.0, 0.0],
        vec![0.0, 0.0, 0.0, 0.0],
        vec![-1.0, -0.1, 0.0, 0.0],
    ];
    let base_ref = vec![
        vec![-0.7, -0.9, -0.2, 0.0],
        vec![-1.8, 0.0, 0.0, 0.0],
        vec![0.0, 0.0, 0.0, 0.0],
        vec![-1.1, -0.5, 0.0, 0.0],
    ];
    let junk = |m: &[Vec<f64>], value: f64| -> Vec<Vec<f64>> {
        m.iter()
            .zip(&mask)
            .map(|(row, keep)| {
                row.iter()
                    .zip(keep)
                    .map(|(&x, &k)| if k > 0.5 { x } else { value })
                    .collect()
            })
            .collect()
    };
    let (logp, old, reference) = (
        junk(&base_logp, 1e4),
        junk(&base_old, -1e4),
        junk(&base_ref, -1e4),
    );
    let adv = [0.7, -1.1, 0.4, 1.3];
    for loss_type in LOSS_TYPES {
        for correction in [true, false] {
            let cfg = ObjectiveConfig {
                beta: 0.04,
                kl_ratio_correction: correction,
                epsilon_high: 0.28,
                ..config(loss_type)
            };
            let clean = run(
                &Case {
                    logp: &base_logp,
                    old_logp: &base_old,
                    ref_logp: Some(&base_ref),
                    mask: &mask,
                    advantages: &adv,
                },
                &cfg,
            );
            let dirty = run(
                &Case {
                    logp: &logp,
                    old_logp: &old,
                    ref_logp: Some(&reference),
                    mask: &mask,
                    advantages: &adv,
                },
                &cfg,
            );
            let what = format!("{loss_type:?}, correction {correction}");
            assert!(dirty.loss.is_finite(), "{what}: loss {}", dirty.loss);
            assert!(dirty.grad.iter().flatten().all(|g| g.is_finite()), "{what}");
            assert_eq!(dirty.loss, clean.loss, "{what}");
            assert_eq!(dirty.grad, clean.grad, "{what}");
            assert_eq!(dirty.stats, clean.stats, "{what}");
            for (row, keep) in dirty.grad.iter().zip(&mask) {
                for (g, k) in row.iter().zip(keep) {
                    if *k < 0.5 {
                        assert_eq!(*g, 0.0, "{what}: masked gradient");
                    }
                }
            }
        }
    }
}

/// Everything masked: every loss type gives 0 (denominators are at least 1) and zero stats.
#[test]
fn an_all_masked_batch_gives_zero() {
    let logp = vec![vec![-1.0, 3.0], vec![40.0, -2.0]];
    let mask = mask_of(&[0, 0], 2);
    for loss_type in LOSS_TYPES {
        let got = run(
            &Case {
                logp: &logp,
                old_logp: &[vec![-90.0, 0.0], vec![0.0, -50.0]],
                ref_logp: None,
                mask: &mask,
                advantages: &[1.0, -1.0],
            },
            &config(loss_type),
        );
        assert_eq!(got.loss, 0.0, "{loss_type:?}");
        assert_eq!(got.grad, vec![vec![0.0; 2]; 2], "{loss_type:?}");
        assert_eq!(got.stats, ObjectiveStats::default(), "{loss_type:?}");
    }
}

#[test]
fn equal_rewards_give_zero_advantages_and_count_as_zero_std_groups() {
    // Three equal rewards whose float mean is not exactly the value (0.1·3/3 != 0.1 in f64).
    let rewards = [0.1, 0.1, 0.1, 0.0, 1.0, 1.0, 0.5, 0.5, 0.5, 1.0, 0.0, 0.0];
    for scale in [ScaleRewards::Group, ScaleRewards::Batch, ScaleRewards::None] {
        let adv = advantages(&rewards, 3, scale);
        assert_eq!(adv.zero_std_groups, 2, "{scale:?}");
        assert_eq!(&adv.values[0..3], &[0.0; 3], "{scale:?}");
        assert_eq!(&adv.values[6..9], &[0.0; 3], "{scale:?}");
        assert!(adv.values[3] < 0.0 && adv.values[4] > 0.0 && adv.values[9] > 0.0);
        // Each mixed group has std sqrt(1/3); the mean over the four groups is half that.
        let want = (1.0f64 / 3.0).sqrt() / 2.0;
        assert!((adv.group_std_mean - want).abs() <= ADV_TOL, "{scale:?}");
    }
    // All groups constant: under batch scaling the batch std is not 0, but the numerators are.
    let adv = advantages(&[1.0, 1.0, 0.0, 0.0], 2, ScaleRewards::Batch);
    assert_eq!(adv.values, vec![0.0; 4]);
    assert_eq!(adv.zero_std_groups, 2);
    assert_eq!(adv.group_std_mean, 0.0);
    // No rewards at all is an empty batch, not an error.
    let adv = advantages(&[], 4, ScaleRewards::Group);
    assert!(adv.values.is_empty());
    assert_eq!((adv.zero_std_groups, adv.group_std_mean), (0, 0.0));
}

#[test]
#[should_panic(expected = "group_size must be at least 2")]
fn a_group_of_one_is_refused() {
    advantages(&[1.0, 0.0], 1, ScaleRewards::Group);
}

#[test]
#[should_panic(expected = "do not split into groups of 4")]
fn rewards_must_fill_whole_groups() {
    advantages(&[1.0, 0.0, 1.0, 0.0, 1.0, 0.0], 4, ScaleRewards::None);
}

#[test]
#[should_panic(expected = "needs ref_logp")]
fn beta_without_a_reference_is_refused() {
    run(
        &Case {
            logp: &[vec![-1.0]],
            old_logp: &[vec![-1.0]],
            ref_logp: None,
            mask: &[vec![1.0]],
            advantages: &[1.0],
        },
        &ObjectiveConfig {
            beta: 0.1,
            ..config(LossType::Grpo)
        },
    );
}

#[test]
fn config_names_and_validation() {
    for (loss_type, name) in [
        (LossType::Grpo, "grpo"),
        (LossType::Bnpo, "bnpo"),
        (LossType::DrGrpo, "dr_grpo"),
        (LossType::Dapo, "dapo"),
    ] {
        assert_eq!(
            serde_json::to_string(&loss_type).unwrap(),
            format!("\"{name}\"")
        );
    }
    for (scale, name) in [
        (ScaleRewards::Group, "group"),
        (ScaleRewards::Batch, "batch"),
        (ScaleRewards::None, "none"),
    ] {
        assert_eq!(
            serde_json::to_string(&scale).unwrap(),
            format!("\"{name}\"")
        );
    }
    assert!(config(LossType::Dapo).validate().is_ok());
    let bad = ObjectiveConfig {
        epsilon_low: 1.5,
        epsilon_high: -0.1,
        beta: f64::NAN,
        max_completion_length: 0,
        ..config(LossType::DrGrpo)
    };
    let fields: Vec<String> = bad
        .validate()
        .unwrap_err()
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(
        fields,
        [
            "epsilon_low",
            "epsilon_high",
            "beta",
            "max_completion_length"
        ]
    );
}
