//! Layers: construction (E0311 through `tensor::shape`'s checks) and application (E0301 to
//! E0305, with the numbers substituted), on concrete or symbolic shapes.

use std::rc::Rc;

use super::dim::SymDim;
use super::error::{CheckError, CheckWarning};
use super::rules::{Bound, concrete_shape, default_ty, pair};
use super::ty::{Grad, LayerTy, TensorTy, Ty, shape_string};
use super::walk::{Checker, derived};
use crate::builtins::stateless::{self, ShapeRule, Stateless};
use crate::builtins::{BuiltinDef, spatial};
use crate::diagnostic::layers::{
    SPATIAL_RANKS, batch_norm_channels, conv_in_channels_help, layer_rank, linear_features,
};
use crate::diagnostic::{TensorCode, TensorDiagnostic};
use crate::source::Span;
use crate::tensor::checks;
use crate::tensor::ops::adaptive_pool::adaptive_pool2d_shape;
use crate::tensor::ops::loss::dropout2d_check;
use crate::tensor::receptive_field::AxisField;
use crate::tensor::shape::{self, ShapeError, SpatialOp};

impl LayerTy {
    /// The argument `name` (its default when not given), and where it was written.
    fn arg(&self, name: &str) -> (Ty, Option<Span>) {
        match self.def.0.params.iter().position(|p| p.name == name) {
            Some(i) => match &self.args[i] {
                Some((t, s)) => (t.clone(), Some(*s)),
                None => (default_ty(self.def.0.params[i].default), None),
            },
            None => (Ty::Unknown, None),
        }
    }

    fn int(&self, name: &str) -> Option<i64> {
        self.arg(name).0.as_int()
    }

    fn pair(&self, name: &str) -> Option<[i64; 2]> {
        pair(&self.arg(name).0)
    }

    fn at(&self, name: &str) -> Span {
        self.arg(name).1.unwrap_or(self.span)
    }
}

/// A spatial layer's window, when every number is known.
struct Window {
    op: SpatialOp,
    kernel: [i64; 2],
    stride: [i64; 2],
    padding: [i64; 2],
    dilation: [i64; 2],
    output_padding: [i64; 2],
    ceil_mode: bool,
    /// `padding="same"` (a convolution whose output keeps the input's size).
    same: bool,
}

fn window(l: &LayerTy) -> Option<Window> {
    let (op, stride) = match l.kind {
        "Conv2d" => (SpatialOp::Conv2d, l.pair("stride")?),
        "ConvTranspose2d" => (SpatialOp::ConvTranspose2d, l.pair("stride")?),
        "MaxPool2d" | "AvgPool2d" => {
            let op = if l.kind == "MaxPool2d" {
                SpatialOp::MaxPool2d
            } else {
                SpatialOp::AvgPool2d
            };
            let stride = match l.arg("stride").0 {
                Ty::None => l.pair("kernel_size")?,
                t => pair(&t)?,
            };
            (op, stride)
        }
        _ => return None,
    };
    let ceil_mode = match l.arg("ceil_mode").0 {
        _ if !matches!(op, SpatialOp::MaxPool2d | SpatialOp::AvgPool2d) => false,
        Ty::Bool(Some(b)) => b,
        Ty::None => false,
        // A ceil_mode the checker cannot read: the shape is unknown.
        _ => return None,
    };
    let (padding, same) = match l.arg("padding").0 {
        Ty::Str(Some(p)) if l.kind == "Conv2d" && &*p == "same" => ([0, 0], true),
        Ty::Str(Some(p)) if l.kind == "Conv2d" && &*p == "valid" => ([0, 0], false),
        _ => (l.pair("padding")?, false),
    };
    let w = Window {
        op,
        kernel: l.pair("kernel_size")?,
        stride,
        padding,
        dilation: if l.kind == "AvgPool2d" {
            [1, 1]
        } else {
            l.pair("dilation")?
        },
        output_padding: if l.kind == "ConvTranspose2d" {
            l.pair("output_padding")?
        } else {
            [0, 0]
        },
        ceil_mode,
        same,
    };
    // Beyond the run's bound on these numbers the size formulas would overflow; the run
    // reports them (E0311), and the shape stays unknown here.
    let bound = crate::builtins::spatial::LARGEST_ARGUMENT;
    let numbers = [w.kernel, w.stride, w.padding, w.dilation, w.output_padding];
    numbers.iter().flatten().all(|&v| v <= bound).then_some(w)
}

/// E0311 for a configuration the engine rejects, worded as the run-time diagnostic is
/// (the label and the specific fix come from the same builder).
fn invalid(err: ShapeError, op: SpatialOp, at: Span) -> CheckError {
    let (_, label, help) = spatial::invalid_config_parts(&err);
    let text = err.to_string();
    let message = match err {
        // The layer constructor names the op as the engine does (`invalid conv2d: ...`).
        ShapeError::GroupsMismatch { .. } => format!("invalid {text}"),
        _ => {
            let rest = text.split_once(": ").map_or(text.as_str(), |(_, r)| r);
            format!("invalid {}: {rest}", spatial::op_words(op))
        }
    };
    let mut d = TensorDiagnostic::new(TensorCode::InvalidConfig, message, at, label);
    if !help.is_empty() {
        d = d.with_help(help);
    }
    CheckError::Shape(Box::new(d))
}

impl Checker {
    /// A layer constructor: E0311 for a configuration no input can fix.
    pub(super) fn build_layer(&mut self, def: &'static BuiltinDef, b: &Bound, span: Span) -> Ty {
        let layer = LayerTy {
            kind: def.name,
            args: b.slots.clone(),
            def: super::ty::BuiltinRef(def),
            rest: b.rest.clone(),
            span,
        };
        // Sizes the engine wants at least 1, refused as it refuses them (before any input).
        for name in [
            "in_channels",
            "out_channels",
            "in_features",
            "out_features",
            "num_features",
            "upscale_factor",
        ] {
            if let Some(n) = layer.int(name).filter(|&n| n < 1) {
                let d = TensorDiagnostic::new(
                    TensorCode::InvalidConfig,
                    format!(
                        "argument `{name}` of `{}` must be at least 1, got {n}",
                        def.name
                    ),
                    layer.at(name),
                    "not positive",
                );
                self.error(CheckError::Shape(Box::new(d)));
                return Ty::Unknown;
            }
        }
        if let Some(w) = window(&layer) {
            let mut errors = Vec::new();
            for axis in 0..2 {
                let r = shape::check_window(
                    w.op,
                    w.kernel[axis],
                    w.stride[axis],
                    w.padding[axis],
                    w.dilation[axis],
                );
                if let Err(e) = r {
                    let at = match e {
                        ShapeError::NonPositiveStride { .. } => layer.at("stride"),
                        ShapeError::NegativePadding { .. } => layer.at("padding"),
                        ShapeError::NonPositiveDilation { .. } => layer.at("dilation"),
                        _ => layer.at("kernel_size"),
                    };
                    errors.push(invalid(e, w.op, at));
                    break;
                }
                if w.op == SpatialOp::ConvTranspose2d
                    && let Err(e) = shape::check_output_padding(
                        w.output_padding[axis],
                        w.stride[axis],
                        w.dilation[axis],
                    )
                {
                    errors.push(invalid(e, w.op, layer.at("output_padding")));
                    break;
                }
                if matches!(w.op, SpatialOp::MaxPool2d | SpatialOp::AvgPool2d)
                    && let Err(e) = shape::check_pool_padding(
                        w.op,
                        w.kernel[axis],
                        w.padding[axis],
                        w.dilation[axis],
                    )
                {
                    errors.push(invalid(e, w.op, layer.at("padding")));
                    break;
                }
            }
            if w.same && errors.is_empty() && w.stride != [1, 1] {
                errors.push(CheckError::Shape(Box::new(
                    TensorDiagnostic::new(
                        TensorCode::InvalidConfig,
                        "padding=\"same\" needs stride 1",
                        layer.at("padding"),
                        "not allowed with this stride",
                    )
                    .with_help("give the padding as numbers, or use stride=1"),
                )));
            }
            if matches!(w.op, SpatialOp::Conv2d | SpatialOp::ConvTranspose2d)
                && errors.is_empty()
                && let (Some(i), Some(o), Some(g)) = (
                    layer.int("in_channels"),
                    layer.int("out_channels"),
                    layer.int("groups"),
                )
                && let Err(e) = shape::check_groups(w.op, g, i, o)
            {
                errors.push(invalid(e, w.op, layer.at("groups")));
            }
            if !errors.is_empty() {
                for e in errors {
                    self.error(e);
                }
                return Ty::Unknown;
            }
        }
        Ty::Layer(Rc::new(layer))
    }

    /// A layer applied to `input` (recorded when a net report is being made).
    pub(super) fn apply_layer(&mut self, l: &Rc<LayerTy>, input: &Ty, at: Span, span: Span) -> Ty {
        let at_row = self.nets.rows.as_ref().map(Vec::len);
        let out = self.apply_layer_unrecorded(l, input, at, span);
        if let Some(i) = at_row {
            self.record_layer(l, input, &out, i);
        }
        out
    }

    pub(super) fn apply_layer_unrecorded(
        &mut self,
        l: &Rc<LayerTy>,
        input: &Ty,
        at: Span,
        span: Span,
    ) -> Ty {
        let Ty::Tensor(t) = input else {
            return Ty::Unknown;
        };
        // A layer with parameters gives an output that requires grad (unless the program
        // changes `requires_grad` by hand); one without passes the input's flag on.
        let parameters = matches!(
            l.kind,
            "Conv2d" | "ConvTranspose2d" | "Linear" | "BatchNorm2d"
        );
        let grad = match (self.no_grad, parameters, self.grad_tracked) {
            (true, ..) => Grad::No,
            (false, true, true) => Grad::Yes,
            (false, true, false) => Grad::Unknown,
            (false, false, _) => derived(t.grad, false),
        };
        let keep = |t: &TensorTy| {
            Ty::Tensor(TensorTy {
                shape: t.shape.clone(),
                grad: derived(t.grad, false),
                field: t.field.clone(),
            })
        };
        let unknown = Ty::Tensor(TensorTy {
            shape: None,
            grad,
            field: None,
        });
        match l.kind {
            "Softmax" | "Identity" | "Dropout" => keep(t),
            name if let Some(op) = stateless::by_layer(name) => {
                self.apply_stateless(op, l.pair("output_size"), t, span)
            }
            // A Sequential with an item that failed to build never runs: its mistake is
            // that item's, reported where it was built.
            "Sequential" if l.rest.iter().any(|(t, _)| !matches!(t, Ty::Layer(_))) => Ty::Unknown,
            "Sequential" => {
                let mut x = input.clone();
                self.nest_rows(1);
                for (layer, s) in &l.rest {
                    x = match layer {
                        Ty::Layer(inner) => self.apply_layer(inner, &x, at, *s),
                        _ => Ty::Unknown,
                    };
                    if x == Ty::Unknown {
                        break;
                    }
                }
                self.nest_rows(-1);
                x
            }
            "Flatten" => {
                let (Some(shape), Some(start), Some(end)) =
                    (&t.shape, l.int("start_dim"), l.int("end_dim"))
                else {
                    return unknown;
                };
                // A 0-dim input flattens to [1], whatever the dims.
                if shape.is_empty() {
                    return Ty::Tensor(TensorTy {
                        shape: Some(vec![SymDim::constant(1)]),
                        grad,
                        field: None,
                    });
                }
                let n = shape.len();
                let index = |d: i64| checks::dim_index("flatten", d, &[], n);
                let (Ok(s), Ok(e)) = (index(start), index(end)) else {
                    // The run-time check's words need the sizes.
                    if let Some(concrete) = concrete_shape(shape) {
                        let err = checks::dim_index("flatten", start, &concrete, n)
                            .and_then(|_| checks::dim_index("flatten", end, &concrete, n));
                        if let Err(err) = err {
                            self.tensor_error(err, span);
                            return Ty::Unknown;
                        }
                    }
                    return unknown;
                };
                if s > e {
                    return unknown;
                }
                let mut out: Vec<SymDim> = shape[..s].to_vec();
                out.push(
                    shape[s..=e]
                        .iter()
                        .cloned()
                        .fold(SymDim::constant(1), |a, b| a * b),
                );
                out.extend_from_slice(&shape[e + 1..]);
                Ty::Tensor(TensorTy {
                    shape: Some(out),
                    grad,
                    field: None,
                })
            }
            "Linear" => {
                // `Linear(_, n)` infers in_features from the input: only n is needed.
                let (Some(shape), Some(fout)) = (&t.shape, l.int("out_features")) else {
                    return unknown;
                };
                let Some(last) = shape.last() else {
                    return unknown;
                };
                if let Some(actual) = last.as_const()
                    && let Some(fin) = l.int("in_features")
                    && actual != fin
                {
                    let per_item = shape[1..]
                        .iter()
                        .cloned()
                        .fold(SymDim::constant(1), |a, b| a * b);
                    let dims: Vec<String> = shape.iter().map(SymDim::to_string).collect();
                    let d = linear_features(
                        fin,
                        &dims,
                        (per_item.to_string(), per_item.as_const()),
                        span,
                        at,
                        l.at("in_features"),
                    );
                    self.error(CheckError::Shape(Box::new(d)));
                    return Ty::Unknown;
                }
                let mut out = shape.clone();
                if let Some(last) = out.last_mut() {
                    *last = SymDim::constant(fout);
                }
                Ty::Tensor(TensorTy {
                    shape: Some(out),
                    grad,
                    field: None,
                })
            }
            "Conv2d" | "ConvTranspose2d" | "MaxPool2d" | "AvgPool2d" => {
                self.apply_spatial(l, t, at, span, grad)
            }
            // Per channel, position by position: shape and receptive field kept. A 4-D input
            // whose channels match (or `BatchNorm2d(_)`, which takes them from the input) is
            // all the checker vouches for; the rest the run-time check reports.
            "BatchNorm2d" => match &t.shape {
                Some(shape) if shape.len() != 4 => {
                    let d = layer_rank(
                        "BatchNorm2d",
                        "a 4-D [N, C, H, W] input",
                        &shape_string(shape),
                        shape.len(),
                        shape.len() == 3,
                        at,
                        l.span,
                    );
                    self.error(CheckError::Shape(Box::new(d)));
                    Ty::Unknown
                }
                Some(shape) => {
                    if let (Some(features), Some(channels)) =
                        (l.int("num_features"), shape[1].as_const())
                        && features != channels
                    {
                        let d = batch_norm_channels(
                            features,
                            channels,
                            &shape_string(shape),
                            span,
                            at,
                            l.at("num_features"),
                        );
                        self.error(CheckError::Shape(Box::new(d)));
                        return Ty::Unknown;
                    }
                    // Its weight and bias require grad: so does the output, unless the
                    // parameters were changed by hand.
                    Ty::Tensor(TensorTy {
                        shape: t.shape.clone(),
                        grad,
                        field: t.field.clone(),
                    })
                }
                _ => unknown,
            },
            "Upsample" | "PixelShuffle" => match &t.shape {
                // The engine takes [N, C, H, W] only; worded as its rank error.
                Some(shape) if shape.len() != 4 => {
                    let (op, form) = if l.kind == "PixelShuffle" {
                        ("pixel_shuffle", "[N, C*r*r, H, W]")
                    } else {
                        ("interpolate", "[N, C, H, W]")
                    };
                    let mut d = TensorDiagnostic::new(
                        TensorCode::WrongRank,
                        format!(
                            "{op}: expected a 4-D {form} input, got a tensor of shape {}",
                            shape_string(shape)
                        ),
                        span,
                        format!("this is {}-D", shape.len()),
                    );
                    if shape.len() == 3 {
                        d = d.with_help("add a batch dimension with `.unsqueeze(0)`");
                    }
                    self.error(CheckError::Shape(Box::new(d)));
                    Ty::Unknown
                }
                Some(shape)
                    if l.kind == "PixelShuffle"
                        && let (Some(c), Some(r)) =
                            (shape[1].as_const(), l.int("upscale_factor"))
                        && let Some(r2) = r.checked_mul(r).filter(|_| r > 0)
                        && c % r2 != 0 =>
                {
                    let d = TensorDiagnostic::new(
                        TensorCode::ChannelMismatch,
                        format!(
                            "pixel_shuffle: {c} channels are not divisible by upscale_factor^2 = {r2}"
                        ),
                        span,
                        "channels do not fit",
                    );
                    self.error(CheckError::Shape(Box::new(d)));
                    Ty::Unknown
                }
                _ => upscale(l, t, grad).unwrap_or(unknown),
            },
            _ => unknown,
        }
    }

    /// A layer without parameters (or its functional form) on `t`, by its shape rule.
    pub(super) fn apply_stateless(
        &mut self,
        op: &Stateless,
        output_size: Option<[i64; 2]>,
        t: &TensorTy,
        span: Span,
    ) -> Ty {
        let grad = derived(t.grad, self.no_grad);
        let unknown = Ty::Tensor(TensorTy {
            shape: None,
            grad,
            field: None,
        });
        match op.shape {
            ShapeRule::Same => Ty::Tensor(TensorTy {
                shape: t.shape.clone(),
                grad,
                field: t.field.clone(),
            }),
            ShapeRule::SameChannels => match &t.shape {
                Some(shape) if (3..=4).contains(&shape.len()) => Ty::Tensor(TensorTy {
                    shape: t.shape.clone(),
                    grad,
                    field: t.field.clone(),
                }),
                // Only the rank is the shape's fault (a valid p leaves that check alone).
                Some(shape) => match concrete_shape(shape).map(|s| dropout2d_check(&s, 0.5)) {
                    Some(Err(err)) => {
                        self.tensor_error(err, span);
                        Ty::Unknown
                    }
                    _ => unknown,
                },
                None => unknown,
            },
            ShapeRule::AdaptivePool => {
                let (Some(shape), Some(size)) = (&t.shape, output_size) else {
                    return unknown;
                };
                let Ok(size) = size
                    .map(usize::try_from)
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                else {
                    return unknown;
                };
                let size = [size[0], size[1]];
                if let Some(concrete) = concrete_shape(shape) {
                    return match adaptive_pool2d_shape(op.function.name, &concrete, size) {
                        Ok(out) => Ty::Tensor(TensorTy {
                            shape: Some(
                                out.into_iter()
                                    .map(|d| SymDim::constant(d as i64))
                                    .collect(),
                            ),
                            grad,
                            field: None,
                        }),
                        Err(err) => {
                            self.tensor_error(err, span);
                            Ty::Unknown
                        }
                    };
                }
                if !(3..=4).contains(&shape.len()) || size.contains(&0) {
                    return unknown;
                }
                let mut out = shape[..shape.len() - 2].to_vec();
                out.extend(size.map(|d| SymDim::constant(d as i64)));
                Ty::Tensor(TensorTy {
                    shape: Some(out),
                    grad,
                    field: None,
                })
            }
        }
    }

    fn apply_spatial(&mut self, l: &LayerTy, t: &TensorTy, at: Span, span: Span, grad: Grad) -> Ty {
        let unknown = Ty::Tensor(TensorTy {
            shape: None,
            grad,
            field: None,
        });
        let Some(shape) = &t.shape else {
            return unknown;
        };
        let conv = matches!(l.kind, "Conv2d" | "ConvTranspose2d");
        let input_label = format!("input is {}", shape_string(shape));
        if shape.len() != 3 && shape.len() != 4 {
            let d = layer_rank(
                l.kind,
                SPATIAL_RANKS,
                &shape_string(shape),
                shape.len(),
                shape.len() == 2,
                at,
                l.span,
            );
            self.error(CheckError::Shape(Box::new(d)));
            return Ty::Unknown;
        }
        let c_axis = shape.len() - 3;
        // The engine checks groups against the input's channels before comparing them.
        if conv
            && let (Some(actual), Some(o), Some(g)) = (
                shape[c_axis].as_const(),
                l.int("out_channels"),
                l.int("groups"),
            )
            && let Err(e) = shape::check_groups(
                if l.kind == "Conv2d" {
                    SpatialOp::Conv2d
                } else {
                    SpatialOp::ConvTranspose2d
                },
                g,
                actual,
                o,
            )
        {
            let op = if l.kind == "Conv2d" {
                SpatialOp::Conv2d
            } else {
                SpatialOp::ConvTranspose2d
            };
            self.error(invalid(e, op, at));
            return Ty::Unknown;
        }
        if conv
            && let (Some(expected), Some(actual)) = (l.int("in_channels"), shape[c_axis].as_const())
            && expected != actual
        {
            let ch = |n: i64| format!("{n} channel{}", if n == 1 { "" } else { "s" });
            let words = if l.kind == "Conv2d" {
                "convolution"
            } else {
                "transposed convolution"
            };
            let d = TensorDiagnostic::new(
                TensorCode::ChannelMismatch,
                format!(
                    "channel mismatch: the {words} expects {}, the input has {actual}",
                    ch(expected)
                ),
                at,
                format!("{input_label}: {} in dim {c_axis}", ch(actual)),
            )
            .with_label(l.at("in_channels"), format!("in_channels is {expected}"))
            .with_help(conv_in_channels_help(actual));
            self.error(CheckError::Shape(Box::new(d)));
            return Ty::Unknown;
        }
        let Some(w) = window(l) else { return unknown };
        let mut out = shape.clone();
        let mut sizes = [0i64; 2];
        // (what is dropped, the formula with numbers, padding that would cover it) per axis;
        // one warning for the layer, however many axes drop rows.
        let mut drops: Vec<(String, String, i64)> = Vec::new();
        for axis in 0..2 {
            let input = shape[c_axis + 1 + axis].clone();
            let (k, s, p, d) = (
                w.kernel[axis],
                w.stride[axis],
                w.padding[axis],
                w.dilation[axis],
            );
            let dim = match w.op {
                _ if w.same => input.clone(),
                SpatialOp::ConvTranspose2d => shape::conv_transpose_output_size(
                    input.clone(),
                    k,
                    s,
                    p,
                    w.output_padding[axis],
                    d,
                ),
                SpatialOp::Conv2d => shape::conv_output_size(input.clone(), k, s, p, d),
                _ => shape::pool_output_size(input.clone(), k, s, p, d, w.ceil_mode),
            };
            if let Some(n) = input.as_const() {
                let o = dim.as_const().unwrap_or(1);
                sizes[axis] = o;
                if o >= 1 && s > 1 && w.op != SpatialOp::ConvTranspose2d {
                    let dropped = (n + 2 * p - d * (k - 1) - 1) % s;
                    if dropped != 0 {
                        let noun = if axis == 0 { "row" } else { "column" };
                        let plural = if dropped == 1 { "" } else { "s" };
                        drops.push((
                            format!("{dropped} {noun}{plural}"),
                            format!("({n} + 2*{p} - {d}*({k}-1) - 1) % {s} = {dropped}"),
                            s - dropped,
                        ));
                    }
                }
            } else {
                sizes[axis] = 1;
            }
            self.require_positive(&dim);
            out[c_axis + 1 + axis] = dim;
        }
        if !drops.is_empty() {
            let pad = drops.iter().map(|d| d.2).max().unwrap_or(1);
            self.problems.warnings.push(CheckWarning::DropsRows {
                op: l.kind.to_string(),
                what: drops.iter().map(|d| d.0.as_str()).collect::<Vec<_>>().join(" and "),
                detail: {
                    let mut details: Vec<&str> = drops.iter().map(|d| d.1.as_str()).collect();
                    details.dedup();
                    details.join(", ")
                },
                span,
                help: format!(
                    "pad the input by {pad}, or choose sizes with (in + 2p - d*(k-1) - 1) divisible by the stride"
                ),
            });
        }
        if let Some(axis) = (0..2).find(|&a| sizes[a] < 1) {
            let n = shape[c_axis + 1 + axis].as_const().unwrap_or(0);
            let a = if axis == 0 { "H" } else { "W" };
            let hw: Vec<i64> = (0..2)
                .map(|a| shape[c_axis + 1 + a].as_const().unwrap_or(0))
                .collect();
            let (k, s, p, d, o) = (
                w.kernel[axis],
                w.stride[axis],
                w.padding[axis],
                w.dilation[axis],
                w.output_padding[axis],
            );
            let diag = if w.op == SpatialOp::ConvTranspose2d {
                let full = |a: usize| {
                    (hw[a] - 1) * w.stride[a]
                        + w.dilation[a] * (w.kernel[a] - 1)
                        + 1
                        + w.output_padding[a]
                };
                TensorDiagnostic::new(
                    TensorCode::TransposedOutputEmpty,
                    format!("transposed convolution output would be {} x {}", sizes[0], sizes[1]),
                    l.at("padding"),
                    format!("padding {p} crops {p} rows from each side of a {} x {} result", full(0), full(1)),
                )
                .with_label(at, input_label)
                .with_help(format!(
                    "{a}_out = ({a}_in - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1\n      = ({n} - 1)*{s} - 2*{p} + {d}*({k} - 1) + {o} + 1 = {}\npadding can be at most {} here",
                    sizes[axis],
                    (full(axis) - 1) / 2
                ))
            } else {
                let extent = d * (k - 1) + 1;
                let padded = n + 2 * p;
                let kernel = format!("{} x {}", w.kernel[0], w.kernel[1]);
                // Worded as the run-time check (builtins/spatial.rs) words it.
                let (words, label, fix) = match w.op {
                    SpatialOp::Conv2d => (
                        "convolution",
                        format!(
                            "kernel {kernel} spans {extent} {} but the padded input has {padded}",
                            if axis == 0 { "rows" } else { "columns" }
                        ),
                        format!(
                            "use padding of at least {}, a smaller kernel, or a larger input",
                            (extent - n + 1) / 2
                        ),
                    ),
                    op => (
                        if op == SpatialOp::MaxPool2d {
                            "max pooling"
                        } else {
                            "average pooling"
                        },
                        format!("window {kernel} spans {extent} but the padded input has {padded}"),
                        format!("use a window of at most {padded} here, or a larger input"),
                    ),
                };
                let round = if w.ceil_mode && w.op != SpatialOp::Conv2d {
                    "ceil"
                } else {
                    "floor"
                };
                TensorDiagnostic::new(
                    TensorCode::ConvOutputEmpty,
                    format!("{words} output would be {} x {}", sizes[0], sizes[1]),
                    l.at("kernel_size"),
                    label,
                )
                .with_label(at, input_label)
                .with_help(format!(
                    "{a}_out = {round}(({a}_in + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1\n      = {round}(({n} + 2*{p} - {d}*({k} - 1) - 1) / {s}) + 1 = {}\n{fix}",
                    sizes[axis]
                ))
            };
            self.error(CheckError::Shape(Box::new(diag)));
            return Ty::Unknown;
        }
        if conv {
            // An out_channels the checker cannot read leaves the channel dim unknown: it is
            // never the input's.
            out[c_axis] = l
                .int("out_channels")
                .map_or_else(SymDim::unknown, SymDim::constant);
        }
        let field = t.field.as_ref().and_then(|f| {
            let axis = |a: usize| {
                let (k, s, d) = (w.kernel[a], w.stride[a], w.dilation[a]);
                // "same" pads d*(k-1) in all, the smaller half before (as PyTorch does).
                let p = if w.same {
                    d * (k - 1) / 2
                } else {
                    w.padding[a]
                };
                match w.op {
                    SpatialOp::ConvTranspose2d => f[a].transposed(k, s, p, d),
                    _ => f[a].window(k, s, p, d),
                }
            };
            Some(Rc::new([axis(0)?, axis(1)?]))
        });
        Ty::Tensor(TensorTy {
            shape: Some(out),
            grad,
            field,
        })
    }
}

/// `Upsample` with an integer `scale_factor` and `PixelShuffle(r)` on `[N, C, H, W]` (or
/// `[C, H, W]`): `H*r`, `W*r` (PixelShuffle also `C/(r*r)`), the jump divided by `r`;
/// `None` when the configuration or the shape is not known (the interpreter then checks).
fn upscale(l: &LayerTy, t: &TensorTy, grad: Grad) -> Option<Ty> {
    let shape = t.shape.as_ref()?;
    // The engine takes [N, C, H, W] only (E0304 at run time otherwise).
    if shape.len() != 4 {
        return None;
    }
    let c_axis = shape.len() - 3;
    let mut out = shape.clone();
    let (r, bilinear) = if l.kind == "PixelShuffle" {
        let r = l.int("upscale_factor").filter(|r| *r > 0)?;
        out[c_axis] = out[c_axis].exact_div(r.checked_mul(r)?)?;
        (r, false)
    } else {
        if l.arg("size").0 != Ty::None {
            return None;
        }
        let [rh, rw] = l.pair("scale_factor")?;
        if rh != rw || rh <= 0 {
            return None;
        }
        let bilinear = match l.arg("mode").0 {
            Ty::Str(Some(m)) if &*m == "nearest" => false,
            Ty::Str(Some(m)) if &*m == "bilinear" => true,
            _ => return None,
        };
        (rh, bilinear)
    };
    for axis in 1..=2 {
        out[c_axis + axis] = out[c_axis + axis].clone() * r;
    }
    let field = t.field.as_ref().and_then(|f| {
        let axis = |a: AxisField| {
            let up = a.upsampled(r)?;
            if !bilinear {
                return Some(up);
            }
            // Each output pixel blends the two nearest inputs, one input jump apart.
            Some(AxisField {
                size: up.size.checked_add(a.jump.as_int()?)?,
                ..up
            })
        };
        Some(Rc::new([axis(f[0])?, axis(f[1])?]))
    });
    Some(Ty::Tensor(TensorTy {
        shape: Some(out),
        grad,
        field,
    }))
}
