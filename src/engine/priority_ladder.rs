//! A node's pods ordered by importance, with running totals of their requests: the
//! preemption fast path's view of "what is freed if every pod below priority p goes".
//!
//! A [`PriorityLadder`] keeps one [`Rung`] per pod, least important first (ascending
//! priority, then latest start first, as `util.MoreImportantPod` orders them in reverse;
//! pods equal on both are ordered by a number from their uid, [`PodInfo::tie`], so the
//! ladder of a set of pods does not depend on the order they came in). Each rung
//! carries the pod's priority and start inline, with the cpu, memory and
//! ephemeral-storage requests of its own pod and every rung below it. "How many pods, and how much, below priority p" is then one binary
//! search, and a dry run can walk the lower pods and their requests without
//! dereferencing a single pod.
//!
//! A rung's pod is found by its place among the node's pods, not by a reference:
//! copying a node for a snapshot edit copies its ladder without touching a pod's
//! reference count (a node's pods are spread over memory, and an edit spread over the
//! cluster copies a node per update). The places are kept apart from the rungs, which
//! a node's versions share until their pods' rungs change: a new version of a pod with
//! the same priority, start, requests and budgets (its status changed, as most of a
//! watch's MODIFIED events say) moves places only ([`PriorityLadder::renew`]), and the
//! copy of a node for such an update copies a few bytes of places, not the rungs.
//!
//! Each rung also names the budget the pod's eviction counts against when there is
//! exactly one ([`Budgets`]), so that PDB accounting need not read the pod either: by
//! its slot in the ladder's table of the budgets its pods count against (a node's pods
//! belong to a few workloads), so that a rung holds no reference and a ladder is copied
//! and freed as plain memory.
//!
//! [`super::snapshot::NodeInfo`] keeps its ladder in step with its pods in `add_pod`,
//! `remove_pod` and `replace_pod`, places included ([`PriorityLadder::moved`]); a pod's
//! rung is found by its place (unique on a node) and its key checked; a changed budget
//! replaces the `PodInfo`s it covers, so a rung's budget is never stale. Scalar
//! resources are not kept: callers that need them read the pods.

use std::cmp::Reverse;
use std::sync::Arc;

use super::snapshot::PodInfo;
use crate::model::PodDisruptionBudget;
use crate::model::resources::Resources;

/// The budgets a pod's eviction counts against: those covering it that do not already
/// list it among their disrupted pods.
#[derive(Debug, Clone, Copy)]
pub enum Budgets<'a> {
    None,
    One(&'a Arc<PodDisruptionBudget>),
    /// Several: read them from the pod's `pdbs`, skipping those that list it.
    Many,
}

impl Budgets<'_> {
    /// What tells budgets apart: which of the three, and the budget's address for one.
    pub fn identity(self) -> (u8, usize) {
        match self {
            Budgets::None => (0, 0),
            Budgets::One(b) => (1, Arc::as_ptr(b) as usize),
            Budgets::Many => (2, 0),
        }
    }

    pub fn of(pod: &PodInfo) -> Budgets<'_> {
        let mut counted = pod
            .pdbs
            .iter()
            .filter(|b| !b.disrupted_pods.contains(&pod.pod.name));
        match (counted.next(), counted.next()) {
            (None, _) => Budgets::None,
            (Some(b), None) => Budgets::One(b),
            (Some(_), Some(_)) => Budgets::Many,
        }
    }
}

/// Cpu (millicores), memory and ephemeral storage (bytes): the requests a ladder sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
}

impl Totals {
    pub fn of(r: &Resources) -> Totals {
        Totals {
            milli_cpu: r.milli_cpu,
            memory: r.memory,
            ephemeral_storage: r.ephemeral_storage,
        }
    }

    /// `self += sign × other`.
    fn accumulate(&mut self, other: Totals, sign: i64) {
        self.milli_cpu += sign * other.milli_cpu;
        self.memory += sign * other.memory;
        self.ephemeral_storage += sign * other.ephemeral_storage;
    }

    fn is_negative(self) -> bool {
        self.milli_cpu < 0 || self.memory < 0 || self.ephemeral_storage < 0
    }

    fn minus(mut self, other: Totals) -> Totals {
        self.accumulate(other, -1);
        self
    }
}

/// The budgets a rung's pod counts against: none, one (by its slot in the ladder's
/// table), or several (read from the pod).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RungBudget {
    None,
    One(u32),
    Many,
}

/// A budget some rungs of a ladder name, and how many; a slot no rung names any more
/// is empty, for the next budget to take.
#[derive(Debug, Clone, Default)]
struct BudgetSlot {
    budget: Option<Arc<PodDisruptionBudget>>,
    rungs: u32,
}

/// One pod on the ladder.
#[derive(Debug, Clone, Copy)]
pub struct Rung {
    /// The pod's [`PodInfo::tie`]: the order of pods equal in importance.
    tie: u64,
    pub priority: i32,
    /// The pod's start time; a pod not started counts as starting after every other.
    pub start: i64,
    /// The budgets the pod's eviction counts against.
    budget: RungBudget,
    /// The requests of this pod and of every pod below it.
    through: Totals,
}

impl Rung {
    /// The rung's place on the ladder: ascending importance, then tie.
    fn key(&self) -> Key {
        (self.priority, Reverse(self.start), self.tie)
    }
}

/// A rung's place on the ladder: priority, start (latest first), tie.
type Key = (i32, Reverse<i64>, u64);

/// Where `pod` belongs on a ladder ([`Rung::key`]).
fn key(pod: &PodInfo) -> Key {
    (
        pod.pod.priority,
        Reverse(pod.pod.start_time.unwrap_or(i64::MAX)),
        pod.tie,
    )
}

/// What a rung says of its pod, apart from where the pod is: equal for two versions
/// of a pod that keep its rung.
fn rung_fields(pod: &PodInfo) -> (Key, Totals, (u8, usize)) {
    (
        key(pod),
        Totals::of(&pod.requests),
        Budgets::of(pod).identity(),
    )
}

/// The rungs of a ladder and what follows from them alone.
#[derive(Debug, Clone, Default)]
struct Rungs {
    rungs: Vec<Rung>,
    /// The rungs' priorities, alone: what `below` searches, in a few cache lines.
    priorities: Vec<i32>,
    /// The budgets rungs name ([`RungBudget::One`]).
    budgets: Vec<BudgetSlot>,
    /// How many of its pods request a negative amount of cpu, memory or ephemeral
    /// storage (the API server refuses them, but a snapshot may hold them).
    negative: usize,
}

impl Rungs {
    /// A copy with room for one more rung: what a ladder that shares its rungs copies
    /// to take a pod (a copy as long as the rungs would grow at once).
    fn copy_with_room_for_one(&self) -> Rungs {
        let mut rungs = Vec::with_capacity(self.rungs.len() + 1);
        rungs.extend_from_slice(&self.rungs);
        let mut priorities = Vec::with_capacity(self.priorities.len() + 1);
        priorities.extend_from_slice(&self.priorities);
        Rungs {
            rungs,
            priorities,
            budgets: self.budgets.clone(),
            negative: self.negative,
        }
    }
}

/// A node's pods, least important first, with running request totals.
#[derive(Debug, Clone, Default)]
pub struct PriorityLadder {
    /// Shared by a node's versions until a pod comes or goes, or a new version of one
    /// changes its rung ([`PriorityLadder::renew`]).
    shared: Arc<Rungs>,
    /// Where each rung's pod is among the node's pods: a node's own, as a pod's
    /// removal moves another one.
    places: Vec<u32>,
}

/// Ladders are equal when their rungs are, each naming the same pod at the same place
/// with the same totals and the same budgets (whatever their slots).
impl PartialEq for PriorityLadder {
    fn eq(&self, other: &PriorityLadder) -> bool {
        let budget = |l: &PriorityLadder, r: &Rung| l.budgets(r).identity();
        self.shared.negative == other.shared.negative
            && self.places == other.places
            && self.rungs().len() == other.rungs().len()
            && self.rungs().iter().zip(other.rungs()).all(|(a, b)| {
                (a.tie, a.priority, a.start, a.through) == (b.tie, b.priority, b.start, b.through)
                    && budget(self, a) == budget(other, b)
            })
    }
}

impl Eq for PriorityLadder {}

impl PriorityLadder {
    /// The budgets the pod on `rung` (of this ladder) counts against.
    pub fn budgets(&self, rung: &Rung) -> Budgets<'_> {
        match rung.budget {
            RungBudget::None => Budgets::None,
            RungBudget::One(slot) => Budgets::One(
                self.shared.budgets[slot as usize]
                    .budget
                    .as_ref()
                    .expect("a rung's budget slot is held"),
            ),
            RungBudget::Many => Budgets::Many,
        }
    }

    /// Asks for the ladder's shared rungs ([`crate::prefetch`]), for a caller about
    /// to search it.
    pub fn prefetch_rungs(&self) {
        crate::prefetch::block_of(&self.shared);
    }

    /// Asks for the priorities that [`PriorityLadder::below`] searches (after
    /// [`PriorityLadder::prefetch_rungs`] brought their pointer in).
    pub fn prefetch_priorities(&self) {
        crate::prefetch::all_of(&self.shared.priorities);
    }

    /// Asks for the rung that [`PriorityLadder::below`] `priority` reads (after
    /// [`PriorityLadder::prefetch_priorities`] brought them in).
    pub fn prefetch_below(&self, priority: i32) {
        let n = self.shared.priorities.partition_point(|&p| p < priority);
        if let Some(last_below) = n.checked_sub(1) {
            crate::prefetch::buffer_of(&self.shared.rungs[last_below..]);
        }
    }

    /// Asks for all of the ladder a dry run reads (after
    /// [`PriorityLadder::prefetch_rungs`] brought the pointers in): the priorities,
    /// every rung and the places of their pods.
    pub fn prefetch_all(&self) {
        self.prefetch_priorities();
        crate::prefetch::all_of(&self.shared.rungs);
        crate::prefetch::all_of(&self.places);
    }

    /// Every pod, least important first.
    pub fn rungs(&self) -> &[Rung] {
        &self.shared.rungs
    }

    /// The place among the node's pods of the pod on rung `i`.
    pub fn place(&self, i: usize) -> usize {
        self.places[i] as usize
    }

    /// The pod on rung `i`, of `pods` (the node's).
    pub fn pod<'a>(&self, i: usize, pods: &'a [Arc<PodInfo>]) -> &'a Arc<PodInfo> {
        &pods[self.place(i)]
    }

    /// The number of pods with priority below `priority` (they are the first rungs),
    /// and their summed requests.
    pub fn below(&self, priority: i32) -> (usize, Totals) {
        let n = self.shared.priorities.partition_point(|&p| p < priority);
        (n, self.lowest(n))
    }

    /// Whether the running totals never decrease up the ladder: no pod requests a
    /// negative amount.
    pub fn monotone(&self) -> bool {
        self.shared.negative == 0
    }

    /// The summed requests of the `n` least important pods.
    pub fn lowest(&self, n: usize) -> Totals {
        n.checked_sub(1)
            .map_or_else(Totals::default, |i| self.rungs()[i].through)
    }

    /// The requests of the pod on rung `i`.
    pub fn requests(&self, i: usize) -> Totals {
        self.rungs()[i].through.minus(self.lowest(i))
    }

    /// The rung of `pod`, at `place` among the node's pods: found by a scan of the
    /// places (a few cache lines, the node's own), which reads one rung, where a
    /// binary search by key would read several of the rungs (shared, often cold).
    fn rung_of(&self, pod: &PodInfo, place: usize) -> Option<usize> {
        let i = self.places.iter().position(|&p| p as usize == place)?;
        (self.rungs()[i].key() == key(pod)).then_some(i)
    }

    /// Puts `pod`, at `place` among the node's pods, on the ladder.
    pub fn add(&mut self, pod: &PodInfo, place: usize) {
        let k = key(pod);
        let own = Totals::of(&pod.requests);
        if Arc::get_mut(&mut self.shared).is_none() {
            self.shared = Arc::new(self.shared.copy_with_room_for_one());
        }
        let shared = Arc::get_mut(&mut self.shared).expect("a ladder's own rungs");
        let i = shared.rungs.partition_point(|r| r.key() <= k);
        shared.negative += usize::from(own.is_negative());
        let mut through = i
            .checked_sub(1)
            .map_or_else(Totals::default, |below| shared.rungs[below].through);
        through.accumulate(own, 1);
        for r in &mut shared.rungs[i..] {
            r.through.accumulate(own, 1);
        }
        let budget = match Budgets::of(pod) {
            Budgets::None => RungBudget::None,
            Budgets::One(b) => RungBudget::One(shared.hold(b)),
            Budgets::Many => RungBudget::Many,
        };
        let (priority, Reverse(start), tie) = k;
        shared.priorities.insert(i, priority);
        shared.rungs.insert(
            i,
            Rung {
                tie,
                priority,
                start,
                budget,
                through,
            },
        );
        self.places.insert(i, place_number(place));
    }

    /// Takes `pod`, at `place` among the node's pods, off the ladder.
    pub fn remove(&mut self, pod: &PodInfo, place: usize) {
        let Some(i) = self.rung_of(pod, place) else {
            return;
        };
        let own = self.requests(i);
        let shared = Arc::make_mut(&mut self.shared);
        shared.negative -= usize::from(own.is_negative());
        if let RungBudget::One(slot) = shared.rungs[i].budget {
            shared.release(slot);
        }
        shared.rungs.remove(i);
        shared.priorities.remove(i);
        for r in &mut shared.rungs[i..] {
            r.through.accumulate(own, -1);
        }
        self.places.remove(i);
    }

    /// `pod`, on the ladder at place `from` among the node's pods, is now at place `to`
    /// (the last pod took a removed one's place).
    pub fn moved(&mut self, pod: &PodInfo, from: usize, to: usize) {
        if let Some(i) = self.rung_of(pod, from) {
            self.places[i] = place_number(to);
        }
    }

    /// Replaces `old`, at `at` among the node's pods, by `new`, which goes to place
    /// `to` while `last`, the pod there (`old` itself when `at == to`), takes place
    /// `at`: a node's replacement of a pod moves them so. When the new version keeps
    /// the old one's rung (same priority, start, requests and budgets: the pod's
    /// status changed), only places change and the rungs stay shared. False, changing
    /// nothing, when the rung changes.
    pub fn renew(
        &mut self,
        old: &PodInfo,
        at: usize,
        new: &PodInfo,
        last: &PodInfo,
        to: usize,
    ) -> bool {
        if rung_fields(old) != rung_fields(new) {
            return false;
        }
        let (Some(renewed), Some(moved)) = (self.rung_of(old, at), self.rung_of(last, to)) else {
            return false;
        };
        self.places[moved] = place_number(at);
        self.places[renewed] = place_number(to);
        true
    }

    /// Whether `self` and `other` share their rungs (neither changed them since one
    /// was copied from the other).
    #[cfg(test)]
    pub fn shares_rungs_with(&self, other: &PriorityLadder) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// A place among a node's pods, as a ladder keeps it.
fn place_number(place: usize) -> u32 {
    u32::try_from(place).expect("fewer than 2^32 pods on a node")
}

impl Rungs {
    /// The slot of `budget` in the table, taken (or made) for one more rung.
    fn hold(&mut self, budget: &Arc<PodDisruptionBudget>) -> u32 {
        let held = |s: &BudgetSlot| s.budget.as_ref().is_some_and(|b| Arc::ptr_eq(b, budget));
        let at = match self.budgets.iter().position(held) {
            Some(at) => at,
            None => {
                let free = self.budgets.iter().position(|s| s.budget.is_none());
                let at = free.unwrap_or(self.budgets.len());
                if at == self.budgets.len() {
                    self.budgets.push(BudgetSlot::default());
                }
                self.budgets[at].budget = Some(Arc::clone(budget));
                at
            }
        };
        self.budgets[at].rungs += 1;
        u32::try_from(at).expect("fewer than 2^32 budgets on a node")
    }

    /// Gives up one rung's hold on `slot`, emptying it when no rung names it.
    fn release(&mut self, slot: u32) {
        let s = &mut self.budgets[slot as usize];
        s.rungs -= 1;
        if s.rungs == 0 {
            s.budget = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::engine::test_support;

    fn pod(name: &str, priority: i32, start: Option<i64>, cpu: i64, mem: i64) -> Arc<PodInfo> {
        let template = test_support::pod(name, "1", "");
        let mut pod = crate::kube::decode_pod(&template, &[]).expect("pod decodes");
        pod.uid = name.into();
        pod.priority = priority;
        pod.start_time = start;
        let mut info = PodInfo::new(pod, Vec::new());
        info.requests = Resources {
            milli_cpu: cpu,
            memory: mem,
            ephemeral_storage: cpu ^ mem,
            scalars: Vec::new(),
        };
        Arc::new(info)
    }

    /// `below` by a scan of every pod.
    fn scan(pods: &[Arc<PodInfo>], priority: i32) -> (usize, Totals) {
        let mut totals = Totals::default();
        let mut n = 0;
        for p in pods.iter().filter(|p| p.pod.priority < priority) {
            n += 1;
            totals.accumulate(Totals::of(&p.requests), 1);
        }
        (n, totals)
    }

    /// Takes the pod at `at` off `pods` and `l`, the last pod taking its place, as a
    /// node does.
    fn take(l: &mut PriorityLadder, pods: &mut Vec<Arc<PodInfo>>, at: usize) -> Arc<PodInfo> {
        l.remove(&pods[at], at);
        let gone = pods.swap_remove(at);
        if at < pods.len() {
            l.moved(&pods[at], pods.len(), at);
        }
        gone
    }

    /// Replaces the pod at `at` by `new`, which goes last while the last pod takes its
    /// place, as a node does: by [`PriorityLadder::renew`] when it keeps the rung.
    /// Whether it did.
    fn replace(
        l: &mut PriorityLadder,
        pods: &mut Vec<Arc<PodInfo>>,
        at: usize,
        new: Arc<PodInfo>,
    ) -> bool {
        let last = pods.len() - 1;
        let renewed = l.renew(&pods[at], at, &new, &pods[last], last);
        if renewed {
            pods.swap_remove(at);
        } else {
            take(l, pods, at);
            l.add(&new, pods.len());
        }
        pods.push(new);
        renewed
    }

    fn ladder_of(pods: &[Arc<PodInfo>]) -> PriorityLadder {
        let mut l = PriorityLadder::default();
        for (place, p) in pods.iter().enumerate() {
            l.add(p, place);
        }
        l
    }

    #[test]
    fn rungs_are_ordered_by_importance_with_running_totals() {
        let pods = [
            pod("a", 10, Some(5), 100, 1),
            pod("b", 0, Some(5), 200, 2),
            pod("c", 10, Some(9), 400, 4),
            pod("d", 10, None, 800, 8),
        ];
        let l = ladder_of(&pods);
        let names: Vec<&str> = (0..l.rungs().len())
            .map(|i| l.pod(i, &pods).pod.name.as_str())
            .collect();
        assert_eq!(names, ["b", "d", "c", "a"]);
        assert_eq!(l.below(10).0, 1);
        assert_eq!(l.below(10).1.milli_cpu, 200);
        assert_eq!(l.below(11).1.milli_cpu, 1500);
        assert_eq!(l.below(11).1.memory, 15);
        assert_eq!(l.below(i32::MIN), (0, Totals::default()));
        assert_eq!(l.requests(1).milli_cpu, 800);
    }

    fn budget(name: &str) -> Arc<PodDisruptionBudget> {
        Arc::new(PodDisruptionBudget {
            namespace: "default".into(),
            name: name.into(),
            selector: crate::model::selector::Selector::everything(),
            disruptions_allowed: 1,
            disrupted_pods: Default::default(),
        })
    }

    /// `pod`, covered by `pdbs`.
    fn covered(pod: Arc<PodInfo>, pdbs: &[&Arc<PodDisruptionBudget>]) -> Arc<PodInfo> {
        Arc::new(PodInfo {
            pdbs: pdbs.iter().map(|b| Arc::clone(b)).collect(),
            ..(*pod).clone()
        })
    }

    /// The budgets the ladder names for each rung, as the pods' own budgets say.
    fn assert_budgets_resolve(l: &PriorityLadder, pods: &[Arc<PodInfo>]) {
        for (i, r) in l.rungs().iter().enumerate() {
            assert_eq!(
                l.budgets(r).identity(),
                Budgets::of(l.pod(i, pods)).identity()
            );
        }
    }

    #[test]
    fn rungs_name_their_budgets_by_slots_that_are_reused() {
        let (a, b, c) = (budget("a"), budget("b"), budget("c"));
        let mut pods = vec![
            covered(pod("a1", 1, Some(1), 1, 1), &[&a]),
            covered(pod("a2", 2, Some(1), 1, 1), &[&a]),
            covered(pod("b1", 3, Some(1), 1, 1), &[&b]),
            covered(pod("ab", 4, Some(1), 1, 1), &[&a, &b]),
            pod("none", 5, Some(1), 1, 1),
        ];
        let mut l = ladder_of(&pods);
        assert_budgets_resolve(&l, &pods);
        assert_eq!(l.shared.budgets.len(), 2, "a and b, one slot each");
        // The pods of budget a go: its slot empties, and budget c takes it.
        for name in ["a1", "a2"] {
            let at = pods.iter().position(|p| p.pod.name == name).unwrap();
            take(&mut l, &mut pods, at);
        }
        assert!(l.shared.budgets.iter().any(|s| s.budget.is_none()));
        let c1 = covered(pod("c1", 0, Some(1), 1, 1), &[&c]);
        l.add(&c1, pods.len());
        pods.push(c1);
        assert_budgets_resolve(&l, &pods);
        assert_eq!(l.shared.budgets.len(), 2, "c took a's slot");
        assert_eq!(l, rebuilt(&pods));
    }

    /// A ladder of `pods` put on last first.
    fn rebuilt(pods: &[Arc<PodInfo>]) -> PriorityLadder {
        let mut l = PriorityLadder::default();
        for (place, p) in pods.iter().enumerate().rev() {
            l.add(p, place);
        }
        l
    }

    /// Pods `p0`, `p1`, … of (priority, start, cpu, memory).
    fn pods_of(specs: &[(i32, Option<i64>, i64, i64)]) -> Vec<Arc<PodInfo>> {
        specs
            .iter()
            .enumerate()
            .map(|(i, &(p, s, c, m))| pod(&format!("p{i}"), p, s, c, m))
            .collect()
    }

    fn arb_pods() -> impl Strategy<Value = Vec<(i32, Option<i64>, i64, i64)>> {
        prop::collection::vec(
            (
                -3i32..4,
                prop::option::of(0i64..4),
                -10i64..5000,
                0i64..1 << 40,
            ),
            0..40,
        )
    }

    proptest! {
        #[test]
        fn below_matches_a_scan(specs in arb_pods(), priority in -5i32..6) {
            let pods = pods_of(&specs);
            let l = ladder_of(&pods);
            prop_assert_eq!(l.below(priority), scan(&pods, priority));
            let negative = pods.iter().any(|p| Totals::of(&p.requests).is_negative());
            prop_assert_eq!(l.monotone(), !negative);
            for (i, r) in l.rungs().iter().enumerate() {
                prop_assert_eq!(l.requests(i), Totals::of(&l.pod(i, &pods).requests));
                prop_assert_eq!(r.priority, l.pod(i, &pods).pod.priority);
            }
        }

        #[test]
        fn adds_and_removes_equal_a_rebuild(
            specs in arb_pods(),
            removals in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let mut pods = pods_of(&specs);
            let mut l = ladder_of(&pods);
            for r in removals {
                if pods.is_empty() {
                    break;
                }
                let at = r.index(pods.len());
                let gone = take(&mut l, &mut pods, at);
                // Removing a pod that is no longer there changes nothing.
                l.remove(&gone, at);
            }
            // The same pods put on in another order make the same ladder.
            prop_assert_eq!(&l, &rebuilt(&pods));
        }

        #[test]
        fn replacements_equal_a_rebuild_and_keep_the_rungs_of_the_same_requests(
            specs in arb_pods(),
            versions in prop::collection::vec((any::<prop::sample::Index>(), -1i64..2), 0..20),
        ) {
            let mut pods = pods_of(&specs);
            let mut l = ladder_of(&pods);
            for (index, more_cpu) in versions {
                if pods.is_empty() {
                    break;
                }
                let at = index.index(pods.len());
                let old = Arc::clone(&pods[at]);
                let mut new = PodInfo::renewed(&old, Arc::clone(&old.pod), |_| Vec::new());
                new.requests.milli_cpu += more_cpu;
                let before = l.clone();
                let renewed = replace(&mut l, &mut pods, at, Arc::new(new));
                prop_assert_eq!(renewed, more_cpu == 0);
                prop_assert_eq!(l.shares_rungs_with(&before), more_cpu == 0);
            }
            prop_assert_eq!(&l, &rebuilt(&pods));
            for (i, r) in l.rungs().iter().enumerate() {
                prop_assert_eq!(l.requests(i), Totals::of(&l.pod(i, &pods).requests));
                prop_assert_eq!(r.priority, l.pod(i, &pods).pod.priority);
            }
        }
    }
}
