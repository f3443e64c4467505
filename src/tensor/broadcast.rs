//! NumPy broadcasting: the shape two operands broadcast to, a stride-0 view of a tensor at a
//! larger shape, and the reverse (summing a gradient back down to an operand's shape).

use super::core::Tensor;
use super::error::{Result, TensorError};
use super::storage::Layout;

/// The shape `lhs` and `rhs` broadcast to: aligned at the right, each pair of sizes equal
/// or one of them 1. E0306 otherwise, naming `op` and both shapes.
pub fn broadcast_shape(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Result<Vec<usize>> {
    let ndim = lhs.len().max(rhs.len());
    let mut shape = vec![0; ndim];
    for (i, size) in shape.iter_mut().enumerate() {
        // Dimensions missing on the left count as 1.
        let l = if i + lhs.len() >= ndim {
            lhs[i + lhs.len() - ndim]
        } else {
            1
        };
        let r = if i + rhs.len() >= ndim {
            rhs[i + rhs.len() - ndim]
        } else {
            1
        };
        *size = match (l, r) {
            (l, r) if l == r => l,
            (1, r) => r,
            (l, 1) => l,
            _ => {
                return Err(TensorError::Broadcast {
                    op,
                    lhs: lhs.to_vec(),
                    rhs: rhs.to_vec(),
                });
            }
        };
    }
    Ok(shape)
}

/// Strides that read a tensor of layout `layout` as if it had `shape` (which it must
/// broadcast to): broadcast dimensions get stride 0.
pub(crate) fn broadcast_strides(layout: &Layout, shape: &[usize]) -> Vec<usize> {
    let extra = shape.len() - layout.shape.len();
    (0..shape.len())
        .map(|i| {
            if i < extra || layout.shape[i - extra] == 1 {
                0
            } else {
                layout.strides[i - extra]
            }
        })
        .collect()
}

impl Tensor {
    /// This tensor read at `shape` without copying (stride 0 along broadcast dimensions),
    /// with no history: the building block of broadcasting kernels. E0306 when it cannot.
    pub(crate) fn broadcast_to(&self, op: &'static str, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let target = broadcast_shape(op, self.shape(), shape)?;
        if target != shape {
            return Err(TensorError::Broadcast {
                op,
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
            });
        }
        let layout = Layout {
            shape: shape.to_vec(),
            strides: broadcast_strides(self.layout(), shape),
            offset: self.layout().offset,
        };
        Ok(Tensor::from_storage(self.storage().clone(), layout))
    }

    /// Sums this tensor (a gradient at a broadcast shape) down to `shape`: over the leading
    /// dimensions `shape` lacks and over every dimension where `shape` has size 1. The
    /// adjoint of broadcasting.
    pub(crate) fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let extra = self
            .ndim()
            .checked_sub(shape.len())
            .ok_or_else(|| TensorError::Broadcast {
                op: "sum_to",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
            })?;
        let dims: Vec<usize> = (0..self.ndim())
            .filter(|&d| d < extra || (shape[d - extra] == 1 && self.shape()[d] != 1))
            .collect();
        let summed = if dims.is_empty() {
            self.clone()
        } else {
            self.sum_dims_raw(&dims, true)?
        };
        summed.reshape_raw(shape)
    }
}
