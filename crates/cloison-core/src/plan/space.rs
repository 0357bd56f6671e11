//! Address-space arithmetic for the plan: which destinations are never "Internet", and
//! that space minus the segments' own subnets, as disjoint CIDR blocks. nftables interval
//! maps refuse overlapping elements, so the planner needs the pieces, not the union.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// IPv4 destinations that are never the Internet: RFC 1918, shared address space
/// (100.64/10), link-local, loopback, "this network", IETF protocol assignments,
/// benchmarking, multicast and reserved (RFC 6890).
pub const NON_INTERNET_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// IPv6 destinations that are never the Internet: unspecified, loopback, IPv4-mapped,
/// unique local (fc00::/7), link-local and multicast.
pub const NON_INTERNET_V6: &[&str] = &[
    "::/127",
    "::ffff:0:0/96",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

pub fn non_internet_v4() -> Vec<Ipv4Net> {
    NON_INTERNET_V4
        .iter()
        .map(|s| s.parse().expect("constant prefix"))
        .collect()
}

pub fn non_internet_v6() -> Vec<Ipv6Net> {
    NON_INTERNET_V6
        .iter()
        .map(|s| s.parse().expect("constant prefix"))
        .collect()
}

/// Whether `a` is outside the non-Internet space (what the ruleset calls `internet`).
pub fn is_internet(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => !non_internet_v4().iter().any(|n| n.contains(&a)),
        IpAddr::V6(a) => !non_internet_v6().iter().any(|n| n.contains(&a)),
    }
}

/// One piece of address space: an inclusive range, which nft lists as a prefix when it
/// is exactly one (a bare address for a host) and as `a-b` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Piece {
    Net(IpNet),
    Range(IpAddr, IpAddr),
}

/// `space` minus `holes`: merged, disjoint, sorted pieces.
pub fn subtract_v4(space: &[Ipv4Net], holes: &[Ipv4Net]) -> Vec<Piece> {
    let to_range = |n: &Ipv4Net| {
        (
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        )
    };
    let ranges = subtract(
        space.iter().map(to_range).collect(),
        holes.iter().map(to_range).collect(),
    );
    let addr = |x: u128| IpAddr::V4(Ipv4Addr::from(u32::try_from(x).expect("an IPv4 range")));
    ranges
        .into_iter()
        .map(|(a, b)| piece(a, b, 32, addr))
        .collect()
}

pub fn subtract_v6(space: &[Ipv6Net], holes: &[Ipv6Net]) -> Vec<Piece> {
    let to_range = |n: &Ipv6Net| (u128::from(n.network()), u128::from(n.broadcast()));
    let ranges = subtract(
        space.iter().map(to_range).collect(),
        holes.iter().map(to_range).collect(),
    );
    let addr = |x: u128| IpAddr::V6(Ipv6Addr::from(x));
    ranges
        .into_iter()
        .map(|(a, b)| piece(a, b, 128, addr))
        .collect()
}

fn piece(a: u128, b: u128, bits: u8, addr: impl Fn(u128) -> IpAddr) -> Piece {
    match cidrs(a, b, bits).as_slice() {
        [(start, len)] => Piece::Net(IpNet::new(addr(*start), *len).expect("valid prefix")),
        _ => Piece::Range(addr(a), addr(b)),
    }
}

impl Piece {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            Piece::Net(n) => n.contains(&ip),
            Piece::Range(a, b) => *a <= ip && ip <= *b,
        }
    }
}

/// Inclusive ranges: the union of `space` minus the union of `holes`, merged and sorted.
fn subtract(mut space: Vec<(u128, u128)>, holes: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    space.sort();
    let mut merged: Vec<(u128, u128)> = Vec::new();
    for (a, b) in space {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    for (ha, hb) in holes {
        merged = merged
            .into_iter()
            .flat_map(|(a, b)| {
                let mut out = Vec::with_capacity(2);
                if hb < a || ha > b {
                    out.push((a, b));
                } else {
                    if ha > a {
                        out.push((a, ha - 1));
                    }
                    if hb < b {
                        out.push((hb + 1, b));
                    }
                }
                out
            })
            .collect();
    }
    merged
}

/// The aligned CIDR blocks covering `[a, b]` exactly, for addresses of `bits` bits.
fn cidrs(mut a: u128, b: u128, bits: u8) -> Vec<(u128, u8)> {
    let mut out = Vec::new();
    loop {
        // Largest block starting at `a` that is aligned and stays within `b`.
        let mut size_log = if a == 0 {
            u32::from(bits)
        } else {
            a.trailing_zeros().min(u32::from(bits))
        };
        while size_log > 0 && block_end(a, size_log).is_none_or(|end| end > b) {
            size_log -= 1;
        }
        // size_log <= bits <= 128: it fits a u8.
        out.push((a, bits - u8::try_from(size_log).expect("at most 128")));
        match block_end(a, size_log) {
            Some(end) if end < b => a = end + 1,
            _ => return out,
        }
    }
}

fn block_end(a: u128, size_log: u32) -> Option<u128> {
    if size_log >= 128 {
        return if a == 0 { Some(u128::MAX) } else { None };
    }
    a.checked_add((1u128 << size_log) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n4(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn punches_segment_subnets_out_of_private_space() {
        let got = subtract_v4(
            &[n4("192.168.0.0/16")],
            &[n4("192.168.10.0/24"), n4("192.168.20.0/24")],
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            got,
            [
                Piece::Range(ip("192.168.0.0"), ip("192.168.9.255")),
                Piece::Range(ip("192.168.11.0"), ip("192.168.19.255")),
                Piece::Range(ip("192.168.21.0"), ip("192.168.255.255")),
            ]
        );
        // A piece that is exactly a prefix stays a prefix, as nft lists it.
        assert_eq!(
            subtract_v4(&[n4("10.0.0.0/8")], &[n4("10.128.0.0/9")]),
            [Piece::Net("10.0.0.0/9".parse().unwrap())]
        );
    }

    #[test]
    fn pieces_cover_exactly_the_difference() {
        let space = non_internet_v4();
        let holes = [
            n4("10.1.2.0/24"),
            n4("192.168.10.0/24"),
            n4("172.16.0.0/12"),
        ];
        let pieces = subtract_v4(&space, &holes);
        for probe in [
            "10.1.2.7",
            "192.168.10.1",
            "172.20.0.1",
            "8.8.8.8",
            "198.51.100.10",
        ] {
            let a: IpAddr = probe.parse().unwrap();
            assert!(
                !pieces.iter().any(|p| p.contains(a)),
                "{probe} must not be covered"
            );
        }
        for probe in [
            "10.1.3.1",
            "10.0.0.1",
            "192.168.1.254",
            "169.254.1.1",
            "255.255.255.255",
            "0.0.0.0",
        ] {
            let a: IpAddr = probe.parse().unwrap();
            assert_eq!(
                pieces.iter().filter(|p| p.contains(a)).count(),
                1,
                "{probe} covered once"
            );
        }
        let starts: Vec<IpAddr> = pieces
            .iter()
            .map(|p| match p {
                Piece::Net(n) => n.network(),
                Piece::Range(a, _) => *a,
            })
            .collect();
        assert!(
            starts.windows(2).all(|w| w[0] < w[1]),
            "sorted and disjoint: {pieces:?}"
        );
    }

    #[test]
    fn ipv6_and_whole_space_edges() {
        let pieces = subtract_v6(&non_internet_v6(), &["fd00:10::/64".parse().unwrap()]);
        let a: IpAddr = "fd00:10::5".parse().unwrap();
        let b: IpAddr = "fd00:11::5".parse().unwrap();
        assert!(!pieces.iter().any(|p| p.contains(a)));
        assert!(pieces.iter().any(|p| p.contains(b)));
        assert!(pieces.len() < 10, "ranges keep the map small: {pieces:?}");
        assert_eq!(cidrs(0, u128::MAX, 128), [(0, 0)]);
        assert_eq!(cidrs(0, u128::from(u32::MAX), 32), [(0, 0)]);
    }
}
