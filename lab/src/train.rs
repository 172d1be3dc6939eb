//! The training step shared by pretrain, sft and grpo: gradients accumulated over fixed
//! micro-batches, computed on every core, summed in micro-batch order.
//!
//! A step's batch is cut into micro-batches of `micro_batch_size` rows (the last may be
//! shorter). Each micro-batch's loss is its share of the step's loss (the stage divides by the
//! whole batch's normaliser, so the shares add up to the step's loss), and its gradient is
//! computed on its own replica of the model: `model.valid().train()` shares the weights but
//! starts a fresh autodiff graph, so the micro-batches of one step run on separate threads
//! without sharing a graph or its lock. The gradients are then added in micro-batch order:
//! `g = ((g₀ + g₁) + g₂) + …`, so the result depends on `micro_batch_size` (part of the spec,
//! and so of the id) but not on the number of threads (see [`crate::parallel`]).

use burn::prelude::*;

use crate::model::{named_grads, token_logprobs, tokens_tensor, NamedGrads, Transformer};
use crate::parallel;
use crate::tokenizer::PAD_ID;

/// A sequence to train on, scored from one position on: `<bos> prompt completion`, with the
/// loss on the completion tokens (`tokens[scored_from..]`) when `included`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredRow {
    pub tokens: Vec<u32>,
    /// Index of the first token the loss is on.
    pub scored_from: usize,
    /// False leaves the row out of the loss (its mask is all zero), as GRPO's overlong masking.
    pub included: bool,
}

/// Rows laid out for a next-token loss: inputs and targets right-padded to `width`, and the
/// `[rows · width]` mask that is 1 where target `t` (which predicts token `t + 1`) is scored.
#[derive(Debug, Clone, PartialEq)]
pub struct LossBatch {
    pub inputs: Vec<Vec<u32>>,
    pub targets: Vec<Vec<u32>>,
    pub mask: Vec<f32>,
    pub width: usize,
}

impl LossBatch {
    /// Lay out `rows`, padded to the longest of them (causality makes right padding safe).
    pub fn new(rows: &[ScoredRow]) -> LossBatch {
        let width = rows
            .iter()
            .map(|r| r.tokens.len().saturating_sub(1))
            .max()
            .unwrap_or(1)
            .max(1);
        let mut batch = LossBatch {
            inputs: Vec::with_capacity(rows.len()),
            targets: Vec::with_capacity(rows.len()),
            mask: Vec::with_capacity(rows.len() * width),
            width,
        };
        for row in rows {
            let n = row.tokens.len().saturating_sub(1);
            let mut input = row.tokens[..n].to_vec();
            let mut target = row.tokens[1..].to_vec();
            input.resize(width, PAD_ID);
            target.resize(width, PAD_ID);
            batch.inputs.push(input);
            batch.targets.push(target);
            batch.mask.extend((0..width).map(|t| {
                if row.included && t < n && t + 1 >= row.scored_from {
                    1.0f32
                } else {
                    0.0
                }
            }));
        }
        batch
    }

    pub fn rows(&self) -> usize {
        self.inputs.len()
    }

    /// Scored targets (the mask's ones).
    pub fn scored_tokens(&self) -> usize {
        self.mask.iter().filter(|&&m| m > 0.0).count()
    }

    pub fn inputs_tensor(&self, device: &Device) -> Tensor<2, Int> {
        tokens_tensor(&self.inputs, device)
    }

    pub fn targets_tensor(&self, device: &Device) -> Tensor<2, Int> {
        tokens_tensor(&self.targets, device)
    }

    pub fn mask_tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.mask.clone(), [self.rows(), self.width]),
            device,
        )
    }
}

/// What a step's micro-batches gave: the summed gradients, the summed loss and whatever each
/// micro-batch reported besides (in micro-batch order).
pub struct Accumulated<A> {
    pub grads: NamedGrads,
    /// Sum of the micro-batch losses, added in order in `f64`: the step's loss.
    pub loss: f64,
    pub reports: Vec<A>,
}

/// `-Σ log p(next token) / normaliser` over windows of `len + 1` tokens (inputs are the first
/// `len`, targets the last `len`): a micro-batch's share of a pretraining step's mean loss when
/// `normaliser` is the whole batch's token count.
pub fn next_token_loss<W: AsRef<[u32]>>(
    model: &Transformer,
    windows: &[W],
    normaliser: f64,
) -> Tensor<1> {
    let inputs: Vec<Vec<u32>> = windows
        .iter()
        .map(|w| w.as_ref()[..w.as_ref().len() - 1].to_vec())
        .collect();
    let targets: Vec<Vec<u32>> = windows.iter().map(|w| w.as_ref()[1..].to_vec()).collect();
    let device = model.device();
    let logits = model.forward(tokens_tensor(&inputs, &device));
    let logp = token_logprobs(logits, tokens_tensor(&targets, &device));
    -logp.sum().div_scalar(normaliser)
}

/// The micro-batches of `rows` rows: `[start, end)` ranges of at most `micro_batch_size` rows.
pub fn micro_batches(rows: usize, micro_batch_size: usize) -> Vec<std::ops::Range<usize>> {
    let size = micro_batch_size.max(1);
    (0..rows.div_ceil(size))
        .map(|i| i * size..((i + 1) * size).min(rows))
        .collect()
}

/// Gradients of `Σ_i loss_of(replica, i)` for the micro-batches `0..count`, each computed on its
/// own replica of `model` (an autodiff model), on up to [`parallel::threads`] threads.
///
/// `loss_of` returns the micro-batch's share of the loss (a one-element tensor on the
/// replica's autodiff graph) and a report (statistics it computed on the way).
pub fn accumulate<M, A, F>(model: &M, count: usize, loss_of: F) -> Accumulated<A>
where
    M: Module,
    A: Send,
    F: Fn(&M, usize) -> (Tensor<1>, A) + Sync,
{
    assert!(count > 0, "a step needs at least one micro-batch");
    let replicas: Vec<M> = (0..count).map(|_| model.valid().train()).collect();
    let parts = parallel::map_ordered(replicas, |index, replica| {
        let (loss, report) = loss_of(&replica, index);
        let value = loss.clone().into_scalar::<f32>() as f64;
        let grads = named_grads(&replica, loss.backward());
        (grads, value, report)
    });
    let mut grads: Option<NamedGrads> = None;
    let mut loss = 0.0;
    let mut reports = Vec::with_capacity(count);
    for (part, value, report) in parts {
        loss += value;
        reports.push(report);
        grads = Some(match grads {
            None => part,
            Some(mut sum) => {
                for (name, g) in part {
                    let total = match sum.remove(&name) {
                        Some(s) => s + g,
                        None => g,
                    };
                    sum.insert(name, total);
                }
                sum
            }
        });
    }
    Accumulated {
        grads: grads.expect("count > 0"),
        loss,
        reports,
    }
}

/// Linear warmup, then cosine decay to `lr · min_lr_ratio` (step counted from 0).
pub fn learning_rate(step: usize, total: usize, peak: f64, warmup: usize, min_ratio: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    peak * (min_ratio + (1.0 - min_ratio) * cosine)
}

/// A training loop's numbers between two logs. Logged at step `s`, a number is its mean over the
/// steps since the previous log, as TRL's trainers log (the loss in HF Trainer, every GRPO
/// metric in `GRPOTrainer`), not the value of step `s` alone; numbers given with
/// [`IntervalMeter::last`] (a learning rate, HF Trainer's grad norm) are the last step's.
#[derive(Debug)]
pub struct IntervalMeter {
    means: std::collections::BTreeMap<String, (f64, usize)>,
    last: std::collections::BTreeMap<String, f64>,
    totals: std::collections::BTreeMap<String, f64>,
    steps: usize,
    started: std::time::Instant,
}

/// One closed interval of an [`IntervalMeter`].
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// Training steps in the interval.
    pub steps: usize,
    /// Wall-clock seconds from the interval's start to its close.
    pub seconds: f64,
    sums: std::collections::BTreeMap<String, (f64, usize)>,
    last: std::collections::BTreeMap<String, f64>,
    totals: std::collections::BTreeMap<String, f64>,
}

impl Default for IntervalMeter {
    fn default() -> Self {
        IntervalMeter::new()
    }
}

impl IntervalMeter {
    pub fn new() -> IntervalMeter {
        IntervalMeter {
            means: Default::default(),
            last: Default::default(),
            totals: Default::default(),
            steps: 0,
            started: std::time::Instant::now(),
        }
    }

    /// A value of this step, logged as its mean over the interval.
    pub fn add(&mut self, name: impl Into<String>, value: f64) {
        let entry = self.means.entry(name.into()).or_insert((0.0, 0));
        entry.0 += value;
        entry.1 += 1;
    }

    /// A value logged as the interval's last.
    pub fn last(&mut self, name: impl Into<String>, value: f64) {
        self.last.insert(name.into(), value);
    }

    /// A quantity counted over the interval and not logged itself (the stage derives rates
    /// from its [`Interval::total`]).
    pub fn count(&mut self, name: impl Into<String>, amount: f64) {
        *self.totals.entry(name.into()).or_insert(0.0) += amount;
    }

    /// Counts a training step.
    pub fn end_step(&mut self) {
        self.steps += 1;
    }

    /// Closes the interval and starts the next one.
    pub fn close(&mut self) -> Interval {
        let closed = Interval {
            steps: self.steps,
            seconds: self.started.elapsed().as_secs_f64(),
            sums: std::mem::take(&mut self.means),
            last: std::mem::take(&mut self.last),
            totals: std::mem::take(&mut self.totals),
        };
        self.steps = 0;
        self.started = std::time::Instant::now();
        closed
    }
}

impl Interval {
    /// The sum of a value over the interval (0 when never given).
    pub fn sum(&self, name: &str) -> f64 {
        self.sums.get(name).map_or(0.0, |(sum, _)| *sum)
    }

    /// The total of a counted quantity ([`IntervalMeter::count`]; 0 when never counted).
    pub fn total(&self, name: &str) -> f64 {
        self.totals.get(name).copied().unwrap_or(0.0)
    }

    /// Every number to log, by name: means of the added values, then the last ones.
    pub fn values(&self) -> impl Iterator<Item = (&str, f64)> {
        self.sums
            .iter()
            .map(|(name, (sum, count))| (name.as_str(), sum / *count as f64))
            .chain(self.last.iter().map(|(name, v)| (name.as_str(), *v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        let lr = |s| learning_rate(s, 100, 1.0, 10, 0.1);
        assert!((lr(0) - 0.1).abs() < 1e-12);
        assert!((lr(9) - 1.0).abs() < 1e-12);
        assert!((lr(10) - 1.0).abs() < 1e-12);
        assert!(lr(50) < lr(20));
        assert!((lr(100) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn layout_pads_right_and_scores_from_the_completion() {
        let rows = [
            ScoredRow {
                tokens: vec![1, 5, 6, 7],
                scored_from: 2,
                included: true,
            },
            ScoredRow {
                tokens: vec![1, 5],
                scored_from: 1,
                included: true,
            },
            ScoredRow {
                tokens: vec![1, 8, 9],
                scored_from: 1,
                included: false,
            },
        ];
        let batch = LossBatch::new(&rows);
        assert_eq!(batch.width, 3);
        assert_eq!(batch.inputs[1], vec![1, PAD_ID, PAD_ID]);
        assert_eq!(batch.targets[0], vec![5, 6, 7]);
        // Row 0: targets 6 and 7 are completion tokens; row 1: target 5; row 2: left out.
        assert_eq!(
            batch.mask,
            vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(batch.scored_tokens(), 3);
    }

    #[test]
    fn micro_batches_cover_the_rows_in_order() {
        assert_eq!(micro_batches(16, 8), vec![0..8, 8..16]);
        assert_eq!(micro_batches(10, 4), vec![0..4, 4..8, 8..10]);
        assert_eq!(micro_batches(3, 8), vec![0..3]);
        assert_eq!(micro_batches(0, 8), Vec::<std::ops::Range<usize>>::new());
    }

    #[test]
    fn an_interval_logs_means_of_added_values_and_the_last_of_the_others() {
        let mut meter = IntervalMeter::new();
        for (step, loss) in [3.0, 2.0, 1.0].into_iter().enumerate() {
            meter.add("loss", loss);
            meter.last("learning_rate", step as f64);
            meter.end_step();
        }
        meter.add("tokens", 10.0);
        meter.add("tokens", 5.0);
        let interval = meter.close();
        assert_eq!(interval.steps, 3);
        assert_eq!(interval.sum("tokens"), 15.0);
        assert_eq!(interval.sum("absent"), 0.0);
        let values: Vec<(&str, f64)> = interval.values().collect();
        assert_eq!(
            values,
            [("loss", 2.0), ("tokens", 7.5), ("learning_rate", 2.0)]
        );
        meter.count("tokens", 4.0);
        meter.count("tokens", 6.0);
        let counted = meter.close();
        assert_eq!(counted.total("tokens"), 10.0);
        assert_eq!(counted.values().count(), 0, "counts are not logged");
        let next = meter.close();
        assert_eq!(
            (next.steps, next.values().count()),
            (0, 0),
            "a close starts afresh"
        );
    }
}
