//! Optimizers: SGD (momentum, weight decay, Nesterov), Adam and AdamW, with PyTorch's update
//! rules (`torch.optim`, single-tensor path, `maximize=False`, `amsgrad=False`).
//!
//! An optimizer holds handles to its parameters, so `step()` updates the very tensors a model
//! reads. Parameters whose `.grad` is none are skipped, as in PyTorch, and their state (the
//! momentum buffer, Adam's moments and step count) is created on the first step that sees a
//! gradient. Updates are writes with no graph (PyTorch's `torch.no_grad()` around `step`).

use super::autograd::no_grad;
use super::core::Tensor;
use super::error::{Result, TensorError};

/// `SGD(params, lr, momentum, weight_decay, nesterov)`'s settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0 disables the buffer).
    pub momentum: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum (needs `momentum > 0`).
    pub nesterov: bool,
}

/// `Adam(...)` / `AdamW(...)` settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    pub betas: [f64; 2],
    /// Added to the denominator for stability.
    pub eps: f64,
    /// Weight decay: an L2 term in the gradient (Adam), or a decay of the weights applied
    /// apart from the gradient (AdamW, `decoupled`).
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay.
    pub decoupled: bool,
}

/// Which update rule, with its per-parameter state.
#[derive(Debug)]
enum Rule {
    Sgd {
        config: SgdConfig,
        /// Momentum buffers, created on a parameter's first step.
        buffers: Vec<Option<Vec<f32>>>,
    },
    Adam {
        config: AdamConfig,
        /// Per parameter: steps taken, first and second moments.
        state: Vec<Option<AdamState>>,
    },
}

#[derive(Debug)]
struct AdamState {
    step: i32,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
}

/// An optimizer over a list of parameters.
#[derive(Debug)]
pub struct Optimizer {
    params: Vec<Tensor>,
    rule: Rule,
}

fn check_hyper(op: &'static str, name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(TensorError::value(
            op,
            format!("invalid {name}: {value} (must be a finite number >= 0)"),
        ))
    }
}

impl Optimizer {
    /// `SGD(params, lr, momentum, weight_decay, nesterov)`; E0505 for a negative rate, or
    /// Nesterov without momentum (PyTorch refuses both).
    pub fn sgd(params: Vec<Tensor>, config: SgdConfig) -> Result<Optimizer> {
        check_hyper("SGD", "lr", config.lr)?;
        check_hyper("SGD", "momentum", config.momentum)?;
        check_hyper("SGD", "weight_decay", config.weight_decay)?;
        if config.nesterov && config.momentum <= 0.0 {
            return Err(TensorError::value(
                "SGD",
                "Nesterov momentum requires a momentum greater than 0",
            ));
        }
        let buffers = params.iter().map(|_| None).collect();
        Ok(Optimizer {
            params,
            rule: Rule::Sgd { config, buffers },
        })
    }

    /// `Adam(...)`, or `AdamW(...)` with `config.decoupled`; E0505 for rates out of range.
    pub fn adam(params: Vec<Tensor>, config: AdamConfig) -> Result<Optimizer> {
        let op = if config.decoupled { "AdamW" } else { "Adam" };
        check_hyper(op, "lr", config.lr)?;
        check_hyper(op, "eps", config.eps)?;
        check_hyper(op, "weight_decay", config.weight_decay)?;
        for (i, beta) in config.betas.iter().enumerate() {
            if !(0.0..1.0).contains(beta) {
                return Err(TensorError::value(
                    op,
                    format!("invalid beta parameter at index {i}: {beta} (must be in [0, 1))"),
                ));
            }
        }
        let state = params.iter().map(|_| None).collect();
        Ok(Optimizer {
            params,
            rule: Rule::Adam { config, state },
        })
    }

    /// How `print` shows it: `SGD(lr=0.1, momentum=0.9, weight_decay=0, nesterov=false)`.
    pub fn describe(&self) -> String {
        match &self.rule {
            Rule::Sgd { config: c, .. } => format!(
                "SGD(lr={}, momentum={}, weight_decay={}, nesterov={})",
                c.lr, c.momentum, c.weight_decay, c.nesterov
            ),
            Rule::Adam { config: c, .. } => format!(
                "{}(lr={}, betas=[{}, {}], eps={}, weight_decay={})",
                if c.decoupled { "AdamW" } else { "Adam" },
                c.lr,
                c.betas[0],
                c.betas[1],
                c.eps,
                c.weight_decay
            ),
        }
    }

    /// The parameters it updates.
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// `zero_grad()`: sets every parameter's `.grad` to none (PyTorch's default
    /// `set_to_none=True`), so the next backward starts afresh.
    pub fn zero_grad(&self) {
        for p in &self.params {
            p.set_grad(None);
        }
    }

    /// `step()`: one update of every parameter that has a gradient.
    pub fn step(&mut self) -> Result<()> {
        let _no_grad = no_grad();
        for (i, param) in self.params.iter().enumerate() {
            let Some(grad) = param.grad() else { continue };
            let mut p = param.to_vec();
            let mut g = grad.to_vec();
            if g.len() != p.len() {
                return Err(TensorError::ShapeMismatch {
                    op: "step",
                    lhs: grad.shape().to_vec(),
                    rhs: param.shape().to_vec(),
                    detail: " (a parameter's grad must have its shape)".into(),
                });
            }
            match &mut self.rule {
                Rule::Sgd { config, buffers } => {
                    sgd_update(config, &mut buffers[i], &mut p, &mut g)
                }
                Rule::Adam { config, state } => adam_update(config, &mut state[i], &mut p, &g),
            }
            param.write_values("step", &Tensor::from_vec(p, param.shape())?)?;
        }
        Ok(())
    }
}

/// PyTorch's `_single_tensor_sgd` (dampening 0):
/// `d = g + wd·p; buf = μ·buf + d (buf = d at first); d = nesterov ? d + μ·buf : buf;
/// p -= lr·d`.
fn sgd_update(config: &SgdConfig, buffer: &mut Option<Vec<f32>>, p: &mut [f32], g: &mut [f32]) {
    let wd = config.weight_decay as f32;
    if wd != 0.0 {
        for (g, p) in g.iter_mut().zip(p.iter()) {
            *g += wd * *p;
        }
    }
    let momentum = config.momentum as f32;
    if momentum != 0.0 {
        let buf = match buffer {
            Some(buf) => {
                for (b, g) in buf.iter_mut().zip(g.iter()) {
                    *b = momentum * *b + *g;
                }
                buf
            }
            None => buffer.insert(g.to_vec()),
        };
        if config.nesterov {
            for (g, b) in g.iter_mut().zip(buf.iter()) {
                *g += momentum * *b;
            }
        } else {
            g.copy_from_slice(buf);
        }
    }
    let lr = config.lr as f32;
    for (p, g) in p.iter_mut().zip(g.iter()) {
        *p -= lr * *g;
    }
}

/// PyTorch's `_single_tensor_adam`: `m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
/// p -= lr/(1-β1ᵗ) · m / (sqrt(v)/sqrt(1-β2ᵗ) + eps)`, with weight decay added to `g` (Adam)
/// or applied as `p *= 1 - lr·wd` first (AdamW).
fn adam_update(config: &AdamConfig, state: &mut Option<AdamState>, p: &mut [f32], g: &[f32]) {
    let state = state.get_or_insert_with(|| AdamState {
        step: 0,
        exp_avg: vec![0.0; p.len()],
        exp_avg_sq: vec![0.0; p.len()],
    });
    state.step += 1;
    let wd = config.weight_decay as f32;
    if config.decoupled && wd != 0.0 {
        let keep = 1.0 - (config.lr * config.weight_decay) as f32;
        p.iter_mut().for_each(|p| *p *= keep);
    }
    let [beta1, beta2] = config.betas;
    let bias_correction1 = 1.0 - beta1.powi(state.step);
    let bias_correction2_sqrt = (1.0 - beta2.powi(state.step)).sqrt();
    let step_size = (config.lr / bias_correction1) as f32;
    let (b1, b2) = (beta1 as f32, beta2 as f32);
    let (eps, bc2) = (config.eps as f32, bias_correction2_sqrt as f32);
    for (i, p) in p.iter_mut().enumerate() {
        let mut grad = g[i];
        if !config.decoupled && wd != 0.0 {
            grad += wd * *p;
        }
        let m = &mut state.exp_avg[i];
        *m = b1 * *m + (1.0 - b1) * grad;
        let v = &mut state.exp_avg_sq[i];
        *v = b2 * *v + (1.0 - b2) * grad * grad;
        let denom = v.sqrt() / bc2 + eps;
        *p -= step_size * *m / denom;
    }
}
