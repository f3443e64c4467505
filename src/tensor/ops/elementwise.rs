//! Elementwise ops: arithmetic with broadcasting, unary functions, comparisons, and their
//! in-place forms.
//!
//! Two kernels do all the work, `Tensor::map` and `Tensor::zip`; both take a fast path
//! over slices when their inputs are contiguous (in parallel when large) and otherwise walk
//! the strides without allocating per element.

use crate::tensor::autograd::{SavedTensor, record, save_if};
use crate::tensor::broadcast::{broadcast_shape, broadcast_strides};
use crate::tensor::core::Tensor;
use crate::tensor::derivatives::Op;
use crate::tensor::error::Result;
use crate::tensor::random;
use crate::tensor::storage::{self, for_each_offset2};
use rayon::prelude::*;

/// Below this many elements a kernel runs on one thread: spawning costs more than it saves.
const PARALLEL_MIN: usize = 1 << 16;

/// How [`Tensor::compare`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Comparison {
    fn holds(self, a: f32, b: f32) -> bool {
        match self {
            Comparison::Eq => a == b,
            Comparison::Ne => a != b,
            Comparison::Lt => a < b,
            Comparison::Le => a <= b,
            Comparison::Gt => a > b,
            Comparison::Ge => a >= b,
        }
    }
}

fn shape_of(t: &Tensor) -> Vec<usize> {
    t.shape().to_vec()
}

impl Tensor {
    // ----- kernels (no history) -----

    /// `f` applied to every element, into a new contiguous tensor with no history.
    pub(crate) fn map(
        &self,
        op: &'static str,
        f: impl Fn(f32) -> f32 + Sync + Send,
    ) -> Result<Tensor> {
        let mut values = storage::alloc(op, self.shape())?;
        let contiguous = self.with_contiguous(|src| {
            if src.len() >= PARALLEL_MIN {
                values.par_extend(src.par_iter().map(|&x| f(x)));
            } else {
                values.extend(src.iter().map(|&x| f(x)));
            }
        });
        if contiguous.is_none() {
            let data = self.storage().data();
            self.layout().for_each_offset(|at| values.push(f(data[at])));
        }
        Ok(Tensor::from_data(values, self.shape()))
    }

    /// `f` applied to broadcast pairs of elements of `a` and `b`, into a new contiguous
    /// tensor with no history. E0306 when the shapes do not broadcast.
    pub(crate) fn zip(
        op: &'static str,
        a: &Tensor,
        b: &Tensor,
        f: impl Fn(f32, f32) -> f32 + Sync + Send,
    ) -> Result<Tensor> {
        let shape = broadcast_shape(op, a.shape(), b.shape())?;
        if b.numel() == 1 && a.shape() == shape.as_slice() {
            let y = b.storage().data()[b.layout().offset];
            return a.map(op, |x| f(x, y));
        }
        if a.numel() == 1 && b.shape() == shape.as_slice() {
            let x = a.storage().data()[a.layout().offset];
            return b.map(op, |y| f(x, y));
        }
        let mut values = storage::alloc(op, &shape)?;
        if a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous() {
            let (a_data, b_data) = (a.storage().data(), b.storage().data());
            let n = a.numel();
            let a_slice = &a_data[a.layout().offset..a.layout().offset + n];
            let b_slice = &b_data[b.layout().offset..b.layout().offset + n];
            if n >= PARALLEL_MIN {
                values.par_extend(a_slice.par_iter().zip(b_slice).map(|(&x, &y)| f(x, y)));
            } else {
                values.extend(a_slice.iter().zip(b_slice).map(|(&x, &y)| f(x, y)));
            }
            return Ok(Tensor::from_data(values, &shape));
        }
        let a_strides = broadcast_strides(a.layout(), &shape);
        let b_strides = broadcast_strides(b.layout(), &shape);
        let (a_data, b_data) = (a.storage().data(), b.storage().data());
        for_each_offset2(
            &shape,
            (&a_strides, a.layout().offset),
            (&b_strides, b.layout().offset),
            |i, j| values.push(f(a_data[i], b_data[j])),
        );
        Ok(Tensor::from_data(values, &shape))
    }

    // ----- binary arithmetic -----

    /// `self + other`, broadcasting.
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        let out = Tensor::zip("add", self, other, |a, b| a + b)?;
        Ok(record(out, &[self, other], || {
            let op = Op::Add {
                lhs: shape_of(self),
                rhs: shape_of(other),
            };
            (op, Vec::new())
        }))
    }

    /// `self - other`, broadcasting.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        let out = Tensor::zip("sub", self, other, |a, b| a - b)?;
        Ok(record(out, &[self, other], || {
            let op = Op::Sub {
                lhs: shape_of(self),
                rhs: shape_of(other),
            };
            (op, Vec::new())
        }))
    }

    /// `self * other`, broadcasting.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        let out = Tensor::zip("mul", self, other, |a, b| a * b)?;
        Ok(record(out, &[self, other], || {
            let op = Op::Mul {
                lhs: shape_of(self),
                rhs: shape_of(other),
            };
            // Each operand is needed only for the other's gradient.
            let saved = vec![
                save_if(other.requires_grad(), self),
                save_if(self.requires_grad(), other),
            ];
            (op, saved)
        }))
    }

    /// `self / other`, broadcasting (IEEE: `x / 0` is ±inf or nan, as in PyTorch).
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        let out = Tensor::zip("div", self, other, |a, b| a / b)?;
        Ok(record(out, &[self, other], || {
            let op = Op::Div {
                lhs: shape_of(self),
                rhs: shape_of(other),
            };
            let saved = vec![
                save_if(other.requires_grad(), self),
                Some(SavedTensor::new(other)),
            ];
            (op, saved)
        }))
    }

    /// `self ** exponent` with a tensor exponent, broadcasting.
    pub fn pow(&self, exponent: &Tensor) -> Result<Tensor> {
        let out = Tensor::zip("pow", self, exponent, f32::powf)?;
        let saved_out = out.clone();
        Ok(record(out, &[self, exponent], || {
            let op = Op::Pow {
                lhs: shape_of(self),
                rhs: shape_of(exponent),
            };
            let saved = vec![
                Some(SavedTensor::new(self)),
                Some(SavedTensor::new(exponent)),
                save_if(exponent.requires_grad(), &saved_out),
            ];
            (op, saved)
        }))
    }

    // ----- arithmetic with a scalar -----

    /// `self + value`.
    pub fn add_scalar(&self, value: f64) -> Result<Tensor> {
        let v = value as f32;
        let out = self.map("add", |x| x + v)?;
        Ok(record(out, &[self], || (Op::AddScalar, Vec::new())))
    }

    /// `self - value`.
    pub fn sub_scalar(&self, value: f64) -> Result<Tensor> {
        let v = value as f32;
        let out = self.map("sub", |x| x - v)?;
        Ok(record(out, &[self], || (Op::SubScalar, Vec::new())))
    }

    /// `value - self`.
    pub fn rsub_scalar(&self, value: f64) -> Result<Tensor> {
        let v = value as f32;
        let out = self.map("rsub", |x| v - x)?;
        Ok(record(out, &[self], || (Op::RsubScalar, Vec::new())))
    }

    /// `self * value`.
    pub fn mul_scalar(&self, value: f64) -> Result<Tensor> {
        let v = value as f32;
        let out = self.map("mul", |x| x * v)?;
        Ok(record(out, &[self], || (Op::MulScalar(v), Vec::new())))
    }

    /// `self / value`.
    pub fn div_scalar(&self, value: f64) -> Result<Tensor> {
        let v = value as f32;
        let out = self.map("div", |x| x / v)?;
        Ok(record(out, &[self], || (Op::DivScalar(v), Vec::new())))
    }

    /// `value / self`.
    pub fn rdiv_scalar(&self, value: f64) -> Result<Tensor> {
        let v = value as f32;
        let out = self.map("div", |x| v / x)?;
        Ok(record(out, &[self], || {
            (Op::RdivScalar(v), vec![Some(SavedTensor::new(self))])
        }))
    }

    /// `self ** exponent`.
    pub fn pow_scalar(&self, exponent: f64) -> Result<Tensor> {
        let e = exponent as f32;
        let out = if e == 2.0 {
            // Squaring by multiplication is exact where powf may not be, as in PyTorch.
            self.map("pow", |x| x * x)?
        } else {
            self.map("pow", |x| x.powf(e))?
        };
        Ok(record(out, &[self], || {
            (Op::PowScalar(e), vec![Some(SavedTensor::new(self))])
        }))
    }

    /// `base ** self` (`2 ** t`).
    pub fn scalar_pow(&self, base: f64) -> Result<Tensor> {
        let b = base as f32;
        let out = self.map("pow", |x| b.powf(x))?;
        let saved_out = out.clone();
        Ok(record(out, &[self], || {
            let saved = vec![
                Some(SavedTensor::new(self)),
                Some(SavedTensor::new(&saved_out)),
            ];
            (Op::ScalarPow(b), saved)
        }))
    }

    // ----- unary functions -----

    /// `-self`.
    pub fn neg(&self) -> Result<Tensor> {
        let out = self.map("neg", |x| -x)?;
        Ok(record(out, &[self], || (Op::Neg, Vec::new())))
    }

    /// `|self|`.
    pub fn abs(&self) -> Result<Tensor> {
        let out = self.map("abs", f32::abs)?;
        Ok(record(out, &[self], || {
            (Op::Abs, vec![Some(SavedTensor::new(self))])
        }))
    }

    /// Square root (nan below 0).
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary_saving_output("sqrt", f32::sqrt, Op::Sqrt)
    }

    /// `e ** self`.
    pub fn exp(&self) -> Result<Tensor> {
        self.unary_saving_output("exp", f32::exp, Op::Exp)
    }

    /// Natural logarithm (-inf at 0, nan below).
    pub fn log(&self) -> Result<Tensor> {
        let out = self.map("log", f32::ln)?;
        Ok(record(out, &[self], || {
            (Op::Log, vec![Some(SavedTensor::new(self))])
        }))
    }

    /// `max(self, 0)`.
    pub fn relu(&self) -> Result<Tensor> {
        self.unary_saving_output("relu", |x| if x > 0.0 { x } else { 0.0 }, Op::Relu)
    }

    /// `self` where positive, else `negative_slope * self`.
    pub fn leaky_relu(&self, negative_slope: f64) -> Result<Tensor> {
        let slope = negative_slope as f32;
        let out = self.map("leaky_relu", |x| if x > 0.0 { x } else { x * slope })?;
        Ok(record(out, &[self], || {
            (Op::LeakyRelu(slope), vec![Some(SavedTensor::new(self))])
        }))
    }

    /// `1 / (1 + e ** -self)`.
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary_saving_output("sigmoid", sigmoid, Op::Sigmoid)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary_saving_output("tanh", f32::tanh, Op::Tanh)
    }

    /// `clamp(min, max)`: each element limited to `[min, max]`; either bound may be absent.
    /// As in PyTorch, `min > max` gives `max` everywhere.
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
        let (lo, hi) = (min.map(|v| v as f32), max.map(|v| v as f32));
        let out = self.map("clamp", |x| clamp(x, lo, hi))?;
        Ok(record(out, &[self], || {
            (
                Op::Clamp { min: lo, max: hi },
                vec![Some(SavedTensor::new(self))],
            )
        }))
    }

    fn unary_saving_output(
        &self,
        name: &'static str,
        f: impl Fn(f32) -> f32 + Sync + Send,
        op: Op,
    ) -> Result<Tensor> {
        let out = self.map(name, f)?;
        let saved_out = out.clone();
        Ok(record(out, &[self], || {
            (op, vec![Some(SavedTensor::new(&saved_out))])
        }))
    }

    // ----- comparisons -----

    /// Elementwise comparison with broadcasting: 1.0 where it holds, else 0.0. Never
    /// requires grad.
    pub fn compare(&self, other: &Tensor, cmp: Comparison) -> Result<Tensor> {
        Tensor::zip("compare", self, other, |a, b| {
            f32::from(u8::from(cmp.holds(a, b)))
        })
    }

    /// Elementwise comparison with a number: 1.0 where it holds, else 0.0.
    pub fn compare_scalar(&self, value: f64, cmp: Comparison) -> Result<Tensor> {
        let v = value as f32;
        self.map("compare", |a| f32::from(u8::from(cmp.holds(a, v))))
    }

    // ----- in-place -----

    /// `add_(other)` / `x += other`: the broadcast result must keep this tensor's shape.
    pub fn add_(&self, other: &Tensor) -> Result<()> {
        self.apply_in_place("add_", &[other], |old| old.add(other))
    }

    /// `sub_(other)` / `x -= other`.
    pub fn sub_(&self, other: &Tensor) -> Result<()> {
        self.apply_in_place("sub_", &[other], |old| old.sub(other))
    }

    /// `mul_(other)` / `x *= other`.
    pub fn mul_(&self, other: &Tensor) -> Result<()> {
        self.apply_in_place("mul_", &[other], |old| old.mul(other))
    }

    /// `div_(other)` / `x /= other`.
    pub fn div_(&self, other: &Tensor) -> Result<()> {
        self.apply_in_place("div_", &[other], |old| old.div(other))
    }

    /// `add_(value)` / `x += value`.
    pub fn add_scalar_(&self, value: f64) -> Result<()> {
        self.apply_in_place("add_", &[], |old| old.add_scalar(value))
    }

    /// `sub_(value)` / `x -= value`.
    pub fn sub_scalar_(&self, value: f64) -> Result<()> {
        self.apply_in_place("sub_", &[], |old| old.sub_scalar(value))
    }

    /// `mul_(value)` / `x *= value`.
    pub fn mul_scalar_(&self, value: f64) -> Result<()> {
        self.apply_in_place("mul_", &[], |old| old.mul_scalar(value))
    }

    /// `div_(value)` / `x /= value`.
    pub fn div_scalar_(&self, value: f64) -> Result<()> {
        self.apply_in_place("div_", &[], |old| old.div_scalar(value))
    }

    /// `clamp_(min, max)`.
    pub fn clamp_(&self, min: Option<f64>, max: Option<f64>) -> Result<()> {
        self.apply_in_place("clamp_", &[], |old| old.clamp(min, max))
    }

    /// `fill_(value)`: every element becomes `value`.
    pub fn fill_(&self, value: f64) -> Result<()> {
        self.apply_in_place("fill_", &[], |old| {
            old.refill("FillBackward0", |data| data.fill(value as f32))
        })
    }

    /// `zero_()`: every element becomes 0.
    pub fn zero_(&self) -> Result<()> {
        self.apply_in_place("zero_", &[], |old| {
            old.refill("ZeroBackward0", |data| data.fill(0.0))
        })
    }

    /// `normal_(mean, std)`: every element drawn from a normal distribution.
    pub fn normal_(&self, mean: f64, std: f64) -> Result<()> {
        self.apply_in_place("normal_", &[], |old| {
            old.refill("NormalBackward0", |data| {
                random::fill_normal(data, mean, std)
            })
        })
    }

    /// `uniform_(a, b)`: every element drawn uniformly from `[a, b)`.
    pub fn uniform_(&self, low: f64, high: f64) -> Result<()> {
        self.apply_in_place("uniform_", &[], |old| {
            old.refill("UniformBackward0", |data| {
                random::fill_uniform(data, low, high)
            })
        })
    }

    /// `copy_(src)`: this tensor's elements become `src`'s, broadcast to this shape; the
    /// gradient flows to `src` (summed over the broadcast), none to the old value.
    pub fn copy_(&self, src: &Tensor) -> Result<()> {
        self.apply_in_place("copy_", &[src], |old| {
            let out = src.broadcast_to("copy_", old.shape())?.contiguous_copy()?;
            Ok(record(out, &[old, src], || {
                (Op::Copy { src: shape_of(src) }, Vec::new())
            }))
        })
    }

    /// A new tensor of this shape whose values `fill` writes, recorded as a node named
    /// `name` that gives this tensor zero gradient (the old value no longer matters).
    fn refill(&self, name: &'static str, fill: impl FnOnce(&mut [f32])) -> Result<Tensor> {
        let mut data = storage::alloc_filled(name, self.shape(), 0.0)?;
        fill(&mut data);
        let out = Tensor::from_data(data, self.shape());
        Ok(record(out, &[self], || (Op::Fill(name), Vec::new())))
    }
}

/// The logistic function, written to stay finite for large `|x|`.
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// PyTorch's clamp: `min(max(x, lo), hi)`, nan stays nan.
pub(crate) fn clamp(x: f32, lo: Option<f32>, hi: Option<f32>) -> f32 {
    let mut y = x;
    if let Some(lo) = lo
        && y < lo
    {
        y = lo;
    }
    if let Some(hi) = hi
        && y > hi
    {
        y = hi;
    }
    y
}
