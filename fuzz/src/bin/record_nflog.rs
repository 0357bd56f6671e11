//! Records what the kernel sends cloison's NFLOG subscription, datagram by datagram, as
//! `recv(2)` returns it: the nflog target's seeds and `cloison::nflog`'s test fixtures.
//! Binds the group as the daemon does (`cloison::nflog::Reader`), so the copy range and
//! queue threshold are the daemon's. Run by fuzz/record-nflog in a scratch namespace.
//!
//! Usage: record-nflog DIR SECONDS   (writes DIR/NNN.bin; prints the count)

use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, secs] = args.as_slice() else {
        eprintln!("usage: record-nflog DIR SECONDS");
        std::process::exit(2);
    };
    let secs: u64 = secs.parse().expect("SECONDS is a number");
    std::fs::create_dir_all(dir)?;
    let mut reader = cloison::nflog::Reader::open(Duration::from_millis(100))?;
    // Tells the script the group is bound: it starts sending.
    println!("bound");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut n = 0;
    while Instant::now() < deadline {
        if let Some(datagram) = reader.recv_datagram()? {
            n += 1;
            std::fs::write(format!("{dir}/{n:03}.bin"), datagram)?;
        }
    }
    println!("{n} datagrams in {dir}");
    Ok(())
}
