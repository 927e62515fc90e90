//! The stored-before-ack check of `inbound`: every acknowledged answer must be in the
//! database, counted without assuming the server applied the clicks in the order they were
//! sent.
//!
//! Each click on a delivery carries a value (one of its five buttons); a click that is
//! applied sets the stored answer to its value, and bumps the delivery's answer revision
//! when that changes the answer (the first answer included). The server applies clicks in the
//! order they arrive, which is not the send order when requests overlap: a click that stalls
//! may arrive after a later click with the same value, and then rightly changes nothing. So
//! counting changes in send order can ask for more revisions than an exact server stores.
//!
//! What is certain: a click acknowledged before another was sent was applied before it. In a
//! chain of acknowledged clicks each sent after the one before was acknowledged, the stored
//! value goes from one chain member's value to the next's between their applications, so
//! every step that changes the value is at least one stored change, in disjoint stretches of
//! time; and the chain's first click changes the empty answer. The longest such count over
//! all chains is a lower bound on the delivery's revision that holds whatever the arrival
//! order was. Where no two clicks on a delivery overlap (the normal case, a second apart), it
//! equals the send-order count.

/// One click on a delivery, as the generator saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Click {
    /// The button clicked (which value it stores).
    pub value: usize,
    /// When its request left, and when its 200 came back (µs since the run began).
    pub sent_us: u64,
    pub acked_us: u64,
}

/// The changes the delivery's answer revision must show at least, for its acknowledged
/// clicks (in any order): the longest chain of clicks, each sent after the one before was
/// acknowledged, counting its first click and every step to a different value.
pub fn certain_changes(acked: &[Click]) -> u64 {
    let mut clicks = acked.to_vec();
    clicks.sort_unstable_by_key(|c| (c.sent_us, c.acked_us));
    // best[j]: the most changes of a chain ending with click j.
    let mut best: Vec<u64> = Vec::with_capacity(clicks.len());
    for (j, c) in clicks.iter().enumerate() {
        let mut b = 1;
        for (i, p) in clicks[..j].iter().enumerate() {
            if p.acked_us < c.sent_us {
                b = b.max(best[i] + u64::from(p.value != c.value));
            }
        }
        best.push(b);
    }
    best.into_iter().max().unwrap_or(0)
}

/// The changes counted in send order (each acknowledged click whose value differs from the
/// one acknowledged before it): what an exact server stores when nothing overlapped.
pub fn send_order_changes(acked: &[Click]) -> u64 {
    let mut clicks = acked.to_vec();
    clicks.sort_unstable_by_key(|c| c.sent_us);
    let mut last = None;
    let mut changes = 0;
    for c in clicks {
        if last != Some(c.value) {
            changes += 1;
        }
        last = Some(c.value);
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(value: usize, sent_us: u64, acked_us: u64) -> Click {
        Click {
            value,
            sent_us,
            acked_us,
        }
    }

    #[test]
    fn clicks_that_never_overlap_must_all_be_stored_as_in_send_order() {
        let clicks = [
            click(0, 0, 10),
            click(1, 100, 110),
            click(2, 200, 210),
            click(2, 300, 310), // the same value again: no change
            click(0, 400, 410),
        ];
        assert_eq!(certain_changes(&clicks), 4);
        assert_eq!(send_order_changes(&clicks), 4);
    }

    #[test]
    fn a_stalled_click_that_may_have_arrived_last_is_not_required_to_change_anything() {
        // Value 0 stalls from 0 to 1,000 µs; meanwhile 1, 2, 3, 4 and 0 again go through. The
        // server may have applied the stalled 0 last, over the other 0: five changes, not six.
        let clicks = [
            click(0, 0, 1_000),
            click(1, 100, 110),
            click(2, 200, 210),
            click(3, 300, 310),
            click(4, 400, 410),
            click(0, 500, 510),
        ];
        assert_eq!(send_order_changes(&clicks), 6);
        assert_eq!(certain_changes(&clicks), 5);
    }

    #[test]
    fn a_click_sent_after_the_stall_was_acknowledged_counts_again() {
        let clicks = [
            click(0, 0, 1_000),
            click(1, 100, 110),
            click(0, 500, 510),
            click(1, 2_000, 2_010), // after everything: certainly a change from 0
        ];
        assert_eq!(certain_changes(&clicks), 3);
    }

    #[test]
    fn no_acknowledged_click_asks_for_nothing() {
        assert_eq!(certain_changes(&[]), 0);
        assert_eq!(send_order_changes(&[]), 0);
    }

    #[test]
    fn one_click_is_one_change() {
        assert_eq!(certain_changes(&[click(3, 5, 9)]), 1);
    }
}
