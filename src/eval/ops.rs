//! Operators on scalar values, with Python's arithmetic: `/` gives a float, `//` floors,
//! `%` takes the sign of the divisor, and integer overflow is an error, not a wrap.

use std::cmp::Ordering;
use std::rc::Rc;

use super::EvalResult;
use super::error::RuntimeError;
use super::tensor_error::over_budget;
use super::value::Value;
use crate::source::Span;
use crate::syntax::ast::{BinOp, IndexItem, IndexKind};
use crate::tensor::memory;

/// Where the parts of a binary expression were written, for labels.
#[derive(Clone, Copy, Debug)]
pub struct BinSpans {
    /// The whole expression.
    pub whole: Span,
    /// The right operand (blamed for division by zero).
    pub rhs: Span,
}

fn operand_error(op: BinOp, lhs: &Value, rhs: &Value, spans: BinSpans) -> Box<RuntimeError> {
    let expected = match op {
        BinOp::Add => "two numbers, two strings or two lists",
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => "two numbers, two strings or two lists",
        BinOp::MatMul => "two tensors",
        BinOp::Range => "two ints",
        _ => "two numbers",
    };
    Box::new(RuntimeError::wrong_type(
        format!("operands of `{}`", op.symbol()),
        expected,
        format!("{} and {}", lhs.type_name(), rhs.type_name()),
        spans.whole,
    ))
}

fn overflow(op: BinOp, a: i64, b: i64, spans: BinSpans) -> Box<RuntimeError> {
    Box::new(RuntimeError::value_with_help(
        format!(
            "integer overflow: {a} {} {b} does not fit in 64 bits",
            op.symbol()
        ),
        spans.whole,
        "overflows",
        "convert an operand to float (multiply by 1.0) to compute approximately",
    ))
}

fn division_by_zero(op: BinOp, spans: BinSpans) -> Box<RuntimeError> {
    let what = match op {
        BinOp::Mod => "modulo by zero",
        _ => "division by zero",
    };
    Box::new(RuntimeError::value(what, spans.rhs, "this is zero"))
}

/// Python's float floor division, `fmod`-based so that `7.0 // 0.1 == 69.0` as in CPython.
fn float_floor_div(a: f64, b: f64) -> f64 {
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div == 0.0 {
        return 0.0f64.copysign(a / b);
    }
    let floor = div.floor();
    if div - floor > 0.5 {
        floor + 1.0
    } else {
        floor
    }
}

/// Python's float modulo: the result has the divisor's sign.
fn float_mod(a: f64, b: f64) -> f64 {
    let m = a % b;
    if m != 0.0 {
        if (b < 0.0) != (m < 0.0) { m + b } else { m }
    } else {
        0.0f64.copysign(b)
    }
}

fn int_arith(op: BinOp, a: i64, b: i64, spans: BinSpans) -> EvalResult<Value> {
    let result = match op {
        BinOp::Add => a.checked_add(b),
        BinOp::Sub => a.checked_sub(b),
        BinOp::Mul => a.checked_mul(b),
        BinOp::Div => {
            if b == 0 {
                return Err(division_by_zero(op, spans));
            }
            return Ok(Value::Float(a as f64 / b as f64));
        }
        BinOp::FloorDiv => {
            if b == 0 {
                return Err(division_by_zero(op, spans));
            }
            a.checked_div(b).map(|q| {
                // Division truncates; floor is one lower when the remainder and the
                // divisor have opposite signs.
                let r = a % b;
                if r != 0 && ((r < 0) != (b < 0)) {
                    q - 1
                } else {
                    q
                }
            })
        }
        BinOp::Mod => {
            if b == 0 {
                return Err(division_by_zero(op, spans));
            }
            // `i64::MIN % -1` overflows in Rust, but every int is a multiple of -1.
            a.checked_rem(b).or(Some(0)).map(|r| {
                if r != 0 && ((r < 0) != (b < 0)) {
                    r + b
                } else {
                    r
                }
            })
        }
        BinOp::Pow => {
            if b < 0 {
                return float_arith(op, a as f64, b as f64, spans);
            }
            u32::try_from(b)
                .ok()
                .and_then(|e| a.checked_pow(e))
                .or(match a {
                    0 | 1 => Some(a),
                    -1 => Some(if b % 2 == 0 { 1 } else { -1 }),
                    _ => None,
                })
        }
        _ => return Err(operand_error(op, &Value::Int(a), &Value::Int(b), spans)),
    };
    result
        .map(Value::Int)
        .ok_or_else(|| overflow(op, a, b, spans))
}

fn float_arith(op: BinOp, a: f64, b: f64, spans: BinSpans) -> EvalResult<Value> {
    let x = match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div | BinOp::FloorDiv | BinOp::Mod if b == 0.0 => {
            return Err(division_by_zero(op, spans));
        }
        BinOp::Div => a / b,
        BinOp::FloorDiv => float_floor_div(a, b),
        BinOp::Mod => float_mod(a, b),
        BinOp::Pow => {
            if a == 0.0 && b < 0.0 {
                return Err(Box::new(RuntimeError::value(
                    "zero cannot be raised to a negative power",
                    spans.whole,
                    "division by zero",
                )));
            }
            if a < 0.0 && b.fract() != 0.0 && b.is_finite() {
                return Err(Box::new(RuntimeError::value(
                    format!("{a} ** {b} is not a real number"),
                    spans.whole,
                    "negative base, fractional exponent",
                )));
            }
            let x = a.powf(b);
            if x.is_infinite() && a.is_finite() && b.is_finite() {
                return Err(Box::new(RuntimeError::value(
                    format!("{a} ** {b} is too large for a float"),
                    spans.whole,
                    "overflows",
                )));
            }
            x
        }
        _ => {
            let (a, b) = (Value::Float(a), Value::Float(b));
            return Err(operand_error(op, &a, &b, spans));
        }
    };
    Ok(Value::Float(x))
}

/// `lhs op rhs` for the arithmetic operators (`+ - * / // % ** @`) and comparisons; `and`,
/// `or` and `..` are handled by the caller.
pub fn binary(op: BinOp, lhs: &Value, rhs: &Value, spans: BinSpans) -> EvalResult<Value> {
    if matches!(lhs, Value::Tensor(_)) || matches!(rhs, Value::Tensor(_)) {
        return super::tensor::binary_values(op, lhs, rhs, spans);
    }
    match op {
        BinOp::Eq => return Ok(Value::Bool(lhs.equals(rhs))),
        BinOp::Ne => return Ok(Value::Bool(!lhs.equals(rhs))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ord = compare(lhs, rhs).ok_or_else(|| operand_error(op, lhs, rhs, spans))?;
            let result = match op {
                BinOp::Lt => ord == Some(Ordering::Less),
                BinOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                BinOp::Gt => ord == Some(Ordering::Greater),
                _ => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
            };
            return Ok(Value::Bool(result));
        }
        _ => {}
    }
    match (lhs, rhs) {
        (Value::Int(a), Value::Int(b)) if op != BinOp::MatMul => int_arith(op, *a, *b, spans),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_))
            if op != BinOp::MatMul =>
        {
            let (a, b) = (lhs.as_f64().unwrap_or(0.0), rhs.as_f64().unwrap_or(0.0));
            float_arith(op, a, b, spans)
        }
        (Value::Str(a), Value::Str(b)) if op == BinOp::Add => {
            // Built in a string, then copied into the shared value: twice the bytes.
            let len = a.len().saturating_add(b.len());
            let what = format!("a string of {len} bytes");
            memory::check("`+`", 2 * len as u128)
                .and_then(|()| memory::try_string("`+`", len))
                .map_err(|e| over_budget(e, &what, spans.whole))
                .map(|mut s| {
                    s.push_str(a);
                    s.push_str(b);
                    Value::Str(Rc::from(s))
                })
        }
        (Value::List(a), Value::List(b)) if op == BinOp::Add => {
            // Collected in a vector, then copied into the shared list: twice the items.
            let len = a.len().saturating_add(b.len());
            let what = format!("a list of {len} items");
            let bytes = len as u128 * size_of::<Value>() as u128;
            memory::check("`+`", 2 * bytes)
                .and_then(|()| memory::try_vec("`+`", len))
                .map_err(|e| over_budget(e, &what, spans.whole))
                .map(|mut items| {
                    items.extend(a.iter().chain(b.iter()).cloned());
                    Value::list(items)
                })
        }
        _ => Err(operand_error(op, lhs, rhs, spans)),
    }
}

/// The order of two values for `<` and `sorted`: numbers by value, strings by code point,
/// lists lexicographically. `None` if they cannot be ordered; `Some(None)` for NaN.
pub fn compare(a: &Value, b: &Value) -> Option<Option<Ordering>> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(Some(x.cmp(y))),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (x, y) = (a.as_f64()?, b.as_f64()?);
            Some(x.partial_cmp(&y))
        }
        (Value::Str(x), Value::Str(y)) => Some(Some(x.cmp(y))),
        (Value::List(x), Value::List(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                if !p.equals(q) {
                    return compare(p, q);
                }
            }
            Some(Some(x.len().cmp(&y.len())))
        }
        _ => None,
    }
}

/// `-x`.
pub fn negate(value: &Value, span: Span) -> EvalResult<Value> {
    match value {
        Value::Int(i) => i.checked_neg().map(Value::Int).ok_or_else(|| {
            Box::new(RuntimeError::value(
                format!("integer overflow: -({i}) does not fit in 64 bits"),
                span,
                "overflows",
            ))
        }),
        Value::Float(f) => Ok(Value::Float(-f)),
        other => Err(Box::new(RuntimeError::wrong_type(
            "operand of unary `-`",
            "a number",
            other.type_name(),
            span,
        ))),
    }
}

/// Resolves a possibly negative index into `0..len`.
fn resolve_index(index: i64, len: usize, type_name: &'static str, span: Span) -> EvalResult<usize> {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let i = if index < 0 { index + len_i } else { index };
    if (0..len_i).contains(&i) {
        Ok(i as usize)
    } else {
        Err(Box::new(RuntimeError::IndexOutOfRange(Box::new(
            crate::diagnostic::IndexOutOfRange {
                index,
                len,
                what: format!("{type_name} of length {len}"),
                span,
                calls: Vec::new(),
            },
        ))))
    }
}

/// The positions a Python slice `start:stop:step` takes from a sequence of `len`.
fn slice_positions(start: Option<i64>, stop: Option<i64>, step: i64, len: usize) -> Vec<usize> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    // Python clamps out-of-range bounds instead of failing.
    let clamp = |bound: i64, low: i64, high: i64| {
        let b = if bound < 0 {
            bound.saturating_add(len)
        } else {
            bound
        };
        b.clamp(low, high)
    };
    let mut out = Vec::new();
    if step > 0 {
        let a = start.map_or(0, |s| clamp(s, 0, len));
        let b = stop.map_or(len, |s| clamp(s, 0, len));
        let mut i = a;
        while i < b {
            out.push(i as usize);
            i = i.saturating_add(step);
        }
    } else {
        let a = start.map_or(len - 1, |s| clamp(s, -1, len - 1));
        let b = stop.map_or(-1, |s| clamp(s, -1, len - 1));
        let mut i = a;
        while i > b {
            out.push(i as usize);
            i = i.saturating_add(step);
        }
    }
    out
}

/// An evaluated index entry: an int, or a slice with its optional bounds.
#[derive(Clone, Copy, Debug)]
pub enum IndexValue {
    /// `x[i]`.
    At(i64),
    /// `x[a:b:c]`.
    Slice(Option<i64>, Option<i64>, Option<i64>),
}

/// `object[index]` for lists, strings and ranges.
pub fn index(
    object: &Value,
    index: IndexValue,
    item: &IndexItem,
    object_span: Span,
) -> EvalResult<Value> {
    let span = item.span;
    let step = match index {
        IndexValue::Slice(_, _, Some(0)) => {
            let step_span = match &item.node {
                IndexKind::Slice { step: Some(s), .. } => s.span,
                _ => span,
            };
            return Err(Box::new(RuntimeError::value(
                "slice step cannot be zero",
                step_span,
                "this is zero",
            )));
        }
        IndexValue::Slice(_, _, step) => step.unwrap_or(1),
        IndexValue::At(_) => 1,
    };
    match object {
        Value::List(items) => match index {
            IndexValue::At(i) => Ok(items[resolve_index(i, items.len(), "list", span)?].clone()),
            IndexValue::Slice(a, b, _) => Ok(Value::List(
                slice_positions(a, b, step, items.len())
                    .into_iter()
                    .map(|i| items[i].clone())
                    .collect(),
            )),
        },
        Value::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            match index {
                IndexValue::At(i) => {
                    let c = chars[resolve_index(i, chars.len(), "str", span)?];
                    Ok(Value::str(c.encode_utf8(&mut [0; 4])))
                }
                IndexValue::Slice(a, b, _) => {
                    let text: String = slice_positions(a, b, step, chars.len())
                        .into_iter()
                        .map(|i| chars[i])
                        .collect();
                    Ok(Value::Str(Rc::from(text)))
                }
            }
        }
        Value::Range { start, end } => {
            let len = range_len(*start, *end);
            match index {
                IndexValue::At(i) => {
                    let k = resolve_index(i, len, "range", span)?;
                    Ok(Value::Int(start + k as i64))
                }
                IndexValue::Slice(a, b, _) => Ok(Value::List(
                    slice_positions(a, b, step, len)
                        .into_iter()
                        .map(|k| Value::Int(start + k as i64))
                        .collect(),
                )),
            }
        }
        other => Err(Box::new(RuntimeError::wrong_type(
            "indexed value",
            "a list, str, range or tensor",
            other.type_name(),
            object_span,
        ))),
    }
}

/// Number of ints in `start..end`.
pub fn range_len(start: i64, end: i64) -> usize {
    if end > start {
        usize::try_from(end.abs_diff(start)).unwrap_or(usize::MAX)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans() -> BinSpans {
        BinSpans {
            whole: Span::new(0, 5),
            rhs: Span::new(4, 5),
        }
    }

    fn int(op: BinOp, a: i64, b: i64) -> Value {
        binary(op, &Value::Int(a), &Value::Int(b), spans()).expect("int op")
    }

    fn float(op: BinOp, a: f64, b: f64) -> f64 {
        match binary(op, &Value::Float(a), &Value::Float(b), spans()) {
            Ok(Value::Float(x)) => x,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn floor_division_and_modulo_follow_python() {
        for (a, b, q, r) in [
            (-7, 2, -4, 1),
            (7, -2, -4, -1),
            (-7, -2, 3, -1),
            (7, 2, 3, 1),
            (-7, 3, -3, 2),
        ] {
            assert!(
                int(BinOp::FloorDiv, a, b).equals(&Value::Int(q)),
                "{a} // {b}"
            );
            assert!(int(BinOp::Mod, a, b).equals(&Value::Int(r)), "{a} % {b}");
        }
        assert_eq!(float(BinOp::FloorDiv, 7.0, 0.1), 69.0);
        assert_eq!(float(BinOp::Mod, -7.5, 2.0), 0.5);
        assert_eq!(float(BinOp::Mod, 7.5, -2.0), -0.5);
        assert_eq!(float(BinOp::FloorDiv, -7.5, 2.0), -4.0);
    }

    #[test]
    fn integer_edge_cases_are_errors_not_wraps() {
        let min = Value::Int(i64::MIN);
        assert!(binary(BinOp::FloorDiv, &min, &Value::Int(-1), spans()).is_err());
        assert!(binary(BinOp::Mod, &min, &Value::Int(-1), spans()).is_ok());
        assert!(binary(BinOp::Pow, &Value::Int(2), &Value::Int(64), spans()).is_err());
        assert!(int(BinOp::Pow, -1, 1 << 40).equals(&Value::Int(1)));
        assert!(int(BinOp::Pow, 2, -1).equals(&Value::Float(0.5)));
        assert!(binary(BinOp::Mod, &Value::Int(1), &Value::Int(0), spans()).is_err());
    }

    #[test]
    fn slices_clamp_like_python() {
        assert_eq!(slice_positions(None, None, -1, 3), [2, 1, 0]);
        assert_eq!(slice_positions(Some(-2), None, 1, 3), [1, 2]);
        assert_eq!(
            slice_positions(Some(5), Some(10), 1, 3),
            Vec::<usize>::new()
        );
        assert_eq!(slice_positions(None, None, 2, 5), [0, 2, 4]);
        assert_eq!(
            slice_positions(Some(i64::MIN), Some(i64::MAX), 1, 2),
            [0, 1]
        );
    }
}
