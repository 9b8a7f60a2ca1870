//! Plugin verdicts: the framework's `Status` with upstream's codes.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

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

/// A status's reasons. Most statuses have one, usually a constant: it is held without
/// allocating, and cloned by copying (a query rejects thousands of nodes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reasons {
    One(Cow<'static, str>),
    Several(Vec<Cow<'static, str>>),
}

impl Deref for Reasons {
    type Target = [Cow<'static, str>];

    fn deref(&self) -> &Self::Target {
        match self {
            Reasons::One(reason) => std::slice::from_ref(reason),
            Reasons::Several(reasons) => reasons,
        }
    }
}

impl<'a> IntoIterator for &'a Reasons {
    type Item = &'a Cow<'static, str>;
    type IntoIter = std::slice::Iter<'a, Cow<'static, str>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Default for Reasons {
    /// No reasons yet.
    fn default() -> Reasons {
        Reasons::Several(Vec::new())
    }
}

impl Reasons {
    /// Adds a reason after the others; the first is held without allocating.
    pub fn push(&mut self, reason: Cow<'static, str>) {
        *self = match std::mem::take(self) {
            Reasons::Several(reasons) if reasons.is_empty() => Reasons::One(reason),
            Reasons::Several(mut reasons) => {
                reasons.push(reason);
                Reasons::Several(reasons)
            }
            Reasons::One(first) => Reasons::Several(vec![first, reason]),
        };
    }
}

impl FromIterator<Cow<'static, str>> for Reasons {
    /// One reason is held without allocating (the common case: thousands of rejected
    /// nodes each collect their reasons).
    fn from_iter<I: IntoIterator<Item = Cow<'static, str>>>(iter: I) -> Reasons {
        let mut reasons = Reasons::default();
        for reason in iter {
            reasons.push(reason);
        }
        reasons
    }
}

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
            reasons: Reasons::One(reason.into()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collected_reasons_hold_one_inline_and_keep_their_order() {
        let collect = |texts: &[&'static str]| -> Reasons {
            texts.iter().map(|t| Cow::Borrowed(*t)).collect()
        };
        assert_eq!(collect(&[]), Reasons::Several(Vec::new()));
        assert_eq!(collect(&["a"]), Reasons::One(Cow::Borrowed("a")));
        let three = collect(&["c", "a", "b"]);
        assert!(matches!(three, Reasons::Several(_)));
        assert_eq!(&*three, ["c", "a", "b"].map(Cow::Borrowed).as_slice());
    }
}
