//! Shared float32 storage, the layout of a view into it, and the version counter.
//!
//! Many tensors may look at one [`Storage`] through different [`Layout`]s (shape, strides,
//! offset): that is what a view is. Every in-place write bumps the storage's version and
//! records which op wrote it and where, so autograd can tell when a tensor it saved was
//! changed afterwards (E0404) and name the op that did it.

use super::autograd::Site;
use super::error::{Result, TensorError};
use super::memory::{self, OverBudget};
use std::cell::{Cell, Ref, RefCell, RefMut};

/// A buffer of `f32` shared by every tensor that views it.
///
/// The interpreter is single-threaded, so interior mutability through [`RefCell`] is enough;
/// kernels borrow the whole buffer as a slice and may fan out with rayon inside one borrow.
/// Its bytes count against the memory budget ([`memory`]) while it lives.
#[derive(Debug)]
pub struct Storage {
    data: RefCell<Vec<f32>>,
    version: Cell<u64>,
    last_write: Cell<(&'static str, Site)>,
    /// Bytes counted in the budget's live total, given back on drop.
    counted: usize,
}

impl Storage {
    /// Storage owning `data`, at version 0.
    pub fn new(data: Vec<f32>) -> Storage {
        let counted = data.capacity() * std::mem::size_of::<f32>();
        memory::track(counted);
        Storage {
            data: RefCell::new(data),
            version: Cell::new(0),
            last_write: Cell::new(("", Site::UNKNOWN)),
            counted,
        }
    }

    /// Reads the whole buffer.
    ///
    /// # Panics
    /// If the buffer is mutably borrowed; the library never holds a write borrow across a
    /// call that reads, so this is an internal bug, not a user error.
    pub fn data(&self) -> Ref<'_, Vec<f32>> {
        self.data.borrow()
    }

    /// Writes the buffer as the in-place op `op` at `site`: bumps the version first, so a
    /// tensor saved before this write no longer matches.
    pub fn data_mut(&self, op: &'static str, site: Site) -> RefMut<'_, Vec<f32>> {
        self.bump_version(op, site);
        self.data.borrow_mut()
    }

    /// Counts one in-place write by `op` at `site`.
    pub fn bump_version(&self, op: &'static str, site: Site) {
        self.version.set(self.version.get() + 1);
        self.last_write.set((op, site));
    }

    /// How many in-place writes this storage has seen.
    pub fn version(&self) -> u64 {
        self.version.get()
    }

    /// The op and site of the latest in-place write (`("", Site::UNKNOWN)` if none).
    pub fn last_write(&self) -> (&'static str, Site) {
        self.last_write.get()
    }

    /// Number of `f32` in the buffer.
    pub fn len(&self) -> usize {
        self.data.borrow().len()
    }

    /// Whether the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        memory::untrack(self.counted);
    }
}

/// How a tensor reads its storage: element `[i0, i1, ...]` lives at
/// `offset + i0*strides[0] + i1*strides[1] + ...`.
///
/// Strides are never negative (PyTorch has no negative-step slices); a stride of 0 repeats
/// an element, which is what `expand` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Size of each dimension.
    pub shape: Vec<usize>,
    /// Step in the storage for each dimension.
    pub strides: Vec<usize>,
    /// Storage index of element `[0, 0, ...]`.
    pub offset: usize,
}

impl Layout {
    /// A row-major layout of `shape` starting at offset 0.
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the elements are row-major and adjacent (offset may be non-zero). Sizes of 1
    /// may carry any stride, as in PyTorch.
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&size, &stride) in self.shape.iter().zip(&self.strides).rev() {
            if size != 1 && stride != expected {
                return false;
            }
            expected *= size;
        }
        true
    }

    /// Calls `f` with the storage index of every element, in row-major order.
    pub fn for_each_offset(&self, f: impl FnMut(usize)) {
        for_each_offset(&self.shape, &self.strides, self.offset, f);
    }
}

/// Row-major strides of `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut step = 1;
    for (stride, &size) in strides.iter_mut().zip(shape).rev() {
        *stride = step;
        step *= size.max(1);
    }
    strides
}

/// Calls `f` with the storage index of every element of the strided view, row-major.
///
/// The innermost dimension is a tight loop; the outer ones advance an index counter, so
/// nothing is allocated per element.
pub fn for_each_offset(
    shape: &[usize],
    strides: &[usize],
    offset: usize,
    mut f: impl FnMut(usize),
) {
    if shape.contains(&0) {
        return;
    }
    let Some((&inner, outer)) = shape.split_last() else {
        f(offset);
        return;
    };
    let inner_stride = strides[shape.len() - 1];
    let mut index = vec![0usize; outer.len()];
    let mut base = offset;
    loop {
        let mut at = base;
        for _ in 0..inner {
            f(at);
            at += inner_stride;
        }
        let mut d = outer.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            base += strides[d];
            if index[d] < outer[d] {
                break;
            }
            base -= strides[d] * outer[d];
            index[d] = 0;
        }
    }
}

/// Like [`for_each_offset`] over two strided views of the same shape at once: `f` gets the
/// storage index of each element in both (the engine of broadcasting binary ops, where a
/// broadcast dimension has stride 0).
pub fn for_each_offset2(
    shape: &[usize],
    (strides_a, offset_a): (&[usize], usize),
    (strides_b, offset_b): (&[usize], usize),
    mut f: impl FnMut(usize, usize),
) {
    if shape.contains(&0) {
        return;
    }
    let Some((&inner, outer)) = shape.split_last() else {
        f(offset_a, offset_b);
        return;
    };
    let last = shape.len() - 1;
    let (inner_a, inner_b) = (strides_a[last], strides_b[last]);
    let mut index = vec![0usize; outer.len()];
    let (mut base_a, mut base_b) = (offset_a, offset_b);
    loop {
        let (mut at_a, mut at_b) = (base_a, base_b);
        for _ in 0..inner {
            f(at_a, at_b);
            at_a += inner_a;
            at_b += inner_b;
        }
        let mut d = outer.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            base_a += strides_a[d];
            base_b += strides_b[d];
            if index[d] < outer[d] {
                break;
            }
            base_a -= strides_a[d] * outer[d];
            base_b -= strides_b[d] * outer[d];
            index[d] = 0;
        }
    }
}

/// The element count of `shape`, or [`TensorError::TooLarge`] if the product overflows or
/// its bytes do not fit in what the memory budget has left, so a huge request is refused,
/// never an abort.
pub fn checked_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    checked_numel_within(op, shape, memory::left())
}

/// The element count of `shape`, or [`TensorError::TooLarge`] if the product overflows or
/// its bytes exceed `left`.
pub fn checked_numel_within(op: &'static str, shape: &[usize], left: u64) -> Result<usize> {
    let mut numel: u128 = 1;
    // The span of the strides, as if every empty dim had size 1: an empty tensor of
    // shape [0, 2**62, 2**62] has no strides that fit.
    let mut extent: u128 = 1;
    for &size in shape {
        numel = numel.saturating_mul(size as u128);
        extent = extent.saturating_mul(size.max(1) as u128);
    }
    let bytes = numel.saturating_mul(4);
    if numel > usize::MAX as u128 / 4 || extent > usize::MAX as u128 / 4 || bytes > u128::from(left)
    {
        return Err(TensorError::TooLarge {
            op,
            shape: shape.to_vec(),
            // The strides' span: the bytes, or for an empty tensor what its strides need.
            bytes: extent.saturating_mul(4),
            available: left,
        });
    }
    Ok(numel as usize)
}

/// [`TensorError::TooLarge`] for a refused buffer of `shape`.
pub fn too_large(shape: &[usize]) -> impl FnOnce(OverBudget) -> TensorError + '_ {
    move |e| TensorError::TooLarge {
        op: e.op,
        shape: shape.to_vec(),
        bytes: e.bytes,
        available: e.left,
    }
}

/// An empty buffer with room for exactly the elements of `shape`, refused with
/// [`TensorError::TooLarge`] rather than aborting when the budget or the system cannot give
/// it: what kernels fill with `extend` (or rayon's `par_extend`), which then never
/// reallocates.
pub fn alloc(op: &'static str, shape: &[usize]) -> Result<Vec<f32>> {
    let numel = checked_numel(op, shape)?;
    memory::try_vec(op, numel).map_err(too_large(shape))
}

/// A buffer for `shape` filled with `value`, refused with [`TensorError::TooLarge`] rather
/// than aborting when it cannot be had.
pub fn alloc_filled(op: &'static str, shape: &[usize], value: f32) -> Result<Vec<f32>> {
    let numel = checked_numel(op, shape)?;
    let mut data = memory::try_vec(op, numel).map_err(too_large(shape))?;
    data.resize(numel, value);
    Ok(data)
}
