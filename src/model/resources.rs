//! Resource vectors and the scheduler's pod-request arithmetic.
//!
//! `Resources` is the scheduler's `framework.Resource`: cpu in millicores, memory and
//! ephemeral storage in bytes, and every other ("scalar") resource in whole units.
//! `PodRequests` follows `k8s.io/component-helpers/resource.PodRequests`: app containers
//! plus restartable (sidecar) init containers, against each regular init container in
//! sequence, then pod-level requests and `overhead`.

use std::borrow::Cow;
use std::fmt;

use smallvec::{SmallVec, smallvec};

use super::quantity::Quantity;

/// A resource's name (`cpu`, `memory`, `nvidia.com/gpu`, …).
///
/// Every container of every pod lists two or three names, nearly always the same few:
/// those are static text shared by all ([`ResourceName::new`]), so decoding a pod,
/// comparing it with the version held, and freeing it allocate no string for them.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceName(Cow<'static, str>);

/// The names held as static text: the native resources and the common devices.
const COMMON_NAMES: [&str; 9] = [
    CPU,
    MEMORY,
    EPHEMERAL_STORAGE,
    PODS,
    "storage",
    "hugepages-2Mi",
    "hugepages-1Gi",
    "nvidia.com/gpu",
    "amd.com/gpu",
];

impl ResourceName {
    /// The name `name`: shared static text when it is a common one.
    pub fn new(name: &str) -> ResourceName {
        match COMMON_NAMES.iter().find(|common| **common == name) {
            Some(common) => ResourceName(Cow::Borrowed(common)),
            None => ResourceName(Cow::Owned(name.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ResourceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Resource name → quantity, as in a container's `resources.requests`, in name order.
///
/// A sorted `Vec`, not a `BTreeMap`: every container of every pod holds one, with two or
/// three entries, and a map's node allocation would be several times their size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceList(Vec<(ResourceName, Quantity)>);

impl ResourceList {
    /// Asks for the heap block of the list's entries ([`crate::prefetch`]).
    pub fn prefetch_heap(&self) {
        crate::prefetch::buffer_of(&self.0);
    }

    /// The quantity of resource `name`.
    pub fn get(&self, name: &str) -> Option<&Quantity> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Resource names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Quantity)> {
        self.0.iter().map(|(n, q)| (n.as_str(), q))
    }
}

impl FromIterator<(ResourceName, Quantity)> for ResourceList {
    /// Like collecting into a map: of two entries with one name, the later one wins.
    fn from_iter<I: IntoIterator<Item = (ResourceName, Quantity)>>(iter: I) -> ResourceList {
        let mut entries: Vec<(ResourceName, Quantity)> = iter.into_iter().collect();
        super::sort_pairs_later_wins(&mut entries);
        entries.shrink_to_fit();
        ResourceList(entries)
    }
}

impl<'a> IntoIterator for &'a ResourceList {
    type Item = (&'a str, &'a Quantity);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (ResourceName, Quantity)>,
        fn(&'a (ResourceName, Quantity)) -> (&'a str, &'a Quantity),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(n, q)| (n.as_str(), q))
    }
}

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
pub const PODS: &str = "pods";

/// The scheduler's default cpu request for a container that sets none (millicores).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The scheduler's default memory request for a container that sets none (bytes).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// A resource vector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Extended, hugepages and other scalar resources, sorted by name.
    pub scalars: Vec<(String, i64)>,
}

impl Resources {
    /// Reads a resource list the way `framework.Resource.Add` does (`pods` is skipped;
    /// see [`allowed_pods`]).
    pub fn from_list(list: &ResourceList) -> Resources {
        let mut r = Resources::default();
        r.add_list(list);
        r
    }

    fn add_list(&mut self, list: &ResourceList) {
        for (name, q) in list {
            match name {
                CPU => self.milli_cpu += q.milli_value(),
                MEMORY => self.memory += q.value(),
                EPHEMERAL_STORAGE => self.ephemeral_storage += q.value(),
                PODS => {}
                other if is_scalar_resource(other) => self.add_scalar(other, q.value()),
                _ => {}
            }
        }
    }

    /// The amount of scalar resource `name`.
    pub fn scalar(&self, name: &str) -> i64 {
        self.scalars
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .map(|i| self.scalars[i].1)
            .unwrap_or(0)
    }

    /// Whether the scalar resource `name` is listed (even at zero).
    pub fn has_scalar(&self, name: &str) -> bool {
        self.scalars
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .is_ok()
    }

    fn add_scalar(&mut self, name: &str, amount: i64) {
        match self.scalars.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalars[i].1 += amount,
            Err(i) => self.scalars.insert(i, (name.to_string(), amount)),
        }
    }

    /// `self += sign × other`.
    pub fn accumulate(&mut self, other: &Resources, sign: i64) {
        self.milli_cpu += sign * other.milli_cpu;
        self.memory += sign * other.memory;
        self.ephemeral_storage += sign * other.ephemeral_storage;
        for (name, amount) in &other.scalars {
            self.add_scalar(name, sign * amount);
        }
    }

    /// True when every component is zero and no scalar is requested.
    pub fn is_empty(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalars.is_empty()
    }
}

/// `pods` from a node's allocatable.
pub fn allowed_pods(list: &ResourceList) -> i64 {
    list.get(PODS).map(Quantity::value).unwrap_or(0)
}

/// `schedutil.IsScalarResourceName`: extended resources (a domain other than
/// `kubernetes.io`), `hugepages-*`, `attachable-volumes-*` and `kubernetes.io/*`-prefixed
/// native resources. Plain names such as `storage` are not scalar.
pub fn is_scalar_resource(name: &str) -> bool {
    if name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") {
        return true;
    }
    // Extended resources (`example.com/foo`) and prefixed native ones (`kubernetes.io/x`).
    name.contains('/') && !name.starts_with("requests.")
}

/// One container's requests, after API-server defaulting (requests default to limits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerResources {
    pub requests: ResourceList,
    /// `restartPolicy: Always` on an init container: a sidecar.
    pub restartable: bool,
}

/// The inputs of pod-request arithmetic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodResourceSpec {
    pub containers: Vec<ContainerResources>,
    pub init_containers: Vec<ContainerResources>,
    /// `spec.resources.requests` (pod-level resources).
    pub pod_level_requests: ResourceList,
    pub overhead: ResourceList,
}

/// Whether a pod-level resource name is supported (cpu, memory, hugepages-*).
fn is_supported_pod_level(name: &str) -> bool {
    name == CPU || name == MEMORY || name.starts_with("hugepages-")
}

impl PodResourceSpec {
    fn pod_level_requests_set(&self) -> bool {
        self.pod_level_requests.keys().any(is_supported_pod_level)
    }

    /// `resource.PodRequests` in exact quantities, with optional defaults for containers
    /// that do not request cpu or memory (`NonMissingContainerRequests`).
    fn requests<'a>(&'a self, non_missing: &[(&'static str, i64)]) -> Amounts<'a> {
        let container_amounts = |c: &'a ContainerResources| -> Amounts<'a> {
            // A resource list is sorted and has one entry per name.
            let mut m = Amounts(
                c.requests
                    .iter()
                    .map(|(k, q)| (k, Amount::of(k, q)))
                    .collect(),
            );
            for &(name, default) in non_missing {
                if !c.requests.contains_key(name) {
                    m.set(name, Amount(default));
                }
            }
            m
        };
        let mut reqs = Amounts::default();
        for c in &self.containers {
            reqs.add(&container_amounts(c));
        }
        let mut sidecars = Amounts::default();
        let mut init_max = Amounts::default();
        for c in &self.init_containers {
            let amounts = container_amounts(c);
            if c.restartable {
                reqs.add(&amounts);
                sidecars.add(&amounts);
                init_max.max(&sidecars);
            } else {
                let mut effective = amounts;
                effective.add(&sidecars);
                init_max.max(&effective);
            }
        }
        reqs.max(&init_max);
        for (name, q) in &self.pod_level_requests {
            if is_supported_pod_level(name) {
                reqs.set(name, Amount::of(name, q));
            }
        }
        for (name, q) in &self.overhead {
            reqs.add(&Amounts(smallvec![(name, Amount::of(name, q))]));
        }
        reqs
    }

    /// What the pod requests, as the scheduler's `NodeInfo.Requested` and
    /// NodeResourcesFit's PreFilter count it.
    pub fn pod_requests(&self) -> Resources {
        to_resources(&self.requests(&[]))
    }

    /// `PodInfo.CalculateResource`'s non-zero cpu and memory: containers that request
    /// neither get the scheduler's defaults (unless pod-level requests set them).
    pub fn non_zero_requests(&self) -> (i64, i64) {
        let non_missing: Vec<(&str, i64)> = if !self.pod_level_requests_set() {
            vec![
                (CPU, DEFAULT_MILLI_CPU_REQUEST),
                (MEMORY, DEFAULT_MEMORY_REQUEST),
            ]
        } else {
            let plain = self.requests(&[]);
            let mut v = Vec::new();
            if plain.get(CPU).is_none() {
                v.push((CPU, DEFAULT_MILLI_CPU_REQUEST));
            }
            if plain.get(MEMORY).is_none() {
                v.push((MEMORY, DEFAULT_MEMORY_REQUEST));
            }
            v
        };
        let r = self.requests(&non_missing);
        (
            r.get(CPU).map_or(0, |a| a.0),
            r.get(MEMORY).map_or(0, |a| a.0),
        )
    }

    /// The pending pod's cpu and memory as the LeastAllocated scorer reads them: every
    /// container without a request gets the scheduler's default.
    pub fn scoring_requests(&self) -> (i64, i64) {
        let r = self.requests(&[
            (CPU, DEFAULT_MILLI_CPU_REQUEST),
            (MEMORY, DEFAULT_MEMORY_REQUEST),
        ]);
        (
            r.get(CPU).map_or(0, |a| a.0),
            r.get(MEMORY).map_or(0, |a| a.0),
        )
    }
}

/// A quantity converted to the unit the scheduler reads it in (millicores for cpu, whole
/// units otherwise). Upstream sums exact quantities and rounds once; we round each
/// container's value, which differs only for sub-millicore cpu or fractional bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Amount(i64);

impl Amount {
    fn of(name: &str, q: &Quantity) -> Amount {
        if name == CPU {
            Amount(q.milli_value())
        } else {
            Amount(q.value())
        }
    }
}

/// Resource name → amount, sorted by name; the names are borrowed from the pod's lists.
/// Pod-request arithmetic runs for every pod ingested, a few of these per container:
/// the usual few names are held inline, so it allocates nothing.
#[derive(Debug, Clone, Default)]
struct Amounts<'a>(SmallVec<[(&'a str, Amount); 4]>);

impl<'a> Amounts<'a> {
    fn get(&self, name: &str) -> Option<Amount> {
        self.0
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| self.0[i].1)
    }

    /// The amount of `name`, added as `initial` when absent.
    fn entry(&mut self, name: &'a str, initial: Amount) -> &mut Amount {
        let i = match self.0.binary_search_by(|(n, _)| (*n).cmp(name)) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (name, initial));
                i
            }
        };
        &mut self.0[i].1
    }

    fn set(&mut self, name: &'a str, amount: Amount) {
        *self.entry(name, amount) = amount;
    }

    /// `self += other`, name by name.
    fn add(&mut self, other: &Amounts<'a>) {
        for &(name, amount) in &other.0 {
            self.entry(name, Amount(0)).0 += amount.0;
        }
    }

    /// `self = max(self, other)`, name by name.
    fn max(&mut self, other: &Amounts<'a>) {
        for &(name, amount) in &other.0 {
            let e = self.entry(name, amount);
            if amount > *e {
                *e = amount;
            }
        }
    }
}

fn to_resources(amounts: &Amounts) -> Resources {
    let mut r = Resources::default();
    for &(name, a) in &amounts.0 {
        match name {
            CPU => r.milli_cpu = a.0,
            MEMORY => r.memory = a.0,
            EPHEMERAL_STORAGE => r.ephemeral_storage = a.0,
            PODS => {}
            other if is_scalar_resource(other) => r.add_scalar(other, a.0),
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(pairs: &[(&str, &str)]) -> ResourceList {
        pairs
            .iter()
            .map(|(k, v)| (ResourceName::new(k), Quantity::parse(v).unwrap()))
            .collect()
    }

    #[test]
    fn a_common_resource_name_is_shared_text_and_any_name_compares_by_its_text() {
        let shared = |n: &ResourceName| matches!(n.0, Cow::Borrowed(_));
        assert!(shared(&ResourceName::new("cpu")));
        assert!(shared(&ResourceName::new("nvidia.com/gpu")));
        let device = ResourceName::new("example.com/foo");
        assert!(!shared(&device));
        assert_eq!(device.as_str(), "example.com/foo");
        // A name built from other text is the same name.
        let owned = ResourceName(Cow::Owned("cpu".to_string()));
        assert_eq!(owned, ResourceName::new("cpu"));
        assert!(ResourceName::new("cpu") < ResourceName::new("memory"));
        assert!(ResourceName::new("example.com/foo") < ResourceName::new("memory"));
    }

    #[test]
    fn a_list_is_in_name_order_and_the_later_of_two_entries_wins() {
        let names_and_values = |l: &ResourceList| {
            l.iter()
                .map(|(n, q)| format!("{n}={q:?}"))
                .collect::<Vec<_>>()
        };
        let sorted = list(&[("cpu", "1"), ("memory", "2Gi")]);
        let shuffled = list(&[("memory", "1Gi"), ("cpu", "1"), ("memory", "2Gi")]);
        assert_eq!(names_and_values(&sorted), names_and_values(&shuffled));
        assert_eq!(sorted.keys().collect::<Vec<_>>(), ["cpu", "memory"]);
        let repeated = list(&[("cpu", "1"), ("cpu", "2")]);
        assert_eq!(repeated.get("cpu"), Some(&Quantity::parse("2").unwrap()));
        assert_eq!(repeated.keys().count(), 1);
    }

    fn container(pairs: &[(&str, &str)], restartable: bool) -> ContainerResources {
        ContainerResources {
            requests: list(pairs),
            restartable,
        }
    }

    #[test]
    fn sidecars_run_alongside_and_init_containers_in_sequence() {
        let spec = PodResourceSpec {
            containers: vec![container(&[("cpu", "1"), ("memory", "1Gi")], false)],
            init_containers: vec![
                container(&[("cpu", "500m")], true),
                container(&[("cpu", "2")], false),
                container(&[("cpu", "250m")], true),
            ],
            overhead: list(&[("cpu", "100m")]),
            ..Default::default()
        };
        let r = spec.pod_requests();
        // app 1 + sidecars 0.75 = 1.75; init #2 needs 2 + 0.5 = 2.5; max = 2.5; + overhead.
        assert_eq!(r.milli_cpu, 2600);
        assert_eq!(r.memory, 1 << 30);
    }

    #[test]
    fn non_zero_defaults_apply_per_container() {
        let spec = PodResourceSpec {
            containers: vec![container(&[("cpu", "1")], false), container(&[], false)],
            ..Default::default()
        };
        assert_eq!(spec.non_zero_requests(), (1100, 2 * DEFAULT_MEMORY_REQUEST));
        assert_eq!(spec.pod_requests().milli_cpu, 1000);
    }

    #[test]
    fn pod_level_requests_replace_the_sum_and_overhead_adds() {
        let spec = PodResourceSpec {
            containers: vec![container(&[("cpu", "1")], false), container(&[], false)],
            pod_level_requests: list(&[("cpu", "3"), ("nvidia.com/gpu", "1")]),
            overhead: list(&[("cpu", "100m")]),
            ..Default::default()
        };
        let r = spec.pod_requests();
        assert_eq!((r.milli_cpu, r.memory), (3100, 0));
        // Pod-level resources are cpu, memory and hugepages only.
        assert!(r.scalars.is_empty());
        // cpu is set at pod level; memory still gets each container's default.
        assert_eq!(spec.non_zero_requests(), (3100, 2 * DEFAULT_MEMORY_REQUEST));
        assert_eq!(spec.scoring_requests(), (3100, 2 * DEFAULT_MEMORY_REQUEST));
    }

    #[test]
    fn scalar_resources() {
        let spec = PodResourceSpec {
            containers: vec![container(&[("nvidia.com/gpu", "2")], false)],
            ..Default::default()
        };
        assert_eq!(spec.pod_requests().scalar("nvidia.com/gpu"), 2);
        assert!(is_scalar_resource("hugepages-2Mi"));
        assert!(!is_scalar_resource("storage"));
    }
}
