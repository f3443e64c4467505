//! The [`Tensor`] handle: a view (layout) of shared storage plus its autograd metadata.
//!
//! A `Tensor` is a cheap `Rc` handle: cloning it makes a second name for the same tensor
//! (`let b = a` in the language), so an in-place op through one is seen by the other.
//! Views are distinct tensors that share the storage; they remember their base so that an
//! in-place op through a view can rewrite the base's history (`CopySlices`), as PyTorch does.

use super::autograd::{self, Edge, Node, current_site, is_grad_enabled};
use super::derivatives::{Geometry, Op};
use super::error::{Result, TensorError};
use super::memory;
use super::storage::{self, Layout, Storage, for_each_offset2};
use std::cell::{Ref, RefCell};
use std::rc::Rc;

/// An n-dimensional float32 tensor that may require grad.
#[derive(Clone)]
pub struct Tensor(Rc<TensorImpl>);

/// The shared state behind a [`Tensor`] handle.
pub struct TensorImpl {
    storage: Rc<Storage>,
    layout: Layout,
    meta: RefCell<AutogradMeta>,
}

/// Autograd state; mutable because `requires_grad_`, `retain_grad`, backward and in-place
/// ops change it behind every handle at once.
#[derive(Default)]
struct AutogradMeta {
    requires_grad: bool,
    grad: Option<Tensor>,
    grad_fn: Option<Rc<Node>>,
    retains_grad: bool,
    view: Option<ViewInfo>,
    /// Bumped whenever an in-place op rewrites this tensor's history, so views of it know
    /// their own history is stale.
    generation: u64,
}

/// What a view remembers of the tensor it views.
struct ViewInfo {
    /// The root tensor (never itself a view) whose storage this view reads.
    base: Tensor,
    /// The base's `generation` when this view's history was last built.
    base_generation: u64,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl Tensor {
    // ----- construction -----

    pub(crate) fn from_impl(inner: Rc<TensorImpl>) -> Tensor {
        Tensor(inner)
    }

    /// A tensor viewing `storage` through `layout`, with no history.
    pub(crate) fn from_storage(storage: Rc<Storage>, layout: Layout) -> Tensor {
        Tensor(Rc::new(TensorImpl {
            storage,
            layout,
            meta: RefCell::new(AutogradMeta::default()),
        }))
    }

    /// A contiguous tensor owning `data` (trusted to hold `shape`'s element count).
    pub(crate) fn from_data(data: Vec<f32>, shape: &[usize]) -> Tensor {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        Tensor::from_storage(Rc::new(Storage::new(data)), Layout::contiguous(shape))
    }

    /// A tensor of `shape` holding `data` in row-major order.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        let numel = storage::checked_numel("tensor", shape)?;
        if numel != data.len() {
            return Err(TensorError::value(
                "tensor",
                format!(
                    "{} values cannot fill shape {shape:?} ({numel} elements)",
                    data.len()
                ),
            ));
        }
        Ok(Tensor::from_data(data, shape))
    }

    /// A 0-dimensional tensor holding `value`.
    pub fn scalar(value: f32) -> Tensor {
        Tensor::from_data(vec![value], &[])
    }

    /// A new handle on the same storage and layout with no autograd state: what saved
    /// tensors and `detach()` hold.
    pub(crate) fn alias_without_grad(&self) -> Tensor {
        Tensor::from_storage(self.0.storage.clone(), self.0.layout.clone())
    }

    /// A view of this tensor's storage through `layout`, recorded as `op()` when a graph is
    /// being recorded. The view's base is this tensor's base (or this tensor).
    pub(crate) fn make_view(&self, layout: Layout, op: impl FnOnce() -> Op) -> Tensor {
        let base = self.view_base().unwrap_or_else(|| self.clone());
        let base_generation = base.0.meta.borrow().generation;
        let view = Tensor(Rc::new(TensorImpl {
            storage: self.0.storage.clone(),
            layout,
            meta: RefCell::new(AutogradMeta {
                view: Some(ViewInfo {
                    base,
                    base_generation,
                }),
                ..AutogradMeta::default()
            }),
        }));
        autograd::record(view, &[self], || (op(), Vec::new()))
    }

    // ----- shape and storage -----

    /// Size of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.0.layout.shape
    }

    /// Step in the storage for each dimension.
    pub fn strides(&self) -> &[usize] {
        &self.0.layout.strides
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.0.layout.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }

    /// The layout (shape, strides, offset) through which this tensor reads its storage.
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// The storage this tensor reads.
    pub fn storage(&self) -> &Rc<Storage> {
        &self.0.storage
    }

    /// Whether the elements are row-major and adjacent in storage.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// `shares_storage(a, b)`: whether two tensors read the same storage.
    pub fn shares_storage(a: &Tensor, b: &Tensor) -> bool {
        Rc::ptr_eq(&a.0.storage, &b.0.storage)
    }

    /// Whether two handles name the same tensor (not merely the same storage).
    pub fn same_tensor(a: &Tensor, b: &Tensor) -> bool {
        Rc::ptr_eq(&a.0, &b.0)
    }

    /// Normalises a possibly negative `dim` against `ndim` dimensions for `op`.
    pub(crate) fn dim_index(&self, op: &'static str, dim: i64, range: usize) -> Result<usize> {
        super::checks::dim_index(op, dim, self.shape(), range)
    }

    // ----- reading values -----

    /// Calls `f` with the whole storage slice and this tensor's contiguous element range when
    /// contiguous (the fast path of every kernel), else returns `None`.
    pub(crate) fn with_contiguous<R>(&self, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
        if !self.is_contiguous() {
            return None;
        }
        let data = self.0.storage.data();
        let start = self.0.layout.offset;
        Some(f(&data[start..start + self.numel()]))
    }

    /// Calls `f` with the elements as one row-major slice: the storage itself when
    /// contiguous, else a temporary copy. This is how slice kernels (convolution, pooling)
    /// read a tensor.
    pub fn with_slice<R>(&self, f: impl FnOnce(&[f32]) -> R) -> R {
        if self.is_contiguous() {
            let data = self.0.storage.data();
            let start = self.0.layout.offset;
            return f(&data[start..start + self.numel()]);
        }
        f(&self.to_vec())
    }

    /// [`Tensor::with_slice`] whose copy of a strided tensor goes through the memory budget
    /// as `op` (E0503 when it does not fit).
    pub fn try_with_slice<R>(&self, op: &'static str, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        if self.is_contiguous() {
            return Ok(self.with_slice(f));
        }
        Ok(f(&self.try_to_vec(op)?))
    }

    /// The elements in row-major order, as a new vector, outside the memory budget: for
    /// copies no larger than storage already made. Copies of tensors the user shapes (an
    /// `expand`ed view is far larger than its storage) use [`Tensor::try_to_vec`].
    pub fn to_vec(&self) -> Vec<f32> {
        if let Some(values) = self.with_contiguous(<[f32]>::to_vec) {
            return values;
        }
        let data = self.0.storage.data();
        let layout = &self.0.layout;
        if layout.strides.iter().all(|&s| s == 0) && self.numel() > 0 {
            return vec![data[layout.offset]; self.numel()];
        }
        let mut values = Vec::with_capacity(self.numel());
        layout.for_each_offset(|at| values.push(data[at]));
        values
    }

    /// The elements in row-major order, as a new vector allocated within the memory budget
    /// as `op`; E0503 when it does not fit (an `expand`ed view can be far larger than its
    /// storage).
    pub fn try_to_vec(&self, op: &'static str) -> Result<Vec<f32>> {
        let mut values = storage::alloc(op, self.shape())?;
        if let Some(()) = self.with_contiguous(|src| values.extend_from_slice(src)) {
            return Ok(values);
        }
        let data = self.0.storage.data();
        let layout = &self.0.layout;
        // One value broadcast everywhere (the gradient `sum()` hands back): a fill, not a
        // walk over every index.
        if layout.strides.iter().all(|&s| s == 0) && self.numel() > 0 {
            values.resize(self.numel(), data[layout.offset]);
            return Ok(values);
        }
        layout.for_each_offset(|at| values.push(data[at]));
        Ok(values)
    }

    /// A contiguous copy with no history, refused (E0503) when the copy would be absurd
    /// (an `expand`ed view can be far larger than its storage).
    pub fn contiguous_copy(&self) -> Result<Tensor> {
        Ok(Tensor::from_data(
            self.try_to_vec("contiguous")?,
            self.shape(),
        ))
    }

    /// The value of a one-element tensor; E0505 for any other.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(TensorError::value(
                "item",
                format!(
                    "a tensor with {} elements cannot be converted to a number (shape {:?})",
                    self.numel(),
                    self.shape()
                ),
            ));
        }
        Ok(self.0.storage.data()[self.0.layout.offset])
    }

    /// `tolist()`: the values as nested lists (a number for a 0-dimensional tensor), outside
    /// the memory budget; the language's `tolist()` is [`Tensor::try_tolist`].
    pub fn tolist(&self) -> NestedList {
        build_nested(&self.to_vec(), self.shape())
    }

    /// [`Tensor::tolist`] within the memory budget: E0503 when the lists, at `item_bytes`
    /// per element more (the size of the value the caller turns each one into), do not fit.
    pub fn try_tolist(&self, item_bytes: usize) -> Result<NestedList> {
        // One nested item per element, and one per inner list.
        let numel = storage::checked_numel("tolist", self.shape())?;
        let lists: usize = (1..self.ndim())
            .map(|d| self.shape()[..d].iter().product::<usize>())
            .sum();
        let items = numel as u128 + lists as u128;
        let per_item = (size_of::<NestedList>() + item_bytes) as u128;
        memory::check("tolist", items * per_item).map_err(storage::too_large(self.shape()))?;
        Ok(build_nested(&self.try_to_vec("tolist")?, self.shape()))
    }

    // ----- autograd state -----

    /// The root tensor this one views, if it is a view.
    pub(crate) fn view_base(&self) -> Option<Tensor> {
        self.0.meta.borrow().view.as_ref().map(|v| v.base.clone())
    }

    /// Rebuilds a view's history when its base's history was rewritten by an in-place op
    /// since the view was made: the view then reads the base's new values, so its
    /// gradient must flow through the base's new history (`AsStridedBackward0`).
    fn refresh_view(&self) {
        let stale = {
            let meta = self.0.meta.borrow();
            match &meta.view {
                Some(view) if view.base.0.meta.borrow().generation != view.base_generation => {
                    Some(view.base.clone())
                }
                _ => None,
            }
        };
        let Some(base) = stale else { return };
        let generation = base.0.meta.borrow().generation;
        let geometry = Geometry::of_view(base.layout(), self.layout());
        let mut meta = self.0.meta.borrow_mut();
        if let Some(view) = meta.view.as_mut() {
            view.base_generation = generation;
        }
        if let (Some(geometry), true) = (geometry, base.requires_grad()) {
            let op = Op::AsStrided {
                base_shape: base.shape().to_vec(),
                geometry,
            };
            let node = Node::new(op, vec![base.grad_edge()], Vec::new());
            meta.grad_fn = Some(Rc::new(node));
            meta.requires_grad = true;
        }
    }

    fn meta(&self) -> Ref<'_, AutogradMeta> {
        self.refresh_view();
        self.0.meta.borrow()
    }

    /// Whether gradients are computed for this tensor.
    pub fn requires_grad(&self) -> bool {
        self.meta().requires_grad
    }

    /// A tensor is a leaf when no recorded op produced it (created by the user, or computed
    /// without grad).
    pub fn is_leaf(&self) -> bool {
        self.meta().grad_fn.is_none()
    }

    /// The node that produced this tensor, if any.
    pub fn grad_fn(&self) -> Option<Rc<Node>> {
        self.meta().grad_fn.clone()
    }

    /// PyTorch's name of [`Tensor::grad_fn`], such as `"MulBackward0"`.
    pub fn grad_fn_name(&self) -> Option<&'static str> {
        self.meta().grad_fn.as_ref().map(|node| node.name())
    }

    /// The accumulated gradient: of a leaf after backward, of a non-leaf only after
    /// `retain_grad()` (reading it otherwise is W0406 in the language).
    pub fn grad(&self) -> Option<Tensor> {
        self.0.meta.borrow().grad.clone()
    }

    /// Replaces `.grad` (an optimizer's `zero_grad(set_to_none)`, or assigning it).
    pub fn set_grad(&self, grad: Option<Tensor>) {
        self.0.meta.borrow_mut().grad = grad;
    }

    /// Whether `retain_grad()` was called on this non-leaf.
    pub fn retains_grad(&self) -> bool {
        self.0.meta.borrow().retains_grad
    }

    /// `requires_grad_(flag)`: makes a leaf require grad or not. A non-leaf always requires
    /// grad; asking it not to is E0505 (use `detach()`).
    pub fn requires_grad_(&self, flag: bool) -> Result<&Tensor> {
        if !self.is_leaf() {
            if flag {
                return Ok(self);
            }
            return Err(TensorError::value(
                "requires_grad_",
                "only leaf tensors can change requires_grad; use detach() for a computed tensor",
            ));
        }
        let mut meta = self.0.meta.borrow_mut();
        meta.requires_grad = flag;
        if flag {
            // A leaf that requires grad is the root of its own views from now on: writes
            // through them must be refused (E0403) as writes to it are.
            meta.view = None;
        }
        Ok(self)
    }

    /// `retain_grad()`: keep `.grad` of this non-leaf during backward (a no-op on leaves,
    /// which keep it anyway). E0505 on a tensor that does not require grad.
    pub fn retain_grad(&self) -> Result<()> {
        if !self.requires_grad() {
            return Err(TensorError::value(
                "retain_grad",
                "cannot retain the grad of a tensor that does not require grad",
            ));
        }
        if let Some(node) = self.grad_fn() {
            node.set_retained(Some(Rc::downgrade(&self.0)));
            self.0.meta.borrow_mut().retains_grad = true;
        }
        Ok(())
    }

    /// `detach()`: a view of the same storage with no history that does not require grad.
    pub fn detach(&self) -> Tensor {
        self.alias_without_grad()
    }

    /// `backward(gradient, retain_graph)`: see [`autograd::backward`].
    pub fn backward(&self, gradient: Option<&Tensor>, retain_graph: bool) -> Result<()> {
        autograd::backward(self, gradient, retain_graph)
    }

    /// The edge a node records for this tensor as an input.
    pub(crate) fn grad_edge(&self) -> Edge {
        let meta = self.meta();
        match (&meta.grad_fn, meta.requires_grad) {
            (Some(node), _) => Edge::Node(node.clone()),
            (None, true) => Edge::Leaf(self.clone()),
            (None, false) => Edge::None,
        }
    }

    /// Makes `node` this tensor's history; a retained grad moves to the new node.
    pub(crate) fn set_history(&self, node: Rc<Node>) {
        let mut meta = self.0.meta.borrow_mut();
        if meta.retains_grad {
            if let Some(old) = &meta.grad_fn {
                old.set_retained(None);
            }
            node.set_retained(Some(Rc::downgrade(&self.0)));
        }
        meta.grad_fn = Some(node);
        meta.requires_grad = true;
    }

    // ----- writing values -----

    /// Refuses an in-place write that PyTorch refuses: to a leaf that requires grad, or a
    /// view of one, while grad mode is on (E0403); to an `expand`ed tensor whose elements
    /// overlap (E0505).
    fn check_in_place(&self, op: &'static str) -> Result<()> {
        if is_grad_enabled() {
            if self.is_leaf() && self.requires_grad() {
                return Err(TensorError::InPlaceOnLeaf {
                    op,
                    through_view: false,
                });
            }
            if let Some(base) = self.view_base()
                && base.is_leaf()
                && base.requires_grad()
            {
                return Err(TensorError::InPlaceOnLeaf {
                    op,
                    through_view: true,
                });
            }
        }
        let overlapping = self
            .shape()
            .iter()
            .zip(self.strides())
            .any(|(&size, &stride)| size > 1 && stride == 0);
        if overlapping {
            return Err(TensorError::value(
                op,
                "more than one element of the written tensor refers to the same memory (expand() it after the write, or clone() it first)",
            ));
        }
        Ok(())
    }

    /// Copies `src` (broadcast to this tensor's shape) into this tensor's elements, as the
    /// in-place op `op`: the storage version is bumped. `src` may share this storage.
    pub(crate) fn write_values(&self, op: &'static str, src: &Tensor) -> Result<()> {
        let src = src.broadcast_to(op, self.shape())?;
        // Read before writing: the source may alias the destination (`x.copy_(x.t())`).
        let values = if Tensor::shares_storage(self, &src) {
            Some(src.to_vec())
        } else {
            None
        };
        let src_data = if values.is_none() {
            Some(src.0.storage.data())
        } else {
            None
        };
        let mut data = self.0.storage.data_mut(op, current_site());
        match (&values, &src_data) {
            (Some(values), _) => {
                let mut next = values.iter();
                self.0.layout.for_each_offset(|at| {
                    if let Some(&v) = next.next() {
                        data[at] = v;
                    }
                });
            }
            (None, Some(src_data)) => {
                let layout = &self.0.layout;
                if layout.is_contiguous() && src.is_contiguous() {
                    let n = layout.numel();
                    data[layout.offset..layout.offset + n]
                        .copy_from_slice(&src_data[src.0.layout.offset..src.0.layout.offset + n]);
                } else {
                    let s = &src.0.layout;
                    for_each_offset2(
                        &layout.shape,
                        (&layout.strides, layout.offset),
                        (&s.strides, s.offset),
                        |at, from| data[at] = src_data[from],
                    );
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// Sets every element to `value` as the in-place op `op` (bumps the version).
    pub(crate) fn fill_values(&self, op: &'static str, value: f32) {
        let mut data = self.0.storage.data_mut(op, current_site());
        let layout = &self.0.layout;
        if layout.is_contiguous() {
            data[layout.offset..layout.offset + layout.numel()].fill(value);
        } else {
            layout.for_each_offset(|at| data[at] = value);
        }
    }

    /// `self += grad` for gradient accumulation: no autograd, no E0403 (the grad of a leaf
    /// is itself a leaf that does not require grad).
    pub(crate) fn accumulate_in_place(&self, grad: &Tensor) -> Result<()> {
        let sum = self.add(grad)?;
        self.write_values("AccumulateGrad", &sum)
    }

    /// Runs the in-place op `op` on this tensor: `compute(src)` returns the new values from
    /// `src`, which stands for this tensor's old value (and history) in the graph, and the
    /// `others` it reads. With a graph being recorded, the op's node becomes this tensor's
    /// history, or, when this tensor is a view, the base's history is rewritten as
    /// `CopySlices` (the base's gradient passes through except where the view was written).
    pub(crate) fn apply_in_place(
        &self,
        op: &'static str,
        others: &[&Tensor],
        compute: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<()> {
        self.check_in_place(op)?;
        let recording =
            is_grad_enabled() && (self.requires_grad() || others.iter().any(|t| t.requires_grad()));
        if !recording {
            let _no_grad = autograd::no_grad();
            let values = compute(self)?;
            return self.write_values(op, &values);
        }
        let base = self.view_base();
        let geometry = match &base {
            Some(base) => Some(Geometry::of_view(base.layout(), self.layout()).ok_or_else(|| {
                TensorError::value(
                    op,
                    "an in-place write with autograd through a view of a non-contiguous tensor is not supported; call contiguous() on the base first",
                )
            })?),
            None => None,
        };
        // The old value, detached from this storage (the write below would change it) but
        // carrying this tensor's history, so the op's node links to it.
        let src = self.contiguous_copy()?;
        {
            let meta = self.meta();
            let mut src_meta = src.0.meta.borrow_mut();
            src_meta.requires_grad = meta.requires_grad;
            src_meta.grad_fn = meta.grad_fn.clone();
        }
        if self.is_leaf() && self.requires_grad() {
            // Unreachable past `check_in_place`; a leaf edge to `src` would be wrong.
            return Err(TensorError::InPlaceOnLeaf {
                op,
                through_view: false,
            });
        }
        let values = compute(&src)?;
        self.write_values(op, &values)?;
        let Some(node) = values.grad_fn() else {
            return Ok(());
        };
        node.resave(&values, self);
        match (base, geometry) {
            (Some(base), Some(geometry)) => {
                let mut inputs = vec![base.grad_edge()];
                inputs.extend(node.inputs().iter().skip(1).cloned());
                let copy_slices = Node::new(
                    Op::CopySlices {
                        geometry,
                        inner: node,
                    },
                    inputs,
                    Vec::new(),
                );
                base.set_history(Rc::new(copy_slices));
                base.0.meta.borrow_mut().generation += 1;
            }
            _ => {
                self.set_history(node);
                self.0.meta.borrow_mut().generation += 1;
            }
        }
        Ok(())
    }
}

/// The nested lists of row-major `values` of `shape`.
fn build_nested(values: &[f32], shape: &[usize]) -> NestedList {
    match shape.split_first() {
        None => NestedList::Value(values[0]),
        Some((&size, rest)) => {
            let chunk = rest.iter().product::<usize>();
            NestedList::List(
                (0..size)
                    .map(|i| build_nested(&values[i * chunk..(i + 1) * chunk], rest))
                    .collect(),
            )
        }
    }
}

/// `tolist()`'s result: a number or a list of them, nested once per dimension.
#[derive(Debug, Clone, PartialEq)]
pub enum NestedList {
    /// One element.
    Value(f32),
    /// One dimension's worth of nested lists.
    List(Vec<NestedList>),
}
