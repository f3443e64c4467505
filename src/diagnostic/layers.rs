//! Wording of layer mistakes that both the checker and the run-time check find.

use super::{TensorCode, TensorDiagnostic};
use crate::source::Span;

/// E0303: a `BatchNorm2d(features)` applied to an input with another number of channels.
/// `input` is the input's shape as text (`[2, 8, 4, 4]`, or `[N, 8, H, W]` before the run).
pub fn batch_norm_channels(
    features: i64,
    channels: i64,
    input: &str,
    call: Span,
    input_span: Span,
    num_features: Span,
) -> TensorDiagnostic {
    TensorDiagnostic::new(
        TensorCode::ChannelMismatch,
        format!(
            "channel mismatch: BatchNorm2d has {features} features, the input has {channels} channels"
        ),
        call,
        format!("expects {features} channels"),
    )
    .with_label(input_span, format!("input is {input}"))
    .with_label(num_features, format!("num_features is {features}"))
    .with_help(format!(
        "set num_features to {channels}, or write `_` to infer it"
    ))
}

/// E0304: a layer given an input of a rank it does not take. `expected` names the ranks
/// (`a 4-D [N, C, H, W] input`); `one_short` says the input lacks just the batch dim.
pub fn layer_rank(
    layer: &str,
    expected: &str,
    input: &str,
    ndim: usize,
    one_short: bool,
    input_span: Span,
    built_at: Span,
) -> TensorDiagnostic {
    let d = TensorDiagnostic::new(
        TensorCode::WrongRank,
        format!("{layer} expects {expected}, got a tensor of shape {input}"),
        input_span,
        format!("this is {ndim}-D"),
    )
    .with_label(built_at, "the layer was built here");
    if one_short {
        d.with_help("add a batch dimension with `.unsqueeze(0)`")
    } else {
        d
    }
}

/// The ranks a convolution or pooling layer takes, as [`layer_rank`] names them.
pub const SPATIAL_RANKS: &str = "a 3-D [C, H, W] or 4-D [N, C, H, W] input";

/// E0305: a `Linear(in_features, ...)` whose input's last dim differs. `dims` are the
/// input's dims as text and `per_item` the product of all but the first (what `Flatten()`
/// would give), with its value when known.
pub fn linear_features(
    in_features: i64,
    dims: &[String],
    per_item: (String, Option<i64>),
    call: Span,
    input_span: Span,
    in_features_span: Span,
) -> TensorDiagnostic {
    let last = dims.last().cloned().unwrap_or_default();
    let help = if dims.len() >= 3 {
        let factors = dims[1..].join("*");
        let (per_item, value) = per_item;
        if value == Some(in_features) {
            format!(
                "flatten the input first: put `Flatten()` before this layer ({factors} = {per_item} features per item)"
            )
        } else {
            format!(
                "`Flatten()` would give {factors} = {per_item} features per item; set in_features to {per_item} (or `_`) and flatten first"
            )
        }
    } else {
        format!("set in_features to {last}, or write `_` to infer it from the first input")
    };
    TensorDiagnostic::new(
        TensorCode::LinearFeatures,
        format!("Linear expects {in_features} input features, the input's last dim is {last}"),
        call,
        format!("expects {in_features} features"),
    )
    .with_label(input_span, format!("input is [{}]", dims.join(", ")))
    .with_label(in_features_span, format!("in_features is {in_features}"))
    .with_help(help)
}

/// The fix for a convolution layer built for other channels than its input has.
pub fn conv_in_channels_help(actual: i64) -> String {
    format!("set in_channels to {actual}, or write `_` to infer it from the first input")
}
