//! `summary(model)` and `receptive_field(model)` (LANGUAGE.md §11): what a model is made of.
//!
//! Both read the checker's walk of the model's net ([`crate::check::net_report`]): the
//! output shape of every layer application with the declared symbols kept, and the
//! receptive field (size, jump, start) after each. With a concrete input, `summary` also runs
//! one quiet forward on zeros (no gradients, no running-statistics updates, no output) to
//! count the multiply-accumulates of each layer from the shapes it really saw. A layer that
//! is not a model (`Sequential(...)`, `Conv2d(...)`) is described from its own layers.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;

use super::layers::Layer;
use super::{Args, BuiltinDef, BuiltinParam as P, DefaultValue as D, Ty};
use crate::check::{LayerRow, ParamValue, net_report};
use crate::eval::net::{FlatLayer, TraceEntry, flatten};
use crate::eval::{EvalResult, Interpreter, RuntimeError, Value};
use crate::source::Span;
use crate::syntax::ast::{Program, Stmt, StmtKind};
use crate::tensor::Tensor;
use crate::tensor::receptive_field::{AxisField, Rational};

pub(super) const SUMMARY: BuiltinDef = BuiltinDef {
    name: "summary",
    params: &[
        P::required("model", Ty::Any),
        P::optional("input_size", Ty::Any, D::None),
    ],
    rest: None,
    doc: "summary(model, input_size=none): prints one row per layer (name, type, output shape, parameters, receptive field, jump; MACs for a concrete input_size such as [1, 3, 32, 32])",
    run: |interp, args| {
        let layer = layer_arg(&args, 0)?;
        let input = match args.value(1) {
            Value::None => None,
            _ => Some(input_shapes(&args, 1)?),
        };
        let table = summary_table(interp, &layer, input, args.call)?;
        interp.write_output(&table);
        Ok(Value::None)
    },
};

pub(super) const RECEPTIVE_FIELD: BuiltinDef = BuiltinDef {
    name: "receptive_field",
    params: &[P::required("model", Ty::Any)],
    rest: None,
    doc: "receptive_field(model): the input window one output pixel can depend on, a record of size, jump and start, each [h, w]",
    run: |interp, args| {
        let layer = layer_arg(&args, 0)?;
        let field = match layer.model() {
            Some(_) => model_report(interp, &layer, None).receptive_field,
            None => chain_field(&layer),
        };
        let Some(field) = field else {
            return Err(Box::new(RuntimeError::value_with_help(
                format!(
                    "the receptive field of this {} is not known",
                    layer.class_name()
                ),
                args.span(0),
                "no receptive field here",
                "a receptive field follows convolutions, pooling, transposed convolutions, upsampling and pointwise layers from a net's `input`; Linear, Flatten and reshapes mix every position",
            )));
        };
        Ok(field_record(&field))
    },
};

/// The layer or model argument `i`.
fn layer_arg(args: &Args, i: usize) -> EvalResult<Rc<Layer>> {
    match args.value(i) {
        Value::Layer(layer) => Ok(Rc::clone(layer)),
        other => Err(Box::new(RuntimeError::wrong_type(
            args.describe(i),
            "a model or layer",
            other.type_name(),
            args.span(i),
        ))),
    }
}

/// `[1, 3, 32, 32]` (one input) or `[[1, 3, 8, 8], [1, 3, 8, 8]]` (one per `input`).
fn input_shapes(args: &Args, i: usize) -> EvalResult<Vec<Vec<usize>>> {
    let bad = || {
        Box::new(
            RuntimeError::wrong_type(
                args.describe(i),
                "a shape such as [1, 3, 32, 32], or a list of shapes",
                args.value(i).type_name(),
                args.span(i),
            )
            .with_help("sizes are positive ints: summary(model, [1, 3, 32, 32])"),
        )
    };
    let Value::List(items) = args.value(i) else {
        return Err(bad());
    };
    let shape = |v: &Value| -> Option<Vec<usize>> {
        match v {
            Value::List(dims) => dims
                .iter()
                .map(|d| match d {
                    Value::Int(n) if *n > 0 => usize::try_from(*n).ok(),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    };
    if items.iter().all(|v| matches!(v, Value::List(_))) && !items.is_empty() {
        items
            .iter()
            .map(shape)
            .collect::<Option<_>>()
            .ok_or_else(bad)
    } else {
        shape(args.value(i)).map(|s| vec![s]).ok_or_else(bad)
    }
}

/// The record `receptive_field` returns: `size`, `jump` and `start`, each `[h, w]`.
fn field_record(field: &[AxisField; 2]) -> Value {
    let number = |r: Rational| match r.as_int() {
        Some(i) => Value::Int(i),
        None => Value::Float(r.to_f64()),
    };
    let pair = |f: &dyn Fn(&AxisField) -> Value| Value::list(field.iter().map(f).collect());
    Value::record(
        "receptive_field",
        vec![
            ("size", pair(&|a| Value::Int(a.size))),
            ("jump", pair(&|a| number(a.jump))),
            ("start", pair(&|a| number(a.start))),
        ],
    )
}

/// A net parameter's value as the checker takes it.
fn param_value(value: &Value) -> ParamValue {
    match value {
        Value::Int(i) => ParamValue::Int(*i),
        Value::Float(f) => ParamValue::Float(*f),
        Value::Bool(b) => ParamValue::Bool(*b),
        Value::Str(s) => ParamValue::Str(s.clone()),
        _ => ParamValue::Unknown,
    }
}

/// The checker's report on `layer`'s model, for the given concrete inputs or the declared
/// ones. Nets the body names are found among the interpreter's globals.
fn model_report(
    interp: &Interpreter,
    layer: &Layer,
    input: Option<&[Vec<usize>]>,
) -> crate::check::NetReport {
    let model = layer.model().expect("a model");
    let mut stmts: Vec<Stmt> = interp
        .globals()
        .filter_map(|(_, v)| match v {
            Value::Net(def) => Some(Rc::clone(def)),
            _ => None,
        })
        .chain(std::iter::once(Rc::clone(model.def())))
        .map(|def| Stmt {
            span: def.span,
            node: StmtKind::Net(def),
        })
        .collect();
    stmts.dedup_by(|a, b| a.span == b.span);
    let program = Program { stmts };
    let params: Vec<(Rc<str>, ParamValue)> = model
        .params()
        .iter()
        .map(|(n, v)| (n.clone(), param_value(v)))
        .collect();
    let input: Option<Vec<Vec<i64>>> = input.map(|shapes| {
        shapes
            .iter()
            .map(|s| s.iter().map(|&d| d as i64).collect())
            .collect()
    });
    net_report(&program, model.def(), &params, input.as_deref())
}

/// The receptive field of a chain of layers (a `Sequential` or one layer), when every layer
/// is spatial or pointwise.
fn chain_field(layer: &Layer) -> Option<[AxisField; 2]> {
    step_field(layer, [AxisField::IDENTITY; 2])
}

/// `field` after one layer of a chain.
fn step_field(layer: &Layer, field: [AxisField; 2]) -> Option<[AxisField; 2]> {
    if !layer.sequential_layers().is_empty() {
        let mut f = field;
        for l in layer.sequential_layers() {
            f = step_field(l, f)?;
        }
        return Some(f);
    }
    if let Some(g) = layer.geometry() {
        let axis = |i: usize| {
            let (k, s, p, d) = (g.kernel[i], g.stride[i], g.padding[i], g.dilation[i]);
            if g.transposed {
                field[i].transposed(k, s, p, d)
            } else {
                field[i].window(k, s, p, d)
            }
        };
        return Some([axis(0)?, axis(1)?]);
    }
    match layer.kind_name() {
        "Identity" | "Dropout" | "BatchNorm2d" => Some(field),
        name if super::pointwise::by_layer(name).is_some() => Some(field),
        _ => None,
    }
}

/// One row of the table.
struct Row {
    name: String,
    kind: String,
    depth: usize,
    shape: String,
    params: Option<u64>,
    /// A later application of a layer already listed (its parameters are counted there).
    shared: bool,
    field: Option<[AxisField; 2]>,
    macs: Option<u64>,
}

/// The summary table of `layer` (a model or any layer), for `input` when given.
pub fn summary_table(
    interp: &mut Interpreter,
    layer: &Rc<Layer>,
    input: Option<Vec<Vec<usize>>>,
    span: Span,
) -> EvalResult<String> {
    // The concrete forward first: it also builds a model still waiting for its first call.
    let traced = match &input {
        Some(shapes) => Some(quiet_trace(interp, layer, shapes, span)?),
        None => None,
    };
    let flat = flatten(layer);
    let mut out = String::new();
    let mut rows = Vec::new();
    let mut title = layer.class_name();
    let mut notes = Vec::new();
    let total_field;
    match layer.model() {
        Some(model) => {
            let report = model_report(interp, layer, input.as_deref());
            let params: Vec<String> = model
                .params()
                .iter()
                .map(|(n, v)| format!("{n}={}", v.repr()))
                .collect();
            let inputs = match &input {
                Some(shapes) => shapes
                    .iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                None => report.inputs.join(", "),
            };
            title = format!(
                "{}({}): {inputs} -> {}",
                model.net_name(),
                params.join(", "),
                match &report.concrete_output {
                    Some(dims) => format!("{dims:?}"),
                    None => report.output.clone(),
                }
            );
            if !report.preconditions.is_empty() && input.is_none() {
                notes.push(format!("requires {}", report.preconditions.join(", ")));
            }
            if !model.is_built() {
                notes.push(
                    "the model is built on its first call: parameter counts are the checker's"
                        .to_string(),
                );
            }
            total_field = report.receptive_field;
            rows = model_rows(&flat, &report.rows);
        }
        None => {
            let mut field = Some([AxisField::IDENTITY; 2]);
            for f in flat.iter().filter(|f| f.depth > 0 || !f.is_container) {
                if !f.is_container {
                    field = field.and_then(|fld| step_field(&f.layer, fld));
                }
                let name = match f.depth {
                    0 => f.layer.class_name().to_lowercase(),
                    _ => relative_name(f).to_string(),
                };
                rows.push(Row {
                    name,
                    kind: f.layer.class_name(),
                    depth: f.depth.saturating_sub(1),
                    shape: "?".to_string(),
                    params: Some(f.layer.parameter_count() as u64),
                    shared: false,
                    field,
                    macs: None,
                });
            }
            total_field = field;
        }
    }
    if let Some(entries) = &traced {
        attach_trace(&mut rows, entries, &flat);
    }

    // Render.
    let concrete = traced.is_some();
    let name_width = rows
        .iter()
        .map(|r| 2 * r.depth + r.name.len() + r.kind.len() + 3)
        .chain(std::iter::once(12))
        .max()
        .unwrap_or(12);
    let shape_width = rows
        .iter()
        .map(|r| r.shape.len())
        .chain(std::iter::once(12))
        .max()
        .unwrap_or(12);
    let mut header = format!(
        "{:<name_width$}  {:<shape_width$}  {:>10}  {:>9}  {:>9}",
        "Layer (type)", "Output shape", "Param #", "RF", "Jump"
    );
    if concrete {
        let _ = write!(header, "  {:>13}", "MACs");
    }
    let rule = "─".repeat(header.chars().count());
    let _ = writeln!(out, "{title}");
    let _ = writeln!(out, "{rule}");
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{rule}");
    for r in &rows {
        let name = format!("{}{} ({})", "  ".repeat(r.depth), r.name, r.kind);
        let params = match (r.shared, r.params) {
            (true, _) => "(shared)".to_string(),
            (false, Some(p)) => thousands(p),
            (false, None) => "?".to_string(),
        };
        let (rf, jump) = match &r.field {
            Some([h, w]) => (
                format!("{}x{}", h.size, w.size),
                format!("{}x{}", show_rational(h.jump), show_rational(w.jump)),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        let mut line = format!(
            "{name:<name_width$}  {:<shape_width$}  {params:>10}  {rf:>9}  {jump:>9}",
            r.shape
        );
        if concrete {
            let macs = r.macs.map_or_else(|| "-".to_string(), thousands);
            let _ = write!(line, "  {macs:>13}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out, "{rule}");
    let total = layer.parameter_count() as u64;
    let trainable: u64 = layer
        .named_parameters()
        .iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(_, t)| t.numel() as u64)
        .sum();
    let total = if total == 0 && layer.model().is_some_and(|m| !m.is_built()) {
        rows.iter()
            .filter(|r| r.depth == 0 && !r.shared)
            .filter_map(|r| r.params)
            .sum()
    } else {
        total
    };
    let _ = writeln!(out, "Total params: {}", thousands(total));
    if trainable != total && trainable != 0 {
        let _ = writeln!(out, "Trainable params: {}", thousands(trainable));
    }
    if concrete {
        let macs: u64 = rows.iter().filter_map(|r| r.macs).sum();
        let _ = writeln!(out, "Total MACs: {}", thousands(macs));
    }
    match total_field {
        Some([h, w]) => {
            let _ = writeln!(
                out,
                "Receptive field: {}x{}, jump {}x{}, start {}x{}",
                h.size,
                w.size,
                show_rational(h.jump),
                show_rational(w.jump),
                show_rational(h.start),
                show_rational(w.start)
            );
        }
        None => {
            let _ = writeln!(out, "Receptive field: not known (a layer mixes positions)");
        }
    }
    for note in notes {
        let _ = writeln!(out, "Note: {note}");
    }
    Ok(out)
}

/// Rows for a model from the checker's layer applications, named after the layers the
/// interpreter built: the k-th distinct layer built by a constructor call is the k-th layer
/// of the model with that constructor span.
fn model_rows(flat: &[FlatLayer], report: &[LayerRow]) -> Vec<Row> {
    let mut by_span: HashMap<Span, Vec<&FlatLayer>> = HashMap::new();
    for f in flat.iter().filter(|f| f.depth > 0) {
        by_span.entry(f.layer.span()).or_default().push(f);
    }
    let mut next: HashMap<Span, usize> = HashMap::new();
    let mut named: HashMap<usize, (String, Option<u64>)> = HashMap::new();
    report
        .iter()
        .map(|r| {
            let shared = named.contains_key(&r.layer_id);
            let (name, params) = named
                .entry(r.layer_id)
                .or_insert_with(|| {
                    let k = next.entry(r.span).or_insert(0);
                    let found = by_span.get(&r.span).and_then(|fs| fs.get(*k));
                    *k += 1;
                    match found {
                        Some(f) => (
                            relative_name(f).to_string(),
                            Some(f.layer.parameter_count() as u64)
                                .filter(|&p| p > 0 || r.params == Some(0)),
                        ),
                        None => (r.kind.to_lowercase(), None),
                    }
                })
                .clone();
            Row {
                name,
                kind: r.kind.clone(),
                depth: r.depth,
                shape: r.shape.clone(),
                params: params.or(r.params),
                shared,
                field: r.field,
                macs: None,
            }
        })
        .collect()
}

/// A flattened layer's name below the root: `conv2d_0`, `encoder.conv2d_0`, `0`.
fn relative_name(f: &FlatLayer) -> &str {
    f.name.strip_prefix('.').unwrap_or(&f.name)
}

/// One forward on zeros of the given shapes without gradients, output, running-statistics
/// updates or random draws, recording each layer application.
fn quiet_trace(
    interp: &mut Interpreter,
    layer: &Rc<Layer>,
    shapes: &[Vec<usize>],
    span: Span,
) -> EvalResult<Vec<TraceEntry>> {
    let inputs = shapes
        .iter()
        .map(|s| Tensor::zeros(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| crate::eval::tensor_error::from_tensor_error(e, span, &|_| None))?;
    interp.quiet_trace_forward(layer, inputs, span)
}

/// Multiply-accumulates per row, from the shapes each application really saw.
fn attach_trace(rows: &mut [Row], entries: &[TraceEntry], flat: &[FlatLayer]) {
    let layer_of = |name: &str| {
        flat.iter()
            .find(|f| f.depth > 0 && relative_name(f) == name)
            .map(|f| Rc::clone(&f.layer))
    };
    let mut used = vec![false; entries.len()];
    for row in rows.iter_mut() {
        let Some(i) = (0..entries.len()).find(|&i| !used[i] && entries[i].name == row.name) else {
            continue;
        };
        used[i] = true;
        let e = &entries[i];
        row.shape = format!("{:?}", e.output);
        row.macs = layer_of(&e.name).map(|l| macs(&l, &e.input, &e.output));
    }
    // Containers: the sum of what they hold.
    for i in (0..rows.len()).rev() {
        if rows[i].macs.is_none() {
            let depth = rows[i].depth;
            let inner: Option<u64> = rows[i + 1..]
                .iter()
                .take_while(|r| r.depth > depth)
                .filter(|r| r.depth == depth + 1)
                .map(|r| r.macs)
                .sum();
            if rows[i + 1..].first().is_some_and(|r| r.depth > depth) {
                rows[i].macs = inner;
            }
        }
    }
}

/// Multiply-accumulates of one application: a convolution does `in/groups * kH * kW` per
/// output value, a transposed one `out/groups * kH * kW` per input value, a Linear
/// `in_features` per output value; other layers count none.
fn macs(layer: &Layer, input: &[usize], output: &[usize]) -> u64 {
    let numel = |s: &[usize]| s.iter().map(|&d| d as u64).product::<u64>();
    let weight = layer
        .named_parameters()
        .into_iter()
        .find(|(n, _)| n == "weight")
        .map(|(_, t)| t);
    let Some(weight) = weight else { return 0 };
    let w = weight.shape().to_vec();
    match (layer.kind_name(), layer.geometry()) {
        ("Conv2d", Some(_)) => numel(output) * numel(&w[1..]),
        ("ConvTranspose2d", Some(_)) => numel(input) * numel(&w[1..]),
        ("Linear", _) => numel(output) * w[1] as u64,
        _ => 0,
    }
}

/// `4`, `0.5`, `0.125`, `1/3`: a decimal when it has at most three places.
fn show_rational(r: Rational) -> String {
    let f = r.to_f64();
    match r.as_int() {
        Some(i) => i.to_string(),
        None if (f * 1000.0).fract() == 0.0 => format!("{f}"),
        None => format!("{}/{}", r.numer(), r.denom()),
    }
}

/// `12,345,678`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }

    #[test]
    fn rationals_show_as_decimals_when_short() {
        assert_eq!(show_rational(Rational::int(4)), "4");
        assert_eq!(show_rational(Rational::new(1, 2).unwrap()), "0.5");
        assert_eq!(show_rational(Rational::new(1, 3).unwrap()), "1/3");
    }
}
