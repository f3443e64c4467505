//! The smooth and piecewise activations beyond `relu`, `leaky_relu`, `sigmoid` and `tanh`:
//! `hardtanh` / `relu6`, `gelu`, `silu`, `hardswish`, `hardsigmoid`, `elu`.
//!
//! Each is a scalar function and its derivative, written as PyTorch's CPU kernels write
//! them, including which side of a kink the derivative takes (checked against PyTorch at
//! the kinks themselves). The forward runs through [`Tensor::map`]; the backward arm in
//! [`crate::tensor::derivatives`] multiplies the incoming gradient by the `*_slope` function
//! here, so forward and derivative stay side by side.

use crate::tensor::autograd::{SavedTensor, record};
use crate::tensor::core::Tensor;
use crate::tensor::derivatives::Op;
use crate::tensor::error::{Result, TensorError};
use crate::tensor::ops::elementwise::sigmoid;
use std::f32::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI, SQRT_2};

/// `gelu`'s `approximate` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GeluApproximate {
    /// `"none"`: `x·Φ(x)` with the exact normal CDF, `0.5·x·(1 + erf(x/√2))`.
    #[default]
    None,
    /// `"tanh"`: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
    Tanh,
}

impl GeluApproximate {
    /// The value of PyTorch's `approximate=` argument: `"none"` or `"tanh"`; `None` for any
    /// other string.
    pub fn from_name(name: &str) -> Option<GeluApproximate> {
        match name {
            "none" => Some(GeluApproximate::None),
            "tanh" => Some(GeluApproximate::Tanh),
            _ => None,
        }
    }

    /// The name PyTorch spells it with (`"none"`, `"tanh"`), as a layer's repr shows it.
    pub fn name(self) -> &'static str {
        match self {
            GeluApproximate::None => "none",
            GeluApproximate::Tanh => "tanh",
        }
    }
}

/// `√(2/π)`, the tanh form's inner scale (PyTorch's `M_SQRT2 * M_2_SQRTPI * 0.5`).
const GELU_BETA: f32 = SQRT_2 * FRAC_2_SQRT_PI * 0.5;
/// The tanh form's cubic coefficient.
const GELU_KAPPA: f32 = 0.044715;

/// `hardtanh(x)`: `x` limited to `[min, max]`; NaN stays NaN, as PyTorch's clamp.
fn hardtanh(x: f32, min: f32, max: f32) -> f32 {
    if x < min {
        min
    } else if x > max {
        max
    } else {
        x
    }
}

/// d hardtanh / dx: 1 strictly inside `(min, max)`, 0 at and beyond the bounds (PyTorch's
/// `hardtanh_backward`; NaN passes the gradient through).
pub(crate) fn hardtanh_slope(x: f32, min: f32, max: f32) -> f32 {
    if x <= min || x >= max { 0.0 } else { 1.0 }
}

fn gelu(x: f32, approximate: GeluApproximate) -> f32 {
    match approximate {
        GeluApproximate::None => 0.5 * x * (1.0 + libm::erff(x * FRAC_1_SQRT_2)),
        GeluApproximate::Tanh => {
            0.5 * x * (1.0 + (GELU_BETA * (x + GELU_KAPPA * x * x * x)).tanh())
        }
    }
}

/// d gelu / dx: `Φ(x) + x·φ(x)` for the exact form; the product rule through the tanh for
/// the approximation (PyTorch's `GeluBackward` formulas, in `f32` as PyTorch's CPU kernel).
pub(crate) fn gelu_slope(x: f32, approximate: GeluApproximate) -> f32 {
    match approximate {
        GeluApproximate::None => {
            let cdf = 0.5 * (1.0 + libm::erff(x * FRAC_1_SQRT_2));
            let pdf = (-0.5 * x * x).exp() * (FRAC_2_SQRT_PI * 0.5 * FRAC_1_SQRT_2);
            cdf + x * pdf
        }
        GeluApproximate::Tanh => {
            let t = (GELU_BETA * (x + GELU_KAPPA * x * x * x)).tanh();
            let inner_slope = GELU_BETA * (1.0 + 3.0 * GELU_KAPPA * x * x);
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner_slope
        }
    }
}

fn silu(x: f32) -> f32 {
    x * sigmoid(x)
}

/// d silu / dx = σ(x)·(1 + x·(1 - σ(x))).
pub(crate) fn silu_slope(x: f32) -> f32 {
    let s = sigmoid(x);
    s * (1.0 + x * (1.0 - s))
}

fn hardswish(x: f32) -> f32 {
    x * hardtanh(x + 3.0, 0.0, 6.0) / 6.0
}

/// d hardswish / dx: 0 up to and including -3, `x/3 + 1/2` strictly between -3 and 3, 1 from
/// 3 on (PyTorch's `hardswish_backward`: at -3 the slope is 0, at 3 it is 1).
pub(crate) fn hardswish_slope(x: f32) -> f32 {
    if x <= -3.0 {
        0.0
    } else if x < 3.0 {
        x / 3.0 + 0.5
    } else {
        1.0
    }
}

fn hardsigmoid(x: f32) -> f32 {
    hardtanh(x + 3.0, 0.0, 6.0) / 6.0
}

/// d hardsigmoid / dx: 1/6 strictly between -3 and 3, else 0.
pub(crate) fn hardsigmoid_slope(x: f32) -> f32 {
    if x > -3.0 && x < 3.0 { 1.0 / 6.0 } else { 0.0 }
}

fn elu(x: f32, alpha: f32) -> f32 {
    if x <= 0.0 { alpha * x.exp_m1() } else { x }
}

/// d elu / dx: `alpha·eˣ` for `x ≤ 0` (so `alpha` at 0, as PyTorch), 1 above.
pub(crate) fn elu_slope(x: f32, alpha: f32) -> f32 {
    if x <= 0.0 { alpha * x.exp() } else { 1.0 }
}

impl Tensor {
    /// `f` applied to every element, recorded as `op` with the input saved (every
    /// activation here differentiates from its input).
    fn activation(
        &self,
        name: &'static str,
        f: impl Fn(f32) -> f32 + Sync + Send,
        op: impl FnOnce() -> Op,
    ) -> Result<Tensor> {
        let out = self.map(name, f)?;
        Ok(record(out, &[self], || {
            (op(), vec![Some(SavedTensor::new(self))])
        }))
    }

    /// `hardtanh(x, min_val, max_val)`: each element limited to `[min_val, max_val]`; the
    /// gradient passes only strictly inside. E0505 when `min_val > max_val`.
    pub fn hardtanh(&self, min_val: f64, max_val: f64) -> Result<Tensor> {
        if min_val > max_val {
            return Err(TensorError::value(
                "hardtanh",
                format!("min_val ({min_val}) cannot be greater than max_val ({max_val})"),
            ));
        }
        let (min, max) = (min_val as f32, max_val as f32);
        self.activation(
            "hardtanh",
            move |x| hardtanh(x, min, max),
            || Op::Hardtanh { min, max },
        )
    }

    /// `relu6(x)` = `hardtanh(x, 0, 6)`: zero gradient at 0 and at 6, as PyTorch.
    pub fn relu6(&self) -> Result<Tensor> {
        self.hardtanh(0.0, 6.0)
    }

    /// `gelu(x, approximate)`: `x·Φ(x)`, exactly or with the tanh approximation.
    pub fn gelu(&self, approximate: GeluApproximate) -> Result<Tensor> {
        self.activation(
            "gelu",
            move |x| gelu(x, approximate),
            || Op::Gelu(approximate),
        )
    }

    /// `silu(x)` = `x·σ(x)` (also called swish).
    pub fn silu(&self) -> Result<Tensor> {
        self.activation("silu", silu, || Op::Silu)
    }

    /// `hardswish(x)` = `x·relu6(x + 3)/6`.
    pub fn hardswish(&self) -> Result<Tensor> {
        self.activation("hardswish", hardswish, || Op::Hardswish)
    }

    /// `hardsigmoid(x)` = `relu6(x + 3)/6`.
    pub fn hardsigmoid(&self) -> Result<Tensor> {
        self.activation("hardsigmoid", hardsigmoid, || Op::Hardsigmoid)
    }

    /// `elu(x, alpha)`: `x` above 0, `alpha·(eˣ - 1)` at and below.
    pub fn elu(&self, alpha: f64) -> Result<Tensor> {
        let alpha = alpha as f32;
        self.activation("elu", move |x| elu(x, alpha), || Op::Elu(alpha))
    }
}
