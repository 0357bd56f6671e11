//! Header walks shared by the two readers of untrusted packets, the capture's `classify`
//! and the samples' `decode`: the IPv6 extension-header chain down to the transport
//! header. Allocation-free and total on any bytes; the walk is bounded by the bytes the
//! chain occupies (every extension header takes at least 8), never by a count an
//! attacker can exceed by stacking one more header.

/// IP protocol numbers this walk and its callers know.
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPV6_HOP_BY_HOP: u8 = 0;
pub const IPV6_ROUTING: u8 = 43;
pub const IPV6_FRAGMENT: u8 = 44;
pub const IPV6_ESP: u8 = 50;
pub const IPV6_AUTH: u8 = 51;
pub const IPV6_NO_NEXT: u8 = 59;
pub const IPV6_DEST_OPTS: u8 = 60;

/// Whether `next` is an IPv6 extension header the walk steps over.
pub fn is_ipv6_extension(next: u8) -> bool {
    matches!(
        next,
        IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_FRAGMENT | IPV6_AUTH | IPV6_DEST_OPTS
    )
}

/// Where an IPv6 extension-header chain leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport<'a> {
    /// The upper-layer protocol, or the header where the walk had to stop (44 for a
    /// later fragment, 50 for ESP, the header that was cut).
    pub proto: u8,
    /// The transport header and what follows it, when the walk reached it: in a first
    /// (or only) fragment, with nothing cut on the way.
    pub l4: Option<&'a [u8]>,
    /// Bytes of extension headers walked over (up to the transport header, or to where
    /// the walk stopped).
    pub extensions_len: usize,
}

/// Walks the extension headers from `next` over `rest` (what follows the fixed IPv6
/// header).
pub fn ipv6_transport(mut next: u8, chain: &[u8]) -> Transport<'_> {
    let mut rest = chain;
    let walked = |rest: &[u8]| chain.len() - rest.len();
    let stop = |proto, rest: &[u8]| Transport {
        proto,
        l4: None,
        extensions_len: walked(rest),
    };
    // Each step consumes at least 8 bytes, so this bound is never what ends a walk.
    for _ in 0..=rest.len() / 8 {
        let len = match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => match rest.get(1) {
                Some(&units) => (usize::from(units) + 1) * 8,
                None => return stop(next, rest),
            },
            IPV6_FRAGMENT => {
                let Some(offset) = rest.get(2..4) else {
                    return stop(next, rest);
                };
                // Fragment offset: the top 13 bits, in 8-byte units.
                if u16::from_be_bytes([offset[0], offset[1]]) >> 3 != 0 {
                    return stop(next, rest);
                }
                8
            }
            IPV6_AUTH => match rest.get(1) {
                Some(&units) => ((usize::from(units) + 2) * 4).max(8),
                None => return stop(next, rest),
            },
            IPV6_ESP | IPV6_NO_NEXT => return stop(next, rest),
            _ => {
                return Transport {
                    proto: next,
                    l4: Some(rest),
                    extensions_len: walked(rest),
                };
            }
        };
        let (Some(&following), Some(after)) = (rest.first(), rest.get(len..)) else {
            return stop(next, rest);
        };
        next = following;
        rest = after;
    }
    stop(next, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_extensions_and_stops_at_later_fragments() {
        // hop-by-hop (8 bytes) -> destination options (16 bytes) -> ICMPv6
        let mut chain = vec![60, 0, 1, 4, 0, 0, 0, 0];
        chain.extend_from_slice(&[58, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        chain.extend_from_slice(&[134, 0, 0, 0]);
        let t = ipv6_transport(IPV6_HOP_BY_HOP, &chain);
        assert_eq!(t.proto, IPPROTO_ICMPV6);
        assert_eq!(t.l4, Some(&[134u8, 0, 0, 0][..]));
        // first fragment: reachable; offset 8: not
        let first = [58, 0, 0, 0, 0, 0, 0, 1, 134, 0];
        assert_eq!(
            ipv6_transport(IPV6_FRAGMENT, &first).l4,
            Some(&[134u8, 0][..])
        );
        let later = [58, 0, 0, 0x40 | 0x01, 0, 0, 0, 1, 134, 0];
        assert_eq!(
            ipv6_transport(IPV6_FRAGMENT, &later),
            Transport {
                proto: IPV6_FRAGMENT,
                l4: None,
                extensions_len: 0,
            }
        );
        assert_eq!(ipv6_transport(IPV6_HOP_BY_HOP, &chain).extensions_len, 24);
        // cut inside an extension header
        assert_eq!(ipv6_transport(IPV6_HOP_BY_HOP, &chain[..5]).l4, None);
        // ESP: nothing readable behind it
        assert_eq!(ipv6_transport(IPV6_ESP, &[0; 32]).l4, None);
        // AH: (2 + 2) * 4 = 16 bytes, then UDP
        let mut ah = vec![17, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        ah.extend_from_slice(&[0, 1, 0, 2]);
        assert_eq!(ipv6_transport(IPV6_AUTH, &ah).l4, Some(&[0u8, 1, 0, 2][..]));
    }

    #[test]
    fn the_walk_is_bounded_by_bytes_not_by_a_count() {
        // 200 destination-options headers, then an RA: reached.
        let mut chain: Vec<u8> = std::iter::repeat_n([60u8, 0, 0, 0, 0, 0, 0, 0], 199)
            .flatten()
            .collect();
        chain.extend_from_slice(&[58, 0, 0, 0, 0, 0, 0, 0]);
        chain.extend_from_slice(&[134, 0]);
        let t = ipv6_transport(IPV6_DEST_OPTS, &chain);
        assert_eq!((t.proto, t.l4), (IPPROTO_ICMPV6, Some(&[134u8, 0][..])));
        // A chain that never ends within the bytes: stops where the bytes do.
        let looped: Vec<u8> = std::iter::repeat_n([60u8, 0, 0, 0, 0, 0, 0, 0], 20)
            .flatten()
            .collect();
        assert_eq!(
            ipv6_transport(IPV6_DEST_OPTS, &looped),
            Transport {
                proto: 60,
                l4: None,
                extensions_len: 160,
            }
        );
        for len in 0..looped.len() {
            let _ = ipv6_transport(IPV6_DEST_OPTS, &looped[..len]);
        }
    }
}
