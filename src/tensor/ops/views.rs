//! Ops that return views (one storage, new shape/strides/offset): `view`, `reshape` (a view
//! when the strides allow, else a copy), `flatten`, `squeeze`, `unsqueeze`, `transpose`,
//! `t`, `T`, `permute`, `expand`; plus `contiguous` and `clone`, which copy.

use crate::tensor::autograd::record;
use crate::tensor::core::Tensor;
use crate::tensor::derivatives::Op;
use crate::tensor::error::{Result, TensorError};
use crate::tensor::memory;
use crate::tensor::storage::{self, Layout, contiguous_strides};

/// Strides that let data of `(old_shape, old_strides)` be read as `new_shape` without a copy,
/// if any exist (PyTorch's `computeStride`): each run of dimensions that is contiguous
/// within itself may be split or merged freely.
fn view_strides(
    old_shape: &[usize],
    old_strides: &[usize],
    new_shape: &[usize],
) -> Option<Vec<usize>> {
    let numel: usize = old_shape.iter().product();
    if old_shape.is_empty() {
        return Some(vec![1; new_shape.len()]);
    }
    if numel == 0 {
        return Some(contiguous_strides(new_shape));
    }
    let mut new_strides = vec![0; new_shape.len()];
    let mut view_d = new_shape.len() as isize - 1;
    let mut chunk_base_stride = *old_strides.last()?;
    let mut tensor_numel = 1;
    let mut view_numel = 1;
    for tensor_d in (0..old_shape.len()).rev() {
        tensor_numel *= old_shape[tensor_d];
        let chunk_ends = tensor_d == 0
            || (old_shape[tensor_d - 1] != 1
                && old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride);
        if chunk_ends {
            while view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d as usize] == 1) {
                new_strides[view_d as usize] = view_numel * chunk_base_stride;
                view_numel *= new_shape[view_d as usize];
                view_d -= 1;
            }
            if view_numel != tensor_numel {
                return None;
            }
            if tensor_d > 0 {
                chunk_base_stride = old_strides[tensor_d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    (view_d == -1).then_some(new_strides)
}

impl Tensor {
    /// Resolves a requested shape (with at most one `-1`) against this tensor's element
    /// count for `op`: E0308 when the counts differ.
    fn infer_shape(&self, op: &'static str, requested: &[i64]) -> Result<Vec<usize>> {
        let numel_error = || TensorError::ReshapeNumel {
            op,
            input: self.shape().to_vec(),
            requested: requested.to_vec(),
            numel: self.numel(),
        };
        let mut inferred = None;
        let mut known: usize = 1;
        let mut shape = Vec::with_capacity(requested.len());
        for (i, &size) in requested.iter().enumerate() {
            match size {
                -1 if inferred.is_none() => inferred = Some(i),
                -1 => {
                    return Err(TensorError::value(
                        op,
                        "only one dimension can be inferred (-1)",
                    ));
                }
                s if s < 0 => {
                    return Err(TensorError::value(
                        op,
                        format!("invalid shape dimension {s}"),
                    ));
                }
                s => known = known.checked_mul(s as usize).ok_or_else(numel_error)?,
            }
            shape.push(size.max(0) as usize);
        }
        if let Some(i) = inferred {
            if known == 0 || !self.numel().is_multiple_of(known) {
                return Err(numel_error());
            }
            shape[i] = self.numel() / known;
        } else if known != self.numel() {
            return Err(numel_error());
        }
        Ok(shape)
    }

    /// Reshape with no history: a view when possible, else a contiguous copy.
    pub(crate) fn reshape_raw(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let layout = match view_strides(self.shape(), self.strides(), shape) {
            Some(strides) => Layout {
                shape: shape.to_vec(),
                strides,
                offset: self.layout().offset,
            },
            None => return Tensor::from_vec(self.try_to_vec("reshape")?, shape),
        };
        Ok(Tensor::from_storage(self.storage().clone(), layout))
    }

    /// A view with a new shape, recorded as `name`, or `None` when the strides forbid.
    fn view_as(&self, shape: Vec<usize>, name: &'static str) -> Option<Tensor> {
        let strides = view_strides(self.shape(), self.strides(), &shape)?;
        let layout = Layout {
            shape,
            strides,
            offset: self.layout().offset,
        };
        let input = self.shape().to_vec();
        Some(self.make_view(layout, || Op::Reshape { input, name }))
    }

    /// `view(shape)`: a view with a new shape (one dim may be `-1`). E0308 on a different
    /// element count; E0505 when the strides cannot express it (`reshape` would copy).
    pub fn view(&self, shape: &[i64]) -> Result<Tensor> {
        let target = self.infer_shape("view", shape)?;
        self.view_as(target, "ViewBackward0")
            .ok_or_else(|| TensorError::ViewNotContiguous {
                input: self.shape().to_vec(),
                requested: shape.to_vec(),
            })
    }

    /// `reshape(shape)`: a view when the strides allow, else a copy (one dim may be `-1`).
    pub fn reshape(&self, shape: &[i64]) -> Result<Tensor> {
        let target = self.infer_shape("reshape", shape)?;
        self.reshape_to(target)
    }

    fn reshape_to(&self, target: Vec<usize>) -> Result<Tensor> {
        if let Some(view) = self.view_as(target.clone(), "ViewBackward0") {
            return Ok(view);
        }
        // As PyTorch: clone to contiguous memory, then view it (`UnsafeViewBackward0`).
        let copy = self.clone_tensor()?;
        Ok(copy
            .view_as(target, "UnsafeViewBackward0")
            .expect("a contiguous tensor can be viewed at any shape of its element count"))
    }

    /// `flatten(start_dim, end_dim)`: merges dims `start_dim..=end_dim` into one.
    pub fn flatten(&self, start_dim: i64, end_dim: i64) -> Result<Tensor> {
        if self.ndim() == 0 {
            return self.reshape_to(vec![1]);
        }
        let start = self.dim_index("flatten", start_dim, self.ndim())?;
        let end = self.dim_index("flatten", end_dim, self.ndim())?;
        if start > end {
            return Err(TensorError::value(
                "flatten",
                format!("start_dim {start_dim} comes after end_dim {end_dim}"),
            ));
        }
        if start == end {
            return Ok(self.clone());
        }
        let mut shape = self.shape()[..start].to_vec();
        shape.push(self.shape()[start..=end].iter().product());
        shape.extend_from_slice(&self.shape()[end + 1..]);
        self.reshape_to(shape)
    }

    /// `squeeze()`: removes every dimension of size 1.
    pub fn squeeze(&self) -> Tensor {
        let keep: Vec<usize> = (0..self.ndim()).filter(|&d| self.shape()[d] != 1).collect();
        self.keep_dims(&keep, "SqueezeBackward0")
    }

    /// `squeeze(dim)`: removes `dim` if its size is 1 (else the view has the same shape).
    pub fn squeeze_dim(&self, dim: i64) -> Result<Tensor> {
        let d = self.dim_index("squeeze", dim, self.ndim())?;
        let keep: Vec<usize> = (0..self.ndim())
            .filter(|&i| i != d || self.shape()[i] != 1)
            .collect();
        Ok(self.keep_dims(&keep, "SqueezeBackward1"))
    }

    fn keep_dims(&self, keep: &[usize], name: &'static str) -> Tensor {
        let layout = Layout {
            shape: keep.iter().map(|&d| self.shape()[d]).collect(),
            strides: keep.iter().map(|&d| self.strides()[d]).collect(),
            offset: self.layout().offset,
        };
        let input = self.shape().to_vec();
        self.make_view(layout, || Op::Reshape { input, name })
    }

    /// `unsqueeze(dim)`: inserts a dimension of size 1 at `dim` (`-1` appends).
    pub fn unsqueeze(&self, dim: i64) -> Result<Tensor> {
        let d = self.dim_index("unsqueeze", dim, self.ndim() + 1)?;
        let mut layout = self.layout().clone();
        // Any stride works for a size-1 dim; this one keeps contiguous tensors contiguous.
        let stride = if d < self.ndim() {
            self.shape()[d] * self.strides()[d]
        } else {
            1
        };
        layout.shape.insert(d, 1);
        layout.strides.insert(d, stride);
        let input = self.shape().to_vec();
        Ok(self.make_view(layout, || Op::Reshape {
            input,
            name: "UnsqueezeBackward0",
        }))
    }

    /// `transpose(dim0, dim1)`: swaps two dimensions.
    pub fn transpose(&self, dim0: i64, dim1: i64) -> Result<Tensor> {
        let a = self.dim_index("transpose", dim0, self.ndim())?;
        let b = self.dim_index("transpose", dim1, self.ndim())?;
        if self.ndim() == 0 {
            return Ok(self.make_view(self.layout().clone(), || Op::Transpose { dim0: 0, dim1: 0 }));
        }
        let mut layout = self.layout().clone();
        layout.shape.swap(a, b);
        layout.strides.swap(a, b);
        Ok(self.make_view(layout, || Op::Transpose { dim0: a, dim1: b }))
    }

    /// `t()`: transpose of a tensor of at most 2 dimensions (E0304 otherwise).
    pub fn t(&self) -> Result<Tensor> {
        if self.ndim() > 2 {
            return Err(TensorError::Rank {
                op: "t",
                expected: "a tensor of at most 2 dimensions",
                shape: self.shape().to_vec(),
            });
        }
        let mut layout = self.layout().clone();
        layout.shape.reverse();
        layout.strides.reverse();
        Ok(self.make_view(layout, || Op::T))
    }

    /// The `T` field: dimensions reversed (a permute, as PyTorch's `numpy_T`).
    pub fn numpy_t(&self) -> Result<Tensor> {
        let dims: Vec<i64> = (0..self.ndim() as i64).rev().collect();
        self.permute(&dims)
    }

    /// `permute(dims)`: reorders the dimensions; `dims` must name each exactly once.
    pub fn permute(&self, dims: &[i64]) -> Result<Tensor> {
        if dims.len() != self.ndim() {
            return Err(TensorError::value(
                "permute",
                format!(
                    "{} dims given for a tensor of {} dimensions (shape {:?})",
                    dims.len(),
                    self.ndim(),
                    self.shape()
                ),
            ));
        }
        let mut perm = Vec::with_capacity(dims.len());
        for &dim in dims {
            let d = self.dim_index("permute", dim, self.ndim())?;
            if perm.contains(&d) {
                return Err(TensorError::value(
                    "permute",
                    format!("dim {dim} is repeated"),
                ));
            }
            perm.push(d);
        }
        let layout = Layout {
            shape: perm.iter().map(|&d| self.shape()[d]).collect(),
            strides: perm.iter().map(|&d| self.strides()[d]).collect(),
            offset: self.layout().offset,
        };
        Ok(self.make_view(layout, || Op::Permute { perm }))
    }

    /// `expand(sizes)`: a stride-0 view repeating size-1 dimensions (new leading ones may be
    /// added; `-1` keeps a size). E0306 when a size other than 1 would change; E0503 when
    /// the expanded tensor could not be materialised.
    pub fn expand(&self, sizes: &[i64]) -> Result<Tensor> {
        let mismatch = || TensorError::ShapeMismatch {
            op: "expand",
            lhs: self.shape().to_vec(),
            rhs: sizes.iter().map(|&s| s.max(0) as usize).collect(),
            detail: " (only dimensions of size 1 can be expanded)".into(),
        };
        if sizes.len() < self.ndim() {
            return Err(mismatch());
        }
        let extra = sizes.len() - self.ndim();
        let mut layout = Layout {
            shape: Vec::with_capacity(sizes.len()),
            strides: Vec::with_capacity(sizes.len()),
            offset: self.layout().offset,
        };
        for (i, &size) in sizes.iter().enumerate() {
            let (size, stride) = if i < extra {
                if size < 0 {
                    return Err(mismatch());
                }
                (size as usize, 0)
            } else {
                let (own, stride) = (self.shape()[i - extra], self.strides()[i - extra]);
                match size {
                    -1 => (own, stride),
                    s if s >= 0 && s as usize == own => (own, stride),
                    s if s >= 0 && own == 1 => (s as usize, 0),
                    _ => return Err(mismatch()),
                }
            };
            layout.shape.push(size);
            layout.strides.push(stride);
        }
        // Every tensor must fit in memory once materialised, so that no later op (sum,
        // print, a copy) meets an absurd allocation: checked here, where the only tensors
        // larger than their storage are made. The view itself allocates nothing, so it is
        // held to the whole memory budget, not to what live tensors leave of it.
        storage::checked_numel_within("expand", &layout.shape, memory::limit())?;
        let input = self.shape().to_vec();
        Ok(self.make_view(layout, || Op::Expand { input }))
    }

    /// `contiguous()`: this tensor itself when already contiguous, else a contiguous clone.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            Ok(self.clone())
        } else {
            self.clone_tensor()
        }
    }

    /// `clone()`: a copy in new storage that keeps the graph (`CloneBackward0`).
    pub fn clone_tensor(&self) -> Result<Tensor> {
        storage::checked_numel("clone", self.shape())?;
        let out = self.contiguous_copy()?;
        Ok(record(out, &[self], || (Op::Clone, Vec::new())))
    }
}

#[cfg(test)]
mod tests {
    use super::view_strides;

    #[test]
    fn view_strides_follow_pytorch() {
        // A transposed [2, 3] cannot be flattened without a copy.
        assert_eq!(view_strides(&[3, 2], &[1, 3], &[6]), None);
        // But it can gain a unit dimension (any stride serves a size-1 dim).
        assert_eq!(
            view_strides(&[3, 2], &[1, 3], &[3, 1, 2]),
            Some(vec![1, 6, 3])
        );
        assert_eq!(view_strides(&[2, 3], &[3, 1], &[3, 2]), Some(vec![2, 1]));
        assert_eq!(view_strides(&[], &[], &[1, 1]), Some(vec![1, 1]));
    }
}
