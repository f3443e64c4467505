//! The builtin functions: one table, [`BUILTINS`], in which each entry's name, signature,
//! documentation and implementation sit side by side (the entries are defined next to
//! their implementations in the submodules). Calls bind arguments against the signature
//! with the same routine as user `fn`s, so every builtin gets E0203–E0207 for free.
//!
//! Tensor constructors live in [`tensor`], the functional forms of layers in [`nn`], layer
//! constructors in [`layers`], optimizers in [`optim`]; methods of tensors, layers and
//! optimizers are tables of the same [`BuiltinDef`]s ([`methods`]), called with the object
//! as [`Args::receiver`]. The static checker's shape rule will become one more field of
//! [`BuiltinDef`].

pub mod args;
pub mod checkpoint;
pub mod files;
pub mod introspect;
mod layer_defs;
pub mod layers;
pub mod methods;
mod nn;
mod optim;
pub mod pointwise;
mod scalar;
pub(crate) mod spatial;
mod tensor;

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use crate::diagnostic::binding::ParamList;
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
    /// Whether it can only be given by name: `zeros(2, 3, requires_grad=true)` collects the
    /// positional arguments as the shape, so `requires_grad` must not take one of them.
    pub keyword_only: bool,
}

impl BuiltinParam {
    /// A parameter without a default.
    pub const fn required(name: &'static str, ty: Ty) -> BuiltinParam {
        BuiltinParam {
            name,
            default: DefaultValue::Required,
            ty,
            keyword_only: false,
        }
    }

    /// A parameter with a default.
    pub const fn optional(name: &'static str, ty: Ty, default: DefaultValue) -> BuiltinParam {
        BuiltinParam {
            name,
            default,
            ty,
            keyword_only: false,
        }
    }

    /// A parameter with a default that can only be given by name (it follows the
    /// positional ones and any collected rest).
    pub const fn keyword(name: &'static str, ty: Ty, default: DefaultValue) -> BuiltinParam {
        BuiltinParam {
            name,
            default,
            ty,
            keyword_only: true,
        }
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

impl ParamList for &'static [BuiltinParam] {
    fn count(&self) -> usize {
        self.len()
    }
    fn name(&self, i: usize) -> &str {
        self[i].name
    }
    fn has_default(&self, i: usize) -> bool {
        self[i].default != DefaultValue::Required
    }
    fn positional_count(&self) -> usize {
        self.iter().take_while(|p| !p.keyword_only).count()
    }
}

/// The kinds of value a builtin parameter accepts (E0207), for the interpreter and the
/// checker alike.
pub use crate::diagnostic::binding::ParamKind as Ty;

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
    /// The object a method was called on (`x` in `x.sum()`), or none for a function.
    pub receiver: Value,
    /// The builtin called, for messages about its arguments.
    pub def: &'static BuiltinDef,
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
/// The layer constructors of LANGUAGE.md §7: inside a net body each call is one layer of
/// the model (see [`crate::eval::net`]).
pub const LAYER_CONSTRUCTORS: &[&str] = &[
    "Conv2d",
    "ConvTranspose2d",
    "Linear",
    "MaxPool2d",
    "AvgPool2d",
    "BatchNorm2d",
    "Softmax",
    "Identity",
    "Flatten",
    "Dropout",
    "Upsample",
    "PixelShuffle",
    "Sequential",
];

/// Whether `def` builds a layer.
pub fn is_layer_constructor(def: &BuiltinDef) -> bool {
    LAYER_CONSTRUCTORS.contains(&def.name) || pointwise::by_layer(def.name).is_some()
}

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
    // Tensors (LANGUAGE.md §6).
    tensor::TENSOR,
    tensor::ZEROS,
    tensor::ONES,
    tensor::FULL,
    tensor::ARANGE,
    tensor::LINSPACE,
    tensor::EYE,
    tensor::RAND,
    tensor::RANDN,
    tensor::RANDINT,
    tensor::ZEROS_LIKE,
    tensor::ONES_LIKE,
    tensor::RANDN_LIKE,
    tensor::SEED,
    tensor::SHARES_STORAGE,
    tensor::ASSERT_CLOSE,
    // Functional forms (LANGUAGE.md §7).
    nn::CONV2D,
    nn::CONV_TRANSPOSE2D,
    nn::LINEAR,
    nn::MAX_POOL2D,
    nn::AVG_POOL2D,
    pointwise::RELU.function,
    pointwise::LEAKY_RELU.function,
    pointwise::SIGMOID.function,
    pointwise::TANH.function,
    nn::SOFTMAX,
    nn::LOG_SOFTMAX,
    nn::DROPOUT,
    nn::BATCH_NORM,
    nn::PIXEL_SHUFFLE,
    nn::INTERPOLATE,
    nn::CAT,
    nn::STACK,
    nn::MATMUL,
    nn::MSE_LOSS,
    nn::L1_LOSS,
    nn::CROSS_ENTROPY,
    nn::BCE_WITH_LOGITS,
    nn::CONV_MATRIX,
    // Layers (LANGUAGE.md §7).
    layer_defs::CONV2D,
    layer_defs::CONV_TRANSPOSE2D,
    layer_defs::LINEAR,
    layer_defs::MAX_POOL2D,
    layer_defs::AVG_POOL2D,
    layer_defs::BATCH_NORM2D,
    pointwise::RELU.layer,
    pointwise::LEAKY_RELU.layer,
    pointwise::SIGMOID.layer,
    pointwise::TANH.layer,
    layer_defs::SOFTMAX,
    layer_defs::IDENTITY,
    layer_defs::FLATTEN,
    layer_defs::DROPOUT,
    layer_defs::UPSAMPLE,
    layer_defs::PIXEL_SHUFFLE,
    layer_defs::SEQUENTIAL,
    layer_defs::PARAMETER_COUNT,
    introspect::SUMMARY,
    introspect::RECEPTIVE_FIELD,
    // Optimizers (LANGUAGE.md §11).
    optim::SGD,
    optim::ADAM,
    optim::ADAMW,
    // Files (LANGUAGE.md §11).
    files::LOAD_NPY,
    files::SAVE_NPY,
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
        let show = |p: &BuiltinParam| match p.default.to_value() {
            Some(v) => format!("{}={}", p.name, v.repr()),
            None => p.name.to_string(),
        };
        let mut parts: Vec<String> = self
            .params
            .iter()
            .filter(|p| !p.keyword_only)
            .map(show)
            .collect();
        if let Some(rest) = self.rest {
            parts.push(format!("{rest}..."));
        }
        parts.extend(self.params.iter().filter(|p| p.keyword_only).map(show));
        format!("{}({})", self.name, parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_constructor_is_listed() {
        for name in LAYER_CONSTRUCTORS {
            assert!(lookup(name).is_some(), "{name} is not a builtin");
        }
        // Capitalised builtins build layers, apart from the optimizers.
        for def in BUILTINS {
            let capital = def.name.starts_with(|c: char| c.is_ascii_uppercase());
            let optimizer = ["SGD", "Adam", "AdamW"].contains(&def.name);
            assert_eq!(
                capital && !optimizer,
                is_layer_constructor(def),
                "{}",
                def.name
            );
        }
    }

    #[test]
    fn names_are_unique_and_documented() {
        assert_eq!(BY_NAME.len(), BUILTINS.len());
        let all = BUILTINS
            .iter()
            .chain(methods::TENSOR_METHODS)
            .chain(methods::LAYER_METHODS)
            .chain(methods::OPTIMIZER_METHODS);
        for def in all {
            assert!(!def.doc.is_empty(), "{} has no doc", def.name);
            let mut seen_default = false;
            let mut seen_keyword = false;
            for p in def.params {
                let has = p.default != DefaultValue::Required;
                assert!(has || !seen_default, "{}: required after default", def.name);
                assert!(
                    p.keyword_only || !seen_keyword,
                    "{}: positional after keyword-only",
                    def.name
                );
                assert!(
                    has || !p.keyword_only,
                    "{}: keyword-only without default",
                    def.name
                );
                seen_default |= has;
                seen_keyword |= p.keyword_only;
            }
        }
        assert_eq!(
            lookup("round").map(|d| d.signature()).as_deref(),
            Some("round(x, digits=none)")
        );
    }
}
