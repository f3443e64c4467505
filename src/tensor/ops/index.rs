//! Indexing (`x[0]`, `x[-1]`, `x[:, 1:3]`, `x[::2]`): views, as in PyTorch; and index
//! assignment (`x[i, 0:2] = value`), an in-place write through such a view.

use crate::tensor::core::Tensor;
use crate::tensor::derivatives::{Geometry, Op};
use crate::tensor::error::{Result, TensorError};
use crate::tensor::storage::Layout;

/// One entry of an index expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexItem {
    /// `x[i]`: selects one position and drops the dimension (negative counts from the end).
    Int(i64),
    /// `x[start:end:step]`: keeps the dimension. Bounds clamp like Python's; `step > 0`.
    Slice {
        /// First position (default 0).
        start: Option<i64>,
        /// One past the last position (default the size).
        end: Option<i64>,
        /// Distance between positions (default 1).
        step: i64,
    },
}

impl IndexItem {
    /// `:`, the whole dimension.
    pub const FULL: IndexItem = IndexItem::Slice {
        start: None,
        end: None,
        step: 1,
    };
}

/// `start:end:step` of a dimension of `size`, resolved like Python's slices:
/// the first position and the number of positions.
fn resolve_slice(start: Option<i64>, end: Option<i64>, step: i64, size: usize) -> (usize, usize) {
    let size = size as i64;
    let clamp = |i: i64| {
        if i < 0 {
            (i + size).max(0)
        } else {
            i.min(size)
        }
    };
    let start = start.map_or(0, clamp);
    let end = end.map_or(size, clamp);
    // `end - start + step - 1` overflows i64 for a huge step; the count is at most 1 then.
    let count = if end > start {
        (end - start - 1) / step + 1
    } else {
        0
    };
    (start as usize, count as usize)
}

impl Tensor {
    /// `x[items]`: a view; each `Int` drops its dimension, each `Slice` keeps it. Recorded
    /// one item at a time (`SelectBackward0`, `SliceBackward0`), skipping `:` as PyTorch
    /// does. E0313 for an index out of range or too many indices.
    pub fn index(&self, items: &[IndexItem]) -> Result<Tensor> {
        if items.len() > self.ndim() {
            return Err(TensorError::TooManyIndices {
                count: items.len(),
                shape: self.shape().to_vec(),
            });
        }
        let mut out = self.clone();
        let mut dim = 0;
        for (original_dim, item) in items.iter().enumerate() {
            // Errors name the dim of `self` the item indexes, not of the partial result.
            let in_self = |e: TensorError| match e {
                TensorError::IndexOutOfRange {
                    op, index, size, ..
                } => TensorError::IndexOutOfRange {
                    op,
                    index,
                    dim: original_dim,
                    size,
                },
                other => other,
            };
            match *item {
                IndexItem::Int(index) => out = out.select(dim as i64, index).map_err(in_self)?,
                IndexItem::Slice { start, end, step } => {
                    out = out.slice(dim as i64, start, end, step).map_err(in_self)?;
                    dim += 1;
                }
            }
        }
        Ok(out)
    }

    /// `select(dim, index)`: the slice at `index` along `dim`, which is removed.
    pub fn select(&self, dim: i64, index: i64) -> Result<Tensor> {
        let d = self.dim_index("select", dim, self.ndim())?;
        if self.ndim() == 0 {
            return Err(TensorError::TooManyIndices {
                count: 1,
                shape: Vec::new(),
            });
        }
        let size = self.shape()[d];
        let i = if index < 0 {
            index + size as i64
        } else {
            index
        };
        if i < 0 || i >= size as i64 {
            return Err(TensorError::IndexOutOfRange {
                op: "index",
                index,
                dim: d,
                size,
            });
        }
        let select = |layout: &Layout| {
            let mut out = layout.clone();
            out.offset += i as usize * layout.strides[d];
            out.shape.remove(d);
            out.strides.remove(d);
            out
        };
        let layout = select(self.layout());
        let input = self.shape().to_vec();
        Ok(self.make_view(layout, || {
            let geometry = Geometry::of_contiguous(select(&Layout::contiguous(&input)));
            Op::Select { input, geometry }
        }))
    }

    /// `x[start:end:step]` along `dim` (a view). E0505 for a step that is not positive.
    pub fn slice(
        &self,
        dim: i64,
        start: Option<i64>,
        end: Option<i64>,
        step: i64,
    ) -> Result<Tensor> {
        let d = self.dim_index("slice", dim, self.ndim())?;
        if step <= 0 {
            return Err(TensorError::value(
                "slice",
                format!("step must be positive, got {step}"),
            ));
        }
        if self.ndim() == 0 {
            return Err(TensorError::TooManyIndices {
                count: 1,
                shape: Vec::new(),
            });
        }
        let (first, count) = resolve_slice(start, end, step, self.shape()[d]);
        if first == 0 && count == self.shape()[d] && step == 1 {
            return Ok(self.clone());
        }
        let slice = |layout: &Layout| {
            let mut out = layout.clone();
            out.offset += first * layout.strides[d];
            out.shape[d] = count;
            // One element or none: the stride is never followed, and `stride * step` may
            // not fit for a huge step (`x[::2**62]`). With two or more, `step < size`.
            if count > 1 {
                out.strides[d] *= step as usize;
            }
            out
        };
        let layout = slice(self.layout());
        let input = self.shape().to_vec();
        Ok(self.make_view(layout, || {
            let geometry = Geometry::of_contiguous(slice(&Layout::contiguous(&input)));
            Op::Slice { input, geometry }
        }))
    }

    /// `x[items] = value`: writes `value` (broadcast) into the indexed view, in place.
    pub fn index_put_(&self, items: &[IndexItem], value: &Tensor) -> Result<()> {
        self.index(items)?.copy_(value)
    }

    /// `x[items] = number`: fills the indexed view, in place.
    pub fn index_fill_(&self, items: &[IndexItem], value: f64) -> Result<()> {
        self.index(items)?.fill_(value)
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_slice;

    #[test]
    fn slices_clamp_like_python() {
        assert_eq!(resolve_slice(None, None, 1, 5), (0, 5));
        assert_eq!(resolve_slice(Some(1), None, 2, 5), (1, 2));
        assert_eq!(resolve_slice(Some(-2), None, 1, 5), (3, 2));
        assert_eq!(resolve_slice(Some(3), Some(1), 1, 5), (3, 0));
        assert_eq!(resolve_slice(Some(-10), Some(10), 3, 5), (0, 2));
    }
}
