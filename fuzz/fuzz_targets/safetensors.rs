//! The checkpoint reader on arbitrary bytes: Ok or an error, never a panic;
//! whatever it accepts re-serialises to a file it reads back identically.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/store.rs"]
mod store;

fuzz_target!(|data: &[u8]| {
    if let Ok((tensors, meta)) = store::from_bytes(data) {
        let bytes = store::to_bytes(&tensors, &meta).expect("accepted tensors serialise");
        let (back, _) = store::from_bytes(&bytes).expect("re-serialised file reads");
        assert_eq!(back.len(), tensors.len());
    }
});
