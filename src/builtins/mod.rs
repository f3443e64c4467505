//! The builtin functions: one table, [`BUILTINS`], in which each entry's name, signature,
//! documentation and implementation sit side by side (the entries are defined next to
//! their implementations in the submodules). Calls bind arguments against the signature
//! with the same routine as user `fn`s, so every builtin gets E0203–E0207 for free.
//!
//! Tensor builtins (`tensor`, `zeros`, `conv2d`, ...) go in a `tensor` submodule listed in
//! the same table; the static checker's shape rule will become one more field of
//! [`BuiltinDef`].

mod scalar;

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use crate::eval::{EvalResult, Interpreter, Value};
use crate::source::Span;

/// A builtin function: its signature as data and its implementation.
pub struct BuiltinDef {
    /// The name scripts call it by.
    pub name: &'static str,
    /// Named parameters, in positional order.
    pub params: &'static [BuiltinParam],
    /// If set, surplus positional arguments are collected under this name (`print(a, b)`)
    /// instead of being an error.
    pub rest: Option<&'static str>,
    /// One line for `:help` and completion.
    pub doc: &'static str,
    /// The implementation; arguments arrive bound, defaulted and type-checked.
    pub run: BuiltinFn,
}

impl fmt::Debug for BuiltinDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<builtin {}>", self.name)
    }
}

/// The implementation of a builtin.
pub type BuiltinFn = fn(&mut Interpreter, Args) -> EvalResult<Value>;

/// One parameter of a builtin.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinParam {
    /// Its name, for keyword arguments and messages.
    pub name: &'static str,
    /// Its default; [`DefaultValue::Required`] if it has none.
    pub default: DefaultValue,
    /// The values it accepts (a parameter defaulting to `none` also accepts `none`).
    pub ty: Ty,
}

impl BuiltinParam {
    /// A parameter without a default.
    pub const fn required(name: &'static str, ty: Ty) -> BuiltinParam {
        BuiltinParam {
            name,
            default: DefaultValue::Required,
            ty,
        }
    }

    /// A parameter with a default.
    pub const fn optional(name: &'static str, ty: Ty, default: DefaultValue) -> BuiltinParam {
        BuiltinParam { name, default, ty }
    }
}

/// A builtin parameter's default, as constant data (a [`Value`] cannot live in a static).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DefaultValue {
    /// No default: the argument must be given.
    Required,
    /// `none`.
    None,
    /// `true` / `false`.
    Bool(bool),
    /// An int.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(&'static str),
}

impl DefaultValue {
    /// The default as a value, or `None` when the parameter is required.
    pub fn to_value(self) -> Option<Value> {
        Some(match self {
            DefaultValue::Required => return None,
            DefaultValue::None => Value::None,
            DefaultValue::Bool(b) => Value::Bool(b),
            DefaultValue::Int(i) => Value::Int(i),
            DefaultValue::Float(x) => Value::Float(x),
            DefaultValue::Str(s) => Value::str(s),
        })
    }
}

/// The kinds of value a builtin parameter accepts; checked when arguments are bound (E0207).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// Anything.
    Any,
    /// An int.
    Int,
    /// An int or a float.
    Number,
    /// A string.
    Str,
    /// A list or a range: something `for` can walk without a tensor.
    Sequence,
    /// A function, builtin or (later) layer.
    Callable,
}

impl Ty {
    /// Whether `value` is of this type.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            Ty::Any => true,
            Ty::Int => matches!(value, Value::Int(_)),
            Ty::Number => matches!(value, Value::Int(_) | Value::Float(_)),
            Ty::Str => matches!(value, Value::Str(_)),
            Ty::Sequence => matches!(value, Value::List(_) | Value::Range { .. }),
            Ty::Callable => matches!(value, Value::Function(_) | Value::Builtin(_)),
        }
    }

    /// How messages name the type: "expected int, got str".
    pub fn describe(self) -> &'static str {
        match self {
            Ty::Any => "any value",
            Ty::Int => "int",
            Ty::Number => "int or float",
            Ty::Str => "str",
            Ty::Sequence => "list or range",
            Ty::Callable => "function",
        }
    }
}

/// The bound arguments of one builtin call.
#[derive(Debug)]
pub struct Args {
    /// One value per entry of [`BuiltinDef::params`], defaults filled in.
    pub values: Vec<Value>,
    /// Where each value came from (the call's span for defaults).
    pub spans: Vec<Span>,
    /// Surplus positional arguments for a variadic builtin, with their spans.
    pub rest: Vec<(Value, Span)>,
    /// The whole call.
    pub call: Span,
}

impl Args {
    /// The `i`-th parameter's value.
    pub fn value(&self, i: usize) -> &Value {
        self.values.get(i).unwrap_or(&Value::None)
    }

    /// The `i`-th parameter's span.
    pub fn span(&self, i: usize) -> Span {
        self.spans.get(i).copied().unwrap_or(self.call)
    }
}

/// Every builtin, in the order `:help` lists them.
pub static BUILTINS: &[BuiltinDef] = &[
    scalar::PRINT,
    scalar::LEN,
    scalar::SUM,
    scalar::MIN,
    scalar::MAX,
    scalar::SORTED,
    scalar::RANGE,
    scalar::STR,
    scalar::ROUND,
    scalar::ABS,
    scalar::NOW,
    scalar::TIMEIT,
];

static BY_NAME: LazyLock<HashMap<&'static str, usize>> = LazyLock::new(|| {
    BUILTINS
        .iter()
        .enumerate()
        .map(|(i, def)| (def.name, i))
        .collect()
});

/// The builtin called `name`.
pub fn lookup(name: &str) -> Option<&'static BuiltinDef> {
    BY_NAME.get(name).and_then(|&i| BUILTINS.get(i))
}

impl BuiltinDef {
    /// The signature as a user would write the call: `round(x, digits=none)`.
    pub fn signature(&self) -> String {
        let mut parts: Vec<String> = self
            .params
            .iter()
            .map(|p| match p.default.to_value() {
                Some(v) => format!("{}={}", p.name, v.repr()),
                None => p.name.to_string(),
            })
            .collect();
        if let Some(rest) = self.rest {
            parts.push(format!("{rest}..."));
        }
        format!("{}({})", self.name, parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_documented() {
        assert_eq!(BY_NAME.len(), BUILTINS.len());
        for def in BUILTINS {
            assert!(!def.doc.is_empty(), "{} has no doc", def.name);
            let mut seen_default = false;
            for p in def.params {
                let has = p.default != DefaultValue::Required;
                assert!(has || !seen_default, "{}: required after default", def.name);
                seen_default |= has;
            }
        }
        assert_eq!(
            lookup("round").map(|d| d.signature()).as_deref(),
            Some("round(x, digits=none)")
        );
    }
}
