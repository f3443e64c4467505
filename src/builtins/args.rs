//! Reading builtin arguments as the types the tensor builtins need (tensors, ints, pairs,
//! shapes), with E0207 naming the argument and the builtin when one does not fit, and
//! nested-list literals as tensors (E0310 for ragged rows).

use super::Args;
use crate::eval::tensor_error::{RaggedRows, TensorCode, TensorDiagnostic};
use crate::eval::{EvalResult, Interpreter, RuntimeError, Value};
use crate::source::Span;
use crate::tensor::{Tensor, TensorError};

/// Why a value could not become a tensor.
#[derive(Debug)]
pub enum LiteralError {
    /// Rows of different lengths.
    Ragged(RaggedRows, String),
    /// An item that is not a number.
    NotNumber(&'static str),
    /// The engine refused (too large).
    Tensor(TensorError),
}

/// A nested list of numbers (or a number, or a one-element tensor inside a list) as a
/// tensor: `tensor([[1, 2], [3, 4]])`.
pub fn tensor_from_value(value: &Value) -> Result<Tensor, LiteralError> {
    let mut shape = Vec::new();
    // The shape comes from the first element at each depth; every other row is checked
    // against it while flattening.
    let mut probe = value;
    while let Value::List(items) = probe {
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    let mut data = Vec::new();
    let mut path = Vec::new();
    flatten(value, &shape, &mut path, &mut data)?;
    Tensor::from_vec(data, &shape).map_err(LiteralError::Tensor)
}

fn flatten(
    value: &Value,
    shape: &[usize],
    path: &mut Vec<usize>,
    out: &mut Vec<f32>,
) -> Result<(), LiteralError> {
    let depth = path.len();
    match value {
        Value::List(items) => {
            if depth >= shape.len() || items.len() != shape[depth] {
                let expected = shape.get(depth).copied();
                let mut first_path = path.clone();
                if let Some(last) = first_path.last_mut() {
                    *last = 0;
                }
                let message = match expected {
                    Some(n) => format!(
                        "ragged tensor literal: this row has {} element{}, the first row at this depth has {n}",
                        items.len(),
                        if items.len() == 1 { "" } else { "s" }
                    ),
                    None => "ragged tensor literal: a list where a number was expected".to_string(),
                };
                let first_label = match expected {
                    Some(n) => format!("the first row has {n}"),
                    None => "rows here hold numbers".to_string(),
                };
                return Err(LiteralError::Ragged(
                    RaggedRows {
                        path: path.clone(),
                        first_path,
                        first_label,
                    },
                    message,
                ));
            }
            for (i, item) in items.iter().enumerate() {
                path.push(i);
                flatten(item, shape, path, out)?;
                path.pop();
            }
            Ok(())
        }
        other => {
            if depth != shape.len() {
                let mut first_path = path.clone();
                if let Some(last) = first_path.last_mut() {
                    *last = 0;
                }
                return Err(LiteralError::Ragged(
                    RaggedRows {
                        path: path.clone(),
                        first_path,
                        first_label: format!("the first item here is a list of {}", shape[depth]),
                    },
                    "ragged tensor literal: a number where a list was expected".to_string(),
                ));
            }
            out.push(match other {
                Value::Int(i) => *i as f32,
                Value::Float(x) => *x as f32,
                Value::Bool(b) => f32::from(u8::from(*b)),
                Value::Tensor(t) if t.numel() == 1 => t.item().unwrap_or(0.0),
                other => return Err(LiteralError::NotNumber(other.type_name())),
            });
            Ok(())
        }
    }
}

/// [`tensor_from_value`] with the errors located at `span`: E0310 for ragged rows (moved to
/// the row by the interpreter when the argument is a literal), E0207 for a non-number.
pub fn literal(interp: &Interpreter, value: &Value, span: Span, what: &str) -> EvalResult<Tensor> {
    tensor_from_value(value).map_err(|e| match e {
        LiteralError::Ragged(rows, message) => {
            let mut diag = TensorDiagnostic::new(
                TensorCode::RaggedLiteral,
                message,
                span,
                "this row's length differs",
            )
            .with_help("every row of a tensor literal needs the same length; pad the short rows or split the data");
            diag.ragged = Some(rows);
            diag.boxed()
        }
        LiteralError::NotNumber(found) => Box::new(RuntimeError::wrong_type(
            what.to_string(),
            "numbers, or nested lists of numbers",
            format!("a list holding {found}"),
            span,
        )),
        LiteralError::Tensor(err) => interp.tensor_err(err, span),
    })
}

impl Args {
    /// "argument `x` of `conv2d`", for messages.
    pub fn describe(&self, i: usize) -> String {
        match self.def.params.get(i) {
            Some(p) => format!("argument `{}` of `{}`", p.name, self.def.name),
            None => format!("an argument of `{}`", self.def.name),
        }
    }

    fn wrong(&self, i: usize, expected: &str) -> Box<RuntimeError> {
        Box::new(RuntimeError::wrong_type(
            self.describe(i),
            expected,
            self.value(i).type_name(),
            self.span(i),
        ))
    }

    /// The receiver of a tensor method (a handle on it).
    pub fn this(&self) -> Tensor {
        match &self.receiver {
            Value::Tensor(t) => t.clone(),
            // Tensor methods are only called on tensors; this fallback keeps a bug from
            // panicking.
            _ => Tensor::scalar(0.0),
        }
    }

    /// Argument `i`, which must be a tensor.
    pub fn tensor(&self, i: usize) -> EvalResult<Tensor> {
        match self.value(i) {
            Value::Tensor(t) => Ok(t.clone()),
            _ => Err(self.wrong(i, "tensor")),
        }
    }

    /// Argument `i` as a tensor or none.
    pub fn opt_tensor(&self, i: usize) -> EvalResult<Option<Tensor>> {
        match self.value(i) {
            Value::None => Ok(None),
            _ => self.tensor(i).map(Some),
        }
    }

    /// Argument `i` as a tensor: a tensor, a number or a nested list of numbers.
    pub fn tensor_like(&self, interp: &Interpreter, i: usize) -> EvalResult<Tensor> {
        match self.value(i) {
            Value::Tensor(t) => Ok(t.clone()),
            other => literal(interp, other, self.span(i), &self.describe(i)),
        }
    }

    /// Argument `i` as an int.
    pub fn int(&self, i: usize) -> EvalResult<i64> {
        match self.value(i) {
            Value::Int(n) => Ok(*n),
            _ => Err(self.wrong(i, "int")),
        }
    }

    /// Argument `i` as an int or none.
    pub fn opt_int(&self, i: usize) -> EvalResult<Option<i64>> {
        match self.value(i) {
            Value::None => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    /// Argument `i` as a number.
    pub fn float(&self, i: usize) -> EvalResult<f64> {
        match self.value(i) {
            Value::Int(n) => Ok(*n as f64),
            Value::Float(x) => Ok(*x),
            _ => Err(self.wrong(i, "int or float")),
        }
    }

    /// Argument `i` as a number or none.
    pub fn opt_float(&self, i: usize) -> EvalResult<Option<f64>> {
        match self.value(i) {
            Value::None => Ok(None),
            _ => self.float(i).map(Some),
        }
    }

    /// Argument `i` as a bool.
    pub fn bool(&self, i: usize) -> EvalResult<bool> {
        match self.value(i) {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.wrong(i, "bool")),
        }
    }

    /// Argument `i` as `[h, w]`: an int (used for both) or a list of two ints.
    pub fn pair(&self, i: usize) -> EvalResult<[i64; 2]> {
        match self.value(i) {
            Value::Int(n) => Ok([*n, *n]),
            Value::List(items) => match items.as_ref() {
                [Value::Int(h), Value::Int(w)] => Ok([*h, *w]),
                _ => Err(self.wrong(i, "an int or a list of two ints [h, w]")),
            },
            _ => Err(self.wrong(i, "an int or a list of two ints [h, w]")),
        }
    }

    /// Argument `i` as `[h, w]` of numbers (a scale factor).
    pub fn float_pair(&self, i: usize) -> EvalResult<[f64; 2]> {
        let number = |v: &Value| v.as_f64();
        match self.value(i) {
            Value::List(items) => match items.as_ref() {
                [h, w] => match (number(h), number(w)) {
                    (Some(h), Some(w)) => Ok([h, w]),
                    _ => Err(self.wrong(i, "a number or a list of two numbers")),
                },
                _ => Err(self.wrong(i, "a number or a list of two numbers")),
            },
            other => number(other)
                .map(|x| [x, x])
                .ok_or_else(|| self.wrong(i, "a number or a list of two numbers")),
        }
    }

    /// A list of ints from argument `i` when it is a list, else from the surplus
    /// positionals (`zeros(2, 3)` = `zeros([2, 3])`, `x.reshape(2, -1)`); `i` may be past
    /// the parameters, meaning the sizes are only in the rest.
    pub fn int_list(&self, i: Option<usize>) -> EvalResult<(Vec<i64>, Span)> {
        let (items, span): (Vec<(Value, Span)>, Span) = match i.map(|i| (self.value(i), i)) {
            Some((Value::List(items), i)) => (
                items.iter().map(|v| (v.clone(), self.span(i))).collect(),
                self.span(i),
            ),
            Some((Value::None, _)) | None => {
                let span = match (self.rest.first(), self.rest.last()) {
                    (Some((_, a)), Some((_, b))) => a.merge(*b),
                    _ => self.call,
                };
                (self.rest.clone(), span)
            }
            Some((single @ Value::Int(_), i)) => {
                let mut items = vec![(single.clone(), self.span(i))];
                items.extend(self.rest.iter().cloned());
                (items, self.span(i))
            }
            Some((_, i)) => return Err(self.wrong(i, "ints or a list of ints")),
        };
        let mut out = Vec::with_capacity(items.len());
        for (value, at) in items {
            match value {
                Value::Int(n) => out.push(n),
                other => {
                    return Err(Box::new(RuntimeError::wrong_type(
                        format!("a size given to `{}`", self.def.name),
                        "int",
                        other.type_name(),
                        at,
                    )));
                }
            }
        }
        Ok((out, span))
    }

    /// A shape (non-negative sizes) from argument `i` or the rest, see [`Args::int_list`].
    pub fn shape(&self, i: Option<usize>) -> EvalResult<Vec<usize>> {
        let (sizes, span) = self.int_list(i)?;
        sizes
            .iter()
            .map(|&n| {
                usize::try_from(n).map_err(|_| {
                    Box::new(RuntimeError::value(
                        format!("`{}`: sizes cannot be negative, got {n}", self.def.name),
                        span,
                        "negative size",
                    ))
                })
            })
            .collect()
    }
}

/// A list of tensors (`cat([a, b], 1)`, `SGD([w], ...)`), or E0207 at `span`.
pub fn tensor_list(value: &Value, span: Span, what: &str) -> EvalResult<Vec<Tensor>> {
    let wrong = |got: String| {
        Box::new(RuntimeError::wrong_type(
            what.to_string(),
            "a list of tensors",
            got,
            span,
        ))
    };
    match value {
        Value::List(items) => items
            .iter()
            .map(|v| match v {
                Value::Tensor(t) => Ok(t.clone()),
                other => Err(wrong(format!("a list holding {}", other.type_name()))),
            })
            .collect(),
        other => Err(wrong(other.type_name().to_string())),
    }
}
