//! Reverse-mode autograd: grad mode, call sites, graph nodes, saved tensors and the
//! backward pass.
//!
//! Each op that runs with grad mode on and an input that requires grad records a [`Node`]:
//! its backward formula (an [`Op`]), one [`Edge`] per input, the tensors it saved (each
//! with the storage version at save time), and the [`Site`] it ran at. `backward` walks the
//! nodes in topological order, accumulating (`+=`) into `.grad` of leaves.

use super::core::{Tensor, TensorImpl};
use super::derivatives::Op;
use super::error::{Result, TensorError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

/// An opaque call site chosen by the caller (the interpreter maps it to a source span).
///
/// The tensor library knows nothing of source code: the interpreter sets the current site
/// before each operation ([`set_current_site`]); every graph node remembers the site that
/// created it and every storage the site of its last in-place write, so E0404 can point at
/// both the op that saved a tensor and the op that changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Site(pub u32);

impl Site {
    /// No site known (ops run by the library itself, or before any was set).
    pub const UNKNOWN: Site = Site(0);
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static CURRENT_SITE: Cell<Site> = const { Cell::new(Site::UNKNOWN) };
}

/// Whether ops record a graph now (false inside `with no_grad`).
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

/// Restores the previous grad mode when dropped.
#[must_use = "grad mode is restored when the guard is dropped"]
#[derive(Debug)]
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|mode| mode.set(self.previous));
    }
}

/// Sets grad mode to `enabled` until the returned guard is dropped.
pub fn set_grad_enabled(enabled: bool) -> GradModeGuard {
    let previous = GRAD_ENABLED.with(|mode| mode.replace(enabled));
    GradModeGuard { previous }
}

/// `with no_grad { ... }`: no graph is recorded until the guard is dropped.
pub fn no_grad() -> GradModeGuard {
    set_grad_enabled(false)
}

/// `with enable_grad { ... }`: graphs are recorded again, even inside `no_grad`.
pub fn enable_grad() -> GradModeGuard {
    set_grad_enabled(true)
}

/// The site ops run at now.
pub fn current_site() -> Site {
    CURRENT_SITE.with(Cell::get)
}

/// Makes `site` the current site; returns the previous one.
pub fn set_current_site(site: Site) -> Site {
    CURRENT_SITE.with(|current| current.replace(site))
}

/// Where a node sends the gradient of one of its inputs.
#[derive(Clone)]
pub enum Edge {
    /// The input does not require grad: its gradient is not computed.
    None,
    /// The input is a leaf that requires grad: its gradient accumulates into `.grad`.
    Leaf(Tensor),
    /// The input was computed by this node.
    Node(Rc<Node>),
}

impl Edge {
    /// Whether a gradient flows along this edge.
    pub fn is_some(&self) -> bool {
        !matches!(self, Edge::None)
    }
}

/// A tensor saved for backward, with the storage version it had when saved.
pub struct SavedTensor {
    /// A detached alias (no grad_fn, so a saved output does not keep its own node alive).
    tensor: Tensor,
    version: u64,
}

impl SavedTensor {
    /// Saves `tensor` as it is now.
    pub fn new(tensor: &Tensor) -> SavedTensor {
        SavedTensor {
            tensor: tensor.alias_without_grad(),
            version: tensor.storage().version(),
        }
    }
}

/// One recorded operation of the graph.
pub struct Node {
    op: Op,
    site: Site,
    inputs: Vec<Edge>,
    saved: RefCell<Vec<Option<SavedTensor>>>,
    had_saved: bool,
    freed: Cell<bool>,
    /// The non-leaf tensor whose `retain_grad()` asked for this node's output gradient.
    retained: RefCell<Option<Weak<TensorImpl>>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name())
            .field("site", &self.site)
            .field("inputs", &self.inputs.len())
            .finish()
    }
}

impl Node {
    /// A node for `op` at the current site, with its input edges and saved tensors.
    pub(crate) fn new(op: Op, inputs: Vec<Edge>, saved: Vec<Option<SavedTensor>>) -> Node {
        let had_saved = saved.iter().any(Option::is_some);
        Node {
            op,
            site: current_site(),
            inputs,
            saved: RefCell::new(saved),
            had_saved,
            freed: Cell::new(false),
            retained: RefCell::new(None),
        }
    }

    /// PyTorch's name for this node, such as `"MulBackward0"`.
    pub fn name(&self) -> &'static str {
        self.op.name()
    }

    /// The site of the op that created this node.
    pub fn site(&self) -> Site {
        self.site
    }

    /// The edges to the node's inputs, in the op's argument order.
    pub fn inputs(&self) -> &[Edge] {
        &self.inputs
    }

    pub(crate) fn op(&self) -> &Op {
        &self.op
    }

    pub(crate) fn set_retained(&self, tensor: Option<Weak<TensorImpl>>) {
        *self.retained.borrow_mut() = tensor;
    }

    pub(crate) fn retained(&self) -> Option<Weak<TensorImpl>> {
        self.retained.borrow().clone()
    }

    /// Replaces saved tensors that alias `from`'s storage by `to` as it is now: an in-place op
    /// computes out of place and then writes into its target, so what it saved of its
    /// result must be the target itself, version-checked like any saved tensor.
    pub(crate) fn resave(&self, from: &Tensor, to: &Tensor) {
        for slot in self.saved.borrow_mut().iter_mut().flatten() {
            if Tensor::shares_storage(&slot.tensor, from) {
                *slot = SavedTensor::new(to);
            }
        }
    }

    /// The saved tensors, checked against in-place changes (E0404) and against an earlier
    /// backward having freed them (E0405).
    pub(crate) fn unpack_saved(&self) -> Result<Saved> {
        if self.freed.get() && self.had_saved {
            return Err(TensorError::GraphFreed {
                node: self.name(),
                site: self.site,
            });
        }
        let saved = self.saved.borrow();
        let mut tensors = Vec::with_capacity(saved.len());
        for slot in saved.iter() {
            tensors.push(match slot {
                None => None,
                Some(saved_tensor) => {
                    let storage = saved_tensor.tensor.storage();
                    if storage.version() != saved_tensor.version {
                        let (modified_by, modified_site) = storage.last_write();
                        return Err(TensorError::SavedTensorModified {
                            saved_by: self.name(),
                            saved_site: self.site,
                            modified_by,
                            modified_site,
                            shape: saved_tensor.tensor.shape().to_vec(),
                            saved_version: saved_tensor.version,
                            current_version: storage.version(),
                        });
                    }
                    Some(saved_tensor.tensor.clone())
                }
            });
        }
        Ok(Saved(tensors))
    }

    /// Drops the saved tensors after a backward without `retain_graph`.
    fn free(&self) {
        self.freed.set(true);
        self.saved.borrow_mut().clear();
        // A `CopySlices` node runs its inner node's formula: freeing one frees both.
        if let Op::CopySlices { inner, .. } = &self.op {
            inner.free();
        }
    }
}

/// The tensors a node saved, unpacked for its backward formula.
pub struct Saved(Vec<Option<Tensor>>);

impl Saved {
    /// A set of saved tensors (for formulas run outside a node, as `CopySlices` does).
    pub fn new(tensors: Vec<Option<Tensor>>) -> Saved {
        Saved(tensors)
    }

    /// Saved tensor `i`.
    ///
    /// A formula asks only for what its op saved when that input's gradient is needed, so
    /// a missing one is a bug in the op's recording, reported as an error rather than a
    /// panic.
    pub fn get(&self, i: usize) -> Result<&Tensor> {
        self.0.get(i).and_then(Option::as_ref).ok_or_else(|| {
            TensorError::value(
                "backward",
                format!("internal error: saved tensor {i} is missing"),
            )
        })
    }
}

/// A backward formula defined outside this module (convolution and pooling kernels plug in
/// here through [`Op::Custom`]).
pub trait BackwardFn {
    /// PyTorch's node name, such as `"ConvolutionBackward0"`.
    fn name(&self) -> &'static str;

    /// Gradients of the op's inputs given the gradient of its output; `needs[i]` says
    /// whether input `i`'s gradient is wanted (`None` may be returned where it is not).
    fn backward(&self, grad: &Tensor, saved: &Saved, needs: &[bool])
    -> Result<Vec<Option<Tensor>>>;
}

/// Whether an op on `inputs` must record a node: grad mode is on and some input requires
/// grad.
pub fn needs_grad(inputs: &[&Tensor]) -> bool {
    is_grad_enabled() && inputs.iter().any(|t| t.requires_grad())
}

/// Records the history of the fresh output `out` (which must not be shared yet) when
/// [`needs_grad`] says so. `make` returns the op's backward formula and the tensors it
/// saves; it is called only then, so an op costs nothing extra without a graph. Returns
/// `out`.
pub fn record(
    out: Tensor,
    inputs: &[&Tensor],
    make: impl FnOnce() -> (Op, Vec<Option<SavedTensor>>),
) -> Tensor {
    if needs_grad(inputs) {
        let edges = inputs.iter().map(|t| t.grad_edge()).collect();
        let (op, saved) = make();
        out.set_history(Rc::new(Node::new(op, edges, saved)));
    }
    out
}

/// Saves a tensor when `wanted` (shorthand for the `save` closures of [`record`]).
pub fn save_if(wanted: bool, tensor: &Tensor) -> Option<SavedTensor> {
    wanted.then(|| SavedTensor::new(tensor))
}

/// Runs backward from `root`: accumulates `d root / d leaf` (times `gradient`) into the
/// `.grad` of every leaf that requires grad, and into `.grad` of non-leaves that asked with
/// `retain_grad()`. Frees the graph's saved tensors unless `retain_graph`.
pub fn backward(root: &Tensor, gradient: Option<&Tensor>, retain_graph: bool) -> Result<()> {
    if !root.requires_grad() {
        return Err(TensorError::BackwardWithoutGrad);
    }
    let _no_grad = no_grad();
    let seed = match gradient {
        None => {
            super::checks::implicit_seed(root.shape())?;
            Tensor::ones(root.shape())?
        }
        Some(gradient) if gradient.shape() != root.shape() => {
            return Err(TensorError::ShapeMismatch {
                op: "backward",
                lhs: gradient.shape().to_vec(),
                rhs: root.shape().to_vec(),
                detail: " (the gradient must have the shape of the tensor)".into(),
            });
        }
        Some(gradient) => gradient.clone(),
    };
    let root_node = match root.grad_edge() {
        Edge::Node(node) => node,
        Edge::Leaf(leaf) => return accumulate_grad(&leaf, &seed),
        Edge::None => return Err(TensorError::BackwardWithoutGrad),
    };

    // Count, for every node reachable from the root, how many edges lead into it: a node
    // runs once all of them have delivered their gradient.
    let key = |node: &Rc<Node>| Rc::as_ptr(node) as usize;
    let mut dependencies: HashMap<usize, usize> = HashMap::new();
    let mut stack = vec![root_node.clone()];
    let mut seen = std::collections::HashSet::from([key(&root_node)]);
    while let Some(node) = stack.pop() {
        for edge in &node.inputs {
            if let Edge::Node(input) = edge {
                *dependencies.entry(key(input)).or_insert(0) += 1;
                if seen.insert(key(input)) {
                    stack.push(input.clone());
                }
            }
        }
    }

    let mut pending: HashMap<usize, Tensor> = HashMap::from([(key(&root_node), seed)]);
    let mut ready = vec![root_node];
    while let Some(node) = ready.pop() {
        let grad = pending.remove(&key(&node));
        if let (Some(grad), Some(retained)) = (&grad, node.retained().and_then(|w| w.upgrade())) {
            accumulate_grad(&Tensor::from_impl(retained), grad)?;
        }
        let needs: Vec<bool> = node.inputs.iter().map(Edge::is_some).collect();
        let input_grads = match &grad {
            Some(grad) if needs.iter().any(|&n| n) => {
                let saved = node.unpack_saved()?;
                node.op.backward(grad, &saved, &needs)?
            }
            _ => vec![None; node.inputs.len()],
        };
        if !retain_graph {
            node.free();
        }
        for (edge, input_grad) in node.inputs.iter().zip(input_grads) {
            match edge {
                Edge::None => {}
                Edge::Leaf(leaf) => {
                    if let Some(g) = input_grad {
                        accumulate_grad(leaf, &g)?;
                    }
                }
                Edge::Node(input) => {
                    if let Some(g) = input_grad {
                        let sum = match pending.remove(&key(input)) {
                            Some(previous) => previous.add(&g)?,
                            None => g,
                        };
                        pending.insert(key(input), sum);
                    }
                    let count = dependencies.entry(key(input)).or_insert(1);
                    *count -= 1;
                    if *count == 0 {
                        ready.push(input.clone());
                    }
                }
            }
        }
    }
    Ok(())
}

/// `.grad += grad`, in place when `.grad` exists (so a handle to it sees the sum, as in
/// PyTorch), else a fresh copy (the incoming gradient may be shared with other leaves).
fn accumulate_grad(tensor: &Tensor, grad: &Tensor) -> Result<()> {
    match tensor.grad() {
        Some(existing) => existing.accumulate_in_place(grad),
        None => {
            tensor.set_grad(Some(grad.contiguous_copy()?));
            Ok(())
        }
    }
}
