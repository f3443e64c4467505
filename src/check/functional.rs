//! The functional forms of the layers (`conv2d(x, weight, ...)`, `max_pool2d(x, 2)`,
//! `linear`, `interpolate`, `pixel_shuffle`; LANGUAGE.md §7): each is checked as the layer it
//! computes, built from its arguments (kernel, channel and feature counts read off the
//! weight's shape) and applied to `x`, so the same shape rules, diagnostics and receptive
//! fields hold for both spellings.

use std::rc::Rc;

use super::dim::SymDim;
use super::error::CheckError;
use super::rules::{Bound, slot_named};
use super::ty::{BuiltinRef, LayerTy, TensorTy, Ty, shape_string};
use super::walk::Checker;
use crate::builtins::{self, BuiltinDef};
use crate::diagnostic::{TensorCode, TensorDiagnostic};
use crate::source::Span;
use crate::tensor::shape::{self, SpatialOp};

impl Checker {
    /// A functional form (`conv2d`, `conv_transpose2d`, `max_pool2d`, `avg_pool2d`, `linear`,
    /// `pixel_shuffle`, `interpolate`) applied to its input.
    pub(super) fn functional_window(
        &mut self,
        def: &'static BuiltinDef,
        b: &Bound,
        span: Span,
    ) -> Ty {
        let unknown = Ty::Tensor(TensorTy::unknown());
        let (layer_name, conv, transposed) = match def.name {
            "conv2d" => ("Conv2d", true, false),
            "conv_transpose2d" => ("ConvTranspose2d", true, true),
            "max_pool2d" => ("MaxPool2d", false, false),
            "avg_pool2d" => ("AvgPool2d", false, false),
            "linear" => ("Linear", false, false),
            "pixel_shuffle" => ("PixelShuffle", false, false),
            "interpolate" => ("Upsample", false, false),
            _ => return unknown,
        };
        let Some(layer_def) = builtins::lookup(layer_name) else {
            return unknown;
        };
        let Some((input, input_at)) = slot_named(def.params, &b.slots, "input").cloned() else {
            return unknown;
        };
        let arg = |name: &str| slot_named(def.params, &b.slots, name).cloned();
        // A convolution's channels and kernel come from its weight:
        // `[out, in/groups, kH, kW]`, transposed `[in, out/groups, kH, kW]`.
        let mut from_weight: Vec<(&str, Ty)> = Vec::new();
        let mut weight_at = span;
        if layer_name == "Linear" {
            // `linear(x, weight)`: weight `[out_features, in_features]`.
            let Some((Ty::Tensor(w), at)) = arg("weight") else {
                return unknown;
            };
            let Some(dims) = w.concrete().filter(|d| d.len() == 2) else {
                return unknown;
            };
            weight_at = at;
            if let Ty::Tensor(TensorTy { shape: Some(x), .. }) = &input
                && let Some(actual) = x.last().and_then(|d| d.as_const())
                && actual != dims[1]
            {
                // Worded as the run-time check (the weight is at fault, not a layer).
                let d = TensorDiagnostic::new(
                    TensorCode::LinearFeatures,
                    format!(
                        "linear: inner dimensions differ: {} @ {} ({actual} vs {})",
                        shape_string(x),
                        shape_string(&[SymDim::constant(dims[0]), SymDim::constant(dims[1])]),
                        dims[1]
                    ),
                    span,
                    "features do not match",
                )
                .with_help(format!(
                    "the input's last dim ({actual}) must equal in_features ({})",
                    dims[1]
                ));
                self.error(CheckError::Shape(Box::new(d)));
                return unknown;
            }
            from_weight.push(("in_features", Ty::Int(Some(dims[1]))));
            from_weight.push(("out_features", Ty::Int(Some(dims[0]))));
        }
        if conv {
            let Some((Ty::Tensor(w), at)) = arg("weight") else {
                return unknown;
            };
            weight_at = at;
            let Some(dims) = w.concrete().filter(|d| d.len() == 4) else {
                // Unknown, or a weight of the wrong rank: the run-time check reports it.
                return unknown;
            };
            let groups = match arg("groups") {
                Some((Ty::Int(Some(g)), _)) => Some(g),
                None => Some(1),
                _ => None,
            };
            let int = |v: Option<i64>| Ty::Int(v);
            let (inputs, outputs) = if transposed {
                (Some(dims[0]), groups.and_then(|g| dims[1].checked_mul(g)))
            } else {
                (groups.and_then(|g| dims[1].checked_mul(g)), Some(dims[0]))
            };
            // The channel check first, worded as the run-time one for a functional form (the
            // weight is at fault, not a layer's `in_channels`).
            if let (Ty::Tensor(TensorTy { shape: Some(x), .. }), Some(expected), Some(g)) =
                (&input, inputs, groups)
                && matches!(x.len(), 3 | 4)
                && let Some(actual) = x[x.len() - 3].as_const()
                && actual != expected
                && outputs.is_some_and(|o| {
                    let op = if transposed {
                        SpatialOp::ConvTranspose2d
                    } else {
                        SpatialOp::Conv2d
                    };
                    shape::check_groups(op, g, actual, o).is_ok()
                })
            {
                let channels = |n: i64| format!("{n} channel{}", if n == 1 { "" } else { "s" });
                let words = if transposed {
                    "transposed convolution"
                } else {
                    "convolution"
                };
                let d = TensorDiagnostic::new(
                    TensorCode::ChannelMismatch,
                    format!(
                        "channel mismatch: the {words} expects {}, the input has {actual}",
                        channels(expected)
                    ),
                    input_at,
                    format!(
                        "input is {}: {} in dim {}",
                        shape_string(x),
                        channels(actual),
                        x.len() - 3
                    ),
                )
                .with_label(at, format!("this weight expects {}", channels(expected)))
                .with_help(
                    "the weight's in_channels (times groups) must equal the input's channels (dim 1)",
                );
                self.error(CheckError::Shape(Box::new(d)));
                return unknown;
            }
            from_weight.push(("in_channels", int(inputs)));
            from_weight.push(("out_channels", int(outputs)));
            from_weight.push((
                "kernel_size",
                Ty::List(Some(vec![Ty::Int(Some(dims[2])), Ty::Int(Some(dims[3]))])),
            ));
        }
        let slots = layer_def
            .params
            .iter()
            .map(|p| match from_weight.iter().find(|(n, _)| *n == p.name) {
                Some((_, ty)) => Some((ty.clone(), weight_at)),
                None if p.name == "bias" => None,
                None => arg(p.name),
            })
            .collect();
        let layer = LayerTy {
            kind: layer_def.name,
            args: slots,
            def: BuiltinRef(layer_def),
            rest: Vec::new(),
            span,
        };
        // The configuration is checked as the layer's constructor would (E0311).
        let built = self.build_layer(
            layer_def,
            &Bound {
                slots: layer.args.clone(),
                rest: Vec::new(),
            },
            span,
        );
        if !matches!(built, Ty::Layer(_)) {
            return unknown;
        }
        self.apply_layer_unrecorded(&Rc::new(layer), &input, input_at, span)
    }
}
