//! Nets (LANGUAGE.md §8): building a model from a `net` definition and running it.
//!
//! Calling a net (`SRCNN(scale=2)`) binds its parameters and returns a *model*: a layer
//! ([`crate::builtins::layers::Layer`]) whose kind holds a [`Model`], so everything that
//! takes a layer (`Sequential`, `|>`, `parameters()`, optimizers, `save`) takes a model.
//! Calling the model binds one tensor per `input` declaration, checks it against the
//! declared dims (E0315) and runs the body in a *pass*.
//!
//! # Layer occurrences
//!
//! Each layer constructor (or net call) evaluated during a pass is one *occurrence*. The
//! pass that builds the model records them in order, with a key made of the constructor's
//! name and written arguments; later passes get the k-th recorded layer back from the k-th
//! evaluation, without running the constructor again (no new random weights), and stop with
//! E0507 when the key differs or the count changes. A constructor in a loop therefore makes
//! one layer per iteration, and `let conv = Conv2d(...)` applied twice is one layer. Layers
//! handed to a `Sequential` built in the same pass belong to it and leave the model's own
//! list, as in PyTorch.
//!
//! # Building before the first forward
//!
//! A model's parameters must exist as soon as the net is called (`SGD(model.parameters())`
//! comes before any forward), but sizes written `_` are only known from an input. So the
//! net call runs the body on a *probe*: zeros shaped by the declared dims, ints and
//! parameter expressions as written, a symbol in dim 0 (the batch) as 1 and any other
//! symbol or `_` as 32. The probe runs with output suppressed, warnings dropped, autograd
//! off, and the interpreter's `building` flag set, under which BatchNorm2d leaves its running
//! statistics alone and Dropout is the identity. A second probe with 33 for those sizes runs
//! on a fresh twin model. When both succeed with the same layers and the same inferred
//! sizes, the first probe's layers are the model's; the random stream is left where the
//! first probe left it, as if the weights had been drawn once. Otherwise (a `_` that depends
//! on a symbolic size, such as `Flatten() |> Linear(_, 10)` over symbolic `H`, or a probe
//! that fails, e.g. an input too small for 32) the model stays unbuilt, the random stream is
//! restored, and the first real call builds it: its parameters appear after that call.
//! Errors inside probes are not reported; the real call reports them. An interrupt and
//! runaway recursion (a net that builds itself) are the exceptions: they stop the build.
//!
//! # Names
//!
//! A layer of a model is named by the `let` that binds it in the building pass where there
//! is one, else `<kind>_<k>` with the lower-case PyTorch class name (the net's name for a
//! sub-model) and `k` its index in the model's layer list: `conv2d_0`, `relu_1`, `deep_2`.
//! A name already taken (a `let` inside a loop) gets `_<k>` appended: `block`, `block_1`,
//! `block_2`. Parameters nest with `.`: `encoder.conv2d_0.weight`, `seq.0.bias`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::rc::Rc;

use super::call::{Callee, bind};
use super::env::Mark;
use super::error::RuntimeError;
use super::value::Value;
use super::{CallArg, EvalResult, Flow, Interpreter};
use crate::builtins::layers::Layer;
use crate::diagnostic::binding::ParamList;
use crate::source::Span;
use crate::syntax::ast::{Expr, ExprKind, Ident, NetDef, ShapeSpec, StmtKind};
use crate::tensor::{self, Tensor};

/// The two probe sizes for symbolic dims (other than the batch) and `_`.
const PROBE_SIZES: [usize; 2] = [32, 33];

/// A model built from a `net`: the definition, its bound parameters and its layers.
pub struct Model {
    def: Rc<NetDef>,
    /// The net's parameters and their values, in declaration order.
    params: Vec<(Rc<str>, Value)>,
    /// The net call that made it.
    span: Span,
    state: RefCell<ModelState>,
}

#[derive(Default)]
struct ModelState {
    /// Whether a pass recorded the layers; until then the next call records them.
    built: bool,
    /// Every constructor evaluation of the building pass, in order.
    occurrences: Vec<Occurrence>,
    /// The model's own layers (occurrences not owned by a `Sequential`) with their names.
    layers: Vec<(String, Rc<Layer>)>,
}

/// One layer constructor (or net call) evaluated in a pass.
struct Occurrence {
    /// The constructor and its written arguments, compared on later passes.
    key: String,
    layer: Rc<Layer>,
    /// The constructor call.
    span: Span,
    /// Whether a `Sequential` of the same pass holds it.
    owned: bool,
    /// The `let` name bound to it in the building pass.
    let_name: Option<Rc<str>>,
}

/// A pass over a model's body in progress.
pub(crate) struct Pass {
    model: Rc<Model>,
    /// The next occurrence index.
    cursor: usize,
    /// Whether this pass records the layers (the model is unbuilt).
    recording: bool,
    /// The frame depth of the body, where `input` statements are allowed.
    depth: usize,
}

/// One entry of a model's flattened layer list ([`Model::flat_layers`]).
#[derive(Clone)]
pub struct FlatLayer {
    /// The full dotted name: `encoder.conv2d_0`, `seq.1`.
    pub name: String,
    /// The layer (a sub-model or `Sequential` too).
    pub layer: Rc<Layer>,
    /// Nesting depth: 0 for the model's own layers.
    pub depth: usize,
    /// Whether it holds other layers (a sub-model or `Sequential`), listed right after it.
    pub is_container: bool,
}

/// One layer application recorded by [`Interpreter::trace_forward`].
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEntry {
    /// The full dotted name in the traced model, or the class name for a layer outside it.
    pub name: String,
    /// PyTorch's class name: `Conv2d`.
    pub kind: String,
    /// The input's shape.
    pub input: Vec<usize>,
    /// The output's shape.
    pub output: Vec<usize>,
}

/// What the tracing hook in `layers::forward` records before names are known.
pub(crate) struct RawTrace {
    pub layer: *const Layer,
    pub kind: String,
    pub input: Vec<usize>,
    pub output: Vec<usize>,
}

impl Model {
    /// The net's name.
    pub fn net_name(&self) -> &str {
        &self.def.name.name
    }

    /// The definition this model was built from.
    pub fn def(&self) -> &Rc<NetDef> {
        &self.def
    }

    /// The net's parameters and their values.
    pub fn params(&self) -> &[(Rc<str>, Value)] {
        &self.params
    }

    /// Whether the layers exist (false while a `_` waits for the first call).
    pub fn is_built(&self) -> bool {
        self.state.borrow().built
    }

    /// The model's own layers with their names, in order (empty until built).
    pub fn layers(&self) -> Vec<(String, Rc<Layer>)> {
        self.state.borrow().layers.clone()
    }

    /// The layer called `name`, for `model.name`.
    pub fn layer_named(&self, name: &str) -> Option<Rc<Layer>> {
        let state = self.state.borrow();
        state
            .layers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| Rc::clone(l))
    }

    /// Every layer, depth first, with full dotted names; a sub-model or `Sequential` comes
    /// right before its layers.
    pub fn flat_layers(&self) -> Vec<FlatLayer> {
        let mut out = Vec::new();
        for (name, layer) in self.layers() {
            flatten_into(&name, &layer, 0, &mut out);
        }
        out
    }

    fn twin(&self) -> Model {
        Model {
            def: Rc::clone(&self.def),
            params: self.params.clone(),
            span: self.span,
            state: RefCell::new(ModelState::default()),
        }
    }

    fn reset(&self) {
        *self.state.borrow_mut() = ModelState::default();
    }

    /// Names the recorded layers and marks the model built.
    fn finish(&self, training: bool) {
        let mut state = self.state.borrow_mut();
        let mut taken = HashSet::new();
        let mut layers = Vec::new();
        for occ in state.occurrences.iter().filter(|o| !o.owned) {
            let k = layers.len();
            let base = match &occ.let_name {
                Some(name) => name.to_string(),
                None => format!("{}_{k}", occ.layer.class_name().to_lowercase()),
            };
            let mut name = base.clone();
            let mut extra = 0;
            while taken.contains(&name) {
                name = if extra == 0 {
                    format!("{base}_{k}")
                } else {
                    format!("{base}_{k}_{extra}")
                };
                extra += 1;
            }
            taken.insert(name.clone());
            occ.layer.set_training(training);
            layers.push((name, Rc::clone(&occ.layer)));
        }
        state.layers = layers;
        state.built = true;
    }

    /// The recorded layers as text, to compare two probes: constructor keys and the layers
    /// as printed, which shows every inferred size.
    fn structure(&self) -> String {
        let state = self.state.borrow();
        let mut out = String::new();
        for occ in &state.occurrences {
            out.push_str(&format!("{} => {}\n", occ.key, occ.layer));
        }
        out
    }
}

/// `layer` and every layer in it, depth first, the root named `""` at depth 0 and the
/// others with dotted names (`.conv2d_0`, `.seq.1`) one deeper per level.
pub fn flatten(layer: &Rc<Layer>) -> Vec<FlatLayer> {
    let mut out = Vec::new();
    flatten_into("", layer, 0, &mut out);
    out
}

fn flatten_into(name: &str, layer: &Rc<Layer>, depth: usize, out: &mut Vec<FlatLayer>) {
    let children: Vec<(String, Rc<Layer>)> = if let Some(model) = layer.model() {
        model.layers()
    } else {
        layer
            .sequential_layers()
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), Rc::clone(l)))
            .collect()
    };
    out.push(FlatLayer {
        name: name.to_string(),
        layer: Rc::clone(layer),
        depth,
        is_container: layer.model().is_some() || !layer.sequential_layers().is_empty(),
    });
    for (child, inner) in children {
        flatten_into(&format!("{name}.{child}"), &inner, depth + 1, out);
    }
}

impl fmt::Display for Model {
    /// PyTorch's `repr` of a module: its class name and named children.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        if !state.built {
            return write!(f, "{}(<built on its first call>)", self.net_name());
        }
        writeln!(f, "{}(", self.net_name())?;
        for (name, layer) in &state.layers {
            let inner = layer.to_string().replace('\n', "\n  ");
            writeln!(f, "  ({name}): {inner}")?;
        }
        f.write_str(")")
    }
}

/// The `input` declarations of a net body, in order.
fn input_decls(def: &NetDef) -> Vec<(&Ident, &ShapeSpec)> {
    def.body
        .node
        .iter()
        .filter_map(|stmt| match &stmt.node {
            StmtKind::Input { name, shape } => Some((name, shape)),
            _ => None,
        })
        .collect()
}

/// The input names of a net as the argument binder sees them.
struct Inputs<'a>(Vec<&'a Ident>);

impl ParamList for Inputs<'_> {
    fn count(&self) -> usize {
        self.0.len()
    }
    fn name(&self, i: usize) -> &str {
        &self.0[i].name
    }
    fn has_default(&self, _: usize) -> bool {
        false
    }
}

/// What a pass runs on.
enum PassInput {
    /// A real call: the bound tensors with their spans.
    Call(Vec<(Tensor, Span)>),
    /// A build probe with this size for symbolic dims and `_`.
    Probe(usize),
}

/// A declared dim, resolved.
enum Dim {
    Any,
    Symbol(Rc<str>),
    Size(i64),
}

/// A compact key for one written argument of a constructor.
fn arg_key(value: &Value) -> String {
    match value {
        Value::Layer(_) => "<layer>".into(),
        Value::Tensor(t) => format!("<tensor {:?}>", t.shape()),
        other => other.repr().to_string(),
    }
}

/// The occurrence key of a constructor call: its name and written arguments.
pub(crate) fn occurrence_key(name: &str, args: &[CallArg]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| match &a.keyword {
            Some((k, _)) => format!("{k}={}", arg_key(&a.value)),
            None => arg_key(&a.value),
        })
        .collect();
    format!("{name}({})", parts.join(", "))
}

impl Interpreter {
    /// `Net(args)`: binds the parameters and builds the model (see the module doc). Inside
    /// another net's pass this is one occurrence: a sub-model built once.
    pub(super) fn call_net(
        &mut self,
        def: &Rc<NetDef>,
        args: Vec<CallArg>,
        span: Span,
    ) -> EvalResult<Value> {
        let key = format!("net {}", occurrence_key(&def.name.name, &args));
        self.occurrence(key, span, &[], |this| this.build_model(def, args, span))
    }

    /// Inside a pass, the layer for this constructor evaluation: recorded on the building
    /// pass, the recorded one (unbuilt) on later passes. Outside a pass, just `build`.
    /// `owns` are the argument layers a `Sequential` takes over.
    pub(crate) fn occurrence(
        &mut self,
        key: String,
        span: Span,
        owns: &[Rc<Layer>],
        build: impl FnOnce(&mut Self) -> EvalResult<Value>,
    ) -> EvalResult<Value> {
        let Some(pass) = self.passes.last() else {
            return build(self);
        };
        let model = Rc::clone(&pass.model);
        if pass.recording {
            let value = build(self)?;
            if let Value::Layer(layer) = &value {
                let mut state = model.state.borrow_mut();
                for occ in &mut state.occurrences {
                    if owns.iter().any(|o| Rc::ptr_eq(o, &occ.layer)) {
                        occ.owned = true;
                    }
                }
                state.occurrences.push(Occurrence {
                    key,
                    layer: Rc::clone(layer),
                    span,
                    owned: false,
                    let_name: None,
                });
            }
            return Ok(value);
        }
        let k = pass.cursor;
        let state = model.state.borrow();
        let Some(occ) = state.occurrences.get(k) else {
            let n = state.occurrences.len();
            return Err(Box::new(RuntimeError::LayerStructureChanged {
                message: format!(
                    "`{}` reached more layers than when it was built: this is layer {k}, the model has {n}",
                    model.net_name()
                ),
                span,
                label: format!("a new layer: {key}"),
                first: None,
                help: structure_help(),
                calls: Vec::new(),
            }));
        };
        if occ.key != key {
            return Err(Box::new(RuntimeError::LayerStructureChanged {
                message: format!(
                    "layer {k} of `{}` changed: it was built as {}, this call reaches {key}",
                    model.net_name(),
                    occ.key
                ),
                span,
                label: format!("layer {k} is {key} here"),
                first: Some(occ.span).filter(|s| *s != span),
                help: structure_help(),
                calls: Vec::new(),
            }));
        }
        let layer = Rc::clone(&occ.layer);
        drop(state);
        if let Some(pass) = self.passes.last_mut() {
            pass.cursor += 1;
        }
        Ok(Value::Layer(layer))
    }

    /// `let name = <layer>` in a building pass names the layer.
    pub(super) fn name_layer(&mut self, name: &Rc<str>, layer: &Rc<Layer>) {
        let Some(pass) = self.passes.last() else {
            return;
        };
        if !pass.recording {
            return;
        }
        let mut state = pass.model.state.borrow_mut();
        if let Some(occ) = state
            .occurrences
            .iter_mut()
            .find(|o| Rc::ptr_eq(&o.layer, layer) && o.let_name.is_none())
        {
            occ.let_name = Some(Rc::clone(name));
        }
    }

    /// Whether an `input` statement is allowed here: directly in the body of the net whose
    /// pass is running (its inputs are bound before the body runs).
    pub(super) fn input_allowed(&self) -> bool {
        self.passes
            .last()
            .is_some_and(|pass| pass.depth == self.env.depth())
    }

    /// E0505 when a pass or build of `net` at `span` would nest past the recursion limit.
    fn check_net_depth(&self, net: &str, span: Span) -> EvalResult<()> {
        if self.env.depth() < self.recursion_limit {
            return Ok(());
        }
        Err(Box::new(RuntimeError::too_deep(
            self.recursion_limit,
            span,
            net,
            "a net that builds itself needs a case that does not, such as `if depth > 0`",
        )))
    }

    /// Binds the parameters (defaults see the parameters before them), makes the model and
    /// builds it by probing.
    fn build_model(
        &mut self,
        def: &Rc<NetDef>,
        args: Vec<CallArg>,
        span: Span,
    ) -> EvalResult<Value> {
        let signature = || super::call::signature_text(&def.name.name, &def.params);
        let callee = Callee {
            name: &def.name.name,
            params: &def.params,
            variadic: false,
            signature: &signature,
        };
        let bound = bind(&callee, args, span)?;
        // A default can build the net again (`net A(inner=A())`) before any pass runs.
        self.check_net_depth(&def.name.name, span)?;
        let mark = self.env.mark();
        self.env.push_frame();
        let mut params = Vec::with_capacity(def.params.len());
        let mut failed = None;
        for (param, slot) in def.params.iter().zip(bound.slots) {
            let value = match (slot, &param.default) {
                (Some((value, _)), _) => value,
                (None, Some(default)) => match self.eval(default) {
                    Ok(v) => v,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                },
                (None, None) => Value::None,
            };
            self.env.push(param.name.name.clone(), value.clone());
            params.push((param.name.name.clone(), value));
        }
        self.env.reset_to(mark);
        if let Some(mut err) = failed {
            // A default that failed is labelled at the net call that needed it.
            if err.span() != span {
                err.push_call(span);
            }
            return Err(err);
        }
        let model = Rc::new(Model {
            def: Rc::clone(def),
            params,
            span,
            state: RefCell::new(ModelState::default()),
        });
        self.probe_build(&model)?;
        Ok(Value::Layer(Rc::new(Layer::from_model(model, span))))
    }

    /// Builds `model` on two probes (module doc); leaves it unbuilt when they disagree or
    /// fail. Only an interrupt or runaway recursion is reported.
    fn probe_build(&mut self, model: &Rc<Model>) -> EvalResult<()> {
        let rng_before = tensor::random::state();
        let out = std::mem::replace(&mut self.out, Box::new(std::io::sink()));
        let warnings = self.warnings.len();
        let warned = self.warned.clone();
        let building = std::mem::replace(&mut self.building, true);
        let grad = tensor::set_grad_enabled(false);

        let first = self.run_pass(model, PassInput::Probe(PROBE_SIZES[0]), model.span, true);
        let rng_after = tensor::random::state();
        let twin = Rc::new(model.twin());
        let second = if first.is_ok() {
            tensor::random::set_state(rng_before.clone());
            self.run_pass(&twin, PassInput::Probe(PROBE_SIZES[1]), model.span, true)
        } else {
            Ok(Value::None)
        };

        drop(grad);
        self.building = building;
        self.out = out;
        self.warnings.truncate(warnings);
        self.warned = warned;
        // A probe that recursed too deep would do so again on the real call, whose own
        // nested builds would probe again: reporting it now keeps a runaway build linear.
        for result in [&first, &second] {
            if let Err(err) = result
                && (matches!(**err, RuntimeError::Interrupted { .. }) || err.is_too_deep())
            {
                model.reset();
                tensor::random::set_state(rng_before);
                return Err(err.clone());
            }
        }
        if first.is_ok() && second.is_ok() && model.structure() == twin.structure() {
            tensor::random::set_state(rng_after);
        } else {
            model.reset();
            tensor::random::set_state(rng_before);
        }
        Ok(())
    }

    /// `model(x, ...)`: binds one tensor per `input` declaration and runs a pass.
    pub(super) fn call_model(
        &mut self,
        layer: &Rc<Layer>,
        model: &Rc<Model>,
        args: Vec<CallArg>,
        span: Span,
    ) -> EvalResult<Value> {
        let def = Rc::clone(model.def());
        let decls = input_decls(&def);
        let names = Inputs(decls.iter().map(|(n, _)| *n).collect());
        let signature = || {
            let names: Vec<&str> = decls.iter().map(|(n, _)| &*n.name).collect();
            format!("model of {}: ({})", def.name.name, names.join(", "))
        };
        let callee = Callee {
            name: &def.name.name,
            params: &names,
            variadic: false,
            signature: &signature,
        };
        let bound = bind(&callee, args, span)?;
        let mut inputs = Vec::with_capacity(decls.len());
        for ((name, _), slot) in decls.iter().zip(bound.slots) {
            let Some((value, arg_span)) = slot else {
                continue;
            };
            let Value::Tensor(t) = value else {
                return Err(Box::new(RuntimeError::wrong_type(
                    format!("input `{}` of `{}`", name.name, def.name.name),
                    "tensor",
                    value.type_name(),
                    arg_span,
                )));
            };
            inputs.push((t, arg_span));
        }
        self.run_pass(model, PassInput::Call(inputs), span, layer.training())
    }

    /// A model used as a layer (in `Sequential`, or `forward` on one tensor).
    pub(crate) fn forward_model(
        &mut self,
        model: &Rc<Model>,
        x: &Tensor,
        input_span: Span,
        call: Span,
        training: bool,
    ) -> EvalResult<Tensor> {
        let value = self.run_pass(
            model,
            PassInput::Call(vec![(x.clone(), input_span)]),
            call,
            training,
        )?;
        match value {
            Value::Tensor(t) => Ok(t),
            other => Err(Box::new(
                RuntimeError::wrong_type(
                    format!("the result of `{}` used as a layer", model.net_name()),
                    "tensor",
                    other.type_name(),
                    call,
                )
                .with_help("a net used as a layer must return one tensor"),
            )),
        }
    }

    /// Runs one forward of `layer` on `inputs`, recording each layer application in order:
    /// (full name, kind, input shape, output shape). Sub-model and `Sequential` containers
    /// are not entries themselves; their layers are.
    pub fn trace_forward(
        &mut self,
        layer: &Rc<Layer>,
        inputs: Vec<Tensor>,
        span: Span,
    ) -> EvalResult<(Value, Vec<TraceEntry>)> {
        let saved = self.trace.replace(Vec::new());
        let args = inputs
            .into_iter()
            .map(|t| CallArg::positional(Value::Tensor(t), span))
            .collect();
        let result = self.call_value(&Value::Layer(Rc::clone(layer)), args, span);
        let raw = std::mem::replace(&mut self.trace, saved).unwrap_or_default();
        let value = result?;
        let names: Vec<(String, *const Layer)> = match layer.model() {
            Some(model) => model
                .flat_layers()
                .into_iter()
                .map(|f| (f.name, Rc::as_ptr(&f.layer)))
                .collect(),
            None => flatten(layer)
                .into_iter()
                .map(|f| {
                    (
                        f.name.trim_start_matches('.').to_string(),
                        Rc::as_ptr(&f.layer),
                    )
                })
                .collect(),
        };
        let entries = raw
            .into_iter()
            .map(|r| TraceEntry {
                name: names
                    .iter()
                    .find(|(_, p)| *p == r.layer)
                    .map_or_else(|| r.kind.clone(), |(n, _)| n.clone()),
                kind: r.kind,
                input: r.input,
                output: r.output,
            })
            .collect();
        Ok((value, entries))
    }

    /// [`Interpreter::trace_forward`] that leaves no trace in the program: no output, no
    /// gradients, no running-statistics updates, the random stream as it was (what
    /// `summary(model, shape)` runs).
    pub fn quiet_trace_forward(
        &mut self,
        layer: &Rc<Layer>,
        inputs: Vec<Tensor>,
        span: Span,
    ) -> EvalResult<Vec<TraceEntry>> {
        let rng = tensor::random::state();
        let out = std::mem::replace(&mut self.out, Box::new(std::io::sink()));
        let warnings = self.warnings.len();
        let building = std::mem::replace(&mut self.building, true);
        let grad = tensor::set_grad_enabled(false);
        let result = self.trace_forward(layer, inputs, span);
        drop(grad);
        self.building = building;
        self.out = out;
        self.warnings.truncate(warnings);
        tensor::random::set_state(rng);
        result.map(|(_, entries)| entries)
    }

    /// One pass over the body: binds parameters and inputs in a new frame, records or
    /// replays the layer occurrences, and returns what `return` gives.
    fn run_pass(
        &mut self,
        model: &Rc<Model>,
        input: PassInput,
        span: Span,
        training: bool,
    ) -> EvalResult<Value> {
        self.check_net_depth(model.net_name(), span)?;
        let recording = !model.is_built();
        if recording {
            model.reset();
        }
        let mark = self.env.mark();
        self.env.push_frame();
        let result = self.run_pass_in_frame(model, input, span, recording, mark);
        self.env.reset_to(mark);
        match result {
            Ok(value) => {
                if recording {
                    model.finish(training);
                }
                Ok(value)
            }
            Err(mut err) => {
                if recording {
                    model.reset();
                }
                // Recursion repeats one call site, and an error in the call's own
                // arguments (E0315) needs no second label there.
                let in_arguments = matches!(*err, RuntimeError::NetInputMismatch { .. })
                    && span.start <= err.span().start
                    && err.span().end <= span.end;
                if err.calls().last() != Some(&span) && err.span() != span && !in_arguments {
                    err.push_call(span);
                }
                Err(err)
            }
        }
    }

    fn run_pass_in_frame(
        &mut self,
        model: &Rc<Model>,
        input: PassInput,
        span: Span,
        recording: bool,
        _mark: Mark,
    ) -> EvalResult<Value> {
        let def = Rc::clone(model.def());
        for (name, value) in model.params() {
            self.env.push(Rc::clone(name), value.clone());
        }
        let decls = input_decls(&def);
        let tensors = self.bind_inputs(&def, &decls, model, input, span)?;
        for ((name, _), t) in decls.iter().zip(tensors) {
            self.env.push(name.name.clone(), Value::Tensor(t));
        }
        self.passes.push(Pass {
            model: Rc::clone(model),
            cursor: 0,
            recording,
            depth: self.env.depth(),
        });
        let flow = self.exec_stmts(&def.body.node);
        let pass = self.passes.pop();
        let value = match flow? {
            Flow::Normal => Value::None,
            Flow::Return(value, _) => value,
            Flow::Break(s) => return Err(Self::misplaced("break", "a loop", s)),
            Flow::Continue(s) => return Err(Self::misplaced("continue", "a loop", s)),
        };
        if let Some(pass) = pass
            && !recording
        {
            let n = model.state.borrow().occurrences.len();
            if pass.cursor != n {
                return Err(Box::new(RuntimeError::LayerStructureChanged {
                    message: format!(
                        "`{}` reached {} of its {n} layers in this call",
                        model.net_name(),
                        pass.cursor
                    ),
                    span,
                    label: "this call skipped layers".into(),
                    first: model
                        .state
                        .borrow()
                        .occurrences
                        .get(pass.cursor)
                        .map(|o| o.span),
                    help: structure_help(),
                    calls: Vec::new(),
                }));
            }
        }
        Ok(value)
    }

    /// Resolves the declared dims of one input.
    fn declared_dims(&mut self, model: &Model, shape: &ShapeSpec) -> EvalResult<Vec<Dim>> {
        let mut dims = Vec::with_capacity(shape.node.len());
        for dim in &shape.node {
            dims.push(match &dim.node {
                ExprKind::Underscore => Dim::Any,
                ExprKind::Name(ident) if !model.params.iter().any(|(n, _)| *n == ident.name) => {
                    Dim::Symbol(ident.name.clone())
                }
                _ => match self.eval(dim)? {
                    Value::Int(n) => Dim::Size(n),
                    other => {
                        return Err(Box::new(RuntimeError::wrong_type(
                            "a declared input dimension",
                            "int, symbol or `_`",
                            other.type_name(),
                            dim.span,
                        )));
                    }
                },
            });
        }
        Ok(dims)
    }

    /// The tensors a pass binds: the call's, checked against the declarations (E0315), or
    /// probe zeros shaped by them.
    fn bind_inputs(
        &mut self,
        def: &NetDef,
        decls: &[(&Ident, &ShapeSpec)],
        model: &Model,
        input: PassInput,
        span: Span,
    ) -> EvalResult<Vec<Tensor>> {
        let mut symbols: Vec<(Rc<str>, usize, String)> = Vec::new();
        match input {
            PassInput::Probe(size) => {
                let mut out = Vec::with_capacity(decls.len());
                for (_, shape) in decls {
                    let dims = self.declared_dims(model, shape)?;
                    let mut sizes = Vec::with_capacity(dims.len());
                    for (i, dim) in dims.iter().enumerate() {
                        let probe = if i == 0 { 1 } else { size };
                        sizes.push(match dim {
                            Dim::Any => probe,
                            Dim::Size(n) => usize::try_from(*n).unwrap_or(0),
                            Dim::Symbol(s) => match symbols.iter().find(|(n, ..)| n == s) {
                                Some((_, v, _)) => *v,
                                None => {
                                    symbols.push((s.clone(), probe, String::new()));
                                    probe
                                }
                            },
                        });
                    }
                    out.push(Tensor::zeros(&sizes).map_err(|e| self.tensor_err(e, span))?);
                }
                Ok(out)
            }
            PassInput::Call(tensors) => {
                let mut out = Vec::with_capacity(tensors.len());
                for ((name, shape), (t, arg_span)) in decls.iter().zip(tensors) {
                    let dims = self.declared_dims(model, shape)?;
                    let actual = t.shape().to_vec();
                    let mismatch =
                        |message: String, declared: Span, label: String, help: String| {
                            // On the argument, as the checker reports it.
                            Box::new(RuntimeError::NetInputMismatch {
                                message,
                                span: arg_span,
                                label: format!("`{}` is {:?}", name.name, actual),
                                declared,
                                declared_label: label,
                                help,
                                calls: Vec::new(),
                            })
                        };
                    if dims.len() != actual.len() {
                        let help = if dims.len() == actual.len() + 1 {
                            "add the missing batch dimension with `.unsqueeze(0)`".to_string()
                        } else {
                            format!(
                                "pass a {}-D tensor, as declared: `input {}: {}`",
                                dims.len(),
                                name.name,
                                shape_text(shape)
                            )
                        };
                        return Err(mismatch(
                            format!(
                                "`{}` declares input `{}` with {} dimensions, the argument has shape {:?}",
                                def.name.name,
                                name.name,
                                dims.len(),
                                actual
                            ),
                            shape.span,
                            format!("{} dimensions declared", dims.len()),
                            help,
                        ));
                    }
                    for (i, (dim, &size)) in dims.iter().zip(&actual).enumerate() {
                        let written = &shape.node[i];
                        match dim {
                            Dim::Any => {}
                            Dim::Size(n) => {
                                if usize::try_from(*n).ok() != Some(size) {
                                    let how = if matches!(written.node, ExprKind::Int(_)) {
                                        format!("dimension {i} must be {n}")
                                    } else {
                                        let params: Vec<String> = model
                                            .params
                                            .iter()
                                            .filter(|(p, _)| mentions(written, p))
                                            .map(|(p, v)| format!("{p} = {v}"))
                                            .collect();
                                        format!(
                                            "with {}, dimension {i} ({}) is {n}",
                                            params.join(", "),
                                            expr_text(written)
                                        )
                                    };
                                    return Err(mismatch(
                                        format!(
                                            "`{}` expects size {n} in dimension {i} of `{}`, the argument has shape {actual:?}",
                                            def.name.name, name.name
                                        ),
                                        written.span,
                                        format!("declared as {n}"),
                                        format!(
                                            "{how}; pass an input of that size, or build the net with other parameters"
                                        ),
                                    ));
                                }
                            }
                            Dim::Symbol(s) => {
                                let here = format!("dimension {i} of `{}`", name.name);
                                match symbols.iter().find(|(n, ..)| n == s) {
                                    Some((_, v, first)) if *v != size => {
                                        return Err(mismatch(
                                            format!(
                                                "`{s}` must agree across the inputs of `{}`: {first} is {v}, {here} is {size}",
                                                def.name.name
                                            ),
                                            written.span,
                                            format!("`{s}` is {v} here"),
                                            format!(
                                                "`{s}` took {v} from {first}; pass inputs that agree on it"
                                            ),
                                        ));
                                    }
                                    Some(_) => {}
                                    None => symbols.push((s.clone(), size, here)),
                                }
                            }
                        }
                    }
                    out.push(t);
                }
                Ok(out)
            }
        }
    }
}

fn structure_help() -> String {
    "a model keeps the layers its first call built: create every layer on every call (the data may choose between their outputs), or make the choice a net parameter".into()
}

/// Whether `expr` mentions the name `name`.
fn mentions(expr: &Expr, name: &str) -> bool {
    expr_text(expr)
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word == name)
}

/// An expression as written, without the printer's outermost parentheses.
fn expr_text(expr: &Expr) -> String {
    let text = crate::syntax::printer::expr_to_string(expr);
    match text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        Some(inner) if matches!(expr.node, ExprKind::Binary { .. }) => inner.to_string(),
        _ => text,
    }
}

fn shape_text(shape: &ShapeSpec) -> String {
    let dims: Vec<String> = shape.node.iter().map(expr_text).collect();
    format!("[{}]", dims.join(", "))
}
