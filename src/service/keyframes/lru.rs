//! A map held to a budget of bytes, dropping the entries used longest ago
//! first. Pure: the caller says what each entry weighs and locks it.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

pub struct Lru<K, V> {
    entries: HashMap<K, Entry<V>>,
    /// Each key by the tick it was last used at, so the oldest is first.
    recency: BTreeMap<u64, K>,
    /// Counts uses; every get and insert takes a new tick.
    tick: u64,
    /// What the entries weigh together, never above `budget`.
    bytes: usize,
    budget: usize,
}

struct Entry<V> {
    value: V,
    bytes: usize,
    used: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    /// An empty map that keeps at most `budget` bytes of entries.
    pub fn new(budget: usize) -> Lru<K, V> {
        Lru {
            entries: HashMap::new(),
            recency: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            budget,
        }
    }

    /// The value of `key`, which becomes the most recently used.
    pub fn get<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.tick += 1;
        let tick = self.tick;
        let (key, entry) = self.entries.get_key_value(key)?;
        let (key, old) = (key.clone(), entry.used);
        self.recency.remove(&old);
        self.recency.insert(tick, key.clone());
        let entry = self.entries.get_mut::<K>(&key)?;
        entry.used = tick;
        Some(entry.value.clone())
    }

    /// Keeps `value` under `key`, weighing `bytes`, in place of what the
    /// key held; drops the least recently used entries until the rest fit.
    /// An entry heavier than the whole budget is not kept.
    pub fn insert(&mut self, key: K, value: V, bytes: usize) {
        self.remove(&key);
        if bytes > self.budget {
            return;
        }
        while self.bytes + bytes > self.budget {
            let Some((_, oldest)) = self.recency.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&oldest) {
                self.bytes -= entry.bytes;
            }
        }
        self.tick += 1;
        self.recency.insert(self.tick, key.clone());
        self.bytes += bytes;
        let used = self.tick;
        self.entries.insert(key, Entry { value, bytes, used });
    }

    fn remove(&mut self, key: &K) {
        if let Some(entry) = self.entries.remove(key) {
            self.recency.remove(&entry.used);
            self.bytes -= entry.bytes;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// What the entries kept weigh together.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first() {
        let mut lru: Lru<String, u32> = Lru::new(30);
        lru.insert("a".into(), 1, 10);
        lru.insert("b".into(), 2, 10);
        lru.insert("c".into(), 3, 10);
        assert_eq!((lru.len(), lru.bytes()), (3, 30));
        // Reading `a` makes `b` the oldest.
        assert_eq!(lru.get("a"), Some(1));
        lru.insert("d".into(), 4, 10);
        assert_eq!(lru.get("b"), None);
        assert_eq!(lru.get("a"), Some(1));
        assert_eq!(lru.get("c"), Some(3));
        assert_eq!(lru.get("d"), Some(4));
        assert_eq!(lru.bytes(), 30);
        // A heavy entry drops as many as it needs to.
        lru.insert("e".into(), 5, 25);
        assert_eq!(lru.len(), 1);
        assert_eq!(lru.get("e"), Some(5));
    }

    #[test]
    fn replacing_a_key_reweighs_it() {
        let mut lru: Lru<&str, u32> = Lru::new(20);
        lru.insert("a", 1, 15);
        lru.insert("a", 2, 5);
        assert_eq!((lru.len(), lru.bytes()), (1, 5));
        assert_eq!(lru.get(&"a"), Some(2));
        lru.insert("b", 3, 15);
        assert_eq!((lru.len(), lru.bytes()), (2, 20));
    }

    #[test]
    fn what_outweighs_the_budget_is_not_kept() {
        let mut lru: Lru<&str, u32> = Lru::new(10);
        lru.insert("a", 1, 4);
        lru.insert("huge", 2, 11);
        assert_eq!(lru.get(&"huge"), None);
        // Nor did it push out what was there.
        assert_eq!(lru.get(&"a"), Some(1));
        let mut none: Lru<&str, u32> = Lru::new(0);
        none.insert("a", 1, 0);
        assert_eq!(none.get(&"a"), Some(1));
    }

    #[test]
    fn a_long_run_stays_within_the_budget() {
        let mut lru: Lru<u32, u32> = Lru::new(1000);
        for i in 0..10_000u32 {
            lru.insert(i, i, 1 + (i as usize * 7) % 50);
            if i % 3 == 0 {
                let _ = lru.get(&(i / 2));
            }
            assert!(lru.bytes() <= 1000);
        }
        assert_eq!(lru.recency.len(), lru.len());
        let weighed: usize = lru.entries.values().map(|e| e.bytes).sum();
        assert_eq!(weighed, lru.bytes());
    }
}
