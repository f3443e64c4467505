//! Run-time values and how the language prints them.
//!
//! Scalars, strings and lists are immutable values; copying a [`Value`] is cheap (an `Rc`
//! bump at most). Reference types with identity — tensors, layers, optimizers — hold an
//! `Rc`, so that `let b = a` makes two names for one object (LANGUAGE.md §3).

use crate::diagnostic::binding::ArgKind;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use crate::builtins::BuiltinDef;
use crate::builtins::layers::Layer;
use crate::syntax::ast::{FnDef, NetDef};
use crate::tensor::Tensor;
use crate::tensor::optim::Optimizer;

/// A value of the language.
#[derive(Clone, Debug)]
pub enum Value {
    /// `none`.
    None,
    /// `true`, `false`.
    Bool(bool),
    /// A 64-bit integer; arithmetic on it is checked.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A string; immutable, so shared.
    Str(Rc<str>),
    /// An immutable list; `+` builds a new one.
    List(Rc<[Value]>),
    /// `start..end`, half-open, produced by `..`; iterated lazily.
    Range {
        /// The first value.
        start: i64,
        /// One past the last value.
        end: i64,
    },
    /// A read-only value with named fields (what `timeit` returns).
    Record(Rc<Record>),
    /// A user `fn`.
    Function(Rc<FnDef>),
    /// A builtin function from [`crate::builtins::BUILTINS`].
    Builtin(&'static BuiltinDef),
    /// A tensor; the handle is shared, so in-place ops are seen through every name.
    Tensor(Tensor),
    /// A layer (`Conv2d(1, 8, 3)`, `Sequential(...)`): callable, owns parameters.
    Layer(Rc<Layer>),
    /// An optimizer (`SGD(model.parameters(), lr=0.1)`).
    Optimizer(Rc<RefCell<Optimizer>>),
    /// `_` given as a call argument: a size a layer infers from its first input
    /// (`Conv2d(_, 16, 3)`).
    Infer,
    /// A `net` definition: calling it with its parameters builds a model (a layer).
    Net(Rc<NetDef>),
}

/// A read-only value with named fields: `r.median`, `rf.size`.
#[derive(Clone, Debug)]
pub struct Record {
    /// What made it (`"timeit"`), for messages.
    pub type_name: &'static str,
    /// The fields in display order.
    pub fields: Vec<(&'static str, Value)>,
}

impl Record {
    /// The field called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl Value {
    /// A string value.
    pub fn str(text: &str) -> Value {
        Value::Str(Rc::from(text))
    }

    /// A list value.
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::from(items))
    }

    /// A record value.
    pub fn record(type_name: &'static str, fields: Vec<(&'static str, Value)>) -> Value {
        Value::Record(Rc::new(Record { type_name, fields }))
    }

    /// The type's name as error messages spell it: `int`, `str`, `list`, ...
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "none",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Range { .. } => "range",
            Value::Record(_) => "record",
            Value::Function(_) | Value::Builtin(_) => "function",
            Value::Tensor(_) => "tensor",
            Value::Layer(_) => "layer",
            Value::Optimizer(_) => "optimizer",
            Value::Infer => "_",
            Value::Net(_) => "net",
        }
    }

    /// Python-like truthiness, for `if`, `while`, `and`, `or` and `not`. A tensor is truthy
    /// by its value when it has one element; the interpreter refuses larger ones (E0505)
    /// before asking here.
    pub fn truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Range { start, end } => start < end,
            Value::Tensor(t) => t.item().is_ok_and(|v| v != 0.0),
            Value::Infer => false,
            Value::Record(_)
            | Value::Function(_)
            | Value::Builtin(_)
            | Value::Layer(_)
            | Value::Net(_)
            | Value::Optimizer(_) => true,
        }
    }

    /// The number as a float, for ints and floats.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Value equality as `==` defines it: numbers by value (`4 == 4.0`), lists element by
    /// element, values of different kinds unequal, functions by identity.
    pub fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => {
                int_float_eq(*a, *b)
            }
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.equals(y))
            }
            (Value::Range { start: a, end: b }, Value::Range { start: c, end: d }) => {
                // Two empty ranges hold the same (no) values.
                (a == c && b == d) || (a >= b && c >= d)
            }
            (Value::Record(a), Value::Record(b)) => {
                a.type_name == b.type_name
                    && a.fields.len() == b.fields.len()
                    && a.fields
                        .iter()
                        .zip(b.fields.iter())
                        .all(|((n, x), (m, y))| n == m && x.equals(y))
            }
            (Value::Function(a), Value::Function(b)) => Rc::ptr_eq(a, b),
            (Value::Builtin(a), Value::Builtin(b)) => std::ptr::eq(*a, *b),
            // Objects with identity compare by it (`==` on two tensors is elementwise and
            // never reaches here; this is list equality).
            (Value::Tensor(a), Value::Tensor(b)) => Tensor::same_tensor(a, b),
            (Value::Layer(a), Value::Layer(b)) => Rc::ptr_eq(a, b),
            (Value::Optimizer(a), Value::Optimizer(b)) => Rc::ptr_eq(a, b),
            (Value::Infer, Value::Infer) => true,
            (Value::Net(a), Value::Net(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The value as it appears inside a list or in the REPL: strings quoted and escaped.
    pub fn repr(&self) -> Repr<'_> {
        Repr(self)
    }
}

/// Exact int-to-float comparison: `2**53 + 1 == 2.0**53` is false, as in Python.
fn int_float_eq(i: i64, f: f64) -> bool {
    if f.fract() != 0.0 || !f.is_finite() {
        return false;
    }
    // Every integral f64 in [-2^63, 2^63) converts to i64 exactly.
    if (i64::MIN as f64..-(i64::MIN as f64)).contains(&f) {
        f as i64 == i
    } else {
        false
    }
}

/// Formats a float as Python's `repr` does: the shortest digits that read back to the same
/// value, positional for exponents -4 to 15, scientific otherwise (`1e-05`, `1e+16`), and
/// always with a `.` or an exponent so it reads as a float.
pub fn format_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // `{:e}` gives the shortest round-trip digits: "1.2345e-5", "-3e0".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            let zeros = "0".repeat(point as usize - digits.len());
            format!("{sign}{digits}{zeros}.0")
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{sign}{int}.{frac}")
        }
    } else {
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

/// Writes a string in double quotes with the language's escapes.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// A [`Value`] displayed with strings quoted, as inside a list.
pub struct Repr<'a>(&'a Value);

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Str(s) => write_quoted(f, s),
            other => write!(f, "{other}"),
        }
    }
}

/// What `print` and `str()` show: strings bare, everything else as written in source.
impl ArgKind for Value {
    fn kind(&self) -> Option<&'static str> {
        Some(self.type_name())
    }

    fn items(&self) -> Option<Vec<&Value>> {
        match self {
            Value::List(items) => Some(items.iter().collect()),
            _ => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => f.write_str("none"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&format_float(*x)),
            Value::Str(s) => f.write_str(s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", item.repr())?;
                }
                f.write_str("]")
            }
            Value::Range { start, end } => write!(f, "{start}..{end}"),
            Value::Record(record) => {
                f.write_str("{")?;
                for (i, (name, value)) in record.fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}: {}", value.repr())?;
                }
                f.write_str("}")
            }
            Value::Function(def) => write!(f, "<fn {}>", def.name.name),
            Value::Builtin(def) => write!(f, "<builtin {}>", def.name),
            Value::Tensor(t) => write!(f, "{t}"),
            Value::Layer(layer) => write!(f, "{layer}"),
            Value::Optimizer(opt) => f.write_str(&opt.borrow().describe(format_float)),
            Value::Infer => f.write_str("_"),
            Value::Net(def) => write!(f, "<net {}>", def.name.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python_repr() {
        let cases = [
            (3.5, "3.5"),
            (1.0, "1.0"),
            (1e-5, "1e-05"),
            (1e16, "1e+16"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (123456789.0, "123456789.0"),
            (1.5e16, "1.5e+16"),
            (0.0001, "0.0001"),
            (1e15, "1000000000000000.0"),
            (2.5e-7, "2.5e-07"),
            (1e100, "1e+100"),
            (-2.75, "-2.75"),
            (f64::INFINITY, "inf"),
        ];
        for (x, want) in cases {
            assert_eq!(format_float(x), want, "{x:?}");
        }
    }

    #[test]
    fn lists_quote_their_strings() {
        let v = Value::list(vec![Value::Int(1), Value::str("a\"b"), Value::None]);
        assert_eq!(v.to_string(), "[1, \"a\\\"b\", none]");
    }

    #[test]
    fn ints_equal_floats_by_value() {
        assert!(Value::Int(4).equals(&Value::Float(4.0)));
        assert!(!Value::Int(9_007_199_254_740_993).equals(&Value::Float(9_007_199_254_740_992.0)));
        assert!(!Value::Int(0).equals(&Value::None));
    }
}
