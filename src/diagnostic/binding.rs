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
            | BindProblem::ArgumentGivenTwice { span, .. } => *span,
        }
    }

    /// The calls that led here, innermost first.
    pub fn calls(&self) -> &[Span] {
        match self {
            BindProblem::TooManyArguments { calls, .. }
            | BindProblem::UnknownKeyword { calls, .. }
            | BindProblem::MissingArgument { calls, .. }
            | BindProblem::ArgumentGivenTwice { calls, .. } => calls,
        }
    }

    /// Records that the problem passed out of the call at `span`.
    pub fn push_call(&mut self, span: Span) {
        match self {
            BindProblem::TooManyArguments { calls, .. }
            | BindProblem::UnknownKeyword { calls, .. }
            | BindProblem::MissingArgument { calls, .. }
            | BindProblem::ArgumentGivenTwice { calls, .. } => calls.push(span),
        }
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
