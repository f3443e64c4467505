//! Errors of the tensor library.
//!
//! Each variant names the op that failed and the shapes involved (candle's
//! `ShapeMismatchBinaryOp { lhs, rhs, op }`), never a source span: `eval` wraps a
//! [`TensorError`] with the span of the expression that failed, and maps each variant to the
//! diagnostic code written in its doc comment (LANGUAGE.md §10).

use super::autograd::Site;
use super::shape::ShapeError;
use thiserror::Error;

/// The result of a fallible tensor operation.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;

/// Shapes print as PyTorch users read them: `[2, 3]`.
fn fmt_shape(dims: &[usize]) -> String {
    format!("{dims:?}")
}

/// Everything that can go wrong in a tensor operation.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TensorError {
    /// Two shapes that cannot broadcast: `randn(2, 3) + randn(4, 3)` (→ E0306).
    #[error(
        "{op}: shapes {} and {} cannot broadcast",
        fmt_shape(lhs),
        fmt_shape(rhs)
    )]
    Broadcast {
        /// The op that broadcast, such as `"add"`.
        op: &'static str,
        /// Shape of the left operand.
        lhs: Vec<usize>,
        /// Shape of the right operand.
        rhs: Vec<usize>,
    },

    /// Shapes that must agree and do not, outside broadcasting: `cat` of `[2, 3]` and
    /// `[2, 4]` along dim 0, or a `gradient` of the wrong shape in `backward` (→ E0306).
    #[error(
        "{op}: shapes {} and {} do not match{detail}",
        fmt_shape(lhs),
        fmt_shape(rhs)
    )]
    ShapeMismatch {
        /// The op that compared the shapes.
        op: &'static str,
        /// The first shape.
        lhs: Vec<usize>,
        /// The second shape.
        rhs: Vec<usize>,
        /// What had to agree, such as `" except in dimension 1"`; may be empty.
        detail: String,
    },

    /// Matrix product whose inner dimensions differ: `randn(2, 3) @ randn(4, 5)` (→ E0307).
    #[error(
        "{op}: inner dimensions differ: {} @ {} ({lhs_inner} vs {rhs_inner})",
        fmt_shape(lhs),
        fmt_shape(rhs)
    )]
    MatmulMismatch {
        /// `"matmul"`, `"mm"` or `"linear"`.
        op: &'static str,
        /// Shape of the left operand.
        lhs: Vec<usize>,
        /// Shape of the right operand.
        rhs: Vec<usize>,
        /// The left operand's last dimension.
        lhs_inner: usize,
        /// The right operand's contracted dimension.
        rhs_inner: usize,
    },

    /// A reshape to a different number of elements: `randn(2, 3).reshape(4, 2)` (→ E0308).
    #[error(
        "{op}: shape {requested:?} is invalid for input of shape {} ({numel} elements)",
        fmt_shape(input)
    )]
    ReshapeNumel {
        /// `"reshape"`, `"view"` or `"flatten"`.
        op: &'static str,
        /// The input's shape.
        input: Vec<usize>,
        /// The requested shape as written (`-1` infers a dimension).
        requested: Vec<i64>,
        /// The input's element count.
        numel: usize,
    },

    /// `view` of data whose strides cannot express the new shape without a copy:
    /// `randn(2, 3).t().view(6)` (→ E0505; `reshape` copies instead).
    #[error(
        "view: shape {requested:?} is not compatible with the strides of input {} (use reshape)",
        fmt_shape(input)
    )]
    ViewNotContiguous {
        /// The input's shape.
        input: Vec<usize>,
        /// The requested shape.
        requested: Vec<i64>,
    },

    /// A dimension outside `-ndim..ndim`: `randn(2, 3).unsqueeze(5)` (→ E0309).
    #[error("{op}: dimension {dim} is out of range for a tensor of shape {} (expected {} to {})", fmt_shape(shape), -(*range as i64), *range as i64 - 1)]
    DimOutOfRange {
        /// The op that took the dimension.
        op: &'static str,
        /// The dimension as given.
        dim: i64,
        /// The tensor's shape.
        shape: Vec<usize>,
        /// How many dimensions are valid (`ndim`, or `ndim + 1` for `unsqueeze`).
        range: usize,
    },

    /// A tensor of the wrong rank for the op: `mm` of a 3-D tensor, `t()` of a 3-D tensor
    /// (→ E0304).
    #[error(
        "{op}: expected {expected}, got a tensor of shape {}",
        fmt_shape(shape)
    )]
    Rank {
        /// The op.
        op: &'static str,
        /// What it accepts, such as `"a 2-D tensor"`.
        expected: &'static str,
        /// The shape it was given.
        shape: Vec<usize>,
    },

    /// An index outside its dimension: `randn(3)[5]` (→ E0313).
    #[error("{op}: index {index} is out of range for dimension {dim} of size {size}")]
    IndexOutOfRange {
        /// `"index"`, `"select"` or a loss reading class indices.
        op: &'static str,
        /// The index as given.
        index: i64,
        /// The dimension indexed.
        dim: usize,
        /// That dimension's size.
        size: usize,
    },

    /// More indices than dimensions: `randn(3)[0, 0]` (→ E0313).
    #[error(
        "index: too many indices ({count}) for a tensor of shape {}",
        fmt_shape(shape)
    )]
    TooManyIndices {
        /// How many indices were given.
        count: usize,
        /// The tensor's shape.
        shape: Vec<usize>,
    },

    /// Loss input and target that do not fit: `mse_loss(randn(4, 3), randn(4))`, or
    /// `cross_entropy` logits `[N, C]` with a target that is not `[N]` (→ E0314).
    #[error(
        "{op}: input {} and target {} do not fit{detail}",
        fmt_shape(input),
        fmt_shape(target)
    )]
    LossShape {
        /// The loss.
        op: &'static str,
        /// The input's (or logits') shape.
        input: Vec<usize>,
        /// The target's shape.
        target: Vec<usize>,
        /// What was expected; may be empty.
        detail: String,
    },

    /// `backward()` on a tensor that does not require grad:
    /// `(randn(3) * 2).sum().backward()` (→ E0401).
    #[error("backward: the tensor does not require grad and has no grad_fn")]
    BackwardWithoutGrad,

    /// `backward()` without `gradient` on a tensor of more than one element (→ E0402).
    #[error(
        "backward: grad can be implicitly created only for scalar outputs, this one has shape {}",
        fmt_shape(shape)
    )]
    NonScalarBackward {
        /// The tensor's shape.
        shape: Vec<usize>,
    },

    /// An in-place op on a leaf that requires grad, or a view of one, while grad mode is on:
    /// `let w = randn(3, requires_grad=true); w += 1` (→ E0403).
    #[error("{op}: a leaf tensor that requires grad{} is being used in an in-place operation", if *through_view { " (through a view)" } else { "" })]
    InPlaceOnLeaf {
        /// The in-place op, such as `"add_"`.
        op: &'static str,
        /// Whether the write went through a view of the leaf.
        through_view: bool,
    },

    /// A tensor saved for backward was changed in place before backward needed it:
    /// `let y = x.exp(); y.add_(1); y.sum().backward()` (→ E0404, labelled at both sites).
    #[error(
        "backward: a tensor of shape {} saved by {saved_by} was modified by the in-place op {modified_by}: it is at version {current_version}, {saved_by} expected version {saved_version}",
        fmt_shape(shape)
    )]
    SavedTensorModified {
        /// The backward node that saved the tensor, such as `"ExpBackward0"`.
        saved_by: &'static str,
        /// Where that op ran.
        saved_site: Site,
        /// The in-place op that last wrote the storage, such as `"add_"`.
        modified_by: &'static str,
        /// Where that write ran.
        modified_site: Site,
        /// The saved tensor's shape.
        shape: Vec<usize>,
        /// The storage version when the tensor was saved.
        saved_version: u64,
        /// The storage version now.
        current_version: u64,
    },

    /// Backward through a node whose saved tensors were freed by an earlier backward
    /// (→ E0405; the fix is `retain_graph=true`).
    #[error(
        "backward: trying to backward through the graph a second time: the saved tensors of {node} were freed by the first backward (use retain_graph=true)"
    )]
    GraphFreed {
        /// The node whose saved tensors are gone.
        node: &'static str,
        /// Where that node's op ran.
        site: Site,
    },

    /// An allocation that would not fit in what the memory budget has left, or whose size
    /// overflows (→ E0503).
    #[error(
        "{op}: a tensor of shape {} needs {bytes} bytes, more than the {available} bytes left of the memory budget",
        fmt_shape(shape)
    )]
    TooLarge {
        /// The op that would allocate.
        op: &'static str,
        /// The requested shape (may be truncated when its size overflowed).
        shape: Vec<usize>,
        /// Bytes requested (`u128` so an overflowing request still prints).
        bytes: u128,
        /// Bytes the memory budget had left.
        available: u64,
    },

    /// A convolution, pooling or resampling whose arguments or input shape do not fit:
    /// `conv2d(randn(1, 1, 2, 2), randn(1, 1, 3, 3))` (→ E0301), a transposed convolution
    /// cropping everything (→ E0302), an input with the wrong channel count (→ E0303), or a
    /// bad configuration such as `groups=4` with 6 channels (→ E0311). The variant of
    /// [`ShapeError`] says which.
    #[error("{0}")]
    Spatial(#[from] ShapeError),

    /// Any other invalid value: `item()` of a many-element tensor, `arange` with step 0,
    /// dropout with `p` outside `[0, 1]` (→ E0505).
    #[error("{op}: {message}")]
    Value {
        /// The op.
        op: &'static str,
        /// What was wrong, in words.
        message: String,
    },
}

impl TensorError {
    /// A [`TensorError::Value`] from an op name and a message.
    pub fn value(op: &'static str, message: impl Into<String>) -> TensorError {
        TensorError::Value {
            op,
            message: message.into(),
        }
    }
}
