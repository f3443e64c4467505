//! `cat` and `stack`: joining tensors along a dimension.

use crate::tensor::autograd::record;
use crate::tensor::core::Tensor;
use crate::tensor::derivatives::Op;
use crate::tensor::error::{Result, TensorError};
use crate::tensor::storage;

/// The shape of `cat(tensors, dim)` for tensors of these shapes, and the dim joined along;
/// the errors `cat` reports. The static checker uses it on concrete shapes.
pub fn cat_shape(shapes: &[&[usize]], dim: i64) -> Result<(Vec<usize>, usize)> {
    let first = shapes
        .first()
        .ok_or_else(|| TensorError::value("cat", "expected a non-empty list of tensors"))?;
    if first.is_empty() {
        return Err(TensorError::Rank {
            op: "cat",
            expected: "tensors of at least 1 dimension",
            shape: Vec::new(),
        });
    }
    let rank = first.len();
    let wrapped = if dim < 0 { dim + rank as i64 } else { dim };
    if wrapped < 0 || wrapped >= rank as i64 {
        return Err(TensorError::DimOutOfRange {
            op: "cat",
            dim,
            shape: first.to_vec(),
            range: rank,
        });
    }
    let d = wrapped as usize;
    for t in shapes {
        let agrees = t.len() == rank
            && t.iter()
                .zip(first.iter())
                .enumerate()
                .all(|(i, (a, b))| i == d || a == b);
        if !agrees {
            return Err(TensorError::ShapeMismatch {
                op: "cat",
                lhs: first.to_vec(),
                rhs: t.to_vec(),
                detail: format!(" (sizes must match except in dimension {d})"),
            });
        }
    }
    let mut shape = first.to_vec();
    shape[d] = shapes.iter().map(|t| t[d]).sum();
    Ok((shape, d))
}

impl Tensor {
    /// `cat(tensors, dim)`: joins tensors whose shapes agree except along `dim`.
    pub fn cat(tensors: &[Tensor], dim: i64) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::value("cat", "expected a non-empty list of tensors"))?;
        let shapes: Vec<&[usize]> = tensors.iter().map(|t| t.shape()).collect();
        let d = cat_shape(&shapes, dim)?.1;
        let sizes: Vec<usize> = tensors.iter().map(|t| t.shape()[d]).collect();
        let mut shape = first.shape().to_vec();
        shape[d] = sizes.iter().sum();
        let mut out = storage::alloc_filled("cat", &shape, 0.0)?;
        let outer: usize = shape[..d].iter().product();
        let inner: usize = shape[d + 1..].iter().product();
        let row = shape[d] * inner;
        let mut start = 0;
        for (t, &size) in tensors.iter().zip(&sizes) {
            let chunk = size * inner;
            let values = t.try_to_vec("cat")?;
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
