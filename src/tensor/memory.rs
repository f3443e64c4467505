//! The memory budget: one limit for everything a program allocates in proportion to its
//! input (tensor storage, kernel scratch buffers, lists, strings), so that a request that
//! cannot fit is refused with E0503 instead of aborting the process or waking the
//! operating system's out-of-memory killer.
//!
//! Live tensor storage is counted in one global counter: a [`Storage`](super::storage::Storage)
//! adds its bytes when it is made and takes them back when it is dropped (one atomic add
//! each, never one per element). Every new buffer must fit in what the limit leaves above
//! that count. Tensor buffers, copies, lists and strings are then reserved with
//! `try_reserve` ([`try_vec`], [`try_string`]), so even a request the budget allows but the
//! system refuses is an error, not an abort; the convolution kernels' scratch (im2col
//! tiles, per-thread weight-gradient sums) is checked with [`check`] before they run.
//! Scratch, lists and strings are not counted while they live: they are short-lived or
//! small next to the tensors.
//!
//! The limit is `--max-memory` when given, otherwise the memory available when the process
//! started (the smaller of `/proc/meminfo`'s `MemAvailable` and what the cgroup's
//! `memory.max` leaves) minus a margin for the interpreter itself.

use std::sync::atomic::{AtomicU64, Ordering};

/// The limit in bytes; 0 until it is set or first read.
static LIMIT: AtomicU64 = AtomicU64::new(0);

/// Bytes of tensor storage alive now.
static LIVE: AtomicU64 = AtomicU64::new(0);

/// What is assumed available where the system does not say (not Linux): 64 GiB.
const UNKNOWN_AVAILABLE: u64 = 64 << 30;

/// A request over the budget: what asked, and for how much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverBudget {
    /// The operation that would allocate (`add`, `conv2d`, `tolist`, `list +`).
    pub op: &'static str,
    /// Bytes requested (`u128` so an overflowing request still prints).
    pub bytes: u128,
    /// Bytes the budget had left.
    pub left: u64,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} bytes requested, more than the {} bytes left of the memory budget",
            self.op, self.bytes, self.left
        )
    }
}

/// Sets the budget to `bytes` (what `--max-memory` does). Allocations already made stay;
/// the next ones must fit.
pub fn set_limit(bytes: u64) {
    LIMIT.store(bytes.max(1), Ordering::Relaxed);
}

/// The budget in bytes: the one set, or the default ([`default_limit`]) computed once.
pub fn limit() -> u64 {
    match LIMIT.load(Ordering::Relaxed) {
        0 => {
            let bytes = default_limit().max(1);
            // Another thread may have set it meanwhile; theirs wins.
            match LIMIT.compare_exchange(0, bytes, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => bytes,
                Err(set) => set,
            }
        }
        set => set,
    }
}

/// Bytes of tensor storage alive now.
pub fn live() -> u64 {
    LIVE.load(Ordering::Relaxed)
}

/// Bytes a new allocation may still take.
pub fn left() -> u64 {
    limit().saturating_sub(live())
}

/// Counts `bytes` of new tensor storage.
pub(crate) fn track(bytes: usize) {
    LIVE.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// Gives back `bytes` of dropped tensor storage.
pub(crate) fn untrack(bytes: usize) {
    LIVE.fetch_sub(bytes as u64, Ordering::Relaxed);
}

/// Refuses a request of `bytes` for `op` that does not fit in what the budget has left.
pub fn check(op: &'static str, bytes: u128) -> Result<(), OverBudget> {
    let left = left();
    if bytes > u128::from(left) {
        return Err(OverBudget { op, bytes, left });
    }
    Ok(())
}

/// An empty vector with room for exactly `len` items, or [`OverBudget`] when they do not fit
/// in the budget or the system refuses them: the one fallible path for buffers that grow
/// with the input.
pub fn try_vec<T>(op: &'static str, len: usize) -> Result<Vec<T>, OverBudget> {
    let bytes = len as u128 * std::mem::size_of::<T>() as u128;
    check(op, bytes)?;
    let mut data = Vec::new();
    data.try_reserve_exact(len).map_err(|_| OverBudget {
        op,
        bytes,
        left: left(),
    })?;
    Ok(data)
}

/// An empty string with room for `len` bytes, under the same rules as [`try_vec`].
pub fn try_string(op: &'static str, len: usize) -> Result<String, OverBudget> {
    check(op, len as u128)?;
    let mut text = String::new();
    text.try_reserve_exact(len).map_err(|_| OverBudget {
        op,
        bytes: len as u128,
        left: left(),
    })?;
    Ok(text)
}

/// The default budget: the memory available now ([`available_memory`]) minus a margin of
/// an eighth (at least 32 MiB, at most half) for the interpreter's own small allocations.
pub fn default_limit() -> u64 {
    with_margin(available_memory())
}

/// `available` minus the margin [`default_limit`] keeps.
fn with_margin(available: u64) -> u64 {
    let margin = (available / 8).max(32 << 20).min(available / 2);
    available - margin
}

/// Bytes of memory available to this process: the smaller of `MemAvailable` in
/// `/proc/meminfo` and what its cgroup's limit leaves (`memory.max` minus
/// `memory.current`, or cgroup v1's `memory.limit_in_bytes` minus `memory.usage_in_bytes`);
/// 64 GiB where neither can be read.
pub fn available_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_available(&text));
    let cgroup = cgroup_available();
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => UNKNOWN_AVAILABLE,
    }
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib.saturating_mul(1024))
}

/// What this process's cgroup still allows, if it has a limit.
fn cgroup_available() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    // cgroup v2: the process's own group (`0::/path` in /proc/self/cgroup), else the root
    // of the mounted hierarchy (what a container sees).
    let own = read("/proc/self/cgroup").and_then(|text| {
        text.lines()
            .find_map(|line| line.strip_prefix("0::"))
            .map(|path| format!("/sys/fs/cgroup{}", path.trim_end_matches('/')))
    });
    let dirs = own.into_iter().chain(["/sys/fs/cgroup".to_string()]);
    for dir in dirs {
        if let Some(max) = read(&format!("{dir}/memory.max")) {
            let current = read(&format!("{dir}/memory.current"));
            if let Some(left) = cgroup_left(&max, current.as_deref()) {
                return Some(left);
            }
        }
    }
    let max = read("/sys/fs/cgroup/memory/memory.limit_in_bytes")?;
    let usage = read("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    cgroup_left(&max, usage.as_deref())
}

/// A cgroup's limit text (`max` for none) minus its usage text, in bytes.
fn cgroup_left(max: &str, current: Option<&str>) -> Option<u64> {
    let max: u64 = max.trim().parse().ok()?;
    // cgroup v1 writes "no limit" as a number near i64::MAX.
    if max >= 1 << 60 {
        return None;
    }
    let current = current
        .and_then(|c| c.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Some(max.saturating_sub(current))
}

/// Parses a `--max-memory` size: a whole number of bytes, or one followed by `K`, `M`, `G`
/// or `T` (powers of 1024, an optional `B` or `iB` after them, any case): `64M`, `2GiB`,
/// `1500000`. Zero and overflowing sizes are refused.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let bad = || {
        format!(
            "invalid size `{text}`: expected a number of bytes with an optional unit, such as 64M or 2G"
        )
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    let bytes = number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size `{text}` is too large"))?;
    if bytes == 0 {
        return Err("the memory budget must be more than 0 bytes".to_string());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("3k"), Ok(3 << 10));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size("10b"), Ok(10));
        for bad in ["", "M", "-1M", "1.5G", "64X", "0", "0M", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn meminfo_and_cgroup_texts_are_read() {
        let meminfo = "MemTotal:       24000000 kB\nMemAvailable:   1000 kB\n";
        assert_eq!(mem_available(meminfo), Some(1_024_000));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
        assert_eq!(cgroup_left("max\n", Some("100")), None);
        assert_eq!(cgroup_left("1000\n", Some("300\n")), Some(700));
        assert_eq!(cgroup_left("1000", Some("3000")), Some(0));
        assert_eq!(cgroup_left("9223372036854771712", None), None);
    }

    #[test]
    fn the_default_leaves_a_margin() {
        assert_eq!(with_margin(8 << 30), 7 << 30);
        assert_eq!(with_margin(128 << 20), 96 << 20);
        assert_eq!(with_margin(40 << 20), 20 << 20);
        assert_eq!(with_margin(0), 0);
    }
}
