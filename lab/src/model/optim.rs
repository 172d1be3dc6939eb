//! AdamW, our own: state kept by parameter name so it saves into a checkpoint beside the weights
//! and a resumed run continues bit for bit.
//!
//! burn-optim's `ModuleOptimizer` keeps its state inside an opaque record keyed by parameter id;
//! this one is ~100 lines with every formula in view. Per step `t` (starting at 1), for each
//! parameter `p` with gradient `g`:
//! ```text
//! n     = sqrt(Σ over all parameters of Σ g²)                 global gradient norm
//! g     = g · min(1, clip / (n + 1e-6))                        only when grad_clip > 0
//! m     = β1·m + (1 − β1)·g
//! v     = β2·v + (1 − β2)·g²
//! m̂     = m / (1 − β1^t)          v̂ = v / (1 − β2^t)           bias correction
//! p     = p·(1 − lr·λ) − lr · m̂ / (sqrt(v̂) + ε)               decoupled weight decay λ
//! ```
//! Weight decay applies to matrices (rank ≥ 2, the embedding included) and not to the RMSNorm
//! gains. State saves as `adam.step` (shape `[1]`, exact below 2²⁴ steps), `adam.m.<param>` and
//! `adam.v.<param>`, each `m`/`v` shaped like its parameter.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Gradients;
use serde::{Deserialize, Serialize};

use super::checkpoint::{check_tensor, CheckpointError, NamedTensor, OPTIMIZER_PREFIX};

/// AdamW hyper-parameters (the learning rate is given per step, so schedules stay outside).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Clip the global gradient norm to this; 0 turns clipping off.
    pub grad_clip: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            grad_clip: 1.0,
        }
    }
}

impl AdamWConfig {
    pub fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = Vec::new();
        for (field, value) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&value) {
                problems.push((field.to_string(), format!("must be in [0, 1), got {value}")));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            problems.push((
                "eps".into(),
                format!("must be finite and > 0, got {}", self.eps),
            ));
        }
        for (field, value) in [
            ("weight_decay", self.weight_decay),
            ("grad_clip", self.grad_clip),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                problems.push((
                    field.to_string(),
                    format!("must be finite and >= 0, got {value}"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// What one step saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Factor the gradients were multiplied by (1 when not clipped).
    pub clip_scale: f64,
}

struct Moments {
    shape: Vec<usize>,
    m: Tensor<1>,
    v: Tensor<1>,
}

/// AdamW over any module's float parameters, keyed by parameter path.
pub struct AdamW {
    config: AdamWConfig,
    steps: u64,
    state: BTreeMap<String, Moments>,
}

impl AdamW {
    pub fn new(config: AdamWConfig) -> AdamW {
        AdamW {
            config,
            steps: 0,
            state: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Steps taken so far (the `t` of the last bias correction).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update of `module` from the gradients of a loss (`loss.backward()`), learning rate
    /// `lr`. Parameters without a gradient are left as they are.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: Gradients) -> (M, StepStats) {
        let grads = named_grads(&module, grads);
        self.step_named(lr, module, grads)
    }

    /// One update of `module` from gradients by parameter path (as [`named_grads`] gives, or
    /// summed over micro-batches by `train::accumulate`).
    pub fn step_named<M: Module>(
        &mut self,
        lr: f64,
        module: M,
        grads: NamedGrads,
    ) -> (M, StepStats) {
        // Sum of squares per tensor on the device, added in name order: deterministic.
        let grad_norm = if grads.is_empty() {
            0.0
        } else {
            let squares: Vec<Tensor<1>> =
                grads.values().map(|g| g.clone().square().sum()).collect();
            (Tensor::cat(squares, 0).sum().into_scalar::<f32>() as f64).sqrt()
        };
        let clip = self.config.grad_clip;
        let clip_scale = if clip > 0.0 && grad_norm > clip {
            clip / (grad_norm + 1e-6)
        } else {
            1.0
        };

        self.steps += 1;
        let t = self.steps as f64;
        let mut updater = Updater {
            path: Vec::new(),
            grads,
            state: &mut self.state,
            lr,
            clip_scale,
            beta1: self.config.beta1,
            beta2: self.config.beta2,
            eps: self.config.eps,
            weight_decay: self.config.weight_decay,
            correction1: 1.0 - self.config.beta1.powf(t),
            correction2: 1.0 - self.config.beta2.powf(t),
        };
        let module = module.map(&mut updater);
        (
            module,
            StepStats {
                grad_norm,
                clip_scale,
            },
        )
    }

    /// The state as named tensors (`adam.step`, `adam.m.<param>`, `adam.v.<param>`), sorted.
    pub fn named_state(&self) -> Vec<NamedTensor> {
        assert!(
            self.steps < 1 << 24,
            "adam.step is stored as f32, exact below 2^24"
        );
        let mut out = vec![NamedTensor::f32(
            format!("{OPTIMIZER_PREFIX}step"),
            vec![1],
            vec![self.steps as f32],
        )];
        for (name, moments) in &self.state {
            for (kind, tensor) in [("m", &moments.m), ("v", &moments.v)] {
                let mut t =
                    NamedTensor::from_tensor(format!("{OPTIMIZER_PREFIX}{kind}.{name}"), tensor);
                t.shape = moments.shape.clone();
                out.push(t);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Restore the state saved by [`AdamW::named_state`] for `module` (which decides the names,
    /// shapes and device). Tensors without the `adam.` prefix are ignored, so a whole checkpoint
    /// can be passed.
    pub fn load_named<M: Module>(
        config: AdamWConfig,
        tensors: &[NamedTensor],
        module: &M,
    ) -> Result<AdamW, CheckpointError> {
        let mut params = ParamShapes::default();
        module.visit(&mut params);
        let mut state_tensors: BTreeMap<&str, &NamedTensor> = tensors
            .iter()
            .filter(|t| t.name.starts_with(OPTIMIZER_PREFIX))
            .map(|t| (t.name.as_str(), t))
            .collect();

        let step_name = format!("{OPTIMIZER_PREFIX}step");
        let step = state_tensors
            .remove(step_name.as_str())
            .ok_or(CheckpointError::MissingTensor { name: step_name })?;
        check_tensor(step, &[1])?;
        let steps = step.data[0] as u64;

        let mut state = BTreeMap::new();
        for (name, (shape, device)) in &params.out {
            let m_name = format!("{OPTIMIZER_PREFIX}m.{name}");
            let v_name = format!("{OPTIMIZER_PREFIX}v.{name}");
            match (
                state_tensors.remove(m_name.as_str()),
                state_tensors.remove(v_name.as_str()),
            ) {
                (None, None) => continue,
                (Some(m), Some(v)) => {
                    check_tensor(m, shape)?;
                    check_tensor(v, shape)?;
                    let flat = |t: &NamedTensor| {
                        Tensor::<1>::from_data(
                            TensorData::new(t.data.clone(), [t.data.len()]),
                            device,
                        )
                    };
                    state.insert(
                        name.clone(),
                        Moments {
                            shape: shape.clone(),
                            m: flat(m),
                            v: flat(v),
                        },
                    );
                }
                (None, Some(_)) => return Err(CheckpointError::MissingTensor { name: m_name }),
                (Some(_), None) => return Err(CheckpointError::MissingTensor { name: v_name }),
            }
        }
        if let Some(name) = state_tensors.keys().next() {
            return Err(CheckpointError::UnexpectedTensor {
                name: name.to_string(),
            });
        }
        Ok(AdamW {
            config,
            steps,
            state,
        })
    }
}

/// Gradients by parameter path (`blocks.0.attn.wq.weight`), flattened, off autodiff.
pub type NamedGrads = BTreeMap<String, Tensor<1>>;

/// Each parameter's gradient out of `grads` (the result of `loss.backward()` on a graph through
/// `module`'s parameters), flattened, by path. Parameters without a gradient are absent.
pub fn named_grads<M: Module>(module: &M, mut grads: Gradients) -> NamedGrads {
    let mut collector = GradCollector {
        path: Vec::new(),
        grads: &mut grads,
        out: BTreeMap::new(),
    };
    module.visit(&mut collector);
    collector.out
}

/// Takes each parameter's gradient out of `grads`, flattened, by path.
struct GradCollector<'a> {
    path: Vec<String>,
    grads: &'a mut Gradients,
    out: BTreeMap<String, Tensor<1>>,
}

impl ModuleVisitor for GradCollector<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = param.val().grad_remove(self.grads) {
            let count = grad.shape().num_elements();
            self.out.insert(self.path.join("."), grad.reshape([count]));
        }
    }
}

/// Shape and (non-autodiff) device of every float parameter, by path.
#[derive(Default)]
struct ParamShapes {
    path: Vec<String>,
    out: BTreeMap<String, (Vec<usize>, Device)>,
}

impl ModuleVisitor for ParamShapes {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        self.out.insert(
            self.path.join("."),
            (value.dims().to_vec(), value.device().without_autodiff()),
        );
    }
}

struct Updater<'a> {
    path: Vec<String>,
    grads: BTreeMap<String, Tensor<1>>,
    state: &'a mut BTreeMap<String, Moments>,
    lr: f64,
    clip_scale: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    correction1: f64,
    correction2: f64,
}

impl ModuleMapper for Updater<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.join(".");
        let Some(grad) = self.grads.remove(&name) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let was_autodiff = tensor.is_autodiff();
        let require_grad = tensor.is_require_grad();
        let value = tensor.without_autodiff();
        let shape = value.dims();
        let count = grad.dims()[0];
        let device = value.device();

        let grad = if self.clip_scale == 1.0 {
            grad
        } else {
            grad.mul_scalar(self.clip_scale)
        };
        let moments = self.state.entry(name.clone()).or_insert_with(|| Moments {
            shape: shape.to_vec(),
            m: Tensor::zeros([count], &device),
            v: Tensor::zeros([count], &device),
        });
        assert_eq!(
            moments.shape,
            shape.to_vec(),
            "optimizer state for `{name}` has another shape"
        );
        moments.m =
            moments.m.clone().mul_scalar(self.beta1) + grad.clone().mul_scalar(1.0 - self.beta1);
        moments.v =
            moments.v.clone().mul_scalar(self.beta2) + grad.square().mul_scalar(1.0 - self.beta2);
        let update = moments.m.clone().div_scalar(self.correction1)
            / moments
                .v
                .clone()
                .div_scalar(self.correction2)
                .sqrt()
                .add_scalar(self.eps);

        let decay = if D >= 2 {
            self.lr * self.weight_decay
        } else {
            0.0
        };
        let flat = value.reshape([count]);
        let flat = if decay == 0.0 {
            flat
        } else {
            flat.mul_scalar(1.0 - decay)
        };
        let updated = (flat - update.mul_scalar(self.lr)).reshape(shape);

        let mut updated = if was_autodiff {
            updated.autodiff()
        } else {
            updated
        };
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}
