//! The decoders on datagrams captured from Linux 6.18 (nft 1.0.6) by
//! `scripts/capture-fixtures.sh`; the pids and generations below are the ones of that
//! capture. See `fixtures/README.md` for the commands that produced each file.

use super::wire::{self, ChangeKind::*, Family, Notification, RawMessage, Request};
use super::{Assembler, Change, Counts, Event, Transaction};

const LOAD_CHANGES: &[u8] = include_bytes!("fixtures/load-changes.bin");
const LOAD_NEWGEN: &[u8] = include_bytes!("fixtures/load-newgen.bin");
const INSERT_CHANGES: &[u8] = include_bytes!("fixtures/insert-changes.bin");
const INSERT_NEWGEN: &[u8] = include_bytes!("fixtures/insert-newgen.bin");
const DELETE_CHANGES: &[u8] = include_bytes!("fixtures/delete-changes.bin");
const DELETE_NEWGEN: &[u8] = include_bytes!("fixtures/delete-newgen.bin");
const FLUSH_CHANGES: &[u8] = include_bytes!("fixtures/flush-changes.bin");
const FLUSH_NEWGEN: &[u8] = include_bytes!("fixtures/flush-newgen.bin");
const GETGEN: &[u8] = include_bytes!("fixtures/getgen.bin");
const GETOBJ_COUNTERS: &[u8] = include_bytes!("fixtures/getobj-counters.bin");
const GETOBJ_DONE: &[u8] = include_bytes!("fixtures/getobj-done.bin");
const GETOBJ_EMPTY: &[u8] = include_bytes!("fixtures/getobj-empty.bin");
const GETTABLE_ENOENT: &[u8] = include_bytes!("fixtures/gettable-enoent.bin");

const ALL: [&[u8]; 13] = [
    LOAD_CHANGES,
    LOAD_NEWGEN,
    INSERT_CHANGES,
    INSERT_NEWGEN,
    DELETE_CHANGES,
    DELETE_NEWGEN,
    FLUSH_CHANGES,
    FLUSH_NEWGEN,
    GETGEN,
    GETOBJ_COUNTERS,
    GETOBJ_DONE,
    GETOBJ_EMPTY,
    GETTABLE_ENOENT,
];

fn change(kind: super::ChangeKind, family: Family, table: &str, name: Option<&str>) -> Change {
    Change {
        kind,
        family,
        table: table.into(),
        name: name.map(Into::into),
    }
}

fn inet(kind: super::ChangeKind, name: &str) -> Change {
    change(kind, Family::Inet, "cloison", Some(name))
}

fn transactions(datagrams: &[&[u8]]) -> Vec<Event> {
    let mut a = Assembler::default();
    let mut out = Vec::new();
    for d in datagrams {
        a.datagram(d, &mut out).expect("fixture decodes");
    }
    assert_eq!(a.pending(), 0, "every change has its NEWGEN");
    out
}

fn only_transaction(datagrams: &[&[u8]]) -> Transaction {
    match transactions(datagrams).as_slice() {
        [Event::Transaction(t)] => t.clone(),
        other => panic!("expected one transaction, got {other:?}"),
    }
}

#[test]
fn a_loaded_ruleset_is_one_transaction_in_commit_order() {
    let t = only_transaction(&[LOAD_CHANGES, LOAD_NEWGEN]);
    assert_eq!(t.generation, 2);
    assert_eq!(t.pid, Some(18414));
    assert_eq!(t.comm.as_deref(), Some("nft"));
    assert_eq!(t.portid, 18414, "nft's first socket is bound to its pid");
    assert!(t.complete);
    assert_eq!(
        t.changes,
        vec![
            change(NewTable, Family::Inet, "cloison", None),
            inet(NewChain, "input"),
            inet(NewChain, "fw"),
            inet(NewObj, "c1"),
            inet(NewObj, "c2"),
            inet(NewObj, "c3"),
            inet(NewSet, "s1"),
            inet(NewSetElem, "s1"),
            inet(NewRule, "input"),
            inet(NewRule, "fw"),
            change(NewTable, Family::Ip, "other", None),
            change(NewChain, Family::Ip, "other", Some("c")),
        ]
    );
}

#[test]
fn changes_come_before_their_newgen_in_separate_datagrams() {
    let mut a = Assembler::default();
    let mut out = Vec::new();
    a.datagram(INSERT_CHANGES, &mut out).unwrap();
    assert!(out.is_empty(), "nothing is reported before NEWGEN");
    assert_eq!(a.pending(), 1);
    a.datagram(INSERT_NEWGEN, &mut out).unwrap();
    assert_eq!(
        out,
        vec![Event::Transaction(Transaction {
            generation: 3,
            pid: Some(18418),
            comm: Some("nft".into()),
            portid: 18418,
            changes: vec![inet(NewRule, "input")],
            complete: true,
        })]
    );
}

#[test]
fn deleting_a_table_reports_its_contents_then_the_table() {
    let t = only_transaction(&[DELETE_CHANGES, DELETE_NEWGEN]);
    assert_eq!((t.generation, t.pid), (4, Some(18420)));
    assert_eq!(
        t.changes,
        vec![
            inet(DelRule, "input"),
            inet(DelRule, "input"),
            inet(DelRule, "fw"),
            inet(DelSet, "s1"),
            inet(DelObj, "c1"),
            inet(DelObj, "c2"),
            inet(DelObj, "c3"),
            inet(DelChain, "input"),
            inet(DelChain, "fw"),
            change(DelTable, Family::Inet, "cloison", None),
        ],
        "no DELSETELEM: a set's elements go with the set"
    );
}

#[test]
fn flushing_the_ruleset_deletes_every_table_in_one_transaction() {
    let t = only_transaction(&[FLUSH_CHANGES, FLUSH_NEWGEN]);
    assert_eq!((t.generation, t.pid), (6, Some(18445)));
    let tables: Vec<_> = t
        .changes
        .iter()
        .filter(|c| c.kind == DelTable)
        .map(|c| (c.family, c.table.as_str()))
        .collect();
    assert_eq!(
        tables,
        vec![(Family::Ip, "other"), (Family::Inet, "cloison")],
        "one DELTABLE per table"
    );
    assert_eq!(
        t.changes,
        vec![
            change(DelChain, Family::Ip, "other", Some("c")),
            change(DelTable, Family::Ip, "other", None),
            inet(DelRule, "input"),
            inet(DelRule, "fw"),
            inet(DelSet, "s1"),
            inet(DelObj, "c1"),
            inet(DelObj, "c2"),
            inet(DelObj, "c3"),
            inet(DelChain, "input"),
            inet(DelChain, "fw"),
            change(DelTable, Family::Inet, "cloison", None),
        ]
    );
}

#[test]
fn every_change_carries_the_low_bits_of_its_generation() {
    for (changes, generation) in [(LOAD_CHANGES, 2), (DELETE_CHANGES, 4), (FLUSH_CHANGES, 6)] {
        for m in wire::messages(changes) {
            let m = m.unwrap();
            match wire::decode_notification(&m).unwrap() {
                Some(Notification::Change { res_id, .. }) => assert_eq!(res_id, generation),
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn a_change_of_another_generation_makes_the_transaction_incomplete() {
    // As after lost datagrams: the deletion's changes (generation 4), then the NEWGEN of 2.
    let t = only_transaction(&[DELETE_CHANGES, LOAD_NEWGEN]);
    assert_eq!(t.generation, 2);
    assert!(!t.complete);
}

#[test]
fn an_overflow_drops_what_is_pending_and_marks_the_next_transaction() {
    let mut a = Assembler::default();
    let mut out = Vec::new();
    a.datagram(LOAD_CHANGES, &mut out).unwrap();
    a.overflow(&mut out);
    assert_eq!(a.pending(), 0);
    a.datagram(LOAD_NEWGEN, &mut out).unwrap();
    a.datagram(INSERT_CHANGES, &mut out).unwrap();
    a.datagram(INSERT_NEWGEN, &mut out).unwrap();
    let [
        Event::Overflow,
        Event::Transaction(lost),
        Event::Transaction(next),
    ] = out.as_slice()
    else {
        panic!("{out:?}");
    };
    assert_eq!((lost.generation, lost.complete), (2, false));
    assert!(lost.changes.is_empty());
    assert_eq!((next.generation, next.complete), (3, true));
}

#[test]
fn getgen_answers_with_the_generation_and_the_asker() {
    let m = first(GETGEN);
    assert_eq!(m.nft_type(), Some(wire::msg::NEWGEN));
    let (family, res_id, area) = wire::split_nfgenmsg(m.payload).unwrap();
    assert_eq!((family, res_id), (Family::Unspec, 7));
    let g = wire::decode_gen(area).unwrap();
    assert_eq!(g.id, 7);
    // The answer names the process that asked, not the last one that committed.
    assert_eq!(g.comm.as_deref(), Some("capture"));
    assert_eq!(g.pid, Some(18647));
}

#[test]
fn counter_objects_decode_to_exact_64_bit_counts() {
    let msgs: Vec<_> = wire::messages(GETOBJ_COUNTERS)
        .map(Result::unwrap)
        .collect();
    assert_eq!(msgs.len(), 3);
    let mut got = Vec::new();
    for m in &msgs {
        assert_eq!(m.nft_type(), Some(wire::msg::NEWOBJ));
        assert_eq!(m.flags & netlink_packet_core::NLM_F_MULTIPART, 2);
        let (family, _, area) = wire::split_nfgenmsg(m.payload).unwrap();
        assert_eq!(family, Family::Inet);
        got.push(wire::decode_counter(area).unwrap().unwrap());
    }
    let zero = Counts::default();
    assert_eq!(
        got,
        vec![
            ("cloison".into(), "c1".into(), zero),
            (
                "cloison".into(),
                "c2".into(),
                Counts {
                    packets: 7,
                    bytes: 5_000_000_000
                }
            ),
            ("cloison".into(), "c3".into(), zero),
        ]
    );
}

#[test]
fn a_dump_ends_with_done_and_an_unknown_table_is_an_empty_dump() {
    for d in [GETOBJ_DONE, GETOBJ_EMPTY] {
        let m = first(d);
        assert_eq!(m.kind, netlink_packet_core::NLMSG_DONE);
        assert_eq!(m.payload, &0i32.to_ne_bytes()[..], "status 0");
        assert_eq!(m.seq, 3);
    }
}

#[test]
fn a_missing_table_is_enoent() {
    let m = first(GETTABLE_ENOENT);
    assert_eq!(m.kind, netlink_packet_core::NLMSG_ERROR);
    assert_eq!(wire::decode_error(m.payload).unwrap(), (libc::ENOENT, 2));
}

#[test]
fn answers_end_requests_as_the_kernel_means() {
    use super::query::{End, Step, step};
    let mut intr = false;
    let counters: Vec<_> = wire::messages(GETOBJ_COUNTERS)
        .map(Result::unwrap)
        .collect();
    for m in &counters {
        assert_eq!(step(3, m, &mut intr).unwrap(), Step::Data);
        assert_eq!(
            step(2, m, &mut intr).unwrap(),
            Step::Skip,
            "another request's"
        );
    }
    let done = first(GETOBJ_DONE);
    assert_eq!(step(3, &done, &mut intr).unwrap(), Step::End(End::Done));
    let enoent = first(GETTABLE_ENOENT);
    assert_eq!(
        step(2, &enoent, &mut intr).unwrap(),
        Step::End(End::Errno(libc::ENOENT))
    );

    // The same dump with NLM_F_DUMP_INTR on one part: start again.
    let mut intr = false;
    let mut part = counters[1];
    part.flags |= netlink_packet_core::NLM_F_DUMP_INTR;
    step(3, &counters[0], &mut intr).unwrap();
    step(3, &part, &mut intr).unwrap();
    assert_eq!(
        step(3, &done, &mut intr).unwrap(),
        Step::End(End::Interrupted)
    );

    // A dump whose NLMSG_DONE carries an error.
    let mut intr = false;
    let ebusy = (-libc::EBUSY).to_ne_bytes();
    let failed = RawMessage {
        payload: &ebusy,
        ..done
    };
    assert_eq!(
        step(3, &failed, &mut intr).unwrap(),
        Step::End(End::Errno(libc::EBUSY))
    );
}

#[test]
fn counters_of_other_tables_or_families_are_left_out() {
    use super::query::collect_counter;
    let mut out = std::collections::BTreeMap::new();
    for m in wire::messages(GETOBJ_COUNTERS) {
        let m = m.unwrap();
        collect_counter(Family::Ip, "cloison", &m, &mut out).unwrap();
        collect_counter(Family::Inet, "other", &m, &mut out).unwrap();
    }
    assert!(out.is_empty());
    for m in wire::messages(GETOBJ_COUNTERS) {
        collect_counter(Family::Inet, "cloison", &m.unwrap(), &mut out).unwrap();
    }
    assert_eq!(out.len(), 3);
    assert_eq!(out["c2"].bytes, 5_000_000_000);
}

#[test]
fn requests_are_laid_out_as_nfnetlink_expects() {
    let req = Request::new(wire::msg::GETOBJ, Family::Inet, 0x0102_0304, true)
        .string(wire::attr::TABLE, "cloison")
        .be32(wire::attr::OBJ_TYPE, wire::NFT_OBJECT_COUNTER)
        .finish();
    let mut expected = Vec::new();
    expected.extend_from_slice(&40u32.to_ne_bytes()); // 16 + 4 + 12 + 8
    expected.extend_from_slice(&0x0a13u16.to_ne_bytes()); // NFNL_SUBSYS_NFTABLES, GETOBJ
    expected.extend_from_slice(&0x0301u16.to_ne_bytes()); // NLM_F_REQUEST | NLM_F_DUMP
    expected.extend_from_slice(&0x0102_0304u32.to_ne_bytes());
    expected.extend_from_slice(&0u32.to_ne_bytes());
    expected.extend_from_slice(&[1, 0, 0, 0]); // nfgenmsg: NFPROTO_INET, v0, res_id 0
    expected.extend_from_slice(&12u16.to_ne_bytes());
    expected.extend_from_slice(&1u16.to_ne_bytes());
    expected.extend_from_slice(b"cloison\0");
    expected.extend_from_slice(&8u16.to_ne_bytes());
    expected.extend_from_slice(&3u16.to_ne_bytes());
    expected.extend_from_slice(&1u32.to_be_bytes());
    assert_eq!(req, expected);

    // A name whose NUL does not end on a 4-byte boundary is padded.
    let req = Request::new(wire::msg::GETTABLE, Family::Ip, 1, false)
        .string(wire::attr::TABLE, "abcd")
        .finish();
    assert_eq!(req.len(), 16 + 4 + 12);
    assert_eq!(&req[24..], b"abcd\0\0\0\0");
    assert_eq!(
        u16::from_ne_bytes([req[6], req[7]]),
        1,
        "NLM_F_REQUEST only"
    );
}

#[test]
fn truncated_or_corrupted_datagrams_are_errors_not_panics() {
    for d in ALL {
        for cut in 0..d.len() {
            decode_everything(&d[..cut]);
        }
        let mut flipped = d.to_vec();
        for i in 0..flipped.len() {
            for bit in [0x01, 0x80, 0xff] {
                flipped[i] ^= bit;
                decode_everything(&flipped);
                flipped[i] ^= bit;
            }
        }
    }
    // A message shorter than its header says, and an attribute longer than its message.
    assert!(wire::messages(&LOAD_NEWGEN[..20]).next().unwrap().is_err());
    let mut bad = LOAD_NEWGEN.to_vec();
    bad[20] = 0xff; // first attribute's length
    let m = first(&bad);
    assert!(wire::decode_notification(&m).is_err());
    let mut a = Assembler::default();
    assert!(a.datagram(&bad, &mut Vec::new()).is_err());
}

#[test]
fn families_and_kinds_map_both_ways() {
    for raw in 0..=255u8 {
        assert_eq!(Family::from_raw(raw).raw(), raw);
    }
    assert_eq!(Family::Inet.to_string(), "inet");
    assert_eq!(Family::Ip6.to_string(), "ip6");
    assert_eq!(wire::ChangeKind::from_msg(wire::msg::NEWGEN), None);
    assert_eq!(wire::ChangeKind::from_msg(wire::msg::GETTABLE), None);
    assert_eq!(
        wire::ChangeKind::from_msg(wire::msg::DESTROYTABLE),
        Some(DelTable)
    );
    assert_eq!(wire::ChangeKind::from_msg(31), Some(DelObj));
    assert_eq!(DelSetElem.to_string(), "DELSETELEM");
}

fn first(datagram: &[u8]) -> RawMessage<'_> {
    wire::messages(datagram).next().unwrap().unwrap()
}

/// Runs every decoder on whatever parses; only checks that nothing panics.
fn decode_everything(datagram: &[u8]) {
    let _ = Assembler::default().datagram(datagram, &mut Vec::new());
    for m in wire::messages(datagram).map_while(Result::ok) {
        let _ = wire::decode_notification(&m);
        let _ = wire::decode_error(m.payload);
        if let Ok((_, _, area)) = wire::split_nfgenmsg(m.payload) {
            let _ = wire::decode_gen(area);
            let _ = wire::decode_counter(area);
        }
    }
}
