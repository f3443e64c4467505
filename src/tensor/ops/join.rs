//! `cat` and `stack`: joining tensors along a dimension.

use crate::tensor::autograd::record;
use crate::tensor::core::Tensor;
use crate::tensor::derivatives::Op;
use crate::tensor::error::{Result, TensorError};
use crate::tensor::storage;

impl Tensor {
    /// `cat(tensors, dim)`: joins tensors whose shapes agree except along `dim`.
    pub fn cat(tensors: &[Tensor], dim: i64) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::value("cat", "expected a non-empty list of tensors"))?;
        if first.ndim() == 0 {
            return Err(TensorError::Rank {
                op: "cat",
                expected: "tensors of at least 1 dimension",
                shape: Vec::new(),
            });
        }
        let d = first.dim_index("cat", dim, first.ndim())?;
        for t in tensors {
            let agrees = t.ndim() == first.ndim()
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(i, (a, b))| i == d || a == b);
            if !agrees {
                return Err(TensorError::ShapeMismatch {
                    op: "cat",
                    lhs: first.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                    detail: format!(" (sizes must match except in dimension {d})"),
                });
            }
        }
        let sizes: Vec<usize> = tensors.iter().map(|t| t.shape()[d]).collect();
        let mut shape = first.shape().to_vec();
        shape[d] = sizes.iter().sum();
        let numel = storage::checked_numel("cat", &shape)?;
        let outer: usize = shape[..d].iter().product();
        let inner: usize = shape[d + 1..].iter().product();
        let mut out = vec![0.0; numel];
        let row = shape[d] * inner;
        let mut start = 0;
        for (t, &size) in tensors.iter().zip(&sizes) {
            let chunk = size * inner;
            let values = t.to_vec();
            for o in 0..outer {
                out[o * row + start..o * row + start + chunk]
                    .copy_from_slice(&values[o * chunk..(o + 1) * chunk]);
            }
            start += chunk;
        }
        let out = Tensor::from_data(out, &shape);
        let inputs: Vec<&Tensor> = tensors.iter().collect();
        Ok(record(out, &inputs, || {
            (Op::Cat { dim: d, sizes }, Vec::new())
        }))
    }

    /// `stack(tensors, dim)`: joins tensors of one shape along a new dimension `dim`.
    pub fn stack(tensors: &[Tensor], dim: i64) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::value("stack", "expected a non-empty list of tensors"))?;
        let d = first.dim_index("stack", dim, first.ndim() + 1)?;
        for t in tensors {
            if t.shape() != first.shape() {
                return Err(TensorError::ShapeMismatch {
                    op: "stack",
                    lhs: first.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                    detail: " (stack needs tensors of equal shape)".into(),
                });
            }
        }
        let joined = {
            let _no_grad = crate::tensor::autograd::no_grad();
            let unsqueezed = tensors
                .iter()
                .map(|t| t.unsqueeze(d as i64))
                .collect::<Result<Vec<_>>>()?;
            Tensor::cat(&unsqueezed, d as i64)?.detach()
        };
        let inputs: Vec<&Tensor> = tensors.iter().collect();
        let count = tensors.len();
        Ok(record(joined, &inputs, || {
            (Op::Stack { dim: d, count }, Vec::new())
        }))
    }
}
