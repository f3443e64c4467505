//! Builtins over scalars, strings and lists (LANGUAGE.md §11).

use std::cmp::Ordering;
use std::rc::Rc;
use std::sync::LazyLock;
use std::time::Instant;

use super::{Args, BuiltinDef, BuiltinParam as P, DefaultValue as D, Ty};
use crate::eval::ops::{self, BinSpans};
use crate::eval::{EvalResult, Interpreter, RuntimeError, Value};
use crate::source::Span;
use crate::syntax::ast::BinOp;

/// The items of a list or range, without materialising a range.
fn items(value: &Value) -> Box<dyn Iterator<Item = Value> + '_> {
    match value {
        Value::List(items) => Box::new(items.iter().cloned()),
        Value::Range { start, end } => Box::new((*start..*end).map(Value::Int)),
        _ => Box::new(std::iter::empty()),
    }
}

fn empty_error(name: &str, span: Span) -> Box<RuntimeError> {
    Box::new(RuntimeError::value(
        format!("{name}() of an empty sequence"),
        span,
        "this is empty",
    ))
}

fn unorderable(a: &Value, b: &Value, what: &str, span: Span) -> Box<RuntimeError> {
    Box::new(RuntimeError::wrong_type(
        format!("items of `{what}`"),
        "numbers, strings or lists that can be compared",
        format!("{} and {}", a.type_name(), b.type_name()),
        span,
    ))
}

pub(super) const PRINT: BuiltinDef = BuiltinDef {
    name: "print",
    params: &[],
    rest: Some("values"),
    doc: "print(a, b, ...): write the values separated by spaces, then a newline",
    run: print,
};

fn print(interp: &mut Interpreter, args: Args) -> EvalResult<Value> {
    let mut line = String::new();
    for (i, (value, _)) in args.rest.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(&value.to_string());
    }
    line.push('\n');
    interp.write_output(&line);
    Ok(Value::None)
}

pub(super) const LEN: BuiltinDef = BuiltinDef {
    name: "len",
    params: &[P::required("x", Ty::Any)],
    rest: None,
    doc: "len(x): the number of items of a list, range or string (a tensor's first dim)",
    run: len,
};

fn len(_: &mut Interpreter, args: Args) -> EvalResult<Value> {
    let n = match args.value(0) {
        Value::List(items) => items.len(),
        Value::Str(s) => s.chars().count(),
        Value::Range { start, end } => ops::range_len(*start, *end),
        // Python's len of a tensor: the size of its first dimension.
        Value::Tensor(t) if t.ndim() > 0 => t.shape()[0],
        other => {
            return Err(Box::new(RuntimeError::wrong_type(
                "argument `x` of `len`",
                "list, str, range or tensor",
                other.type_name(),
                args.span(0),
            )));
        }
    };
    match i64::try_from(n) {
        Ok(n) => Ok(Value::Int(n)),
        // Only a range can be that long: `len(-2**63 .. 2**63 - 1)`.
        Err(_) => Err(Box::new(RuntimeError::value(
            format!("integer overflow: the length {n} does not fit in 64 bits"),
            args.span(0),
            "too long",
        ))),
    }
}

pub(super) const SUM: BuiltinDef = BuiltinDef {
    name: "sum",
    params: &[
        P::required("values", Ty::Sequence),
        P::optional("start", Ty::Any, D::Int(0)),
    ],
    rest: None,
    doc: "sum(values, start=0): start plus every item, added with `+`",
    run: sum,
};

fn sum(interp: &mut Interpreter, args: Args) -> EvalResult<Value> {
    let spans = BinSpans {
        whole: args.span(0),
        rhs: args.span(0),
    };
    let mut total = args.value(1).clone();
    for (i, item) in items(args.value(0)).enumerate() {
        // A long range sum is a loop; let Ctrl-C stop it.
        if i % 4096 == 0 {
            interp.check_interrupt(args.call)?;
        }
        total = ops::binary(BinOp::Add, &total, &item, spans)?;
    }
    Ok(total)
}

/// `min` or `max`: of one list or range, or of several arguments.
fn extreme(args: &Args, name: &str, want: Ordering) -> EvalResult<Value> {
    let (source, span): (Box<dyn Iterator<Item = Value> + '_>, Span) = match args.rest.as_slice() {
        [(only, span)] => {
            if Ty::Sequence.admits(only) != Some(true) {
                return Err(Box::new(
                    RuntimeError::wrong_type(
                        format!("the argument of `{name}`"),
                        "list or range (or several values)",
                        only.type_name(),
                        *span,
                    )
                    .with_help(format!(
                        "{name}(a, b) compares several values; {name}(list) the items of a list"
                    )),
                ));
            }
            (items(only), *span)
        }
        several => (Box::new(several.iter().map(|(v, _)| v.clone())), args.call),
    };
    let mut best: Option<Value> = None;
    for item in source {
        best = Some(match best {
            None => item,
            Some(current) => match ops::compare(&item, &current) {
                Some(Some(ord)) if ord == want => item,
                Some(_) => current,
                None => return Err(unorderable(&current, &item, name, span)),
            },
        });
    }
    best.ok_or_else(|| empty_error(name, span))
}

pub(super) const MIN: BuiltinDef = BuiltinDef {
    name: "min",
    params: &[],
    rest: Some("values"),
    doc: "min(list) or min(a, b, ...): the smallest item",
    run: |_, args| extreme(&args, "min", Ordering::Less),
};

pub(super) const MAX: BuiltinDef = BuiltinDef {
    name: "max",
    params: &[],
    rest: Some("values"),
    doc: "max(list) or max(a, b, ...): the largest item",
    run: |_, args| extreme(&args, "max", Ordering::Greater),
};

pub(super) const SORTED: BuiltinDef = BuiltinDef {
    name: "sorted",
    params: &[
        P::required("values", Ty::Sequence),
        P::optional("reverse", Ty::Any, D::Bool(false)),
    ],
    rest: None,
    doc: "sorted(values, reverse=false): a new list of the items in ascending order",
    run: sorted,
};

/// Stable merge sort with a fallible comparison. `slice::sort_by` may panic when the
/// comparison is not a total order (NaN, mixed types), which user data can make it.
fn merge_sort(
    mut items: Vec<Value>,
    less: &mut dyn FnMut(&Value, &Value) -> EvalResult<bool>,
) -> EvalResult<Vec<Value>> {
    if items.len() <= 1 {
        return Ok(items);
    }
    let right = items.split_off(items.len() / 2);
    let left = merge_sort(items, less)?;
    let right = merge_sort(right, less)?;
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    while let (Some(l), Some(r)) = (left.peek(), right.peek()) {
        // Take from the right only when strictly smaller, so equal items keep their order.
        let next = if less(r, l)? {
            right.next()
        } else {
            left.next()
        };
        out.extend(next);
    }
    out.extend(left);
    out.extend(right);
    Ok(out)
}

fn sorted(_: &mut Interpreter, args: Args) -> EvalResult<Value> {
    let span = args.span(0);
    let reverse = args.value(1).truthy();
    let mut less = |a: &Value, b: &Value| match ops::compare(a, b) {
        Some(ord) => Ok(ord
            == Some(if reverse {
                Ordering::Greater
            } else {
                Ordering::Less
            })),
        None => Err(unorderable(a, b, "sorted", span)),
    };
    let sorted = merge_sort(items(args.value(0)).collect(), &mut less)?;
    Ok(Value::list(sorted))
}

/// The most items `range()` will put in a list; `a..b` is lazy and has no limit.
const MAX_RANGE_LIST: u64 = 1 << 27;

pub(super) const RANGE: BuiltinDef = BuiltinDef {
    name: "range",
    params: &[
        P::required("start", Ty::Int),
        P::optional("stop", Ty::Int, D::None),
        P::optional("step", Ty::Int, D::Int(1)),
    ],
    rest: None,
    doc: "range(stop) or range(start, stop, step=1): a list of ints",
    run: range,
};

fn range(_: &mut Interpreter, args: Args) -> EvalResult<Value> {
    let int = |i: usize| match args.value(i) {
        Value::Int(n) => Some(*n),
        _ => None,
    };
    let (start, stop) = match (int(0), int(1)) {
        (Some(stop), None) => (0, stop),
        (Some(start), Some(stop)) => (start, stop),
        _ => (0, 0),
    };
    let step = int(2).unwrap_or(1);
    if step == 0 {
        return Err(Box::new(RuntimeError::value(
            "range() step cannot be zero",
            args.span(2),
            "this is zero",
        )));
    }
    let count = if step > 0 && stop > start {
        (stop.abs_diff(start) - 1) / step.unsigned_abs() + 1
    } else if step < 0 && start > stop {
        (start.abs_diff(stop) - 1) / step.unsigned_abs() + 1
    } else {
        0
    };
    if count > MAX_RANGE_LIST {
        return Err(Box::new(RuntimeError::value_with_help(
            format!("range() would make a list of {count} ints"),
            args.call,
            "too large",
            format!("iterate over `{start}..{stop}` instead: a range is not stored as a list"),
        )));
    }
    let mut list = Vec::with_capacity(count as usize);
    let mut x = start;
    for _ in 0..count {
        list.push(Value::Int(x));
        x = x.wrapping_add(step);
    }
    Ok(Value::list(list))
}

pub(super) const STR: BuiltinDef = BuiltinDef {
    name: "str",
    params: &[P::required("x", Ty::Any)],
    rest: None,
    doc: "str(x): the text print shows for x",
    run: |_, args| match args.value(0) {
        Value::Str(s) => Ok(Value::Str(Rc::clone(s))),
        other => Ok(Value::str(&other.to_string())),
    },
};

pub(super) const ROUND: BuiltinDef = BuiltinDef {
    name: "round",
    params: &[
        P::required("x", Ty::Number),
        P::optional("digits", Ty::Int, D::None),
    ],
    rest: None,
    doc: "round(x, digits=none): nearest int (ties to even), or a float with that many decimals",
    run: round,
};

/// Rounds an int to a multiple of `10^places`, ties to even, as Python's `round(n, -k)`.
fn round_int(n: i64, places: u32) -> Option<i64> {
    let unit = match 10i64.checked_pow(places) {
        Some(u) => u,
        None => return Some(0),
    };
    let q = n.div_euclid(unit);
    let r = n.rem_euclid(unit);
    let up = match (2 * r as i128).cmp(&(unit as i128)) {
        Ordering::Greater => true,
        Ordering::Equal => q % 2 != 0,
        Ordering::Less => false,
    };
    (if up { q.checked_add(1)? } else { q }).checked_mul(unit)
}

/// Rounds a float to `digits` decimals, ties to even on the exact binary value, as Python.
fn round_float(x: f64, digits: i64) -> f64 {
    if !x.is_finite() || digits > 330 {
        return x;
    }
    if digits >= 0 {
        // Formatting rounds the exact decimal expansion correctly; reading it back gives
        // the nearest float, which is what Python's `round` returns.
        return format!("{x:.digits$}", digits = digits as usize)
            .parse()
            .unwrap_or(x);
    }
    let unit = 10f64.powi(digits.unsigned_abs().min(400) as i32);
    if !unit.is_finite() {
        return 0.0f64.copysign(x);
    }
    (x / unit).round_ties_even() * unit
}

fn round(_: &mut Interpreter, args: Args) -> EvalResult<Value> {
    let overflow = || {
        Box::new(RuntimeError::value(
            "round() result does not fit in an int",
            args.span(0),
            "too large",
        ))
    };
    match (args.value(0), args.value(1)) {
        (Value::Int(n), Value::None) => Ok(Value::Int(*n)),
        (Value::Int(n), Value::Int(d)) if *d >= 0 => Ok(Value::Int(*n)),
        (Value::Int(n), Value::Int(d)) => {
            let places = u32::try_from(d.unsigned_abs()).unwrap_or(u32::MAX);
            round_int(*n, places).map(Value::Int).ok_or_else(overflow)
        }
        (Value::Float(x), Value::None) => {
            let r = x.round_ties_even();
            if r.is_finite() && (i64::MIN as f64..-(i64::MIN as f64)).contains(&r) {
                Ok(Value::Int(r as i64))
            } else {
                Err(Box::new(RuntimeError::value(
                    format!("cannot round {} to an int", Value::Float(*x)),
                    args.span(0),
                    "not a finite int",
                )))
            }
        }
        (Value::Float(x), Value::Int(d)) => Ok(Value::Float(round_float(*x, *d))),
        _ => Ok(args.value(0).clone()),
    }
}

pub(super) const ABS: BuiltinDef = BuiltinDef {
    name: "abs",
    params: &[P::required("x", Ty::Any)],
    rest: None,
    doc: "abs(x): the absolute value (of each element, for a tensor)",
    run: |interp, args| match args.value(0) {
        Value::Tensor(t) => {
            interp.at(args.call);
            t.abs()
                .map(Value::Tensor)
                .map_err(|e| interp.tensor_err(e, args.call))
        }
        Value::Int(n) => n.checked_abs().map(Value::Int).ok_or_else(|| {
            Box::new(RuntimeError::value(
                format!("abs({n}) does not fit in 64 bits"),
                args.span(0),
                "overflows",
            ))
        }),
        Value::Float(x) => Ok(Value::Float(x.abs())),
        other => Err(Box::new(RuntimeError::wrong_type(
            "argument `x` of `abs`",
            "int, float or tensor",
            other.type_name(),
            args.span(0),
        ))),
    },
};

/// The process's time origin, so `now()` values compare across interpreters.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

pub(super) const NOW: BuiltinDef = BuiltinDef {
    name: "now",
    params: &[],
    rest: None,
    doc: "now(): monotonic seconds as a float, for timing",
    run: |_, _| Ok(Value::Float(EPOCH.elapsed().as_secs_f64())),
};

pub(super) const TIMEIT: BuiltinDef = BuiltinDef {
    name: "timeit",
    params: &[
        P::required("f", Ty::Callable),
        P::optional("iters", Ty::Int, D::Int(10)),
        P::optional("warmup", Ty::Int, D::Int(2)),
    ],
    rest: None,
    doc: "timeit(f, iters=10, warmup=2): call f() repeatedly; a record of median, min, max ms",
    run: timeit,
};

fn timeit(interp: &mut Interpreter, args: Args) -> EvalResult<Value> {
    let count = |i: usize, least: i64| match args.value(i) {
        Value::Int(n) if *n >= least => Ok(*n),
        other => Err(Box::new(RuntimeError::value(
            format!(
                "`{}` must be at least {least}, got {other}",
                TIMEIT.params[i].name
            ),
            args.span(i),
            "too small",
        ))),
    };
    let (iters, warmup) = (count(1, 1)?, count(2, 0)?);
    let f = args.value(0).clone();
    for _ in 0..warmup {
        interp.call_value(&f, Vec::new(), args.call)?;
    }
    let mut times = Vec::with_capacity(usize::try_from(iters.min(1 << 20)).unwrap_or(0));
    for _ in 0..iters {
        let start = Instant::now();
        interp.call_value(&f, Vec::new(), args.call)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    };
    Ok(Value::record(
        "timeit",
        vec![
            ("median", Value::Float(median)),
            ("min", Value::Float(times[0])),
            ("max", Value::Float(times[n - 1])),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_matches_python() {
        assert_eq!(round_float(2.5463, 3), 2.546);
        assert_eq!(round_float(1.23456, 2), 1.23);
        assert_eq!(round_float(0.125, 2), 0.12);
        assert_eq!(round_float(2.675, 2), 2.67); // 2.675 is stored just below
        assert_eq!(round_float(1234.5, -2), 1200.0);
        assert_eq!(round_int(1250, 2), Some(1200));
        assert_eq!(round_int(1350, 2), Some(1400));
        assert_eq!(round_int(-1250, 2), Some(-1200));
        assert_eq!(round_int(5, 30), Some(0));
    }
}
