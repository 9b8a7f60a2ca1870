//! Labels and label selectors, with `k8s.io/apimachinery/pkg/labels` semantics.
//!
//! Two selector flavours exist upstream and both are modelled here:
//! - `metav1.LabelSelector` (pods, PDBs, affinity terms): `matchLabels` + `matchExpressions`
//!   with `In`, `NotIn`, `Exists`, `DoesNotExist`. A missing selector matches nothing; an
//!   empty one matches everything.
//! - node selector requirements (node affinity), which add `Gt` and `Lt` on integer values.

pub use super::labels::Labels;

/// The operator of one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    /// Only valid in node selectors: the label's integer value is greater.
    Gt,
    /// Only valid in node selectors: the label's integer value is less.
    Lt,
}

/// One `key <op> values` requirement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

impl Requirement {
    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.key))
    }

    /// Whether a label set whose value of the key is `value` (`None`: no such label)
    /// satisfies this requirement.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Gt | Operator::Lt => {
                let (Some(v), Some(bound)) = (value, self.values.first()) else {
                    return false;
                };
                let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else {
                    return false;
                };
                if self.operator == Operator::Gt {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }
}

/// A label selector: every requirement must hold. `Nothing` matches no label set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// The selector of a missing `metav1.LabelSelector`: selects nothing.
    Nothing,
    /// A conjunction of requirements; with none it selects everything.
    All(Vec<Requirement>),
}

impl Selector {
    /// The selector that matches every label set.
    pub fn everything() -> Selector {
        Selector::All(Vec::new())
    }

    /// A selector requiring each `key=value` of `set`.
    pub fn from_set(set: &Labels) -> Selector {
        Selector::All(
            set.iter()
                .map(|(k, v)| Requirement {
                    key: k.to_string(),
                    operator: Operator::In,
                    values: vec![v.to_string()],
                })
                .collect(),
        )
    }

    /// Whether `labels` are selected.
    pub fn matches(&self, labels: &Labels) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::All(reqs) => reqs.iter().all(|r| r.matches(labels)),
        }
    }

    /// `labels.Selector.Empty()`: true for a selector with no requirements. Upstream's
    /// `Nothing` selector is not empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, Selector::All(reqs) if reqs.is_empty())
    }

    /// Adds requirements (used for `matchLabelKeys`).
    pub fn with_requirements(self, extra: Vec<Requirement>) -> Selector {
        match self {
            Selector::Nothing => Selector::Nothing,
            Selector::All(mut reqs) => {
                let mut merged = extra;
                merged.append(&mut reqs);
                Selector::All(merged)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn operators() {
        let l = labels(&[("app", "web"), ("gen", "5")]);
        assert!(req("app", Operator::In, &["web", "db"]).matches(&l));
        assert!(!req("app", Operator::NotIn, &["web"]).matches(&l));
        assert!(req("missing", Operator::NotIn, &["web"]).matches(&l));
        assert!(req("app", Operator::Exists, &[]).matches(&l));
        assert!(req("missing", Operator::DoesNotExist, &[]).matches(&l));
        assert!(req("gen", Operator::Gt, &["4"]).matches(&l));
        assert!(!req("gen", Operator::Lt, &["4"]).matches(&l));
        assert!(!req("app", Operator::Gt, &["4"]).matches(&l));
    }

    #[test]
    fn nothing_and_everything() {
        let l = labels(&[("a", "b")]);
        assert!(!Selector::Nothing.matches(&l));
        assert!(Selector::everything().matches(&l));
        assert!(Selector::everything().is_empty());
        assert!(!Selector::Nothing.is_empty());
    }
}
