//! Tensors in files (LANGUAGE.md §11): `load_npy(path)` and `save_npy(path, t)`.

use std::path::Path;

use super::{Args, BuiltinDef, BuiltinParam as P, Ty};
use crate::eval::{RuntimeError, Value};
use crate::files::{FileError, write_atomic};
use crate::tensor::npy;

/// The path argument as written.
fn path_arg(args: &Args) -> String {
    match args.value(0) {
        Value::Str(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// E0501 for a read that failed, with the path and the system's reason.
pub fn cannot_read(path: &str, reason: String, args: &Args) -> Box<RuntimeError> {
    Box::new(RuntimeError::FileAccess {
        message: format!("cannot read `{path}`: {reason}"),
        span: args.call,
        label: "this read failed".to_string(),
        help: Some("check the path; it is relative to the directory `cnn` runs in".to_string()),
        calls: Vec::new(),
    })
}

/// E0502 for bytes that are not a valid `.npy` file.
pub fn invalid_npy(
    path: &str,
    err: &npy::NpyError,
    span: crate::source::Span,
) -> Box<RuntimeError> {
    Box::new(RuntimeError::InvalidFile {
        message: format!("`{path}` is not a valid npy file: {err}"),
        span,
        label: "read here".to_string(),
        help: Some("write it with `numpy.save(path, array)` or `save_npy(path, t)`".to_string()),
        calls: Vec::new(),
    })
}

pub(super) const LOAD_NPY: BuiltinDef = BuiltinDef {
    name: "load_npy",
    params: &[P::required("path", Ty::Str)],
    rest: None,
    doc: "load_npy(path): a tensor from a NumPy .npy file, converted to float32",
    run: |_, args| {
        let path = path_arg(&args);
        let bytes = std::fs::read(&path).map_err(|e| cannot_read(&path, e.to_string(), &args))?;
        npy::decode(&bytes)
            .map(Value::Tensor)
            .map_err(|e| invalid_npy(&path, &e, args.call))
    },
};

pub(super) const SAVE_NPY: BuiltinDef = BuiltinDef {
    name: "save_npy",
    params: &[P::required("path", Ty::Str), P::required("t", Ty::Tensor)],
    rest: None,
    doc: "save_npy(path, t): write a tensor as a float32 NumPy .npy file (atomically)",
    run: |_, args| {
        let path = path_arg(&args);
        let t = args.tensor(1)?;
        let bytes = npy::encode(&t);
        write_atomic(Path::new(&path), &bytes).map_err(|e| {
            let reason = match e {
                FileError::Write { reason, .. } | FileError::Read { reason, .. } => reason,
                other => other.to_string(),
            };
            Box::new(RuntimeError::FileAccess {
                message: format!("cannot write `{path}`: {reason}"),
                span: args.call,
                label: "this write failed".to_string(),
                help: Some("check that the folder exists and can be written".to_string()),
                calls: Vec::new(),
            })
        })?;
        Ok(Value::None)
    },
};
