//! `layer.save(path)` / `layer.load(path)` (LANGUAGE.md §7, §11): a layer's or model's
//! state dict as safetensors, with PyTorch's names (`conv2d_0.weight`, `0.bias`,
//! `bn.running_mean`), so `torch.load_state_dict(safetensors.torch.load_file(path))` reads
//! what we write and the other way round.
//!
//! Tensors are float32 little-endian; BatchNorm2d's `num_batches_tracked` is an int64
//! scalar as in PyTorch (a file without it loads too, since some exporters drop it). Writes
//! are atomic ([`crate::files::write_atomic`]). Loading checks every name and shape before
//! copying anything, then copies in place under `no_grad`, so optimizers holding the
//! parameters see the new values and the version counters move as for any in-place write.

use std::collections::BTreeSet;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::Args;
use super::layers::{Layer, StateEntry};
use crate::eval::{EvalResult, Interpreter, RuntimeError, Value};
use crate::source::Span;
use crate::tensor::{self, Tensor};

fn invalid(message: String, span: Span, help: Option<String>) -> Box<RuntimeError> {
    Box::new(RuntimeError::InvalidFile {
        message,
        span,
        label: "in this load".into(),
        help,
        calls: Vec::new(),
    })
}

/// The file's bytes for `layer`'s state dict.
pub fn to_bytes(layer: &Layer) -> Result<Vec<u8>, String> {
    let entries = layer.state_dict();
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(entries.len());
    for (name, entry) in entries {
        match entry {
            StateEntry::Tensor(t) => {
                let bytes: Vec<u8> = t.to_vec().iter().flat_map(|v| v.to_le_bytes()).collect();
                buffers.push((name, Dtype::F32, t.shape().to_vec(), bytes));
            }
            StateEntry::BatchesTracked(count) => {
                buffers.push((
                    name,
                    Dtype::I64,
                    Vec::new(),
                    count.get().to_le_bytes().to_vec(),
                ));
            }
        }
    }
    let mut views = Vec::with_capacity(buffers.len());
    for (name, dtype, shape, bytes) in &buffers {
        let view = TensorView::new(*dtype, shape.clone(), bytes).map_err(|e| e.to_string())?;
        views.push((name.as_str(), view));
    }
    safetensors::serialize(views, None).map_err(|e| e.to_string())
}

/// `layer.save(path)`.
pub fn save(args: &Args, layer: &Layer) -> EvalResult<Value> {
    let Value::Str(path) = args.value(0) else {
        return Ok(Value::None);
    };
    let bytes = to_bytes(layer).map_err(|reason| {
        invalid(
            format!("cannot encode the state dict as safetensors: {reason}"),
            args.call,
            None,
        )
    })?;
    crate::files::write_atomic(Path::new(&**path), &bytes).map_err(|e| {
        Box::new(RuntimeError::FileAccess {
            message: e.to_string(),
            span: args.call,
            label: "this write failed".to_string(),
            help: Some("check that the folder exists and is writable".into()),
            calls: Vec::new(),
        })
    })?;
    Ok(Value::None)
}

/// `layer.load(path)`: every name and shape must match the layer's state dict.
pub fn load(interp: &mut Interpreter, args: &Args, layer: &Layer) -> EvalResult<Value> {
    let Value::Str(path) = args.value(0) else {
        return Ok(Value::None);
    };
    let span = args.call;
    let bytes = std::fs::read(&**path).map_err(|e| {
        Box::new(RuntimeError::FileAccess {
            message: format!("cannot read `{path}`: {e}"),
            span,
            label: "this read failed".to_string(),
            help: Some("check the path; it is relative to the current directory".into()),
            calls: Vec::new(),
        })
    })?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| {
        invalid(
            format!("`{path}` is not a valid safetensors file: {e}"),
            span,
            Some(
                "save checkpoints with `model.save(path)` or `safetensors.torch.save_file`".into(),
            ),
        )
    })?;
    // The header is JSON, whose parser keeps the last of two equal keys: a file naming a
    // tensor twice is ambiguous, so it is refused rather than read one way.
    if let Some(name) = duplicate_key(&bytes) {
        return Err(invalid(
            format!("`{path}` is not a valid safetensors file: it names `{name}` twice"),
            span,
            Some(
                "save checkpoints with `model.save(path)` or `safetensors.torch.save_file`".into(),
            ),
        ));
    }
    let expected = layer.state_dict();
    if expected.is_empty() && layer.model().is_some_and(|m| !m.is_built()) {
        return Err(invalid(
            format!(
                "`{path}` cannot be loaded yet: the model's layers are built on its first call"
            ),
            span,
            Some("call the model once (its `_` sizes depend on the input), then load".into()),
        ));
    }
    let in_file: BTreeSet<&str> = file.names().into_iter().collect();
    let wanted: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    let missing: Vec<&str> = expected
        .iter()
        .filter(|(n, e)| !in_file.contains(n.as_str()) && matches!(e, StateEntry::Tensor(_)))
        .map(|(n, _)| n.as_str())
        .collect();
    let unexpected: Vec<&str> = in_file.difference(&wanted).copied().collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing {}", quoted(&missing)));
        }
        if !unexpected.is_empty() {
            parts.push(format!("unexpected {}", quoted(&unexpected)));
        }
        return Err(invalid(
            format!(
                "`{path}` does not fit this {}: {}",
                layer.class_name(),
                parts.join("; ")
            ),
            span,
            Some(format!(
                "the layer's names are {}",
                quoted(&wanted.iter().copied().collect::<Vec<_>>())
            )),
        ));
    }
    // Check everything first: a failed load changes nothing.
    let mut plan: Vec<(Tensor, Vec<f32>)> = Vec::new();
    let mut counts = Vec::new();
    for (name, entry) in &expected {
        let Ok(view) = file.tensor(name) else {
            continue;
        };
        match entry {
            StateEntry::Tensor(t) => {
                if view.dtype() != Dtype::F32 {
                    return Err(invalid(
                        format!("`{name}` in `{path}` is {:?}, expected F32", view.dtype()),
                        span,
                        None,
                    ));
                }
                if view.shape() != t.shape() {
                    return Err(invalid(
                        format!(
                            "`{name}` in `{path}` has shape {:?}, the layer's has {:?}",
                            view.shape(),
                            t.shape()
                        ),
                        span,
                        Some(
                            "build the model with the configuration the checkpoint was saved from"
                                .into(),
                        ),
                    ));
                }
                let values = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                plan.push((t.clone(), values));
            }
            StateEntry::BatchesTracked(cell) => {
                let value = match (view.dtype(), view.data().len()) {
                    (Dtype::I64, 8) => {
                        let b = view.data();
                        i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                    }
                    _ => {
                        return Err(invalid(
                            format!(
                                "`{name}` in `{path}` must be an I64 scalar, it is {:?} {:?}",
                                view.dtype(),
                                view.shape()
                            ),
                            span,
                            None,
                        ));
                    }
                };
                counts.push((cell.clone(), value));
            }
        }
    }
    let _no_grad = tensor::no_grad();
    interp.at(span);
    for (target, values) in plan {
        let shape = target.shape().to_vec();
        let src = Tensor::from_vec(values, &shape).map_err(|e| interp.tensor_err(e, span))?;
        target.copy_(&src).map_err(|e| interp.tensor_err(e, span))?;
    }
    for (cell, value) in counts {
        cell.set(value);
    }
    Ok(Value::None)
}

/// A key that the top-level object of the safetensors header (already parsed as valid JSON)
/// holds twice, decoded.
fn duplicate_key(bytes: &[u8]) -> Option<String> {
    let len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header = std::str::from_utf8(bytes.get(8..8usize.checked_add(len)?)?).ok()?;
    let mut seen = std::collections::HashSet::new();
    let mut chars = header.chars();
    let mut depth = 0usize;
    let mut key_expected = false;
    while let Some(c) = chars.next() {
        match c {
            '{' | '[' => {
                depth += 1;
                key_expected = c == '{' && depth == 1;
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            ',' => key_expected = depth == 1,
            '"' => {
                let text = json_string(&mut chars)?;
                if key_expected && !seen.insert(text.clone()) {
                    return Some(text);
                }
                key_expected = false;
            }
            _ => {}
        }
    }
    None
}

/// The rest of a JSON string whose opening quote was just read, decoded.
fn json_string(chars: &mut std::str::Chars) -> Option<String> {
    let mut out = String::new();
    let hex = |chars: &mut std::str::Chars| -> Option<u32> {
        let digits: String = chars.by_ref().take(4).collect();
        u32::from_str_radix(&digits, 16).ok()
    };
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let high = hex(chars)?;
                    let code = if (0xD800..0xDC00).contains(&high) {
                        // A surrogate pair: `\uD83D\uDE00`.
                        let (_, _) = (chars.next()?, chars.next()?);
                        let low = hex(chars)?;
                        0x10000 + ((high - 0xD800) << 10) + (low.checked_sub(0xDC00)? & 0x3FF)
                    } else {
                        high
                    };
                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
}

fn quoted(names: &[&str]) -> String {
    let shown: Vec<String> = names.iter().take(8).map(|n| format!("`{n}`")).collect();
    let more = names.len().saturating_sub(8);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
