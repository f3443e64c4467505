//! Fields and methods: E0202 before the run for a name the value's type does not have,
//! with the run-time error's words and suggestion.

use super::error::CheckError;
use super::ty::Ty;
use super::walk::Checker;
use crate::syntax::ast::Ident;

impl Checker {
    /// False after reporting E0202 when a value of type `o` certainly has no field (or,
    /// for a call, method) `name`: the run-time error's words and suggestion. Only what
    /// the run-time lookup refuses for every value of the type is reported.
    pub(super) fn has_member(&mut self, o: &Ty, name: &Ident, call: bool) -> bool {
        use crate::builtins::layers::Layer;
        use crate::builtins::methods::{LAYER_METHODS, OPTIMIZER_METHODS, TENSOR_METHODS};
        use crate::eval::tensor::{TENSOR_FIELDS, member_help, memberless_help};
        let n: &str = &name.name;
        let (type_name, help) = match o {
            Ty::Tensor(_) => {
                let known = if call {
                    TENSOR_METHODS.iter().any(|m| m.name == n)
                } else {
                    TENSOR_FIELDS.contains(&n)
                };
                if known {
                    return true;
                }
                let help = member_help("tensor", n, TENSOR_FIELDS, TENSOR_METHODS);
                ("tensor", help)
            }
            Ty::Layer(_) => {
                let known = if call {
                    LAYER_METHODS.iter().any(|m| m.name == n)
                } else {
                    Layer::FIELDS.contains(&n)
                };
                if known {
                    return true;
                }
                (
                    "layer",
                    member_help("layer", n, Layer::FIELDS, LAYER_METHODS),
                )
            }
            Ty::Optimizer => {
                if call && OPTIMIZER_METHODS.iter().any(|m| m.name == n) {
                    return true;
                }
                let help = if call {
                    member_help("optimizer", n, &[], OPTIMIZER_METHODS)
                } else {
                    memberless_help("optimizer")
                };
                ("optimizer", help)
            }
            Ty::Int(_) => ("int", memberless_help("int")),
            Ty::Float => ("float", memberless_help("float")),
            Ty::Bool(_) => ("bool", memberless_help("bool")),
            Ty::Str(_) => ("str", memberless_help("str")),
            Ty::None => ("none", memberless_help("none")),
            Ty::List(_) => ("list", memberless_help("list")),
            Ty::Range => ("range", memberless_help("range")),
            Ty::Function(_) | Ty::Builtin(_) => ("function", memberless_help("function")),
            _ => return true,
        };
        self.error(CheckError::NoSuchField {
            type_name: type_name.to_string(),
            name: n.to_string(),
            span: name.span,
            help,
        });
        false
    }
}
