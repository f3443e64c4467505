//! Tensor constructors and tensor utilities (LANGUAGE.md §6, §11): `tensor`, `zeros`, ...,
//! `seed`, `shares_storage`, `assert_close`.

use super::args::literal;
use super::{Args, BuiltinDef, BuiltinParam as P, DefaultValue as D, Ty};
use crate::eval::{EvalResult, Interpreter, RuntimeError, Value};
use crate::tensor::{self, Tensor, TensorError};

/// `requires_grad=` shared by every constructor.
const REQUIRES_GRAD: P = P::keyword("requires_grad", Ty::Bool, D::Bool(false));

/// Applies `requires_grad=` (the last parameter of every constructor) to a new tensor.
fn finish(interp: &Interpreter, args: &Args, t: Result<Tensor, TensorError>) -> EvalResult<Value> {
    let t = t.map_err(|e| interp.tensor_err(e, args.call))?;
    let flag_index = args.def.params.len() - 1;
    if args.bool(flag_index)? {
        t.requires_grad_(true)
            .map_err(|e| interp.tensor_err(e, args.call))?;
    }
    Ok(Value::Tensor(t))
}

/// The shape of `zeros(2, 3)` / `zeros([2, 3])`: the surplus positionals, or one list.
fn rest_shape(args: &Args) -> EvalResult<Vec<usize>> {
    match args.rest.as_slice() {
        [(Value::List(_), _)] => {
            let one = Args {
                values: vec![args.rest[0].0.clone()],
                spans: vec![args.rest[0].1],
                rest: Vec::new(),
                call: args.call,
                receiver: Value::None,
                def: args.def,
            };
            one.shape(Some(0))
        }
        _ => args.shape(None),
    }
}

/// A constructor of a shape given as `f(2, 3)` or `f([2, 3])`.
macro_rules! sized {
    ($name:literal, $doc:literal, $make:path) => {
        BuiltinDef {
            name: $name,
            params: &[REQUIRES_GRAD],
            rest: Some("size"),
            doc: $doc,
            run: |interp, args| {
                let shape = rest_shape(&args)?;
                finish(interp, &args, $make(&shape))
            },
        }
    };
}

pub(super) const TENSOR: BuiltinDef = BuiltinDef {
    name: "tensor",
    params: &[P::required("data", Ty::Any), REQUIRES_GRAD],
    rest: None,
    doc: "tensor(data, requires_grad=false): a float32 tensor from nested lists of numbers",
    run: |interp, args| {
        let t = match args.value(0) {
            // `tensor(t)` copies, as `torch.tensor(t)` does (with a warning there).
            Value::Tensor(t) => t.detach().contiguous_copy(),
            other => Ok(literal(
                interp,
                other,
                args.span(0),
                "argument `data` of `tensor`",
            )?),
        };
        finish(interp, &args, t)
    },
};

pub(super) const ZEROS: BuiltinDef = sized!(
    "zeros",
    "zeros(size..., requires_grad=false): a tensor of zeros; zeros(2, 3) = zeros([2, 3])",
    Tensor::zeros
);
pub(super) const ONES: BuiltinDef = sized!(
    "ones",
    "ones(size..., requires_grad=false): a tensor of ones",
    Tensor::ones
);
pub(super) const RAND: BuiltinDef = sized!(
    "rand",
    "rand(size..., requires_grad=false): uniform samples in [0, 1)",
    Tensor::rand
);
pub(super) const RANDN: BuiltinDef = sized!(
    "randn",
    "randn(size..., requires_grad=false): standard normal samples",
    Tensor::randn
);

pub(super) const FULL: BuiltinDef = BuiltinDef {
    name: "full",
    params: &[
        P::required("shape", Ty::Any),
        P::required("value", Ty::Number),
        REQUIRES_GRAD,
    ],
    rest: None,
    doc: "full(shape, value, requires_grad=false): a tensor filled with value",
    run: |interp, args| {
        let shape = args.shape(Some(0))?;
        finish(interp, &args, Tensor::full(&shape, args.float(1)?))
    },
};

pub(super) const ARANGE: BuiltinDef = BuiltinDef {
    name: "arange",
    params: &[
        P::required("start", Ty::Number),
        P::optional("end", Ty::Number, D::None),
        P::optional("step", Ty::Number, D::Int(1)),
        REQUIRES_GRAD,
    ],
    rest: None,
    doc: "arange(end) or arange(start, end, step=1): evenly spaced values in [start, end)",
    run: |interp, args| {
        let (start, end) = match args.opt_float(1)? {
            Some(end) => (args.float(0)?, end),
            None => (0.0, args.float(0)?),
        };
        finish(interp, &args, Tensor::arange(start, end, args.float(2)?))
    },
};

pub(super) const LINSPACE: BuiltinDef = BuiltinDef {
    name: "linspace",
    params: &[
        P::required("start", Ty::Number),
        P::required("end", Ty::Number),
        P::required("steps", Ty::Int),
        REQUIRES_GRAD,
    ],
    rest: None,
    doc: "linspace(start, end, steps): steps values from start to end, inclusive",
    run: |interp, args| {
        let steps = usize::try_from(args.int(2)?).map_err(|_| {
            Box::new(RuntimeError::value(
                "linspace: steps cannot be negative",
                args.span(2),
                "negative",
            ))
        })?;
        finish(
            interp,
            &args,
            Tensor::linspace(args.float(0)?, args.float(1)?, steps),
        )
    },
};

pub(super) const EYE: BuiltinDef = BuiltinDef {
    name: "eye",
    params: &[
        P::required("n", Ty::Int),
        P::optional("m", Ty::Int, D::None),
        REQUIRES_GRAD,
    ],
    rest: None,
    doc: "eye(n, m=n): the identity matrix",
    run: |interp, args| {
        let size = |i: usize, n: i64| {
            usize::try_from(n).map_err(|_| {
                Box::new(RuntimeError::value(
                    "eye: sizes cannot be negative",
                    args.span(i),
                    "negative",
                ))
            })
        };
        let n = size(0, args.int(0)?)?;
        let m = match args.opt_int(1)? {
            Some(m) => size(1, m)?,
            None => n,
        };
        finish(interp, &args, Tensor::eye(n, m))
    },
};

pub(super) const RANDINT: BuiltinDef = BuiltinDef {
    name: "randint",
    params: &[
        P::required("low", Ty::Int),
        P::required("high", Ty::Int),
        P::required("shape", Ty::Any),
        REQUIRES_GRAD,
    ],
    rest: None,
    doc: "randint(low, high, shape): integers drawn uniformly from [low, high), as floats",
    run: |interp, args| {
        let shape = args.shape(Some(2))?;
        finish(
            interp,
            &args,
            Tensor::randint(args.int(0)?, args.int(1)?, &shape),
        )
    },
};

macro_rules! like {
    ($name:literal, $doc:literal, $method:ident) => {
        BuiltinDef {
            name: $name,
            params: &[P::required("input", Ty::Tensor), REQUIRES_GRAD],
            rest: None,
            doc: $doc,
            run: |interp, args| {
                let t = args.tensor(0)?;
                finish(interp, &args, t.$method())
            },
        }
    };
}

pub(super) const ZEROS_LIKE: BuiltinDef = like!(
    "zeros_like",
    "zeros_like(t): zeros of t's shape",
    zeros_like
);
pub(super) const ONES_LIKE: BuiltinDef =
    like!("ones_like", "ones_like(t): ones of t's shape", ones_like);
pub(super) const RANDN_LIKE: BuiltinDef = like!(
    "randn_like",
    "randn_like(t): standard normal samples of t's shape",
    randn_like
);

pub(super) const SEED: BuiltinDef = BuiltinDef {
    name: "seed",
    params: &[P::required("n", Ty::Int)],
    rest: None,
    doc: "seed(n): make every random draw after it reproducible",
    run: |_, args| {
        // Negative seeds are as good as any; the bits are what matter.
        tensor::seed(args.int(0)? as u64);
        Ok(Value::None)
    },
};

pub(super) const SHARES_STORAGE: BuiltinDef = BuiltinDef {
    name: "shares_storage",
    params: &[P::required("a", Ty::Tensor), P::required("b", Ty::Tensor)],
    rest: None,
    doc: "shares_storage(a, b): whether two tensors are views of the same memory",
    run: |_, args| {
        Ok(Value::Bool(Tensor::shares_storage(
            &args.tensor(0)?,
            &args.tensor(1)?,
        )))
    },
};

pub(super) const ASSERT_CLOSE: BuiltinDef = BuiltinDef {
    name: "assert_close",
    params: &[
        P::required("actual", Ty::Any),
        P::required("expected", Ty::Any),
        P::optional("rtol", Ty::Number, D::Float(1.3e-6)),
        P::optional("atol", Ty::Number, D::Float(1e-5)),
    ],
    rest: None,
    doc: "assert_close(actual, expected, rtol=1.3e-6, atol=1e-5): fail (E0504) unless |a - e| <= atol + rtol*|e| everywhere",
    run: assert_close,
};

/// The position of flat element `i` in `shape`, as `[i, j, ...]`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (d, &size) in shape.iter().enumerate().rev() {
        if size > 0 {
            index[d] = i % size;
            i /= size;
        }
    }
    index
}

fn assert_close(interp: &mut Interpreter, args: Args) -> EvalResult<Value> {
    let actual = args.tensor_like(interp, 0)?;
    let expected = args.tensor_like(interp, 1)?;
    let (rtol, atol) = (args.float(2)?, args.float(3)?);
    let fail = |message: String| {
        Err(Box::new(RuntimeError::AssertionFailed {
            message,
            span: args.call,
            calls: Vec::new(),
        }))
    };
    // A plain number is compared with every element; tensors must have one shape.
    let expected = if matches!(args.value(1), Value::Int(_) | Value::Float(_)) {
        let value = expected.item().unwrap_or(0.0);
        Tensor::full(actual.shape(), f64::from(value))
            .map_err(|e| interp.tensor_err(e, args.call))?
    } else {
        expected
    };
    if actual.shape() != expected.shape() {
        return fail(format!(
            "tensors are not close: actual has shape {:?}, expected has shape {:?}",
            actual.shape(),
            expected.shape()
        ));
    }
    let (a, e) = (actual.to_vec(), expected.to_vec());
    let mut worst: Option<(usize, f64)> = None;
    let mut failing = 0usize;
    for (i, (&x, &y)) in a.iter().zip(&e).enumerate() {
        let (x, y) = (f64::from(x), f64::from(y));
        let diff = (x - y).abs();
        let allowed = atol + rtol * y.abs();
        // NaN never compares close (torch's equal_nan=False); infinities must match exactly.
        let close = diff <= allowed || (x == y);
        if !close {
            failing += 1;
            let excess = if diff.is_nan() {
                f64::INFINITY
            } else {
                diff - allowed
            };
            if worst.is_none_or(|(_, w)| excess > w) {
                worst = Some((i, excess));
            }
        }
    }
    let Some((i, _)) = worst else {
        return Ok(Value::None);
    };
    let (x, y) = (f64::from(a[i]), f64::from(e[i]));
    let index = unravel(i, actual.shape());
    fail(format!(
        "tensors are not close: {failing} of {} elements differ; the worst is at index {index:?}: actual {x}, expected {y} (|difference| {:.3e} > atol + rtol*|expected| = {:.3e})",
        a.len(),
        (x - y).abs(),
        atol + rtol * y.abs()
    ))
}
