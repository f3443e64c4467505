//! Reductions: `sum`, `mean`, `max`, `min` (over everything or along dims), `argmax`,
//! `argmin`, and the numerically stable `softmax` / `log_softmax`.
//!
//! Every dim reduction views its (contiguous) input as `[outer, n, inner]`, with `n` the
//! reduced dimension, and loops in that order so the inner loop runs over adjacent memory.

use crate::tensor::autograd::{SavedTensor, record};
use crate::tensor::core::Tensor;
use crate::tensor::derivatives::Op;
use crate::tensor::error::{Result, TensorError};
use rayon::prelude::*;

/// `[outer, n, inner]` sizes for reducing dimension `dim` of `shape`.
pub(crate) fn split_at_dim(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    let outer = shape[..dim].iter().product();
    let inner = shape[dim + 1..].iter().product();
    (outer, shape[dim], inner)
}

/// Sums dimension `dim` of row-major `values` of `shape` (accumulating in f64).
fn sum_along(values: &[f32], shape: &[usize], dim: usize) -> Vec<f32> {
    let (outer, n, inner) = split_at_dim(shape, dim);
    if n == 0 {
        return vec![0.0; outer * inner];
    }
    if inner == 1 {
        // Reducing the last dim: each output is the sum of one adjacent row.
        return values
            .chunks(n)
            .map(|row| row.iter().map(|&x| f64::from(x)).sum::<f64>() as f32)
            .collect();
    }
    let mut out = Vec::with_capacity(outer * inner);
    let mut acc = vec![0f64; inner];
    for o in 0..outer {
        acc.fill(0.0);
        for k in 0..n {
            let row = &values[(o * n + k) * inner..(o * n + k + 1) * inner];
            for (a, &x) in acc.iter_mut().zip(row) {
                *a += f64::from(x);
            }
        }
        out.extend(acc.iter().map(|&a| a as f32));
    }
    out
}

/// Sum of all `values` in f64, in parallel when large.
fn sum_all(values: &[f32]) -> f64 {
    if values.len() >= 1 << 16 {
        values
            .par_chunks(1 << 14)
            .map(|chunk| chunk.iter().map(|&x| f64::from(x)).sum::<f64>())
            .sum()
    } else {
        values.iter().map(|&x| f64::from(x)).sum()
    }
}

/// The shape after reducing `dims` (sorted): kept as size 1, or removed.
fn reduced_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(d, &size)| match (dims.contains(&d), keepdim) {
            (false, _) => Some(size),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// What a max/min along a dim finds: values, their indices (as floats), the output shape
/// and the normalised dim.
type Extremes = (Vec<f32>, Vec<f32>, Vec<usize>, usize);

impl Tensor {
    /// Normalises, sorts and checks a list of dims for `op`; an empty list means all dims.
    fn reduction_dims(&self, op: &'static str, dims: &[i64]) -> Result<Vec<usize>> {
        if dims.is_empty() {
            return Ok((0..self.ndim()).collect());
        }
        let mut out = Vec::with_capacity(dims.len());
        for &dim in dims {
            let d = self.dim_index(op, dim, self.ndim())?;
            if out.contains(&d) {
                return Err(TensorError::value(
                    op,
                    format!("dim {dim} appears more than once"),
                ));
            }
            out.push(d);
        }
        if self.ndim() == 0 {
            // A 0-dim tensor has nothing to reduce over, yet accepts dim 0 / -1.
            out.clear();
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Sum over `dims` (sorted, valid) with no history.
    pub(crate) fn sum_dims_raw(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        let mut shape = self.shape().to_vec();
        let mut values = self.try_to_vec("sum")?;
        for &d in dims.iter().rev() {
            values = sum_along(&values, &shape, d);
            shape[d] = 1;
        }
        Tensor::from_data(values, &shape).reshape_raw(&reduced_shape(self.shape(), dims, keepdim))
    }

    /// `sum()`: the sum of all elements, a 0-dim tensor.
    pub fn sum(&self) -> Result<Tensor> {
        let total = match self.with_contiguous(sum_all) {
            Some(total) => total,
            None => sum_all(&self.try_to_vec("sum")?),
        };
        let out = Tensor::scalar(total as f32);
        Ok(record(out, &[self], || {
            (
                Op::Sum {
                    shape: self.shape().to_vec(),
                },
                Vec::new(),
            )
        }))
    }

    /// `sum(dim, keepdim)`: sums over each of `dims` (negative counts from the end).
    pub fn sum_dims(&self, dims: &[i64], keepdim: bool) -> Result<Tensor> {
        let dims = self.reduction_dims("sum", dims)?;
        let out = self.sum_dims_raw(&dims, keepdim)?;
        Ok(record(out, &[self], || {
            let op = Op::SumDims {
                shape: self.shape().to_vec(),
                dims,
                keepdim,
            };
            (op, Vec::new())
        }))
    }

    /// `mean()`: the mean of all elements (nan for an empty tensor, as in PyTorch).
    pub fn mean(&self) -> Result<Tensor> {
        let total = match self.with_contiguous(sum_all) {
            Some(total) => total,
            None => sum_all(&self.try_to_vec("sum")?),
        };
        let out = Tensor::scalar((total / self.numel() as f64) as f32);
        Ok(record(out, &[self], || {
            (
                Op::Mean {
                    shape: self.shape().to_vec(),
                },
                Vec::new(),
            )
        }))
    }

    /// `mean(dim, keepdim)`.
    pub fn mean_dims(&self, dims: &[i64], keepdim: bool) -> Result<Tensor> {
        let dims = self.reduction_dims("mean", dims)?;
        let count: usize = dims.iter().map(|&d| self.shape()[d]).product();
        let sum = self.sum_dims_raw(&dims, keepdim)?;
        let out = sum.map("mean", |x| x / count as f32)?;
        Ok(record(out, &[self], || {
            let op = Op::MeanDims {
                shape: self.shape().to_vec(),
                dims,
                keepdim,
            };
            (op, Vec::new())
        }))
    }

    /// `max()`: the largest element (nan if any is nan), a 0-dim tensor. E0505 when empty.
    pub fn max(&self) -> Result<Tensor> {
        self.extreme_all("max", true)
    }

    /// `min()`: the smallest element.
    pub fn min(&self) -> Result<Tensor> {
        self.extreme_all("min", false)
    }

    fn extreme_all(&self, op: &'static str, is_max: bool) -> Result<Tensor> {
        if self.numel() == 0 {
            return Err(TensorError::value(op, "the tensor is empty; give a dim"));
        }
        let values = self.try_to_vec(op)?;
        let best = values
            .iter()
            .copied()
            .fold(values[0], |best, x| pick(best, x, is_max));
        let out = Tensor::scalar(best);
        let saved_out = out.clone();
        Ok(record(out, &[self], || {
            let saved = vec![
                Some(SavedTensor::new(self)),
                Some(SavedTensor::new(&saved_out)),
            ];
            (Op::ExtremeAll { is_max }, saved)
        }))
    }

    /// `max(dim, keepdim)`: the largest values along `dim` and their indices (as floats; the
    /// first index where there are ties).
    pub fn max_dim(&self, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extreme_dim("max", dim, keepdim, true)
    }

    /// `min(dim, keepdim)`: the smallest values along `dim` and their indices.
    pub fn min_dim(&self, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extreme_dim("min", dim, keepdim, false)
    }

    fn extreme_dim(
        &self,
        op: &'static str,
        dim: i64,
        keepdim: bool,
        is_max: bool,
    ) -> Result<(Tensor, Tensor)> {
        let (values, indices, shape, d) = self.extreme_dim_raw(op, dim, keepdim, is_max)?;
        let values = Tensor::from_data(values, &shape);
        let indices = Tensor::from_data(indices, &shape);
        let saved_indices = indices.clone();
        let values = record(values, &[self], || {
            let op = Op::ExtremeDim {
                shape: self.shape().to_vec(),
                dim: d,
                keepdim,
                is_max,
            };
            (op, vec![Some(SavedTensor::new(&saved_indices))])
        });
        Ok((values, indices))
    }

    /// Values, indices, output shape and normalised dim of a max/min along `dim`.
    fn extreme_dim_raw(
        &self,
        op: &'static str,
        dim: i64,
        keepdim: bool,
        is_max: bool,
    ) -> Result<Extremes> {
        let d = self.dim_index(op, dim, self.ndim())?;
        if self.ndim() == 0 {
            return Ok((self.to_vec(), vec![0.0], Vec::new(), 0));
        }
        if self.shape()[d] == 0 {
            return Err(TensorError::value(
                op,
                format!("cannot reduce dimension {d} of size 0"),
            ));
        }
        let data = self.try_to_vec(op)?;
        let (outer, n, inner) = split_at_dim(self.shape(), d);
        let mut values = Vec::with_capacity(outer * inner);
        let mut indices = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let mut best = data[o * n * inner + i];
                let mut best_k = 0;
                for k in 1..n {
                    let x = data[(o * n + k) * inner + i];
                    if pick(best, x, is_max) != best && !best.is_nan() {
                        best = x;
                        best_k = k;
                    }
                }
                values.push(best);
                indices.push(best_k as f32);
            }
        }
        Ok((
            values,
            indices,
            reduced_shape(self.shape(), &[d], keepdim),
            d,
        ))
    }

    /// `argmax(dim, keepdim)`: index of the largest element (as a float), of the flattened
    /// tensor when `dim` is `None`.
    pub fn argmax(&self, dim: Option<i64>, keepdim: bool) -> Result<Tensor> {
        self.arg_extreme("argmax", dim, keepdim, true)
    }

    /// `argmin(dim, keepdim)`: index of the smallest element.
    pub fn argmin(&self, dim: Option<i64>, keepdim: bool) -> Result<Tensor> {
        self.arg_extreme("argmin", dim, keepdim, false)
    }

    fn arg_extreme(
        &self,
        op: &'static str,
        dim: Option<i64>,
        keepdim: bool,
        is_max: bool,
    ) -> Result<Tensor> {
        match dim {
            Some(dim) => {
                let (_, indices, shape, _) = self.extreme_dim_raw(op, dim, keepdim, is_max)?;
                Ok(Tensor::from_data(indices, &shape))
            }
            None => {
                let flat = Tensor::from_data(self.try_to_vec(op)?, &[self.numel()]);
                let (_, indices, _, _) = flat.extreme_dim_raw(op, 0, false, is_max)?;
                let shape = if keepdim {
                    vec![1; self.ndim()]
                } else {
                    Vec::new()
                };
                Ok(Tensor::from_data(indices, &shape))
            }
        }
    }

    /// `softmax(dim)`: `exp(x - max) / sum(exp(x - max))` along `dim`.
    pub fn softmax(&self, dim: i64) -> Result<Tensor> {
        let d = self.dim_index("softmax", dim, self.ndim())?;
        let out = Tensor::from_data(self.softmax_raw(d, false)?, self.shape());
        let saved_out = out.clone();
        Ok(record(out, &[self], || {
            (
                Op::Softmax { dim: d },
                vec![Some(SavedTensor::new(&saved_out))],
            )
        }))
    }

    /// `log_softmax(dim)`: `x - max - log(sum(exp(x - max)))` along `dim`.
    pub fn log_softmax(&self, dim: i64) -> Result<Tensor> {
        let d = self.dim_index("log_softmax", dim, self.ndim())?;
        let out = Tensor::from_data(self.softmax_raw(d, true)?, self.shape());
        let saved_out = out.clone();
        Ok(record(out, &[self], || {
            (
                Op::LogSoftmax { dim: d },
                vec![Some(SavedTensor::new(&saved_out))],
            )
        }))
    }

    fn softmax_raw(&self, dim: usize, log: bool) -> Result<Vec<f32>> {
        let mut values = self.try_to_vec(if log { "log_softmax" } else { "softmax" })?;
        if self.ndim() == 0 {
            return Ok(vec![if log { 0.0 } else { 1.0 }]);
        }
        let (outer, n, inner) = split_at_dim(self.shape(), dim);
        let normalise = |block: &mut [f32]| {
            for i in 0..inner {
                let max = (0..n)
                    .map(|k| block[k * inner + i])
                    .fold(f32::NEG_INFINITY, f32::max);
                // All -inf: PyTorch gives nan; shifting by 0 keeps that.
                let shift = if max.is_finite() { max } else { 0.0 };
                let sum: f64 = (0..n)
                    .map(|k| f64::from((block[k * inner + i] - shift).exp()))
                    .sum();
                let log_sum = sum.ln() as f32;
                for k in 0..n {
                    let x = &mut block[k * inner + i];
                    *x = if log {
                        *x - shift - log_sum
                    } else {
                        ((*x - shift).exp() as f64 / sum) as f32
                    };
                }
            }
        };
        if n * inner > 0 {
            if values.len() >= 1 << 16 && outer > 1 {
                values.par_chunks_mut(n * inner).for_each(normalise);
            } else {
                values.chunks_mut(n * inner).take(outer).for_each(normalise);
            }
        }
        Ok(values)
    }
}

/// The better of `best` and `x` for a max (or min); nan wins, as in PyTorch.
fn pick(best: f32, x: f32, is_max: bool) -> f32 {
    if best.is_nan() {
        best
    } else if x.is_nan() || (is_max && x > best) || (!is_max && x < best) {
        x
    } else {
        best
    }
}
