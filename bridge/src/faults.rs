//! Which faults the bridge injects into the calls it serves: the decisions
//! only, so they are testable without a socket.

use serde::{Deserialize, Serialize};

/// Where a dropped call is lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropPoint {
    /// The call never reaches the canister.
    #[default]
    Before,
    /// The canister executes the call; its reply is lost.
    After,
    /// Before and after in turn, starting with before.
    Alternate,
}

/// The faults in force, set by `POST /admin/faults` (JSON). All off by
/// default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Every n-th call (queries and updates, counted together from the
    /// moment the faults are set) fails as a transport failure.
    pub drop_every: Option<u64>,
    pub drop_point: DropPoint,
    /// Every reply is held this long.
    pub delay_ms: u64,
    /// Every reply is held a further pseudo-random time below this, so
    /// replies leave in another order than the calls executed.
    pub reorder_ms: u64,
    /// Replies of `memories_read` that carry bytes have their last byte
    /// flipped (the last byte of such a reply is the blob's last byte).
    pub corrupt_reads: bool,
}

/// What happens to one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fate {
    pub drop_before: bool,
    pub drop_after: bool,
    /// How long the reply is held after execution.
    pub hold_ms: u64,
}

impl Faults {
    /// The fate of the `n`-th call (1-based) since the faults were set.
    pub fn fate(&self, n: u64) -> Fate {
        let dropped = self
            .drop_every
            .is_some_and(|k| k > 0 && n.is_multiple_of(k));
        let after = match self.drop_point {
            DropPoint::Before => false,
            DropPoint::After => true,
            // The k-th drop is after when k is even.
            DropPoint::Alternate => self
                .drop_every
                .is_some_and(|k| k > 0 && (n / k).is_multiple_of(2)),
        };
        let jitter = if self.reorder_ms == 0 {
            0
        } else {
            splitmix64(n) % self.reorder_ms
        };
        Fate {
            drop_before: dropped && !after,
            drop_after: dropped && after,
            hold_ms: self.delay_ms + jitter,
        }
    }
}

/// A well-mixed hash of the call number: reproducible jitter without a
/// random number generator.
fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Flips the last byte of a reply, if it has one.
pub fn corrupt_last_byte(reply: &mut [u8]) {
    if let Some(last) = reply.last_mut() {
        *last ^= 0xFF;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_faults_by_default() {
        let f = Faults::default();
        for n in 1..100 {
            assert_eq!(
                f.fate(n),
                Fate {
                    drop_before: false,
                    drop_after: false,
                    hold_ms: 0
                }
            );
        }
    }

    #[test]
    fn every_seventh_call_dropped_before_or_after_in_turn() {
        let f = Faults {
            drop_every: Some(7),
            drop_point: DropPoint::Alternate,
            ..Faults::default()
        };
        let before: Vec<u64> = (1..=28).filter(|&n| f.fate(n).drop_before).collect();
        let after: Vec<u64> = (1..=28).filter(|&n| f.fate(n).drop_after).collect();
        assert_eq!(before, vec![7, 21]);
        assert_eq!(after, vec![14, 28]);
    }

    #[test]
    fn reorder_jitter_stays_below_the_bound_and_varies() {
        let f = Faults {
            delay_ms: 5,
            reorder_ms: 40,
            ..Faults::default()
        };
        let holds: Vec<u64> = (1..50).map(|n| f.fate(n).hold_ms).collect();
        assert!(holds.iter().all(|&h| (5..45).contains(&h)));
        let distinct: std::collections::BTreeSet<_> = holds.iter().collect();
        assert!(distinct.len() > 10, "{holds:?}");
    }

    #[test]
    fn faults_parse_from_json_and_refuse_unknown_fields() {
        let f: Faults =
            serde_json::from_str(r#"{"drop_every":7,"drop_point":"after","reorder_ms":3}"#)
                .unwrap();
        assert_eq!(f.drop_every, Some(7));
        assert_eq!(f.drop_point, DropPoint::After);
        assert!(serde_json::from_str::<Faults>(r#"{"drop_evry":7}"#).is_err());
    }
}
