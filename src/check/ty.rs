//! The checker's types: what it knows about a value without computing it.

use crate::diagnostic::binding::ArgKind;
use std::fmt;
use std::rc::Rc;

use super::dim::SymDim;
use crate::builtins::BuiltinDef;
use crate::source::Span;
use crate::syntax::ast::{FnDef, NetDef};
use crate::tensor::receptive_field::AxisField;

/// Whether a tensor requires grad, as far as the checker can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grad {
    /// Certainly does not require grad.
    No,
    /// A leaf created with `requires_grad=true`.
    Leaf,
    /// A view (`w[0]`) of a leaf created with `requires_grad=true`: it shares the leaf's
    /// storage, so writing to it in place writes to the leaf.
    LeafView,
    /// Computed from something that requires grad.
    Yes,
    /// Cannot tell.
    Unknown,
}

/// A receptive field per spatial axis (`[h, w]`), shared: most ops pass it on unchanged.
pub type Field = Rc<[AxisField; 2]>;

/// A tensor: its shape (unknown rank when `None`) and whether it requires grad.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorTy {
    /// The dims, or `None` when even the rank is unknown.
    pub shape: Option<Vec<SymDim>>,
    /// Grad status.
    pub grad: Grad,
    /// The receptive field of each pixel along the last two (spatial) dims, relative to the
    /// enclosing net's input, when every layer on the way is known: set to identity by a
    /// net's `input` declaration, updated by windows, kept by pointwise ops, dropped by
    /// anything that mixes positions.
    pub field: Option<Field>,
}

impl TensorTy {
    /// A tensor of unknown shape and grad.
    pub fn unknown() -> TensorTy {
        TensorTy {
            shape: None,
            grad: Grad::Unknown,
            field: None,
        }
    }

    /// A tensor of known dims.
    pub fn of(shape: Vec<SymDim>, grad: Grad) -> TensorTy {
        TensorTy {
            shape: Some(shape),
            grad,
            field: None,
        }
    }

    /// A tensor of `shape` and `grad` with the same receptive field as `self` (a pointwise
    /// op's result).
    pub fn pointwise(&self, shape: Option<Vec<SymDim>>, grad: Grad) -> TensorTy {
        TensorTy {
            shape,
            grad,
            field: self.field.clone(),
        }
    }

    /// The shape when every dim is a known constant.
    pub fn concrete(&self) -> Option<Vec<i64>> {
        self.shape.as_ref()?.iter().map(SymDim::as_const).collect()
    }
}

/// The receptive field of a pixelwise join of two tensors (`a + b`, `cat`): per axis the
/// union of both windows ([`AxisField::merge`]); unknown when either side is unknown or
/// the jumps differ.
pub fn merge_fields(a: Option<&Field>, b: Option<&Field>) -> Option<Field> {
    let (a, b) = (a?, b?);
    if a == b {
        return Some(a.clone());
    }
    Some(Rc::new([a[0].merge(b[0])?, a[1].merge(b[1])?]))
}

/// A builtin, compared by name (its definition has no `PartialEq`).
#[derive(Clone, Copy, Debug)]
pub struct BuiltinRef(pub &'static BuiltinDef);

impl PartialEq for BuiltinRef {
    fn eq(&self, other: &BuiltinRef) -> bool {
        self.0.name == other.0.name
    }
}

/// A layer built by a constructor (`Conv2d(1, 8, 3)`), with its arguments as typed.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerTy {
    /// The constructor's name.
    pub kind: &'static str,
    /// The bound arguments, one per parameter of the constructor (`None`: the default).
    pub args: Vec<Option<(Ty, Span)>>,
    /// The constructor.
    pub def: BuiltinRef,
    /// Surplus positional arguments (`Sequential`'s layers).
    pub rest: Vec<(Ty, Span)>,
    /// Where it was built.
    pub span: Span,
}

/// A model built from a net: the net and its parameter values.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelTy {
    /// The net.
    pub net: Rc<NetDef>,
    /// Parameter values (by position in the net's parameter list).
    pub params: Vec<Ty>,
    /// The net call that built it (a report's group row names the model by it).
    pub built_at: Span,
    /// Its inputs (declared symbols kept) and result, with preconditions; `None` when the
    /// net reaches itself.
    pub signature: Option<Rc<super::net::Signature>>,
}

/// What the checker knows about a value.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    /// Anything: a value the checker cannot know. Nothing is reported about it.
    Unknown,
    /// An int, with its value when it is a constant.
    Int(Option<i64>),
    /// A float.
    Float,
    /// A bool, with its value when constant.
    Bool(Option<bool>),
    /// A string, with its value when constant.
    Str(Option<Rc<str>>),
    /// `none`.
    None,
    /// A list, with its elements when known.
    List(Option<Vec<Ty>>),
    /// An integer range.
    Range,
    /// A tensor.
    Tensor(TensorTy),
    /// A layer.
    Layer(Rc<LayerTy>),
    /// A model built from a net.
    Model(Rc<ModelTy>),
    /// A user function.
    Function(Rc<FnDef>),
    /// A net template.
    Net(Rc<NetDef>),
    /// A builtin function or constructor.
    Builtin(BuiltinRef),
    /// An optimizer.
    Optimizer,
}

impl ArgKind for Ty {
    fn kind(&self) -> Option<&'static str> {
        Some(match self {
            Ty::Unknown => return None,
            Ty::Int(_) => "int",
            Ty::Float => "float",
            Ty::Bool(_) => "bool",
            Ty::Str(_) => "str",
            Ty::None => "none",
            Ty::List(_) => "list",
            Ty::Range => "range",
            Ty::Tensor(_) => "tensor",
            Ty::Layer(_) | Ty::Model(_) => "layer",
            Ty::Function(_) | Ty::Builtin(_) => "function",
            Ty::Net(_) => "net",
            Ty::Optimizer => "optimizer",
        })
    }

    fn items(&self) -> Option<Vec<&Ty>> {
        match self {
            Ty::List(Some(items)) => Some(items.iter().collect()),
            _ => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Ty::Str(Some(s)) => Some(s),
            _ => None,
        }
    }
}

impl Ty {
    /// Joins the types a name may have after two paths: equal types stay, others become
    /// unknown.
    pub fn join(&self, other: &Ty) -> Ty {
        if self == other {
            return self.clone();
        }
        match (self, other) {
            (Ty::Int(_), Ty::Int(_)) => Ty::Int(None),
            (Ty::Bool(_), Ty::Bool(_)) => Ty::Bool(None),
            (Ty::Str(_), Ty::Str(_)) => Ty::Str(None),
            (Ty::Tensor(a), Ty::Tensor(b)) => {
                let shape = match (&a.shape, &b.shape) {
                    (Some(x), Some(y)) if x.len() == y.len() => Some(
                        x.iter()
                            .zip(y)
                            .map(|(p, q)| if p == q { p.clone() } else { SymDim::unknown() })
                            .collect(),
                    ),
                    _ => None,
                };
                let grad = if a.grad == b.grad {
                    a.grad
                } else {
                    Grad::Unknown
                };
                let field = if a.field == b.field {
                    a.field.clone()
                } else {
                    None
                };
                Ty::Tensor(TensorTy { shape, grad, field })
            }
            _ => Ty::Unknown,
        }
    }

    /// A known int constant.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Ty::Int(v) => *v,
            _ => None,
        }
    }
}

/// Writes a shape as `[N, 64, H, W]`.
pub fn shape_string(shape: &[SymDim]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Unknown => f.write_str("unknown"),
            Ty::Int(Some(v)) => write!(f, "int = {v}"),
            Ty::Int(None) => f.write_str("int"),
            Ty::Float => f.write_str("float"),
            Ty::Bool(_) => f.write_str("bool"),
            Ty::Str(_) => f.write_str("str"),
            Ty::None => f.write_str("none"),
            Ty::List(_) => f.write_str("list"),
            Ty::Range => f.write_str("range"),
            Ty::Tensor(t) => match &t.shape {
                Some(s) => write!(f, "tensor {}", shape_string(s)),
                None => f.write_str("tensor"),
            },
            Ty::Layer(l) => write!(f, "layer {}", l.kind),
            Ty::Model(m) => match &m.signature {
                Some(sig) => write!(f, "model {} {sig}", m.net.name.name),
                None => write!(f, "model {}", m.net.name.name),
            },
            Ty::Function(d) => write!(f, "fn {}", d.name.name),
            Ty::Net(d) => write!(f, "net {}", d.name.name),
            Ty::Builtin(d) => write!(f, "builtin {}", d.0.name),
            Ty::Optimizer => f.write_str("optimizer"),
        }
    }
}
