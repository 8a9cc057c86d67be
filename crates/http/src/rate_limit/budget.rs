//! The process's share of each subject's cluster-wide budget.
//!
//! A request spends one token of its subject's local budget: a lock, a map lookup and a
//! decrement, no I/O. When the local tokens run out the limiter leases the next slice
//! from Redis (`lease.rs`); what Redis has handed out to all processes never exceeds
//! the limit, so neither do the requests served.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

const SHARDS: usize = 16;
/// Above this many tracked subjects in a shard, those of past windows are dropped.
const SHARD_SOFT_CAP: usize = 50_000;
/// A lease is at most this share of the limit: few Redis round trips per window, and
/// few tokens left unused in one process while another is refused.
const SLICES_PER_WINDOW: u32 = 20;

/// What a request is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A session or API key known to be valid.
    Credential(Uuid),
    /// Every other request: anonymous, or with a token that is not valid.
    Address(IpAddr),
}

impl Subject {
    /// A client address's subject. An IPv6 client counts by its /64 network: one
    /// subscriber usually holds a whole /64 and could otherwise rotate through 2^64
    /// addresses, each with a fresh budget.
    pub fn address(addr: IpAddr) -> Self {
        match addr.to_canonical() {
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & !(u128::from(u64::MAX));
                Subject::Address(IpAddr::V6(Ipv6Addr::from(network)))
            }
            v4 => Subject::Address(v4),
        }
    }

    /// The subject's part of its Redis key.
    pub fn key(&self) -> String {
        match self {
            Subject::Credential(id) => format!("credential:{id}"),
            Subject::Address(addr) => format!("address:{addr}"),
        }
    }
}

/// One subject in one window, as this process sees it.
#[derive(Debug, Clone, Copy)]
struct Share {
    window: u64,
    /// Leased to this process and not yet spent.
    tokens: u32,
    /// Handed out to all processes, as of this process's last lease.
    leased_total: u32,
}

/// The outcome of spending one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Served; about this many requests remain in the window across the cluster.
    Allowed { remaining: u32 },
    /// The whole budget of the window is handed out.
    Refused,
    /// No local token: lease this many from Redis, then [`Budgets::add_lease`].
    Lease { size: u32 },
}

/// Tokens added to a process's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Leased from Redis, which had handed out `leased_total` when it granted them (this
    /// lease included).
    Cluster { granted: u32, leased_total: u32 },
    /// Redis is out of reach: the process counts on its own, as if it were alone.
    Local { size: u32 },
}

/// A subject's share, and the lock its leases are taken under.
#[derive(Debug)]
struct Entry {
    share: Share,
    leasing: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug)]
pub struct Budgets {
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<Subject, Entry>>>,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl Budgets {
    /// Spends one of `subject`'s tokens in `window` (a window's number since the epoch).
    pub fn spend(&self, subject: Subject, window: u64, limit: u32) -> Spend {
        self.with_share(subject, window, |share| match share.tokens {
            0 if share.leased_total >= limit => Spend::Refused,
            0 => Spend::Lease {
                size: lease_size(limit, share.leased_total),
            },
            _ => take(share, limit),
        })
    }

    /// Adds the tokens of a lease, then spends one as [`Budgets::spend`] would.
    pub fn add_lease(&self, subject: Subject, window: u64, limit: u32, lease: Lease) -> Spend {
        self.with_share(subject, window, |share| {
            match lease {
                Lease::Cluster {
                    granted,
                    leased_total,
                } => {
                    share.tokens += granted;
                    share.leased_total = share.leased_total.max(leased_total.min(limit));
                }
                Lease::Local { size } => {
                    let granted = size.min(limit.saturating_sub(share.leased_total));
                    share.tokens += granted;
                    share.leased_total += granted;
                }
            }
            if share.tokens == 0 {
                Spend::Refused
            } else {
                take(share, limit)
            }
        })
    }

    /// The lock to hold while leasing for `subject`. One lease in flight per subject and
    /// process: a burst of requests that find no token waits for that lease instead of
    /// each taking a slice, which would hand much of the budget to this process while
    /// the others (and its own successor after a restart) get refused.
    pub fn leasing(&self, subject: Subject) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.shard(subject);
        let entry = map.entry(subject).or_insert_with(|| Entry::new(0));
        entry.leasing.clone()
    }

    fn shard(&self, subject: Subject) -> MutexGuard<'_, HashMap<Subject, Entry>> {
        let shard = &self.shards[(self.hasher.hash_one(subject) as usize) % SHARDS];
        // A poisoned shard only means a panic elsewhere mid-update of plain counters.
        shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with_share(
        &self,
        subject: Subject,
        window: u64,
        f: impl FnOnce(&mut Share) -> Spend,
    ) -> Spend {
        let mut map = self.shard(subject);
        if map.len() > SHARD_SOFT_CAP {
            map.retain(|_, entry| entry.share.window >= window);
        }
        let share = &mut map
            .entry(subject)
            .or_insert_with(|| Entry::new(window))
            .share;
        if share.window > window {
            // A lease of a window that ended while it was on its way: it counts for its
            // own request only, and leaves the new window's share alone.
            return f(&mut Share::new(window));
        }
        if share.window < window {
            *share = Share::new(window);
        }
        f(share)
    }
}

impl Share {
    fn new(window: u64) -> Self {
        Self {
            window,
            tokens: 0,
            leased_total: 0,
        }
    }
}

impl Entry {
    fn new(window: u64) -> Self {
        Self {
            share: Share::new(window),
            leasing: Arc::default(),
        }
    }
}

fn take(share: &mut Share, limit: u32) -> Spend {
    share.tokens -= 1;
    Spend::Allowed {
        remaining: limit.saturating_sub(share.leased_total) + share.tokens,
    }
}

/// A slice of the limit, smaller as the window's budget runs out, so little of the last
/// of it sits unused in one process.
fn lease_size(limit: u32, leased_total: u32) -> u32 {
    let left = limit.saturating_sub(leased_total);
    (limit / SLICES_PER_WINDOW).min(left / 4).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Subject = Subject::Credential(Uuid::nil());

    #[test]
    fn tokens_are_spent_locally_until_the_lease_is_used_up() {
        let budgets = Budgets::default();
        assert_eq!(budgets.spend(ME, 1, 100), Spend::Lease { size: 5 });
        assert_eq!(
            budgets.add_lease(ME, 1, 100, cluster(5, 5)),
            Spend::Allowed { remaining: 99 }
        );
        for remaining in (95..99).rev() {
            assert_eq!(budgets.spend(ME, 1, 100), Spend::Allowed { remaining });
        }
        assert_eq!(budgets.spend(ME, 1, 100), Spend::Lease { size: 5 });
        // Another process took most of the budget meanwhile.
        assert_eq!(
            budgets.add_lease(ME, 1, 100, cluster(2, 100)),
            Spend::Allowed { remaining: 1 }
        );
        assert_eq!(budgets.spend(ME, 1, 100), Spend::Allowed { remaining: 0 });
        assert_eq!(budgets.spend(ME, 1, 100), Spend::Refused);
        assert_eq!(
            budgets.add_lease(ME, 1, 100, cluster(0, 100)),
            Spend::Refused
        );
    }

    #[test]
    fn without_redis_a_process_counts_the_whole_limit_alone() {
        let budgets = Budgets::default();
        let local = Lease::Local { size: 2 };
        assert_eq!(
            budgets.add_lease(ME, 1, 3, local),
            Spend::Allowed { remaining: 2 }
        );
        assert_eq!(budgets.spend(ME, 1, 3), Spend::Allowed { remaining: 1 });
        assert_eq!(
            budgets.add_lease(ME, 1, 3, local),
            Spend::Allowed { remaining: 0 }
        );
        assert_eq!(budgets.spend(ME, 1, 3), Spend::Refused);
    }

    fn cluster(granted: u32, leased_total: u32) -> Lease {
        Lease::Cluster {
            granted,
            leased_total,
        }
    }

    #[test]
    fn a_new_window_starts_from_nothing() {
        let budgets = Budgets::default();
        budgets.add_lease(ME, 1, 10, cluster(0, 10));
        assert_eq!(budgets.spend(ME, 1, 10), Spend::Refused);
        assert_eq!(budgets.spend(ME, 2, 10), Spend::Lease { size: 1 });
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_network() {
        let a = Subject::address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Subject::address("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a.key(), "address:2001:db8:1:2::");
        assert_ne!(a, Subject::address("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(
            Subject::address("::ffff:192.0.2.1".parse().unwrap()).key(),
            "address:192.0.2.1"
        );
    }

    #[test]
    fn a_lease_of_a_past_window_leaves_the_current_one_alone() {
        let budgets = Budgets::default();
        budgets.add_lease(ME, 2, 10, cluster(5, 5));
        assert_eq!(
            budgets.add_lease(ME, 1, 10, cluster(1, 10)),
            Spend::Allowed { remaining: 0 }
        );
        assert_eq!(budgets.spend(ME, 2, 10), Spend::Allowed { remaining: 8 });
    }

    #[test]
    fn leases_shrink_as_the_budget_runs_out() {
        assert_eq!(lease_size(6000, 0), 300);
        assert_eq!(lease_size(6000, 5000), 250);
        assert_eq!(lease_size(40, 0), 2);
        assert_eq!(lease_size(40, 37), 1);
        assert_eq!(lease_size(3, 0), 1);
    }
}
