//! Writes the fixture frames, at every capture point and with a few metadata variants,
//! into fuzz/corpus/classify as the fuzzer's starting corpus.

use std::path::Path;

use cloison_fuzz::Setup;
use cloison_lab::frames as fixtures;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/classify");
    std::fs::create_dir_all(&dir)?;
    let mut n = 0;
    for (i, frame) in fixtures::corpus().iter().enumerate() {
        for point in 0..Setup::get().points() {
            for (flags, tci) in [(0u8, 0u16), (1 | 2, 20), (1 | 4, 10)] {
                let mut data = vec![point as u8, flags];
                data.extend_from_slice(&tci.to_be_bytes());
                data.extend_from_slice(&0x8100u16.to_be_bytes());
                data.extend_from_slice(frame);
                cloison_fuzz::check(&data);
                std::fs::write(dir.join(format!("seed-{i:02}-{point}-{flags}")), &data)?;
                n += 1;
            }
        }
    }
    println!("{n} seeds in {}", dir.display());
    Ok(())
}
