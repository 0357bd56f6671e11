//! Reading a listed table (`nft -j list table inet cloison`): its named counters, and a
//! batch whose counters start from given values so totals survive a replacement. Pure
//! JSON in, JSON or values out.

use std::collections::BTreeMap;

use serde_json::Value;

/// Packet and byte counts of one named counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub packets: u64,
    pub bytes: u64,
}

/// The named counters of a listed table.
pub fn counters(listing: &Value) -> BTreeMap<String, Counts> {
    listing
        .get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("counter"))
        .filter_map(|c| {
            let name = c.get("name")?.as_str()?.to_owned();
            let counts = Counts {
                packets: c.get("packets").and_then(Value::as_u64).unwrap_or(0),
                bytes: c.get("bytes").and_then(Value::as_u64).unwrap_or(0),
            };
            Some((name, counts))
        })
        .collect()
}

/// The batch with each named counter starting from the given values, so totals survive
/// the table being replaced. Values are u64 here (the nftables crate's counters are u32).
pub fn carry_counters(batch: &Value, from: &BTreeMap<String, Counts>) -> Value {
    let mut batch = batch.clone();
    if let Some(items) = batch.get_mut("nftables").and_then(Value::as_array_mut) {
        for item in items {
            let Some(counter) = item
                .get_mut("add")
                .and_then(|a| a.get_mut("counter"))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let name = counter
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if let Some(c) = from.get(&name) {
                counter.insert("packets".into(), c.packets.into());
                counter.insert("bytes".into(), c.bytes.into());
            }
        }
    }
    batch
}

/// Merges counter readings: for each counter, the reading with more packets wins (a
/// newer reading wins a tie). The one rule for carrying totals across a table that was
/// replaced, flushed or deleted, so a count never goes backwards.
pub fn keep_highest(into: &mut BTreeMap<String, Counts>, from: &BTreeMap<String, Counts>) {
    for (name, c) in from {
        let e = into.entry(name.clone()).or_default();
        if c.packets >= e.packets {
            *e = *c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_counters_beyond_u32() {
        let listing = json!({"nftables": [
            {"counter": {"family": "inet", "table": "cloison", "name": "kiosk/mairie", "packets": 5, "bytes": 8_000_000_000u64}}
        ]});
        let c = counters(&listing);
        assert_eq!(
            c["kiosk/mairie"],
            Counts {
                packets: 5,
                bytes: 8_000_000_000
            }
        );
    }

    #[test]
    fn the_highest_reading_wins() {
        let c = |packets| Counts {
            packets,
            bytes: packets * 10,
        };
        let mut totals = BTreeMap::from([("a".to_owned(), c(5)), ("b".to_owned(), c(9))]);
        let reading = BTreeMap::from([
            ("a".to_owned(), c(7)),
            ("b".to_owned(), c(0)),
            ("new".to_owned(), c(1)),
        ]);
        keep_highest(&mut totals, &reading);
        assert_eq!(totals["a"], c(7), "a newer, higher reading");
        assert_eq!(totals["b"], c(9), "a table that was replaced reads 0: kept");
        assert_eq!(totals["new"], c(1));
    }

    #[test]
    fn carries_counters_into_a_new_batch() {
        let batch = json!({"nftables": [
            {"add": {"counter": {"family": "inet", "table": "cloison", "name": "kiosk/mairie", "bytes": null}}},
            {"add": {"counter": {"family": "inet", "table": "cloison", "name": "new/one", "bytes": null}}}
        ]});
        let from = BTreeMap::from([(
            "kiosk/mairie".to_owned(),
            Counts {
                packets: 37,
                bytes: 2220,
            },
        )]);
        let out = carry_counters(&batch, &from);
        assert_eq!(out["nftables"][0]["add"]["counter"]["packets"], 37);
        assert_eq!(out["nftables"][0]["add"]["counter"]["bytes"], 2220);
        assert_eq!(out["nftables"][1]["add"]["counter"]["bytes"], Value::Null);
    }
}
