//! Variable scopes.
//!
//! All bindings live in one stack, `Vec<(name, value)>`, searched from the top. Blocks
//! and calls only record where they start, so entering and leaving a scope costs a push and
//! a truncate, and a lookup scans a handful of entries without hashing or allocating. Names
//! are `Rc<str>` shared with the AST, so most comparisons fail or succeed on the length or
//! the first byte. The top level, which grows with the script, also has an index by name,
//! so declaring or finding a global costs the same in a script of any length.

use std::collections::HashMap;
use std::rc::Rc;

use super::value::Value;

/// The bindings of a running program: the script's top level, its blocks and the frames
/// of the `fn` calls in progress.
#[derive(Debug)]
pub struct Env {
    /// Every live binding, outermost first.
    bindings: Vec<(Rc<str>, Value)>,
    /// Where each open scope starts in `bindings`; scope 0 (the top level) starts at 0.
    scopes: Vec<usize>,
    /// For each `fn` call in progress, the index in `scopes` of its first scope.
    frames: Vec<usize>,
    /// Where each top-level name is bound in `bindings` (its latest top-level binding).
    global_index: HashMap<Rc<str>, usize>,
    /// Since the last [`Env::save_globals`]: how to put the top level back.
    journal: Option<Journal>,
    /// Counts the calls of [`Env::save_globals`], naming each saved state.
    generation: u64,
    /// Per top-level binding, the last generation whose journal holds its old value.
    recorded: Vec<u64>,
}

/// The changes to the top level since [`Env::save_globals`], to undo them.
#[derive(Debug)]
struct Journal {
    generation: u64,
    /// How many top-level bindings there were.
    len: usize,
    /// The old value of each of those bindings changed since, in the order first changed.
    undo: Vec<(usize, Value)>,
}

/// A saved state of the top level (see [`Env::save_globals`]); the default one is the empty
/// top level.
#[derive(Clone, Copy, Debug, Default)]
pub struct SavedTop(u64);

/// Up to this many top-level bindings, scanning them beats hashing the name.
const SCAN_GLOBALS: usize = 32;

/// Where an [`Env`] stood before a scope or frame was entered, to return to it.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    bindings: usize,
    scopes: usize,
    frames: usize,
}

/// Name equality tuned for short identifiers: a byte loop beats a `memcmp` call there.
#[inline]
fn same_name(a: &Rc<str>, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && (std::ptr::eq(a, b) || a.iter().zip(b).all(|(x, y)| x == y))
}

impl Default for Env {
    fn default() -> Env {
        Env::new()
    }
}

impl Env {
    /// An environment with an empty top level.
    pub fn new() -> Env {
        Env {
            bindings: Vec::new(),
            scopes: vec![0],
            frames: Vec::new(),
            global_index: HashMap::new(),
            journal: None,
            generation: 0,
            recorded: Vec::new(),
        }
    }

    /// The current position, for [`Env::reset_to`].
    pub fn mark(&self) -> Mark {
        Mark {
            bindings: self.bindings.len(),
            scopes: self.scopes.len(),
            frames: self.frames.len(),
        }
    }

    /// Drops every scope, frame and binding opened after `mark`.
    pub fn reset_to(&mut self, mark: Mark) {
        let globals = self.globals_end();
        self.bindings.truncate(mark.bindings);
        self.scopes.truncate(mark.scopes.max(1));
        self.frames.truncate(mark.frames);
        if mark.bindings < globals {
            self.reindex_globals();
        }
    }

    /// Rebuilds [`Env::global_index`] from the top-level bindings.
    fn reindex_globals(&mut self) {
        let end = self.globals_end();
        self.global_index.clear();
        for (i, (name, _)) in self.bindings[..end].iter().enumerate() {
            self.global_index.insert(name.clone(), i);
        }
    }

    /// Leaves only the top-level scope, after an error stopped a run midway; top-level
    /// bindings made before the error stay.
    pub fn unwind_to_top(&mut self) {
        let end = self.globals_end();
        self.bindings.truncate(end);
        self.scopes.truncate(1);
        self.frames.clear();
    }

    /// Marks the top level as it is now, for [`Env::restore_globals`]: from here on, each
    /// top-level binding keeps its old value (a shared handle) the first time it changes,
    /// so saving costs nothing and restoring costs what changed.
    pub fn save_globals(&mut self) -> SavedTop {
        self.generation += 1;
        self.journal = Some(Journal {
            generation: self.generation,
            len: self.globals_end(),
            undo: Vec::new(),
        });
        SavedTop(self.generation)
    }

    /// Puts the top level back as it was at `saved` (the latest save, or the default: the
    /// empty top level), dropping every scope and frame: a REPL entry that failed leaves the
    /// names as they were before it.
    pub fn restore_globals(&mut self, saved: SavedTop) {
        self.scopes.truncate(1);
        self.frames.clear();
        match self.journal.take() {
            Some(journal) if journal.generation == saved.0 => {
                for (i, (name, _)) in self.bindings.iter().enumerate().skip(journal.len) {
                    if self.global_index.get(name) == Some(&i) {
                        self.global_index.remove(name);
                    }
                }
                self.bindings.truncate(journal.len);
                for (i, value) in journal.undo.into_iter().rev() {
                    if let Some(binding) = self.bindings.get_mut(i) {
                        binding.1 = value;
                    }
                }
            }
            _ => {
                self.bindings.clear();
                self.global_index.clear();
                self.recorded.clear();
            }
        }
    }

    /// Binding `i` is about to change: keep its old value if it is a top-level binding
    /// the journal has not kept yet.
    fn touch(&mut self, i: usize) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        if i >= journal.len {
            return;
        }
        if self.recorded.len() <= i {
            self.recorded.resize(i + 1, 0);
        }
        if self.recorded[i] != journal.generation {
            self.recorded[i] = journal.generation;
            journal.undo.push((i, self.bindings[i].1.clone()));
        }
    }

    /// Opens a block scope.
    pub fn push_scope(&mut self) {
        self.scopes.push(self.bindings.len());
    }

    /// Opens a call frame: the callee sees only its own bindings and the top level.
    pub fn push_frame(&mut self) {
        self.frames.push(self.scopes.len());
        self.push_scope();
    }

    /// Drops the bindings of the current scope after its first `keep`, for loops that
    /// reuse one scope per pass.
    pub fn clear_scope_after(&mut self, keep: usize) {
        if let Some(&start) = self.scopes.last() {
            self.bindings.truncate(start + keep);
        }
        if self.scopes.len() == 1 {
            self.reindex_globals();
        }
    }

    /// The end of the top-level bindings: inner scopes are pushed after it.
    fn globals_end(&self) -> usize {
        self.scopes.get(1).copied().unwrap_or(self.bindings.len())
    }

    /// The first binding visible from the current frame: a `fn` body does not see its
    /// caller's locals.
    fn frame_start(&self) -> usize {
        match self.frames.last() {
            Some(&scope) => self.scopes.get(scope).copied().unwrap_or(0),
            None => 0,
        }
    }

    /// Index of the binding `name` resolves to: the innermost one in the current frame,
    /// else the latest top-level one.
    #[inline]
    fn find(&self, name: &str) -> Option<usize> {
        let globals = self.globals_end();
        let start = match self.frame_start() {
            0 => globals,
            start => start,
        };
        let local = self.bindings[start..]
            .iter()
            .rposition(|(n, _)| same_name(n, name))
            .map(|i| i + start);
        if local.is_some() {
            return local;
        }
        if globals <= SCAN_GLOBALS {
            return self.bindings[..globals]
                .iter()
                .rposition(|(n, _)| same_name(n, name));
        }
        self.global_index.get(name).copied()
    }

    /// The value bound to `name`.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.find(name).map(|i| &self.bindings[i].1)
    }

    /// Rebinds the nearest visible `name`; false if there is none.
    pub fn assign(&mut self, name: &str, value: Value) -> bool {
        match self.find(name) {
            Some(i) => {
                self.touch(i);
                self.bindings[i].1 = value;
                true
            }
            None => false,
        }
    }

    /// A mutable reference to the value bound to `name`, for in-place updates.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        let i = self.find(name)?;
        self.touch(i);
        Some(&mut self.bindings[i].1)
    }

    /// Declares `name` in the current scope. Redeclaring in the same scope replaces the old
    /// binding: without closures nothing can still see it, and loops stay bounded.
    pub fn declare(&mut self, name: Rc<str>, value: Value) {
        if self.scopes.len() == 1 {
            match self.global_index.get(&name) {
                Some(&i) => {
                    self.touch(i);
                    self.bindings[i].1 = value;
                }
                None => self.push(name, value),
            }
            return;
        }
        let start = self.scopes.last().copied().unwrap_or(0);
        if let Some(slot) = self.bindings[start..]
            .iter_mut()
            .rev()
            .find(|(n, _)| same_name(n, &name))
        {
            slot.1 = value;
        } else {
            self.bindings.push((name, value));
        }
    }

    /// Pushes a binding without looking for an old one (fresh scopes, parameters).
    pub fn push(&mut self, name: Rc<str>, value: Value) {
        if self.scopes.len() == 1 {
            self.global_index.insert(name.clone(), self.bindings.len());
        }
        self.bindings.push((name, value));
    }

    /// A mutable reference to the binding `offset` places into the current scope.
    pub fn scope_slot(&mut self, offset: usize) -> Option<&mut Value> {
        let start = self.scopes.last().copied()?;
        if start + offset < self.bindings.len() {
            self.touch(start + offset);
        }
        self.bindings.get_mut(start + offset).map(|(_, v)| v)
    }

    /// Every name visible from the current frame, for "did you mean" hints and completion.
    pub fn visible_names(&self) -> impl Iterator<Item = &str> {
        let start = self.frame_start();
        let globals = if start == 0 {
            0
        } else {
            self.globals_end().min(start)
        };
        self.bindings[..globals]
            .iter()
            .chain(self.bindings[start..].iter())
            .map(|(n, _)| &**n)
    }

    /// The top-level bindings, latest last (a REPL's `:vars`).
    pub fn globals(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.bindings[..self.globals_end()]
            .iter()
            .map(|(n, v)| (&**n, v))
    }

    /// Number of `fn` calls in progress.
    pub fn depth(&self) -> usize {
        self.frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(env: &Env, name: &str) -> Option<i64> {
        match env.get(name) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    #[test]
    fn blocks_scope_lets_and_assignment_finds_the_outer_name() {
        let mut env = Env::new();
        env.declare("x".into(), Value::Int(1));
        env.push_scope();
        env.declare("x".into(), Value::Int(100));
        assert!(env.assign("x", Value::Int(101)));
        env.declare("y".into(), Value::Int(2));
        assert_eq!(int(&env, "x"), Some(101));
        let mark = Mark {
            bindings: 1,
            scopes: 1,
            frames: 0,
        };
        env.reset_to(mark);
        assert_eq!(int(&env, "x"), Some(1));
        assert_eq!(int(&env, "y"), None);
        assert!(!env.assign("y", Value::Int(0)));
    }

    #[test]
    fn many_globals_are_found_redeclared_and_restored_through_the_index() {
        let mut env = Env::new();
        let n = 3 * SCAN_GLOBALS as i64;
        for i in 0..n {
            env.declare(format!("g{i}").into(), Value::Int(i));
        }
        env.declare("g5".into(), Value::Int(-5));
        assert_eq!(env.globals().count(), n as usize);
        let saved = env.save_globals();
        env.push_scope();
        env.declare("g7".into(), Value::Int(700));
        assert_eq!(int(&env, "g7"), Some(700));
        env.push_frame();
        env.push("local".into(), Value::Int(1));
        assert_eq!(
            int(&env, "g7"),
            Some(7),
            "a frame sees the global, not the block's"
        );
        assert_eq!(int(&env, "g5"), Some(-5));
        assert!(env.assign("g9", Value::Int(90)));
        env.unwind_to_top();
        assert_eq!(int(&env, "g9"), Some(90));
        assert_eq!(int(&env, "local"), None);
        env.declare("late".into(), Value::Int(1));
        env.restore_globals(saved);
        assert_eq!(int(&env, "g9"), Some(9));
        assert_eq!(int(&env, "late"), None);
        assert_eq!(int(&env, &format!("g{}", n - 1)), Some(n - 1));
        // Changed twice, once in place: the first old value comes back.
        let saved = env.save_globals();
        env.declare("g1".into(), Value::Int(10));
        *env.get_mut("g1").unwrap() = Value::Int(11);
        env.declare("later".into(), Value::Int(2));
        env.restore_globals(saved);
        assert_eq!(int(&env, "g1"), Some(1));
        assert_eq!(int(&env, "later"), None);
        env.declare("later".into(), Value::Int(3));
        assert_eq!(int(&env, "later"), Some(3));
        // A state saved before the latest one is gone: the default empties the top level.
        env.restore_globals(SavedTop::default());
        assert_eq!(env.globals().count(), 0);
        assert_eq!(int(&env, "g1"), None);
    }

    #[test]
    fn frames_hide_the_callers_locals_but_not_globals() {
        let mut env = Env::new();
        env.declare("g".into(), Value::Int(1));
        env.push_scope();
        env.declare("local".into(), Value::Int(2));
        env.push_frame();
        env.push("param".into(), Value::Int(3));
        assert_eq!(int(&env, "g"), Some(1));
        assert_eq!(int(&env, "local"), None);
        assert_eq!(int(&env, "param"), Some(3));
        let names: Vec<_> = env.visible_names().collect();
        assert_eq!(names, ["g", "param"]);
    }
}
