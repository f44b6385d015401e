//! Framing (PROTOCOL.md 2.5): how a message of up to 1024 bytes crosses GATT writes and
//! notifications of at most `min(ATT_MTU − 3, 512)` bytes. This layer knows nothing of what
//! a message means; it only cuts and glues, and refuses anything that does not add up.

use std::fmt;

/// The longest message either end accepts.
pub const MAX_MESSAGE_LEN: usize = 1024;
/// The smallest ATT MTU Bluetooth allows (20-byte fragments).
pub const MIN_ATT_MTU: u16 = 23;
/// The longest attribute value a GATT write or notification may carry.
pub const MAX_FRAGMENT_LEN: usize = 512;

const FIRST: u8 = 0x80;
const LAST: u8 = 0x40;
const INDEX_MASK: u8 = 0x3f;

/// Why a message could not be cut into fragments, or fragments glued into a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("ATT MTU {att_mtu} is below the minimum of 23")]
    MtuTooSmall { att_mtu: u16 },
    #[error("a {len}-byte message exceeds the 1024-byte maximum")]
    MessageTooLong { len: usize },
    #[error("an empty fragment (no header byte)")]
    Empty,
    #[error("a first fragment too short to hold the total length")]
    MissingLength,
    #[error("a continuation fragment arrived with no message started")]
    ContinuationWithoutStart,
    #[error("fragment index {got} arrived where {expected} was expected")]
    OutOfOrder { expected: u8, got: u8 },
    #[error("a message announced as {announced} bytes exceeds the 1024-byte maximum")]
    TooLong { announced: usize },
    #[error("more bytes arrived than the {announced} announced")]
    Overrun { announced: usize },
    #[error("the last fragment left the message at {received} of {announced} bytes")]
    Truncated { announced: usize, received: usize },
}

/// The payload bytes one fragment may carry at this MTU.
fn fragment_capacity(att_mtu: u16) -> Result<usize, FrameError> {
    if att_mtu < MIN_ATT_MTU {
        return Err(FrameError::MtuTooSmall { att_mtu });
    }
    Ok((usize::from(att_mtu) - 3).min(MAX_FRAGMENT_LEN))
}

/// Cuts `message` into fragments for a link with this ATT MTU. An empty message is one
/// fragment announcing zero bytes.
pub fn fragment(message: &[u8], att_mtu: u16) -> Result<Vec<Vec<u8>>, FrameError> {
    let capacity = fragment_capacity(att_mtu)?;
    if message.len() > MAX_MESSAGE_LEN {
        return Err(FrameError::MessageTooLong { len: message.len() });
    }
    let first_len = message.len().min(capacity - 3);
    let (head, mut rest) = message.split_at(first_len);
    let mut first = Vec::with_capacity(3 + head.len());
    first.push(FIRST);
    first.extend_from_slice(&(message.len() as u16).to_be_bytes());
    first.extend_from_slice(head);
    let mut fragments = vec![first];
    let mut index = 0u8;
    while !rest.is_empty() {
        index = (index + 1) & INDEX_MASK;
        let (chunk, tail) = rest.split_at(rest.len().min(capacity - 1));
        let mut fragment = Vec::with_capacity(1 + chunk.len());
        fragment.push(index);
        fragment.extend_from_slice(chunk);
        fragments.push(fragment);
        rest = tail;
    }
    if let Some(last) = fragments.last_mut() {
        last[0] |= LAST;
    }
    Ok(fragments)
}

struct Partial {
    announced: usize,
    next_index: u8,
    bytes: Vec<u8>,
}

/// Glues fragments back into messages. After any error it holds nothing, so the next
/// message starts clean.
#[derive(Default)]
pub struct Reassembler {
    partial: Option<Partial>,
}

impl fmt::Debug for Reassembler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.partial {
            None => f.write_str("Reassembler(idle)"),
            Some(p) => write!(f, "Reassembler({} of {} bytes)", p.bytes.len(), p.announced),
        }
    }
}

impl Reassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// True while a message is partly received.
    pub fn is_receiving(&self) -> bool {
        self.partial.is_some()
    }

    /// Takes one fragment; returns the message when this fragment completed it.
    pub fn push(&mut self, fragment: &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        let result = self.accept(fragment);
        if result.is_err() {
            self.partial = None;
        }
        result
    }

    fn accept(&mut self, fragment: &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        let (&header, body) = fragment.split_first().ok_or(FrameError::Empty)?;
        let index = header & INDEX_MASK;
        let partial = if header & FIRST != 0 {
            if let Some(p) = &self.partial {
                // A new message before the previous one completed.
                return Err(FrameError::OutOfOrder {
                    expected: p.next_index,
                    got: index,
                });
            }
            if index != 0 {
                return Err(FrameError::OutOfOrder {
                    expected: 0,
                    got: index,
                });
            }
            let [hi, lo, ..] = *body else {
                return Err(FrameError::MissingLength);
            };
            let announced = usize::from(u16::from_be_bytes([hi, lo]));
            if announced > MAX_MESSAGE_LEN {
                return Err(FrameError::TooLong { announced });
            }
            self.partial.insert(Partial {
                announced,
                next_index: 0,
                bytes: Vec::with_capacity(announced),
            })
        } else {
            self.partial
                .as_mut()
                .ok_or(FrameError::ContinuationWithoutStart)?
        };
        if index != partial.next_index {
            return Err(FrameError::OutOfOrder {
                expected: partial.next_index,
                got: index,
            });
        }
        partial.next_index = (index + 1) & INDEX_MASK;
        let data = if header & FIRST != 0 { &body[2..] } else { body };
        if partial.bytes.len() + data.len() > partial.announced {
            return Err(FrameError::Overrun {
                announced: partial.announced,
            });
        }
        partial.bytes.extend_from_slice(data);
        if header & LAST == 0 {
            return Ok(None);
        }
        let (announced, received) = (partial.announced, partial.bytes.len());
        if received < announced {
            return Err(FrameError::Truncated { announced, received });
        }
        Ok(self.partial.take().map(|p| p.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reassemble(fragments: &[Vec<u8>]) -> Result<Option<Vec<u8>>, FrameError> {
        let mut r = Reassembler::new();
        let mut out = None;
        for f in fragments {
            out = r.push(f)?;
        }
        Ok(out)
    }

    #[test]
    fn a_request_at_the_smallest_mtu_goes_in_twenty_byte_fragments() {
        let msg: Vec<u8> = (0..171u8).collect();
        let fragments = fragment(&msg, 23).unwrap();
        assert!(fragments.iter().all(|f| f.len() <= 20));
        assert_eq!(fragments.len(), 1 + (171 - 17usize).div_ceil(19));
        assert_eq!(fragments[0][0], FIRST);
        assert_eq!(fragments.last().unwrap()[0] & LAST, LAST);
        assert_eq!(reassemble(&fragments), Ok(Some(msg)));
    }

    #[test]
    fn a_large_mtu_still_keeps_fragments_within_one_attribute_value() {
        let msg = vec![7u8; 1024];
        let fragments = fragment(&msg, 517).unwrap();
        assert!(fragments.iter().all(|f| f.len() <= MAX_FRAGMENT_LEN));
        assert_eq!(reassemble(&fragments), Ok(Some(msg)));
    }

    #[test]
    fn an_mtu_below_23_and_an_oversize_message_are_refused_by_the_sender() {
        assert_eq!(fragment(b"x", 22), Err(FrameError::MtuTooSmall { att_mtu: 22 }));
        assert_eq!(
            fragment(&[0; 1025], 185),
            Err(FrameError::MessageTooLong { len: 1025 })
        );
    }

    #[test]
    fn a_continuation_without_a_start_is_refused() {
        let mut r = Reassembler::new();
        assert_eq!(r.push(&[0x01, 1, 2]), Err(FrameError::ContinuationWithoutStart));
        assert_eq!(r.push(&[]), Err(FrameError::Empty));
    }

    #[test]
    fn out_of_order_fragments_are_refused_and_the_receiver_starts_clean() {
        let msg = vec![1u8; 100];
        let mut fragments = fragment(&msg, 23).unwrap();
        fragments.swap(1, 2);
        let mut r = Reassembler::new();
        assert_eq!(r.push(&fragments[0]), Ok(None));
        assert_eq!(
            r.push(&fragments[1]),
            Err(FrameError::OutOfOrder { expected: 1, got: 2 })
        );
        assert!(!r.is_receiving());
        // The honest retry goes through.
        assert_eq!(reassemble(&fragment(&msg, 23).unwrap()), Ok(Some(msg)));
    }

    #[test]
    fn a_new_message_cannot_start_inside_another() {
        let fragments = fragment(&[2u8; 60], 23).unwrap();
        let mut r = Reassembler::new();
        r.push(&fragments[0]).unwrap();
        assert_eq!(
            r.push(&fragments[0]),
            Err(FrameError::OutOfOrder { expected: 1, got: 0 })
        );
    }

    #[test]
    fn an_announced_length_above_1024_is_refused_before_any_byte_is_kept() {
        let mut r = Reassembler::new();
        assert_eq!(
            r.push(&[FIRST, 0x04, 0x01, 0]),
            Err(FrameError::TooLong { announced: 1025 })
        );
        assert_eq!(r.push(&[FIRST | LAST, 0x04]), Err(FrameError::MissingLength));
    }

    #[test]
    fn more_bytes_than_announced_and_a_short_last_fragment_are_refused() {
        let mut r = Reassembler::new();
        assert_eq!(
            r.push(&[FIRST | LAST, 0, 2, 1, 2, 3]),
            Err(FrameError::Overrun { announced: 2 })
        );
        assert_eq!(
            r.push(&[FIRST | LAST, 0, 4, 1, 2]),
            Err(FrameError::Truncated {
                announced: 4,
                received: 2
            })
        );
        let mut truncated = fragment(&[3u8; 80], 23).unwrap();
        truncated.pop();
        truncated.last_mut().unwrap()[0] |= LAST;
        assert_eq!(
            reassemble(&truncated),
            Err(FrameError::Truncated {
                announced: 80,
                received: 74
            })
        );
    }

    #[test]
    fn the_index_wraps_at_64_for_long_messages_at_small_mtus() {
        // 1024 bytes at MTU 23 is 55 fragments; force a wrap with a hand-made stream.
        let mut stream = vec![vec![FIRST, 0, 70]];
        for i in 1..=70u32 {
            let mut f = vec![(i % 64) as u8];
            f.push(i as u8);
            stream.push(f);
        }
        stream.last_mut().unwrap()[0] |= LAST;
        assert_eq!(reassemble(&stream), Ok(Some((1..=70u8).collect())));
    }

    #[test]
    fn every_mtu_round_trips_the_sizes_at_fragment_boundaries() {
        let sizes = [
            0, 1, 2, 16, 17, 18, 19, 20, 36, 37, 171, 179, 180, 375, 509, 510, 511, 1023, 1024,
        ];
        for mtu in MIN_ATT_MTU..=517 {
            let cap = (usize::from(mtu) - 3).min(MAX_FRAGMENT_LEN);
            for &len in sizes
                .iter()
                .chain(&[cap - 3, cap - 2, cap + cap - 4, cap + cap - 3])
            {
                let len = len.min(MAX_MESSAGE_LEN);
                let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let fragments = fragment(&msg, mtu).unwrap();
                assert!(fragments.iter().all(|f| f.len() <= cap), "mtu {mtu} len {len}");
                assert_eq!(reassemble(&fragments), Ok(Some(msg)), "mtu {mtu} len {len}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_message_round_trips_at_any_mtu(len in 0usize..=1024, mtu in 23u16..=517, seed in any::<u8>()) {
            let msg: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let fragments = fragment(&msg, mtu).unwrap();
            let cap = (usize::from(mtu) - 3).min(MAX_FRAGMENT_LEN);
            prop_assert!(fragments.iter().all(|f| f.len() <= cap));
            prop_assert_eq!(reassemble(&fragments), Ok(Some(msg)));
        }

        #[test]
        fn random_fragment_streams_never_panic_and_never_yield_oversize_messages(
            stream in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..80)
        ) {
            let mut r = Reassembler::new();
            for f in &stream {
                if let Ok(Some(msg)) = r.push(f) {
                    prop_assert!(msg.len() <= MAX_MESSAGE_LEN);
                }
            }
        }
    }
}
