//! The IDX reader on arbitrary bytes, raw and as the payload of a gzip stream:
//! it must return Ok or an error, never panic or allocate what a header claims.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/data/idx.rs"]
mod idx;

fuzz_target!(|data: &[u8]| {
    for rank in 1..=3 {
        if let Ok(arr) = idx::decode(Path::new("fuzz"), data, rank) {
            assert_eq!(arr.dims.iter().product::<usize>(), arr.data.len());
        }
    }
    let gz = flate2::read::GzDecoder::new(data);
    let _ = idx::decode(Path::new("fuzz.gz"), gz, 3);
});
