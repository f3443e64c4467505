//! The backward formula of every op, one small arm each, with the derivative it implements.
//!
//! An [`Op`] holds what its formula needs besides tensors (shapes, dims, constants); the
//! tensors it saved arrive as [`Saved`]. Formulas run with grad mode off and return one
//! gradient per input (`None` where `needs` says the input does not want one).

use super::autograd::{BackwardFn, Node, Saved};
use super::core::Tensor;
use super::error::Result;
use super::ops::activation::{self, GeluApproximate};
use super::ops::elementwise::sigmoid;
use super::storage::{self, Layout, for_each_offset};
use std::rc::Rc;

/// Where a view's elements sit inside a contiguous tensor of its base's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// The view's shape.
    pub shape: Vec<usize>,
    /// The view's strides, in elements of the contiguous base.
    pub strides: Vec<usize>,
    /// The flat index in the base of the view's first element.
    pub offset: usize,
}

impl Geometry {
    /// The geometry of `view` inside `base`, when `base` is contiguous (otherwise storage
    /// positions do not map to flat indices by a subtraction, and this returns `None`).
    pub fn of_view(base: &Layout, view: &Layout) -> Option<Geometry> {
        if !base.is_contiguous() {
            return None;
        }
        Some(Geometry {
            shape: view.shape.clone(),
            strides: view.strides.clone(),
            offset: view.offset.checked_sub(base.offset)?,
        })
    }

    /// A layout already expressed relative to a contiguous base at offset 0.
    pub fn of_contiguous(layout: Layout) -> Geometry {
        Geometry {
            shape: layout.shape,
            strides: layout.strides,
            offset: layout.offset,
        }
    }

    fn layout_in(&self, base: &Tensor) -> Layout {
        Layout {
            shape: self.shape.clone(),
            strides: self.strides.clone(),
            offset: base.layout().offset + self.offset,
        }
    }
}

/// The backward formula of one recorded op (PyTorch's node name in [`Op::name`]).
///
/// Fields are the forward op's own arguments and shapes (`lhs`/`rhs` the operands' shapes,
/// `input` the input's shape, `dim`/`dims` normalised dims), described per variant.
#[allow(missing_docs)]
pub enum Op {
    /// `a + b` (broadcasting; the shapes let gradients be summed back).
    Add { lhs: Vec<usize>, rhs: Vec<usize> },
    /// `a - b`.
    Sub { lhs: Vec<usize>, rhs: Vec<usize> },
    /// `a * b`; saved `[a, b]` (each only when the other's gradient is needed).
    Mul { lhs: Vec<usize>, rhs: Vec<usize> },
    /// `a / b`; saved `[a, b]`.
    Div { lhs: Vec<usize>, rhs: Vec<usize> },
    /// `a ** b` with a tensor exponent; saved `[a, b, result]`.
    Pow { lhs: Vec<usize>, rhs: Vec<usize> },
    /// `x + c`.
    AddScalar,
    /// `x - c`.
    SubScalar,
    /// `c - x`.
    RsubScalar,
    /// `x * c`.
    MulScalar(f32),
    /// `x / c`.
    DivScalar(f32),
    /// `c / x`; saved `[x]`.
    RdivScalar(f32),
    /// `x ** c`; saved `[x]`.
    PowScalar(f32),
    /// `c ** x`; saved `[x, result]`.
    ScalarPow(f32),
    /// `-x`.
    Neg,
    /// `|x|`; saved `[x]`.
    Abs,
    /// `sqrt(x)`; saved `[result]`.
    Sqrt,
    /// `exp(x)`; saved `[result]`.
    Exp,
    /// `log(x)`; saved `[x]`.
    Log,
    /// `relu(x)`; saved `[result]`.
    Relu,
    /// `leaky_relu(x, slope)`; saved `[x]`.
    LeakyRelu(f32),
    /// `sigmoid(x)`; saved `[result]`.
    Sigmoid,
    /// `tanh(x)`; saved `[result]`.
    Tanh,
    /// `clamp(x, min, max)`; saved `[x]`.
    Clamp { min: Option<f32>, max: Option<f32> },
    /// `hardtanh(x, min, max)` (and `relu6`); saved `[x]`.
    Hardtanh { min: f32, max: f32 },
    /// `gelu(x, approximate)`; saved `[x]`.
    Gelu(GeluApproximate),
    /// `silu(x)`; saved `[x]`.
    Silu,
    /// `hardswish(x)`; saved `[x]`.
    Hardswish,
    /// `hardsigmoid(x)`; saved `[x]`.
    Hardsigmoid,
    /// `elu(x, alpha)`; saved `[x]`.
    Elu(f32),
    /// `sum()` of a tensor of `shape`.
    Sum { shape: Vec<usize> },
    /// `sum(dims, keepdim)`.
    SumDims {
        shape: Vec<usize>,
        dims: Vec<usize>,
        keepdim: bool,
    },
    /// `mean()`.
    Mean { shape: Vec<usize> },
    /// `mean(dims, keepdim)`.
    MeanDims {
        shape: Vec<usize>,
        dims: Vec<usize>,
        keepdim: bool,
    },
    /// `max()` / `min()`; saved `[x, result]`.
    ExtremeAll { is_max: bool },
    /// `max(dim)` / `min(dim)`; saved `[indices]`.
    ExtremeDim {
        shape: Vec<usize>,
        dim: usize,
        keepdim: bool,
        is_max: bool,
    },
    /// `softmax(dim)`; saved `[result]`.
    Softmax { dim: usize },
    /// `log_softmax(dim)`; saved `[result]`.
    LogSoftmax { dim: usize },
    /// A view or copy with a new shape (`view`, `reshape`, `flatten`, `squeeze`,
    /// `unsqueeze`), named as PyTorch names the one that ran.
    Reshape {
        input: Vec<usize>,
        name: &'static str,
    },
    /// `transpose(dim0, dim1)`.
    Transpose { dim0: usize, dim1: usize },
    /// `t()`.
    T,
    /// `permute(perm)`.
    Permute { perm: Vec<usize> },
    /// `expand(...)` of a tensor of shape `input`.
    Expand { input: Vec<usize> },
    /// `x[i]` along one dim.
    Select {
        input: Vec<usize>,
        geometry: Geometry,
    },
    /// `x[a:b:c]` along one dim.
    Slice {
        input: Vec<usize>,
        geometry: Geometry,
    },
    /// A view whose base was rewritten in place after it was made: it reads `geometry` of
    /// the base.
    AsStrided {
        base_shape: Vec<usize>,
        geometry: Geometry,
    },
    /// The base of a view written in place: the gradient passes through except inside
    /// `geometry`, where `inner` (the in-place op's node) maps it.
    CopySlices { geometry: Geometry, inner: Rc<Node> },
    /// `clone()` (and `contiguous()` of non-contiguous data).
    Clone,
    /// An in-place op that overwrites every element regardless of the old value
    /// (`fill_`, `zero_`, `normal_`, `uniform_`), named as PyTorch names it.
    Fill(&'static str),
    /// `copy_(src)`: inputs `[old value, src]`.
    Copy { src: Vec<usize> },
    /// `a @ b`, both 2-D; saved `[a, b]`.
    Mm,
    /// `a @ v`, matrix by vector; saved `[a, v]`.
    Mv,
    /// `u @ v`, both 1-D; saved `[u, v]`.
    Dot,
    /// `bias + a @ b` (linear); inputs `[bias, a, b]`, saved `[a, b]`.
    Addmm { bias: Vec<usize> },
    /// Batched `a @ b` with broadcast batch dims; saved `[a, b]`.
    BatchMatmul {
        lhs: Vec<usize>,
        rhs: Vec<usize>,
        name: &'static str,
    },
    /// `cat(tensors, dim)`: the size each input contributed along `dim`.
    Cat { dim: usize, sizes: Vec<usize> },
    /// `stack(tensors, dim)`.
    Stack { dim: usize, count: usize },
    /// `mse_loss(input, target)` (mean); saved `[input, target]`.
    MseLoss,
    /// `l1_loss(input, target)` (mean); saved `[input, target]`.
    L1Loss,
    /// `nll_loss(log_probs, target)` (mean): the flat positions picked and how many.
    NllLoss {
        input: Vec<usize>,
        picks: Vec<usize>,
        count: usize,
    },
    /// `binary_cross_entropy_with_logits(input, target)` (mean); saved `[input, target]`.
    BceWithLogits,
    /// `dropout(x, p)` in training; saved `[mask]` (0 or `1/(1-p)`).
    Dropout,
    /// A formula defined outside this module (convolution, pooling, ...).
    Custom(Box<dyn BackwardFn>),
}

/// `Some(f())` when `wanted`, else `None`.
fn when(wanted: bool, f: impl FnOnce() -> Result<Tensor>) -> Result<Option<Tensor>> {
    if wanted { f().map(Some) } else { Ok(None) }
}

/// `grad` (of a reduction over `dims` of a tensor of `shape`) broadcast back to `shape`.
fn unreduce(grad: &Tensor, shape: &[usize], dims: &[usize], keepdim: bool) -> Result<Tensor> {
    let mut g = grad.clone();
    if !keepdim {
        for &d in dims {
            g = g.unsqueeze(d as i64)?;
        }
    }
    g.broadcast_to("backward", shape)
}

/// A zero tensor of `shape` with `grad` added at `geometry` (overlaps accumulate): the
/// adjoint of taking a view.
fn embed(grad: &Tensor, shape: &[usize], geometry: &Geometry) -> Result<Tensor> {
    let mut data = storage::alloc_filled("backward", shape, 0.0)?;
    let values = grad.to_vec();
    let mut next = values.iter();
    for_each_offset(&geometry.shape, &geometry.strides, geometry.offset, |at| {
        if let Some(&v) = next.next() {
            data[at] += v;
        }
    });
    Tensor::from_vec(data, shape)
}

fn zeros_like(t: &Tensor) -> Result<Tensor> {
    Tensor::zeros(t.shape())
}

impl Op {
    /// PyTorch's name for the node, as `grad_fn` prints it.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Add { .. } | Op::AddScalar => "AddBackward0",
            Op::Sub { .. } | Op::SubScalar => "SubBackward0",
            Op::RsubScalar => "RsubBackward1",
            Op::Mul { .. } | Op::MulScalar(_) | Op::RdivScalar(_) => "MulBackward0",
            Op::Div { .. } | Op::DivScalar(_) => "DivBackward0",
            Op::PowScalar(_) => "PowBackward0",
            Op::Pow { .. } => "PowBackward1",
            Op::ScalarPow(_) => "PowBackward2",
            Op::Neg => "NegBackward0",
            Op::Abs => "AbsBackward0",
            Op::Sqrt => "SqrtBackward0",
            Op::Exp => "ExpBackward0",
            Op::Log => "LogBackward0",
            Op::Relu => "ReluBackward0",
            Op::LeakyRelu(_) => "LeakyReluBackward0",
            Op::Sigmoid => "SigmoidBackward0",
            Op::Tanh => "TanhBackward0",
            Op::Clamp { .. } => "ClampBackward1",
            Op::Hardtanh { .. } => "HardtanhBackward0",
            Op::Gelu(_) => "GeluBackward0",
            Op::Silu => "SiluBackward0",
            Op::Hardswish => "HardswishBackward0",
            Op::Hardsigmoid => "HardsigmoidBackward0",
            Op::Elu(_) => "EluBackward0",
            Op::Sum { .. } => "SumBackward0",
            Op::SumDims { .. } => "SumBackward1",
            Op::Mean { .. } => "MeanBackward0",
            Op::MeanDims { .. } => "MeanBackward1",
            Op::ExtremeAll { is_max: true } => "MaxBackward1",
            Op::ExtremeAll { is_max: false } => "MinBackward1",
            Op::ExtremeDim { is_max: true, .. } => "MaxBackward0",
            Op::ExtremeDim { is_max: false, .. } => "MinBackward0",
            Op::Softmax { .. } => "SoftmaxBackward0",
            Op::LogSoftmax { .. } => "LogSoftmaxBackward0",
            Op::Reshape { name, .. } => name,
            Op::Transpose { .. } => "TransposeBackward0",
            Op::T => "TBackward0",
            Op::Permute { .. } => "PermuteBackward0",
            Op::Expand { .. } => "ExpandBackward0",
            Op::Select { .. } => "SelectBackward0",
            Op::Slice { .. } => "SliceBackward0",
            Op::AsStrided { .. } => "AsStridedBackward0",
            Op::CopySlices { .. } => "CopySlices",
            Op::Clone => "CloneBackward0",
            Op::Fill(name) => name,
            Op::Copy { .. } => "CopyBackwards",
            Op::Mm => "MmBackward0",
            Op::Mv => "MvBackward0",
            Op::Dot => "DotBackward0",
            Op::Addmm { .. } => "AddmmBackward0",
            Op::BatchMatmul { name, .. } => name,
            Op::Cat { .. } => "CatBackward0",
            Op::Stack { .. } => "StackBackward0",
            Op::MseLoss => "MseLossBackward0",
            Op::L1Loss => "L1LossBackward0",
            Op::NllLoss { .. } => "NllLossBackward0",
            Op::BceWithLogits => "BinaryCrossEntropyWithLogitsBackward0",
            Op::Dropout => "NativeDropoutBackward0",
            Op::Custom(f) => f.name(),
        }
    }

    /// The gradients of the op's inputs given `g`, the gradient of its output.
    pub(crate) fn backward(
        &self,
        g: &Tensor,
        s: &Saved,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let need = |i: usize| needs.get(i).copied().unwrap_or(false);
        let grads = match self {
            // z = a + b: dz/da = 1, dz/db = 1, summed over the dims each was broadcast along.
            Op::Add { lhs, rhs } => vec![
                when(need(0), || g.sum_to(lhs))?,
                when(need(1), || g.sum_to(rhs))?,
            ],
            // z = a - b: dz/da = 1, dz/db = -1.
            Op::Sub { lhs, rhs } => vec![
                when(need(0), || g.sum_to(lhs))?,
                when(need(1), || g.sum_to(rhs)?.neg())?,
            ],
            // z = a * b: dz/da = b, dz/db = a.
            Op::Mul { lhs, rhs } => vec![
                when(need(0), || g.mul(s.get(1)?)?.sum_to(lhs))?,
                when(need(1), || g.mul(s.get(0)?)?.sum_to(rhs))?,
            ],
            // z = a / b: dz/da = 1/b, dz/db = -a/b².
            Op::Div { lhs, rhs } => vec![
                when(need(0), || g.div(s.get(1)?)?.sum_to(lhs))?,
                when(need(1), || {
                    let (a, b) = (s.get(0)?, s.get(1)?);
                    g.mul(a)?.div(&b.mul(b)?)?.neg()?.sum_to(rhs)
                })?,
            ],
            // z = a^b: dz/da = b·a^(b-1) (0 where b = 0), dz/db = z·ln a (0 where a = 0, b ≥ 0).
            Op::Pow { lhs, rhs } => vec![
                when(need(0), || {
                    let (a, b) = (s.get(0)?, s.get(1)?);
                    let slope = Tensor::zip("pow_backward", a, b, |a, b| {
                        if b == 0.0 { 0.0 } else { b * a.powf(b - 1.0) }
                    })?;
                    g.mul(&slope)?.sum_to(lhs)
                })?,
                when(need(1), || {
                    let (a, z) = (s.get(0)?, s.get(2)?);
                    let slope = Tensor::zip("pow_backward", a, z, |a, z| {
                        if a == 0.0 { 0.0 } else { z * a.ln() }
                    })?;
                    let slope = Tensor::zip("pow_backward", &slope, s.get(1)?, |d, b| {
                        if d == 0.0 && b < 0.0 {
                            f32::NEG_INFINITY
                        } else {
                            d
                        }
                    })?;
                    g.mul(&slope)?.sum_to(rhs)
                })?,
            ],
            // z = x ± c: dz/dx = 1.
            Op::AddScalar | Op::SubScalar | Op::Clone => vec![Some(g.clone())],
            // z = c - x: dz/dx = -1.
            Op::RsubScalar | Op::Neg => vec![Some(g.neg()?)],
            // z = c·x: dz/dx = c.
            Op::MulScalar(c) => vec![Some(g.mul_scalar(f64::from(*c))?)],
            // z = x/c: dz/dx = 1/c.
            Op::DivScalar(c) => vec![Some(g.div_scalar(f64::from(*c))?)],
            // z = c/x: dz/dx = -c/x².
            Op::RdivScalar(c) => {
                let c = *c;
                vec![Some(Tensor::zip("div_backward", g, s.get(0)?, |g, x| {
                    -g * c / (x * x)
                })?)]
            }
            // z = x^c: dz/dx = c·x^(c-1) (0 for c = 0).
            Op::PowScalar(c) => {
                let c = *c;
                vec![Some(Tensor::zip("pow_backward", g, s.get(0)?, |g, x| {
                    if c == 0.0 {
                        0.0
                    } else {
                        g * c * x.powf(c - 1.0)
                    }
                })?)]
            }
            // z = c^x: dz/dx = z·ln c (0 where c = 0 and x ≥ 0).
            Op::ScalarPow(c) => {
                let (c, ln_c) = (*c, c.ln());
                let slope = Tensor::zip("pow_backward", s.get(0)?, s.get(1)?, |x, z| {
                    if c == 0.0 && x >= 0.0 { 0.0 } else { z * ln_c }
                })?;
                vec![Some(g.mul(&slope)?)]
            }
            // z = |x|: dz/dx = sign(x) (0 at 0).
            Op::Abs => vec![Some(Tensor::zip("abs_backward", g, s.get(0)?, |g, x| {
                if x > 0.0 {
                    g
                } else if x < 0.0 {
                    -g
                } else {
                    0.0
                }
            })?)],
            // z = √x: dz/dx = 1/(2z).
            Op::Sqrt => vec![Some(Tensor::zip("sqrt_backward", g, s.get(0)?, |g, z| {
                g / (2.0 * z)
            })?)],
            // z = eˣ: dz/dx = z.
            Op::Exp => vec![Some(g.mul(s.get(0)?)?)],
            // z = ln x: dz/dx = 1/x.
            Op::Log => vec![Some(g.div(s.get(0)?)?)],
            // z = max(x, 0): dz/dx = 1 where z > 0, else 0.
            Op::Relu => vec![Some(Tensor::zip("relu_backward", g, s.get(0)?, |g, z| {
                if z > 0.0 { g } else { 0.0 }
            })?)],
            // z = x if x > 0 else slope·x: dz/dx = 1 or slope.
            Op::LeakyRelu(slope) => {
                let slope = *slope;
                vec![Some(Tensor::zip(
                    "leaky_relu_backward",
                    g,
                    s.get(0)?,
                    |g, x| {
                        if x > 0.0 { g } else { g * slope }
                    },
                )?)]
            }
            // z = σ(x): dz/dx = z(1 - z).
            Op::Sigmoid => vec![Some(Tensor::zip(
                "sigmoid_backward",
                g,
                s.get(0)?,
                |g, z| g * z * (1.0 - z),
            )?)],
            // z = tanh x: dz/dx = 1 - z².
            Op::Tanh => vec![Some(Tensor::zip("tanh_backward", g, s.get(0)?, |g, z| {
                g * (1.0 - z * z)
            })?)],
            // z = clamp(x, lo, hi): dz/dx = 1 where lo ≤ x ≤ hi, else 0.
            Op::Clamp { min, max } => {
                let (lo, hi) = (
                    min.unwrap_or(f32::NEG_INFINITY),
                    max.unwrap_or(f32::INFINITY),
                );
                vec![Some(Tensor::zip(
                    "clamp_backward",
                    g,
                    s.get(0)?,
                    |g, x| {
                        if x >= lo && x <= hi { g } else { 0.0 }
                    },
                )?)]
            }
            // z = hardtanh(x): dz/dx = 1 strictly inside (min, max), else 0.
            Op::Hardtanh { min, max } => {
                let (min, max) = (*min, *max);
                vec![Some(Tensor::zip(
                    "hardtanh_backward",
                    g,
                    s.get(0)?,
                    |g, x| g * activation::hardtanh_slope(x, min, max),
                )?)]
            }
            // z = x·Φ(x): dz/dx = Φ(x) + x·φ(x) (or the tanh form's derivative).
            Op::Gelu(approximate) => {
                let approximate = *approximate;
                vec![Some(Tensor::zip("gelu_backward", g, s.get(0)?, |g, x| {
                    g * activation::gelu_slope(x, approximate)
                })?)]
            }
            // z = x·σ(x): dz/dx = σ(x)·(1 + x·(1 - σ(x))).
            Op::Silu => vec![Some(Tensor::zip("silu_backward", g, s.get(0)?, |g, x| {
                g * activation::silu_slope(x)
            })?)],
            // z = x·relu6(x + 3)/6: dz/dx = 0, x/3 + 1/2, or 1.
            Op::Hardswish => vec![Some(Tensor::zip(
                "hardswish_backward",
                g,
                s.get(0)?,
                |g, x| g * activation::hardswish_slope(x),
            )?)],
            // z = relu6(x + 3)/6: dz/dx = 1/6 strictly inside (-3, 3), else 0.
            Op::Hardsigmoid => vec![Some(Tensor::zip(
                "hardsigmoid_backward",
                g,
                s.get(0)?,
                |g, x| g * activation::hardsigmoid_slope(x),
            )?)],
            // z = x or alpha·(eˣ - 1): dz/dx = 1 or alpha·eˣ.
            Op::Elu(alpha) => {
                let alpha = *alpha;
                vec![Some(Tensor::zip("elu_backward", g, s.get(0)?, |g, x| {
                    g * activation::elu_slope(x, alpha)
                })?)]
            }
            // z = Σ x: dz/dx = 1 everywhere.
            Op::Sum { shape } => vec![Some(g.broadcast_to("backward", shape)?)],
            Op::SumDims {
                shape,
                dims,
                keepdim,
            } => vec![Some(unreduce(g, shape, dims, *keepdim)?)],
            // z = Σ x / n: dz/dx = 1/n.
            Op::Mean { shape } => {
                let n = shape.iter().product::<usize>() as f64;
                vec![Some(g.div_scalar(n)?.broadcast_to("backward", shape)?)]
            }
            Op::MeanDims {
                shape,
                dims,
                keepdim,
            } => {
                let n = dims.iter().map(|&d| shape[d]).product::<usize>() as f64;
                vec![Some(unreduce(&g.div_scalar(n)?, shape, dims, *keepdim)?)]
            }
            // z = max x: the gradient is shared evenly by the elements equal to the max.
            Op::ExtremeAll { .. } => {
                let (x, z) = (s.get(0)?, s.get(1)?);
                let mask =
                    Tensor::zip("max_backward", x, z, |x, z| if x == z { 1.0 } else { 0.0 })?;
                let count = mask.sum()?.item()?;
                vec![Some(mask.mul(&g.div_scalar(f64::from(count))?)?)]
            }
            // z = max along dim: the gradient goes to the index that won.
            Op::ExtremeDim {
                shape,
                dim,
                keepdim: _,
                is_max: _,
            } => {
                let (_, n, inner) = super::ops::reduce::split_at_dim(shape, *dim);
                let mut data = storage::alloc_filled("backward", shape, 0.0)?;
                let (grads, indices) = (g.to_vec(), s.get(0)?.to_vec());
                for (j, (&gv, &k)) in grads.iter().zip(&indices).enumerate() {
                    let (o, i) = (j / inner.max(1), j % inner.max(1));
                    data[(o * n + k as usize) * inner + i] += gv;
                }
                vec![Some(Tensor::from_vec(data, shape)?)]
            }
            // y = softmax(x): dx = y·(g - Σ g·y).
            Op::Softmax { dim } => {
                let y = s.get(0)?;
                let dot = g.mul(y)?.sum_dims(&[*dim as i64], true)?;
                vec![Some(y.mul(&g.sub(&dot)?)?)]
            }
            // y = log_softmax(x): dx = g - eʸ·Σ g.
            Op::LogSoftmax { dim } => {
                let y = s.get(0)?;
                let total = g.sum_dims(&[*dim as i64], true)?;
                vec![Some(g.sub(&y.exp()?.mul(&total)?)?)]
            }
            // Views move elements without changing them: their adjoint moves them back.
            Op::Reshape { input, .. } => vec![Some(g.reshape_raw(input)?)],
            Op::Transpose { dim0, dim1 } => vec![Some(g.transpose(*dim0 as i64, *dim1 as i64)?)],
            Op::T => vec![Some(g.t()?)],
            Op::Permute { perm } => {
                let mut inverse = vec![0i64; perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    inverse[p] = i as i64;
                }
                vec![Some(g.permute(&inverse)?)]
            }
            // Expanding repeats elements: their gradients add up.
            Op::Expand { input } => vec![Some(g.sum_to(input)?)],
            Op::Select { input, geometry } | Op::Slice { input, geometry } => {
                vec![Some(embed(g, input, geometry)?)]
            }
            Op::AsStrided {
                base_shape,
                geometry,
            } => vec![Some(embed(g, base_shape, geometry)?)],
            // base' = base with view ← f(view, others): outside the view the gradient passes
            // to the old base; inside, f's backward maps it to the old view and the others.
            Op::CopySlices { geometry, inner } => {
                let result = g.contiguous_copy()?;
                let region =
                    Tensor::from_storage(result.storage().clone(), geometry.layout_in(&result));
                let mut inner_needs = vec![need(0)];
                inner_needs.extend(needs.iter().skip(1));
                let saved = inner.unpack_saved()?;
                let mut inner_grads =
                    inner
                        .op()
                        .backward(&region.contiguous_copy()?, &saved, &inner_needs)?;
                match inner_grads.first_mut().and_then(Option::take) {
                    Some(old_view_grad) => region.write_values("CopySlices", &old_view_grad)?,
                    None => region.fill_values("CopySlices", 0.0),
                }
                let mut grads = vec![need(0).then_some(result)];
                grads.extend(inner_grads.into_iter().skip(1));
                grads
            }
            // The old value is overwritten: it gets no gradient.
            Op::Fill(_) => vec![when(need(0), || zeros_like(g))?],
            // self ← src: the old self gets nothing, src gets g (summed over broadcasting).
            Op::Copy { src } => vec![
                when(need(0), || zeros_like(g))?,
                when(need(1), || g.sum_to(src))?,
            ],
            // Z = A B: dA = G Bᵀ, dB = Aᵀ G.
            Op::Mm => vec![
                when(need(0), || g.mm(&s.get(1)?.t()?))?,
                when(need(1), || s.get(0)?.t()?.mm(g))?,
            ],
            // z = A v: dA = g vᵀ (outer product), dv = Aᵀ g.
            Op::Mv => vec![
                when(need(0), || g.unsqueeze(1)?.mm(&s.get(1)?.unsqueeze(0)?))?,
                when(need(1), || s.get(0)?.t()?.mv(g))?,
            ],
            // z = u·v: du = g v, dv = g u.
            Op::Dot => vec![
                when(need(0), || s.get(1)?.mul(g))?,
                when(need(1), || s.get(0)?.mul(g))?,
            ],
            // Z = bias + A B: dbias = G summed to bias's shape, dA = G Bᵀ, dB = Aᵀ G.
            Op::Addmm { bias } => vec![
                when(need(0), || g.sum_to(bias))?,
                when(need(1), || g.mm(&s.get(1)?.t()?))?,
                when(need(2), || s.get(0)?.t()?.mm(g))?,
            ],
            // Batched Z = A B: as `Mm` per batch, summed over broadcast batch dims.
            Op::BatchMatmul { lhs, rhs, .. } => vec![
                when(need(0), || {
                    g.batch_matmul_raw(&s.get(1)?.transpose(-1, -2)?)?
                        .sum_to(lhs)
                })?,
                when(need(1), || {
                    s.get(0)?
                        .transpose(-1, -2)?
                        .batch_matmul_raw(g)?
                        .sum_to(rhs)
                })?,
            ],
            // cat: each input gets its own stretch of the gradient back.
            Op::Cat { dim, sizes } => {
                let mut start = 0;
                let mut grads = Vec::with_capacity(sizes.len());
                for (i, &size) in sizes.iter().enumerate() {
                    let end = start + size;
                    grads.push(when(need(i), || {
                        g.slice(*dim as i64, Some(start as i64), Some(end as i64), 1)
                    })?);
                    start = end;
                }
                grads
            }
            Op::Stack { dim, count } => (0..*count)
                .map(|i| when(need(i), || g.select(*dim as i64, i as i64)))
                .collect::<Result<_>>()?,
            // L = mean((x - t)²): dL/dx = 2(x - t)/n, dL/dt = -dL/dx.
            Op::MseLoss => {
                let (x, t) = (s.get(0)?, s.get(1)?);
                let scale = 2.0 * g.item()? / x.numel() as f32;
                let dx = Tensor::zip("mse_loss_backward", x, t, |x, t| scale * (x - t))?;
                let dt = when(need(1), || dx.neg())?;
                vec![Some(dx), dt]
            }
            // L = mean|x - t|: dL/dx = sign(x - t)/n, dL/dt = -dL/dx.
            Op::L1Loss => {
                let (x, t) = (s.get(0)?, s.get(1)?);
                let scale = g.item()? / x.numel() as f32;
                let dx = Tensor::zip("l1_loss_backward", x, t, |x, t| {
                    let d = x - t;
                    if d > 0.0 {
                        scale
                    } else if d < 0.0 {
                        -scale
                    } else {
                        0.0
                    }
                })?;
                let dt = when(need(1), || dx.neg())?;
                vec![Some(dx), dt]
            }
            // L = -mean over picks of log p[pick]: dL/dlog p = -1/count at each pick.
            Op::NllLoss {
                input,
                picks,
                count,
            } => {
                let mut data = storage::alloc_filled("backward", input, 0.0)?;
                let value = -g.item()? / *count as f32;
                for &pick in picks {
                    data[pick] += value;
                }
                vec![Some(Tensor::from_vec(data, input)?), None]
            }
            // L = mean(max(x,0) - x t + ln(1 + e^-|x|)): dL/dx = (σ(x) - t)/n, dL/dt = -x/n.
            Op::BceWithLogits => {
                let (x, t) = (s.get(0)?, s.get(1)?);
                let scale = g.item()? / x.numel() as f32;
                vec![
                    when(need(0), || {
                        Tensor::zip("bce_backward", x, t, |x, t| scale * (sigmoid(x) - t))
                    })?,
                    when(need(1), || x.mul_scalar(-f64::from(scale)))?,
                ]
            }
            // z = x·mask: dz/dx = mask.
            Op::Dropout => vec![Some(g.mul(s.get(0)?)?)],
            Op::Custom(f) => f.backward(g, s, needs)?,
        };
        Ok(grads)
    }
}
