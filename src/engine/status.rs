//! Plugin verdicts: the framework's `Status` with upstream's codes.

use std::borrow::Cow;
use std::fmt;

use smallvec::{SmallVec, smallvec};

/// A status code, as `framework.Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    Success,
    /// Preemption may help.
    Unschedulable,
    /// Preemption cannot help.
    UnschedulableAndUnresolvable,
    /// Something went wrong evaluating the node (not a verdict about the node).
    Error,
}

impl Code {
    /// Upstream's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Success => "Success",
            Code::Unschedulable => "Unschedulable",
            Code::UnschedulableAndUnresolvable => "UnschedulableAndUnresolvable",
            Code::Error => "Error",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status's reasons: most statuses have one, usually a constant, so one fits without
/// allocating (a query rejects thousands of nodes).
pub type Reasons = SmallVec<[Cow<'static, str>; 1]>;

/// A rejection: its code, the plugin that produced it and its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    /// The rejecting plugin; `None` for framework-level statuses.
    pub plugin: Option<&'static str>,
    pub reasons: Reasons,
}

impl Status {
    /// A status with one reason and no plugin yet.
    pub fn new(code: Code, reason: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code,
            plugin: None,
            reasons: smallvec![reason.into()],
        }
    }

    /// `Unschedulable` with one reason.
    pub fn unschedulable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Unschedulable, reason)
    }

    /// `UnschedulableAndUnresolvable` with one reason.
    pub fn unresolvable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, reason)
    }

    /// The reasons as owned strings (for reports).
    pub fn reason_strings(&self) -> Vec<String> {
        self.reasons.iter().map(|r| r.to_string()).collect()
    }

    /// Sets the plugin.
    pub fn with_plugin(mut self, plugin: &'static str) -> Status {
        self.plugin = Some(plugin);
        self
    }

    /// `Status.Message()`: the reasons joined with ", ".
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}
