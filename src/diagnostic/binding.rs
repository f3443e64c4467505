//! Binding call arguments to parameters: one routine for user `fn`s, nets and builtins,
//! over run-time values or the checker's types alike, so E0203–E0206 are found by the same
//! code and worded once whichever stage meets the call first.

use std::rc::Rc;

use miette::Diagnostic;
use thiserror::Error;

use super::closest;
use crate::source::Span;

/// A parameter list as the binder sees it: names and which ones may be omitted.
pub trait ParamList {
    /// Number of named parameters.
    fn count(&self) -> usize;
    /// The `i`-th parameter's name.
    fn name(&self, i: usize) -> &str;
    /// Whether the `i`-th parameter has a default.
    fn has_default(&self, i: usize) -> bool;
    /// How many parameters take positional arguments (the rest are keyword-only).
    fn positional_count(&self) -> usize {
        self.count()
    }
}

/// The callee as the binder describes it in messages.
pub struct Callee<'a> {
    /// The name it is called by.
    pub name: &'a str,
    /// Its parameters.
    pub params: &'a dyn ParamList,
    /// Whether surplus positionals are collected (`print(a, b, c)`).
    pub variadic: bool,
    /// The signature for help texts, made only when a message needs it.
    pub signature: &'a dyn Fn() -> String,
}

/// One argument as written: `value` or `name=value`, with whatever the stage knows of it
/// (a run-time value, or the checker's type).
#[derive(Clone, Debug)]
pub struct Argument<T> {
    /// The keyword and its span, for `name=value`.
    pub keyword: Option<(Rc<str>, Span)>,
    /// The value or type.
    pub value: T,
    /// The whole argument as written.
    pub span: Span,
}

/// Arguments matched to parameters: one slot per parameter (empty where the default
/// applies) and the surplus positionals of a variadic callee.
#[derive(Clone, Debug)]
pub struct Bound<T> {
    /// One slot per parameter, with where its argument was written.
    pub slots: Vec<Option<(T, Span)>>,
    /// Surplus positionals of a variadic callee.
    pub rest: Vec<(T, Span)>,
}

impl<T> Bound<T> {
    /// What was given for parameter `i`, if anything.
    pub fn get(&self, i: usize) -> Option<&T> {
        self.slots.get(i).and_then(|s| s.as_ref()).map(|(t, _)| t)
    }
}

/// A call whose arguments do not fit its callee's parameters.
#[derive(Debug, Error, Diagnostic, Clone, PartialEq)]
pub enum BindProblem {
    /// More positional arguments than parameters: `area(1, 2, 3)` for `fn area(h, w=2)`.
    #[error("`{callee}` takes at most {max} positional argument{s}, got {given}", s = if *max == 1 { "" } else { "s" })]
    #[diagnostic(code(E0203))]
    TooManyArguments {
        /// The function called.
        callee: String,
        /// How many it takes.
        max: usize,
        /// How many were passed.
        given: usize,
        /// The first surplus argument.
        #[label("unexpected argument")]
        span: Span,
        /// The signature.
        #[help]
        help: String,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// A keyword that names no parameter: `Conv2d(1, 8, kernal_size=3)`.
    #[error("`{callee}` has no parameter `{name}`")]
    #[diagnostic(code(E0204))]
    UnknownKeyword {
        /// The function called.
        callee: String,
        /// The keyword as written.
        name: String,
        /// The keyword.
        #[label("unknown keyword")]
        span: Span,
        /// The closest parameter, or the signature.
        #[help]
        help: String,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// A required parameter left out: `Conv2d(1, 8)`.
    #[error("`{callee}` is missing its argument `{name}`")]
    #[diagnostic(code(E0205))]
    MissingArgument {
        /// The function called.
        callee: String,
        /// The parameter without a value.
        name: String,
        /// The call.
        #[label("`{name}` not given")]
        span: Span,
        /// How to pass it.
        #[help]
        help: String,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// A value of the wrong type: `len(3)`, `1 + "a"`, `Conv2d(1, 8, "3")`.
    #[error("wrong type for {what}: expected {expected}, got {got}")]
    #[diagnostic(code(E0207))]
    WrongType {
        /// What was being typed: "argument `x` of `len`", "operands of `+`".
        what: String,
        /// The types accepted.
        expected: String,
        /// The type found.
        got: String,
        /// The offending expression.
        #[label("this is {got}")]
        span: Span,
        /// A conversion or alternative, when one exists.
        #[help]
        help: Option<String>,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// One parameter given twice: `Linear(4, 2, in_features=4)`.
    #[error("`{callee}` got two values for `{name}`")]
    #[diagnostic(code(E0206))]
    ArgumentGivenTwice {
        /// The function called.
        callee: String,
        /// The parameter.
        name: String,
        /// The second value.
        #[label("given again here")]
        span: Span,
        /// The first value.
        #[label("first given here")]
        first: Span,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },
}

impl BindProblem {
    /// The span of the argument (or call) at fault.
    pub fn span(&self) -> Span {
        match self {
            BindProblem::TooManyArguments { span, .. }
            | BindProblem::UnknownKeyword { span, .. }
            | BindProblem::MissingArgument { span, .. }
            | BindProblem::WrongType { span, .. }
            | BindProblem::ArgumentGivenTwice { span, .. } => *span,
        }
    }

    /// The calls that led here, innermost first.
    pub fn calls(&self) -> &[Span] {
        match self {
            BindProblem::TooManyArguments { calls, .. }
            | BindProblem::UnknownKeyword { calls, .. }
            | BindProblem::MissingArgument { calls, .. }
            | BindProblem::WrongType { calls, .. }
            | BindProblem::ArgumentGivenTwice { calls, .. } => calls,
        }
    }

    /// Records that the problem passed out of the call at `span`.
    pub fn push_call(&mut self, span: Span) {
        match self {
            BindProblem::TooManyArguments { calls, .. }
            | BindProblem::UnknownKeyword { calls, .. }
            | BindProblem::MissingArgument { calls, .. }
            | BindProblem::WrongType { calls, .. }
            | BindProblem::ArgumentGivenTwice { calls, .. } => calls.push(span),
        }
    }
}

/// What a binder can see of an argument: a run-time value, or the checker's type of it.
/// Parameter types ([`ParamKind`]) are checked against this, so a wrong type is found by
/// the same test before the run and during it.
pub trait ArgKind {
    /// The type's name as messages give it (`int`, `str`, `list`), or `None` when unknown.
    fn kind(&self) -> Option<&'static str>;
    /// A list's items, when it is a list whose items are known.
    fn items(&self) -> Option<Vec<&Self>>;
    /// A string's text, when known.
    fn text(&self) -> Option<&str>;
}

/// The kinds of value a parameter accepts; checked when arguments are bound (E0207).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
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
    /// A function, builtin or layer.
    Callable,
    /// A tensor.
    Tensor,
    /// `true` or `false`.
    Bool,
    /// A size per spatial axis: an int (used for both) or a list of two ints `[h, w]`.
    Pair,
    /// A convolution's padding: a [`ParamKind::Pair`], `"same"` or `"valid"`.
    Padding,
    /// A layer's input size: an int, or `_` to take it from the first input.
    SizeOrInfer,
}

impl ParamKind {
    /// Whether `arg` is of this kind: `None` when the binder cannot tell (the checker's
    /// unknowns), never for a run-time value.
    pub fn admits<A: ArgKind + ?Sized>(self, arg: &A) -> Option<bool> {
        let kind = arg.kind()?;
        let pair = |arg: &A| match arg.items() {
            Some(items) if items.len() == 2 => {
                let mut all = Some(true);
                for item in items {
                    match item.kind() {
                        Some("int") => {}
                        Some(_) => return Some(false),
                        None => all = None,
                    }
                }
                all
            }
            Some(_) => Some(false),
            None => None,
        };
        Some(match self {
            ParamKind::Any => true,
            ParamKind::Int => kind == "int",
            ParamKind::Number => matches!(kind, "int" | "float"),
            ParamKind::Str => kind == "str",
            ParamKind::Sequence => matches!(kind, "list" | "range"),
            ParamKind::Callable => matches!(kind, "function" | "layer" | "net"),
            ParamKind::Tensor => kind == "tensor",
            ParamKind::Bool => kind == "bool",
            ParamKind::SizeOrInfer => matches!(kind, "int" | "_"),
            ParamKind::Pair | ParamKind::Padding => match kind {
                "int" => true,
                "list" => return pair(arg),
                "str" if self == ParamKind::Padding => match arg.text() {
                    Some(text) => matches!(text, "same" | "valid"),
                    None => return None,
                },
                _ => false,
            },
        })
    }

    /// How messages name the kind: "expected int, got str".
    pub fn describe(self) -> &'static str {
        match self {
            ParamKind::Any => "any value",
            ParamKind::Int => "int",
            ParamKind::Number => "int or float",
            ParamKind::Str => "str",
            ParamKind::Sequence => "list or range",
            ParamKind::Callable => "function",
            ParamKind::Tensor => "tensor",
            ParamKind::Bool => "bool",
            ParamKind::Pair => "an int or a list of two ints [h, w]",
            ParamKind::Padding => "an int, a list [h, w], \"same\" or \"valid\"",
            ParamKind::SizeOrInfer => "int or `_`",
        }
    }

    /// The fix offered with a value of the wrong kind, where there is one.
    pub fn help(self) -> Option<&'static str> {
        match self {
            ParamKind::Padding => {
                Some("padding=\"same\" keeps the size (stride 1), \"valid\" is no padding")
            }
            _ => None,
        }
    }

    /// E0207 for `arg`, given for parameter `param` of `callee`, when it is of another
    /// kind.
    pub fn check<A: ArgKind + ?Sized>(
        self,
        arg: &A,
        param: &str,
        callee: &str,
        span: Span,
    ) -> Result<(), Box<BindProblem>> {
        if self.admits(arg) != Some(false) {
            return Ok(());
        }
        Err(Box::new(BindProblem::WrongType {
            what: format!("argument `{param}` of `{callee}`"),
            expected: self.describe().to_string(),
            got: arg.kind().unwrap_or("unknown").to_string(),
            span,
            help: self.help().map(str::to_string),
            calls: Vec::new(),
        }))
    }
}

/// Binds positional arguments in order, then keywords by name: E0203 for surplus
/// positionals, E0204 for unknown keywords, E0206 for a parameter given twice, E0205 for a
/// required parameter left out.
pub fn bind<T>(
    callee: &Callee<'_>,
    args: impl IntoIterator<Item = Argument<T>>,
    call: Span,
) -> Result<Bound<T>, Box<BindProblem>> {
    let n = callee.params.count();
    let positional_slots = callee.params.positional_count();
    let mut slots: Vec<Option<(T, Span)>> = (0..n).map(|_| None).collect();
    let mut rest = Vec::new();
    let mut positional = 0;
    for arg in args {
        match arg.keyword {
            None => {
                if positional < positional_slots {
                    slots[positional] = Some((arg.value, arg.span));
                } else if callee.variadic {
                    rest.push((arg.value, arg.span));
                } else {
                    return Err(Box::new(BindProblem::TooManyArguments {
                        callee: callee.name.to_string(),
                        max: positional_slots,
                        given: positional + 1,
                        span: arg.span,
                        help: format!("the signature is `{}`", (callee.signature)()),
                        calls: Vec::new(),
                    }));
                }
                positional += 1;
            }
            Some((name, name_span)) => {
                let Some(i) = (0..n).find(|&i| callee.params.name(i) == &*name) else {
                    let names = (0..n).map(|i| callee.params.name(i));
                    let help = match closest(&name, names) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => format!("the signature is `{}`", (callee.signature)()),
                    };
                    return Err(Box::new(BindProblem::UnknownKeyword {
                        callee: callee.name.to_string(),
                        name: name.to_string(),
                        span: name_span,
                        help,
                        calls: Vec::new(),
                    }));
                };
                if let Some((_, first)) = &slots[i] {
                    return Err(Box::new(BindProblem::ArgumentGivenTwice {
                        callee: callee.name.to_string(),
                        name: name.to_string(),
                        span: arg.span,
                        first: *first,
                        calls: Vec::new(),
                    }));
                }
                slots[i] = Some((arg.value, arg.span));
            }
        }
    }
    if let Some(i) = (0..n).find(|&i| slots[i].is_none() && !callee.params.has_default(i)) {
        let name = callee.params.name(i);
        return Err(Box::new(BindProblem::MissingArgument {
            callee: callee.name.to_string(),
            name: name.to_string(),
            span: call,
            help: format!(
                "pass it by position or as `{name}=...`; the signature is `{}`",
                (callee.signature)()
            ),
            calls: Vec::new(),
        }));
    }
    Ok(Bound { slots, rest })
}

/// Binds the one input of a layer call, `layer(x)`: E0205 without one, E0204 for a
/// keyword, E0203 for a second argument.
pub fn bind_layer_input<T>(
    layer: &str,
    args: impl IntoIterator<Item = Argument<T>>,
    call: Span,
) -> Result<(T, Span), Box<BindProblem>> {
    let mut args = args.into_iter();
    let Some(arg) = args.next() else {
        return Err(Box::new(BindProblem::MissingArgument {
            callee: layer.to_string(),
            name: "input".into(),
            span: call,
            help: format!("a layer is called with its input: `{layer}(...)(x)`"),
            calls: Vec::new(),
        }));
    };
    if let Some((keyword, keyword_span)) = &arg.keyword {
        return Err(Box::new(BindProblem::UnknownKeyword {
            callee: layer.to_string(),
            name: keyword.to_string(),
            span: *keyword_span,
            help: "a layer takes its input by position: `layer(x)`".into(),
            calls: Vec::new(),
        }));
    }
    if let Some(extra) = args.next() {
        return Err(Box::new(BindProblem::TooManyArguments {
            callee: layer.to_string(),
            max: 1,
            given: 2,
            span: extra.span,
            help: "a layer takes one input tensor".into(),
            calls: Vec::new(),
        }));
    }
    Ok((arg.value, arg.span))
}
