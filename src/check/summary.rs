//! What the checker knows about one model, for the run-time `summary(model)` and
//! `receptive_field(model)` (LANGUAGE.md §11): its signature, the preconditions on its
//! symbols, the receptive field of its output, and one row per layer application.
//!
//! # The contract with the run-time side
//!
//! The interpreter builds a model from a net and its parameter values; it calls
//! [`net_report`] with the program the net was defined in, the net, those values (as
//! [`ParamValue`]) and, for `summary(model, [1, 3, 32, 32])`, the concrete input shapes.
//! Everything in the [`NetReport`] comes from the same walk the checker does for a model
//! call, so the shapes and fields agree with `cnn check --shapes`.
//!
//! Rows follow execution order. Each is one *application* of a layer: a layer bound with
//! `let` and applied twice gives two rows with the same [`LayerRow::layer_id`] (count its
//! parameters once, as [`NetReport::total_params`] does). Layers inside a `Sequential` and
//! the layers of a nested model are *grouped*: the container's row comes first (kind
//! `Sequential` or the inner net's name, its output shape, its own parameter total) and its
//! layers follow with `depth` one higher. `span` is the constructor call that built the
//! layer (for a nested model: the call that built it, `Deep(depth=1)`), which the
//! interpreter matches to the layers it built to name them.

use std::rc::Rc;

use super::dim::SymDim;
use super::error::CheckError;
use super::net::{Mode, Recorded, unique_param_total};
use super::ty::{Grad, TensorTy, Ty, shape_string};
use super::walk::Checker;
use crate::source::Span;
use crate::syntax::ast::{NetDef, Program};
use crate::tensor::receptive_field::AxisField;

/// A net parameter's value, as the interpreter has it when the model is built.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// An int.
    Int(i64),
    /// A float.
    Float(f64),
    /// A bool.
    Bool(bool),
    /// A string.
    Str(Rc<str>),
    /// Anything else (a tensor, a list, a layer): the checker treats it as unknown.
    Unknown,
}

/// One layer application, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerRow {
    /// The constructor call that built the layer (`Conv2d(1, 8, 3)`), or the call that
    /// built a nested model.
    pub span: Span,
    /// The layer's kind (`Conv2d`, `ReLU`), or a nested model's net name.
    pub kind: String,
    /// Nesting: 0 for the model's own layers, one more inside each `Sequential` or nested
    /// model (whose own row comes just before its layers).
    pub depth: usize,
    /// The output shape as displayed: `[N, 8, H - 2, W - 2]`, `[1, 8, 30, 30]`, or `?`
    /// when unknown.
    pub shape: String,
    /// The output dims, when the rank is known.
    pub dims: Option<Vec<SymDim>>,
    /// Learnable parameters of this layer (of all its layers for a group), when known.
    pub params: Option<u64>,
    /// The receptive field of the output, relative to the model's input, per spatial axis
    /// (`[h, w]`), when known.
    pub field: Option<[AxisField; 2]>,
    /// Equal for two applications of one layer (weights shared); distinct otherwise.
    pub layer_id: usize,
}

/// What the checker infers for one model.
#[derive(Clone, Debug, PartialEq)]
pub struct NetReport {
    /// Each declared input as displayed, symbols kept: `[N, 1, H, W]`.
    pub inputs: Vec<String>,
    /// Each input's dims (`None`: not a tensor of known rank).
    pub input_dims: Vec<Option<Vec<SymDim>>>,
    /// The output for the declared inputs, as displayed: `[N, 1, 2*H, 2*W]`.
    pub output: String,
    /// The output's dims for the declared inputs.
    pub output_dims: Option<Vec<SymDim>>,
    /// The output for the concrete input shapes, when they were given.
    pub concrete_output: Option<Vec<i64>>,
    /// The preconditions on the symbols: `H >= 9`.
    pub preconditions: Vec<String>,
    /// The receptive field of the output, per spatial axis, when known.
    pub receptive_field: Option<[AxisField; 2]>,
    /// One row per layer application, in execution order (for the concrete inputs when
    /// given, else for the declared ones).
    pub rows: Vec<LayerRow>,
    /// Learnable parameters of the model (each layer once), when every layer's is known.
    pub total_params: Option<u64>,
    /// Mistakes the walk found in the body (for these parameters and inputs); the program
    /// check reports them too, so normally none.
    pub errors: Vec<CheckError>,
}

fn dims_of(t: &Ty) -> Option<Vec<SymDim>> {
    match t {
        Ty::Tensor(TensorTy { shape: Some(s), .. }) => Some(s.clone()),
        _ => None,
    }
}

fn display(t: &Ty) -> String {
    match dims_of(t) {
        Some(s) => shape_string(&s),
        None => match t {
            Ty::Tensor(_) => "?".to_string(),
            other => other.to_string(),
        },
    }
}

fn row(r: &Recorded, ids: &mut Vec<*const super::ty::LayerTy>) -> LayerRow {
    let layer_id = match &r.layer {
        Some(l) => {
            let p = Rc::as_ptr(l);
            match ids.iter().position(|q| *q == p) {
                Some(i) => i,
                None => {
                    ids.push(p);
                    ids.len() - 1
                }
            }
        }
        None => {
            // A group row is its own layer.
            ids.push(std::ptr::null());
            ids.len() - 1
        }
    };
    LayerRow {
        span: r.span,
        kind: r.kind.clone(),
        depth: r.depth,
        shape: match &r.shape {
            Some(s) => shape_string(s),
            None => "?".to_string(),
        },
        dims: r.shape.clone(),
        params: r.params,
        field: r.field,
        layer_id,
    }
}

/// The report of the model built from `def` (defined in `program`) with `params` (by name;
/// the net's defaults fill the rest), for the declared inputs, or for inputs of the
/// concrete shapes `input` (one per `input` declaration) when given.
pub fn net_report(
    program: &Program,
    def: &Rc<NetDef>,
    params: &[(Rc<str>, ParamValue)],
    input: Option<&[Vec<i64>]>,
) -> NetReport {
    let mut checker = Checker::new(program);
    let values: Vec<Ty> = def
        .params
        .iter()
        .map(|p| match params.iter().find(|(n, _)| *n == p.name.name) {
            Some((_, v)) => match v {
                ParamValue::Int(i) => Ty::Int(Some(*i)),
                ParamValue::Float(_) => Ty::Float,
                ParamValue::Bool(b) => Ty::Bool(Some(*b)),
                ParamValue::Str(s) => Ty::Str(Some(s.clone())),
                ParamValue::Unknown => Ty::Unknown,
            },
            None => p
                .default
                .as_ref()
                .map_or(Ty::Unknown, |d| checker.quiet_const(d)),
        })
        .collect();
    let recording = input.is_none();
    if recording {
        checker.nets.rows = Some(Vec::new());
    }
    let signature = checker.walk_net(def, &values, Mode::Signature, def.span);
    let mut concrete_output = None;
    let mut field = None;
    if let Some(shapes) = input {
        checker.nets.rows = Some(Vec::new());
        let args = shapes
            .iter()
            .map(|s| {
                let dims: Vec<SymDim> = s.iter().map(|&d| SymDim::constant(d)).collect();
                let mut t = TensorTy::of(dims, Grad::No);
                if matches!(s.len(), 3 | 4) {
                    t.field = Some(Rc::new([AxisField::IDENTITY; 2]));
                }
                (Ty::Tensor(t), def.span)
            })
            .collect();
        if let Some(called) = checker.walk_net(def, &values, Mode::Call(args), def.span)
            && let Ty::Tensor(t) = &called.output
        {
            concrete_output = t.concrete();
            field = t.field.as_deref().copied();
        }
    }
    let recorded = checker.nets.rows.take().unwrap_or_default();
    let mut ids = Vec::new();
    let rows: Vec<LayerRow> = recorded.iter().map(|r| row(r, &mut ids)).collect();
    let top: Vec<&Recorded> = recorded.iter().filter(|r| r.depth == 0).collect();
    let total_params = unique_param_total(&top);
    let (inputs, output, preconditions) = match &signature {
        Some(sig) => (
            sig.inputs.clone(),
            sig.output.clone(),
            sig.preconditions.iter().map(|c| c.to_string()).collect(),
        ),
        None => (Vec::new(), Ty::Unknown, Vec::new()),
    };
    if input.is_none()
        && let Ty::Tensor(t) = &output
    {
        field = t.field.as_deref().copied();
    }
    NetReport {
        input_dims: inputs.iter().map(dims_of).collect(),
        inputs: inputs.iter().map(display).collect(),
        output_dims: dims_of(&output),
        output: display(&output),
        concrete_output,
        preconditions,
        receptive_field: field,
        rows,
        total_params,
        errors: checker.problems.errors,
    }
}
