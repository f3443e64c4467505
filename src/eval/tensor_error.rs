//! Run-time diagnostics of tensor operations: a [`TensorError`] (which names the op and the
//! shapes, never a span) wrapped with the span of the expression that failed, labels on
//! the arguments involved, and a fix.
//!
//! One struct carries every such report; its [`TensorCode`] fixes the code. The codes the
//! language half already reports (E0313 index out of range, E0504 assertion, E0505 value
//! error) map onto the existing [`RuntimeError`] variants instead, so each code keeps one
//! owner.

use super::error::RuntimeError;
use crate::source::Span;
use crate::tensor::shape::{ShapeError, SpatialOp};
use crate::tensor::{Site, TensorError};

pub use crate::diagnostic::{RaggedRows, TensorCode, TensorDiagnostic};

impl TensorDiagnostic {
    /// Into the interpreter's error type.
    pub fn boxed(self) -> Box<RuntimeError> {
        Box::new(RuntimeError::Tensor(Box::new(self)))
    }
}

/// The help every E0503 report ends with.
const BUDGET_HELP: &str = "free what is no longer needed, use smaller sizes, or raise the budget with `cnn run --max-memory SIZE` (default: the memory available at start)";

/// E0503 for a list or string allocation over the memory budget: `what` names the value
/// (`a list of 3 items`), `span` the expression that would make it.
pub fn over_budget(
    e: crate::tensor::memory::OverBudget,
    what: &str,
    span: Span,
) -> Box<RuntimeError> {
    TensorDiagnostic::new(
        TensorCode::TooLarge,
        format!(
            "{}: {what} would need {} bytes, more than the memory budget allows",
            e.op, e.bytes
        ),
        span,
        "over the memory budget",
    )
    .with_help(BUDGET_HELP)
    .boxed()
}

fn shape_str(shape: &[usize]) -> String {
    format!("{shape:?}")
}

/// The code and label of a spatial op's [`ShapeError`].
fn spatial_code(error: &ShapeError) -> (TensorCode, &'static str) {
    match error {
        ShapeError::OutputTooSmall {
            op: SpatialOp::ConvTranspose2d,
            ..
        } => (TensorCode::TransposedOutputEmpty, "output would be empty"),
        ShapeError::OutputTooSmall { .. } => (TensorCode::ConvOutputEmpty, "output would be empty"),
        ShapeError::ChannelMismatch { .. } | ShapeError::UpscaleMismatch { .. } => {
            (TensorCode::ChannelMismatch, "channels do not fit")
        }
        ShapeError::BiasMismatch { .. } => (TensorCode::Broadcast, "bias does not fit"),
        ShapeError::EmptySize { .. } => (TensorCode::InvalidConfig, "empty size"),
        _ => (TensorCode::InvalidConfig, "invalid configuration"),
    }
}

/// Wraps `err` with the span of the expression that failed. `site_span` maps the call sites
/// recorded in the graph back to source (for E0404 and E0405, which happen in `backward` but
/// are caused elsewhere).
pub fn from_tensor_error(
    err: TensorError,
    span: Span,
    site_span: &dyn Fn(Site) -> Option<Span>,
) -> Box<RuntimeError> {
    let message = err.to_string();
    let diag = |code, label: &str| TensorDiagnostic::new(code, message.clone(), span, label);
    let report = match &err {
        TensorError::Broadcast { lhs, rhs, .. } => diag(TensorCode::Broadcast, "shapes do not broadcast")
            .with_help(format!(
                "dims are compared from the right and must be equal or 1: {} vs {}",
                shape_str(lhs),
                shape_str(rhs)
            )),
        TensorError::ShapeMismatch { .. } => diag(TensorCode::Broadcast, "shapes do not match"),
        TensorError::MatmulMismatch {
            lhs_inner,
            rhs_inner,
            op,
            ..
        } => {
            if *op == "linear" {
                diag(TensorCode::LinearFeatures, "features do not match").with_help(format!(
                    "the input's last dim ({lhs_inner}) must equal in_features ({rhs_inner})"
                ))
            } else {
                diag(TensorCode::MatmulMismatch, "inner dimensions differ").with_help(format!(
                    "the left operand's last dim ({lhs_inner}) must equal the right operand's contracted dim ({rhs_inner}); transpose one with `.T` or `.t()`?"
                ))
            }
        }
        TensorError::ReshapeNumel { numel, .. } => diag(TensorCode::ReshapeCount, "element count changes")
            .with_help(format!(
                "the new shape must hold exactly {numel} elements; write -1 for one dim to infer it"
            )),
        TensorError::ViewNotContiguous { .. } => {
            return Box::new(RuntimeError::value_with_help(
                message,
                span,
                "not a view",
                "use reshape(), which copies when it must, or call contiguous() first",
            ));
        }
        TensorError::DimOutOfRange { range, .. } => diag(TensorCode::DimOutOfRange, "no such dimension")
            .with_help(format!(
                "valid dims are {} to {} (negative ones count from the end)",
                -(*range as i64),
                *range as i64 - 1
            )),
        TensorError::Rank { shape, expected, .. } => {
            let d = diag(TensorCode::WrongRank, format!("this is {}-D", shape.len()).as_str());
            let wants_one_more = expected.contains("4-D") && shape.len() == 3
                || expected.contains("3-D") && shape.len() == 2;
            if wants_one_more {
                d.with_help("add a batch dimension with `.unsqueeze(0)`")
            } else {
                d
            }
        }
        TensorError::IndexOutOfRange {
            index, dim, size, ..
        } => {
            return Box::new(RuntimeError::IndexOutOfRange(Box::new(crate::diagnostic::IndexOutOfRange {
                index: *index,
                len: *size,
                what: format!("dimension {dim} of size {size}"),
                span,
                calls: Vec::new(),
            })));
        }
        TensorError::TooManyIndices { .. } => {
            return Box::new(RuntimeError::value(message, span, "too many indices"));
        }
        TensorError::LossShape { .. } => diag(TensorCode::LossShape, "input and target do not fit"),
        TensorError::BackwardWithoutGrad => diag(TensorCode::BackwardWithoutGrad, "nothing to differentiate")
            .with_help("the tensor was computed only from tensors that do not require grad; create the leaves with `requires_grad=true` (and not under `no_grad`)"),
        TensorError::NonScalarBackward { .. } => diag(TensorCode::NonScalarBackward, "not a scalar")
            .with_help("reduce it first (`.sum()`, `.mean()`), or pass `gradient=` with its shape"),
        TensorError::InPlaceOnLeaf { .. } => diag(TensorCode::InPlaceOnLeaf, "in-place write to a leaf that requires grad")
            .with_help("do it under `with no_grad { ... }` (as an optimizer step does), or write `x = x + ...` to make a new tensor"),
        TensorError::SavedTensorModified {
            saved_by,
            saved_site,
            modified_by,
            modified_site,
            ..
        } => {
            let mut d = diag(TensorCode::SavedTensorModified, "backward needs the old value");
            if let Some(s) = site_span(*saved_site) {
                d = d.with_label(s, format!("saved for backward here ({saved_by})"));
            }
            if let Some(s) = site_span(*modified_site) {
                d = d.with_label(s, format!("modified in place here ({modified_by})"));
            }
            d.with_help("use an out-of-place op (`y = y + 1` instead of `y.add_(1)`), or `.clone()` the tensor before changing it")
        }
        TensorError::GraphFreed { node, site } => {
            let mut d = diag(TensorCode::GraphFreed, "the graph was freed by the first backward");
            if let Some(s) = site_span(*site) {
                d = d.with_label(s, format!("{node} recorded here"));
            }
            d.with_help("pass `retain_graph=true` to the first backward to keep the graph")
        }
        TensorError::TooLarge { op, shape, bytes, .. } => {
            // The engine's message names the bytes left; that differs between machines
            // (and runs), so the report keeps to the request.
            TensorDiagnostic::new(
                TensorCode::TooLarge,
                format!(
                    "{op}: {} {} would need {bytes} bytes, more than the memory budget allows",
                    if *op == "tolist" { "the lists of a tensor of shape" } else { "a tensor of shape" },
                    shape_str(shape)
                ),
                span,
                "over the memory budget",
            )
            .with_help(format!("{BUDGET_HELP}; a float32 tensor takes 4 bytes per element"))
        }
        TensorError::Spatial(shape_error) => {
            let (code, label) = spatial_code(shape_error);
            diag(code, label)
        }
        TensorError::Value { op: "item", .. } => {
            return Box::new(RuntimeError::value_with_help(
                message,
                span,
                "not a single element",
                "pick one element first (`x[0, 0].item()`), reduce (`x.sum().item()`), or use `tolist()`",
            ));
        }
        TensorError::Value { .. } => {
            return Box::new(RuntimeError::value(message, span, "invalid value"));
        }
    };
    report.boxed()
}
