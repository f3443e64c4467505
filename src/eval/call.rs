//! Calls: binding arguments to parameters (one routine for user `fn`s and builtins), then
//! running the callee.

use std::rc::Rc;

use super::error::RuntimeError;
use super::value::Value;
use super::{EvalResult, Flow, Interpreter, net};
use crate::builtins::layers::Layer;
use crate::builtins::{Args, BuiltinDef, DefaultValue};
pub(crate) use crate::diagnostic::binding::Callee;
use crate::diagnostic::binding::{self, Argument, ParamList};
use crate::source::Span;
use crate::syntax::ast::{Arg, FnDef, Param};

/// One evaluated call argument.
pub type CallArg = Argument<Value>;

/// Arguments bound to a callee's parameters.
pub(crate) type Bound = binding::Bound<Value>;

impl CallArg {
    /// A positional argument.
    pub fn positional(value: Value, span: Span) -> CallArg {
        Argument {
            keyword: None,
            value,
            span,
        }
    }
}

impl ParamList for Vec<Param> {
    fn count(&self) -> usize {
        self.len()
    }
    fn name(&self, i: usize) -> &str {
        &self[i].name.name
    }
    fn has_default(&self, i: usize) -> bool {
        self[i].default.is_some()
    }
}

/// Binds `args` to `callee`'s parameters (E0203–E0206).
pub(crate) fn bind(callee: &Callee<'_>, args: Vec<CallArg>, call: Span) -> EvalResult<Bound> {
    binding::bind(callee, args, call).map_err(|p| Box::new(RuntimeError::Bind(p)))
}

/// `name(a, b=…)`: a user fn's or net's signature, for messages (default expressions are
/// not kept as text).
pub(super) fn signature_text(name: &str, params: &[Param]) -> String {
    let params: Vec<String> = params
        .iter()
        .map(|p| match p.default {
            Some(_) => format!("{}=…", p.name.name),
            None => p.name.name.to_string(),
        })
        .collect();
    format!("{name}({})", params.join(", "))
}

impl Interpreter {
    /// Evaluates call arguments left to right.
    pub(super) fn eval_args(&mut self, args: &[Arg]) -> EvalResult<Vec<CallArg>> {
        let mut out = Vec::with_capacity(args.len());
        for arg in args {
            // `_` is a value only as an argument: a size a layer infers from its input.
            let value = match arg.value.node {
                crate::syntax::ast::ExprKind::Underscore => Value::Infer,
                _ => self.eval(&arg.value)?,
            };
            out.push(CallArg {
                keyword: arg.name.as_ref().map(|k| (k.name.clone(), k.span)),
                value,
                span: arg.span,
            });
        }
        Ok(out)
    }

    /// Calls `callee` with evaluated arguments; `span` is the call, for labels. Builtins
    /// use this to call back into scripts (`timeit`).
    pub fn call_value(
        &mut self,
        callee: &Value,
        args: Vec<CallArg>,
        span: Span,
    ) -> EvalResult<Value> {
        self.check_interrupt(span)?;
        match callee {
            Value::Function(def) => self.call_fn(def, args, span),
            Value::Builtin(def) => self.call_builtin(def, args, span),
            Value::Layer(layer) => match layer.model() {
                Some(model) => self.call_model(layer, &Rc::clone(model), args, span),
                None => self.call_layer(layer, args, span),
            },
            Value::Net(def) => self.call_net(def, args, span),
            other => Err(Box::new(
                RuntimeError::wrong_type("callee", "a function or layer", other.type_name(), span)
                    .with_help("only functions, layers and nets can be called"),
            )),
        }
    }

    fn call_fn(&mut self, def: &Rc<FnDef>, args: Vec<CallArg>, span: Span) -> EvalResult<Value> {
        if self.env.depth() >= self.recursion_limit {
            return Err(Box::new(RuntimeError::too_deep(
                self.recursion_limit,
                span,
                &def.name.name,
                "a recursive fn needs a case that returns without calling itself",
            )));
        }
        let signature = || signature_text(&def.name.name, &def.params);
        let callee = Callee {
            name: &def.name.name,
            params: &def.params,
            variadic: false,
            signature: &signature,
        };
        let bound = bind(&callee, args, span)?;
        let mark = self.env.mark();
        self.env.push_frame();
        let result = self.run_fn_body(def, bound);
        self.env.reset_to(mark);
        result.map_err(|mut err| {
            // Recursion repeats one call site; one label per site is enough.
            if err.calls().last() != Some(&span) {
                err.push_call(span);
            }
            err
        })
    }

    /// Binds the parameters in the new frame (defaults see the parameters before them),
    /// then runs the body.
    fn run_fn_body(&mut self, def: &FnDef, bound: Bound) -> EvalResult<Value> {
        for (param, slot) in def.params.iter().zip(bound.slots) {
            let value = match (slot, &param.default) {
                (Some((value, _)), _) => value,
                (None, Some(default)) => self.eval(default)?,
                // `bind` has reported missing required parameters.
                (None, None) => Value::None,
            };
            self.env.push(param.name.name.clone(), value);
        }
        match self.exec_stmts(&def.body.node)? {
            Flow::Normal => Ok(Value::None),
            Flow::Return(value, _) => Ok(value),
            Flow::Break(span) => Err(Self::misplaced("break", "a loop", span)),
            Flow::Continue(span) => Err(Self::misplaced("continue", "a loop", span)),
        }
    }

    fn call_builtin(
        &mut self,
        def: &'static BuiltinDef,
        args: Vec<CallArg>,
        span: Span,
    ) -> EvalResult<Value> {
        if !self.passes.is_empty() && crate::builtins::is_layer_constructor(def) {
            // Inside a net body a constructor is one layer of the model (`net` module doc).
            let key = net::occurrence_key(def.name, &args);
            let owns: Vec<Rc<Layer>> = args
                .iter()
                .filter_map(|a| match &a.value {
                    Value::Layer(l) => Some(Rc::clone(l)),
                    _ => None,
                })
                .collect();
            return self.occurrence(key, span, &owns, |this| {
                let args = this.bind_builtin(def, args, span)?;
                (def.run)(this, args)
            });
        }
        let args = self.bind_builtin(def, args, span)?;
        (def.run)(self, args)
    }

    /// Binds `args` to a builtin's parameters, fills defaults and checks types; the
    /// receiver is left none.
    pub(super) fn bind_builtin(
        &mut self,
        def: &'static BuiltinDef,
        args: Vec<CallArg>,
        span: Span,
    ) -> EvalResult<Args> {
        let signature = || def.signature();
        let callee = Callee {
            name: def.name,
            params: &def.params,
            variadic: def.rest.is_some(),
            signature: &signature,
        };
        let bound = bind(&callee, args, span)?;
        let mut values = Vec::with_capacity(def.params.len());
        let mut spans = Vec::with_capacity(def.params.len());
        for (param, slot) in def.params.iter().zip(bound.slots) {
            let (value, arg_span) = match slot {
                Some(given) => given,
                None => (param.default.to_value().unwrap_or(Value::None), span),
            };
            let none_allowed = param.default == DefaultValue::None && matches!(value, Value::None);
            if !none_allowed {
                param
                    .ty
                    .check(&value, param.name, def.name, arg_span)
                    .map_err(|p| Box::new(RuntimeError::Bind(p)))?;
            }
            values.push(value);
            spans.push(arg_span);
        }
        Ok(Args {
            values,
            spans,
            rest: bound.rest,
            call: span,
            receiver: Value::None,
            def,
        })
    }
}
