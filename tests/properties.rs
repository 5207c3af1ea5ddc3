//! Property tests: the readers of untrusted files (IDX, safetensors,
//! config.json) return an error naming the problem for any input, and never
//! panic or allocate what a header merely claims.

use std::path::Path;

use cdcgan::data::idx::{decode, encode};
use cdcgan::model::weights::{HostTensor, NamedTensors};
use cdcgan::store::{Metadata, from_bytes, to_bytes};
use proptest::prelude::*;

fn valid_idx() -> impl Strategy<Value = (Vec<usize>, Vec<u8>)> {
    (1usize..6, 1usize..5, 1usize..5).prop_flat_map(|(n, h, w)| {
        (
            Just(vec![n, h, w]),
            proptest::collection::vec(any::<u8>(), n * h * w),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn idx_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), rank in 1usize..4) {
        if let Err(e) = decode(Path::new("fuzz-idx"), bytes.as_slice(), rank) {
            prop_assert!(e.to_string().starts_with("fuzz-idx: "), "{}", e);
        }
    }

    #[test]
    fn idx_round_trips((dims, data) in valid_idx()) {
        let bytes = encode(&dims, &data).unwrap();
        let back = decode(Path::new("x"), bytes.as_slice(), 3).unwrap();
        prop_assert_eq!(back.dims, dims);
        prop_assert_eq!(back.data, data);
    }

    #[test]
    fn idx_truncated_or_corrupted_is_an_error((dims, data) in valid_idx(), cut in 0usize..1000, flip in 0usize..16) {
        let bytes = encode(&dims, &data).unwrap();
        let cut = cut % bytes.len();
        prop_assert!(decode(Path::new("x"), &bytes[..cut], 3).is_err());
        // Any change to the header's magic or dimensions is caught (or still consistent).
        let mut bad = bytes.clone();
        bad[flip] ^= 0x5a;
        if let Ok(arr) = decode(Path::new("x"), bad.as_slice(), 3) {
            prop_assert_eq!(arr.dims.iter().product::<usize>(), arr.data.len());
        }
    }

    #[test]
    fn idx_huge_headers_are_refused_without_allocating(n in 1u32..u32::MAX, h in 1u32..u32::MAX) {
        let mut bytes = vec![0, 0, 8, 3];
        for d in [n, h, 28] {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(&[7; 64]);
        prop_assert!(decode(Path::new("x"), bytes.as_slice(), 3).is_err());
    }

    #[test]
    fn safetensors_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = from_bytes(&bytes);
    }

    #[test]
    fn safetensors_round_trip_and_truncation(values in proptest::collection::vec(-1e6f32..1e6, 1..64), cut in 0usize..10_000) {
        let mut tensors = NamedTensors::new();
        tensors.insert("bn1.running_mean".into(), HostTensor { shape: vec![values.len()], values: values.clone() });
        let bytes = to_bytes(&tensors, &Metadata::new()).unwrap();
        prop_assert_eq!(from_bytes(&bytes).unwrap().0, tensors);
        let cut = cut % bytes.len();
        prop_assert!(from_bytes(&bytes[..cut]).is_err());
    }

    #[test]
    fn config_reader_never_panics(text in ".{0,200}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, &text).unwrap();
        if let Err(e) = cdcgan::train::TrainConfig::load(&path) {
            let message = format!("{e:#}");
            prop_assert!(message.contains("config.json"), "{}", message);
        }
    }
}

/// A generator file of another architecture or a corrupted one: an error, never a panic.
#[test]
fn generator_loader_rejects_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("generator.safetensors");
    let mut tensors = NamedTensors::new();
    tensors.insert(
        "conv1.weight".into(),
        HostTensor {
            shape: vec![2],
            values: vec![1.0, 2.0],
        },
    );
    let meta = Metadata::from([(
        "config".to_string(),
        "{\"latent_dim\":100,\"num_classes\":10,\"base_channels\":256,\"image_channels\":1}"
            .to_string(),
    )]);
    std::fs::write(&path, to_bytes(&tensors, &meta).unwrap()).unwrap();
    let err = format!("{:#}", cdcgan::sample::Sampler::load(&path).unwrap_err());
    assert!(
        err.contains("generator.safetensors") && err.contains("missing"),
        "{err}"
    );
    // A header whose config is not a generator's.
    let meta = Metadata::from([("config".to_string(), "{\"layers\": 3}".to_string())]);
    std::fs::write(&path, to_bytes(&tensors, &meta).unwrap()).unwrap();
    let err = format!("{:#}", cdcgan::sample::Sampler::load(&path).unwrap_err());
    assert!(err.contains("generator.safetensors"), "{err}");
}
