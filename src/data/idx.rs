//! The IDX file format (LeCun's MNIST container): a 4-byte magic
//! `00 00 <dtype> <ndims>`, `ndims` big-endian u32 dimensions, then the raw
//! values. Only unsigned bytes (dtype `0x08`) occur in MNIST-style sets, so
//! that is the one type read and written here.
//!
//! Files may be gzip-compressed (detected by their magic bytes, not by name).
//! Every check happens before the payload is trusted: a header claiming more
//! data than the file holds is rejected without allocating the claimed size.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

/// The only IDX element type used by MNIST-style data sets.
const DTYPE_U8: u8 = 0x08;
/// Upper bound on a payload: 2^30 bytes is 20x EMNIST's largest file.
/// A header asking for more is treated as corrupt, never allocated.
pub const MAX_PAYLOAD_BYTES: u64 = 1 << 30;

/// What can be wrong with an IDX file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O (or gzip) error.
        source: std::io::Error,
    },
    /// The first two bytes are not zero, or the file is shorter than the 4-byte magic.
    #[error("{path}: not an IDX file (magic bytes {magic:02x?}, expected 00 00 08 0N)")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic as read (zero-padded when the file is shorter).
        magic: [u8; 4],
    },
    /// The element type is not unsigned bytes (0x08).
    #[error("{path}: IDX element type 0x{dtype:02x} is not supported (only unsigned bytes, 0x08)")]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The element type code, the magic's third byte.
        dtype: u8,
    },
    /// The number of dimensions is not the one asked for.
    #[error("{path}: expected {expected} dimensions, the header says {found}")]
    WrongRank {
        /// The file.
        path: PathBuf,
        /// Dimensions asked for (1 for labels, 3 for images).
        expected: usize,
        /// Dimensions in the header (the magic's fourth byte).
        found: usize,
    },
    /// More items (images or labels) than the caller takes.
    #[error("{path}: holds {found} items, more than the {max} this command takes; use a subset")]
    TooMany {
        /// The file.
        path: PathBuf,
        /// The items its header declares.
        found: u32,
        /// The most taken.
        max: u32,
    },
    /// The header claims a payload above [`MAX_PAYLOAD_BYTES`].
    #[error("{path}: header dimensions {dims:?} claim {claimed} bytes, above the {max} byte limit")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The dimensions in the header.
        dims: Vec<u32>,
        /// Their product: the payload size claimed, in bytes.
        claimed: u128,
        /// The limit, in bytes ([`MAX_PAYLOAD_BYTES`]).
        max: u64,
    },
    /// The file ends before the dimensions or the payload the header declares.
    #[error(
        "{path}: truncated: header dimensions {dims:?} need {expected} data bytes, the file has {found}"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The dimensions in the header (empty when the dimensions themselves are cut off).
        dims: Vec<u32>,
        /// Bytes needed (of the dimensions, or of the payload).
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// Bytes follow the payload the header declares.
    #[error(
        "{path}: {found} bytes of trailing data after the {expected} bytes the header declares"
    )]
    TrailingData {
        /// The file.
        path: PathBuf,
        /// Payload bytes the header declares.
        expected: u64,
        /// Bytes after the payload.
        found: u64,
    },
}

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (e.g. [images, rows, columns]).
    pub dims: Vec<usize>,
    /// The values, row-major: the product of `dims` bytes.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes with exactly `rank` dimensions
/// (1 for labels, 3 for images), gzip or raw.
pub fn read_idx(path: &Path, rank: usize) -> Result<IdxArray, IdxError> {
    read_idx_at_most(path, rank, u32::MAX)
}

/// [`read_idx`] refusing, from the header and before the data is read or
/// decompressed, a file of more than `max_items` items (first dimension).
pub fn read_idx_at_most(path: &Path, rank: usize, max_items: u32) -> Result<IdxArray, IdxError> {
    let io = |source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut raw = BufReader::new(file);
    let mut magic = [0u8; 2];
    let peeked = read_up_to(&mut raw, &mut magic).map_err(io)?;
    let prefix = std::io::Cursor::new(magic[..peeked].to_vec());
    let stream: Box<dyn Read> = if peeked == 2 && magic == [0x1f, 0x8b] {
        Box::new(GzDecoder::new(prefix.chain(raw)))
    } else {
        Box::new(prefix.chain(raw))
    };
    decode_at_most(path, stream, rank, max_items)
}

/// Decodes an IDX stream; `path` is only used in error messages.
pub fn decode(path: &Path, stream: impl Read, rank: usize) -> Result<IdxArray, IdxError> {
    decode_at_most(path, stream, rank, u32::MAX)
}

/// [`decode`] with at most `max_items` items (first dimension).
fn decode_at_most(
    path: &Path,
    mut stream: impl Read,
    rank: usize,
    max_items: u32,
) -> Result<IdxArray, IdxError> {
    let path_buf = || path.to_path_buf();
    let io = |source| IdxError::Io {
        path: path_buf(),
        source,
    };
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut stream, &mut magic).map_err(io)?;
    if got < 4 || magic[0] != 0 || magic[1] != 0 {
        return Err(IdxError::BadMagic {
            path: path_buf(),
            magic,
        });
    }
    if magic[2] != DTYPE_U8 {
        return Err(IdxError::UnsupportedDtype {
            path: path_buf(),
            dtype: magic[2],
        });
    }
    let found_rank = magic[3] as usize;
    if found_rank != rank {
        return Err(IdxError::WrongRank {
            path: path_buf(),
            expected: rank,
            found: found_rank,
        });
    }
    let mut header = vec![0u8; 4 * rank];
    let got = read_up_to(&mut stream, &mut header).map_err(io)?;
    if got < header.len() {
        return Err(IdxError::Truncated {
            path: path_buf(),
            dims: vec![],
            expected: header.len() as u64,
            found: got as u64,
        });
    }
    let dims: Vec<u32> = header
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(&found) = dims.first().filter(|&&n| n > max_items) {
        return Err(IdxError::TooMany {
            path: path_buf(),
            found,
            max: max_items,
        });
    }
    let claimed: u128 = dims.iter().map(|&d| d as u128).product();
    if claimed > MAX_PAYLOAD_BYTES as u128 {
        return Err(IdxError::TooLarge {
            path: path_buf(),
            dims,
            claimed,
            max: MAX_PAYLOAD_BYTES,
        });
    }
    let expected = claimed as u64;
    // Read at most one byte more than declared: the vector grows with the
    // data actually present, so a lying header cannot force an allocation.
    let mut data = Vec::new();
    (&mut stream)
        .take(expected + 1)
        .read_to_end(&mut data)
        .map_err(io)?;
    let found = data.len() as u64;
    if found < expected {
        return Err(IdxError::Truncated {
            path: path_buf(),
            dims,
            expected,
            found,
        });
    }
    if found > expected {
        let rest = 1 + std::io::copy(&mut stream, &mut std::io::sink()).map_err(io)?;
        return Err(IdxError::TrailingData {
            path: path_buf(),
            expected,
            found: rest,
        });
    }
    Ok(IdxArray {
        dims: dims.into_iter().map(|d| d as usize).collect(),
        data,
    })
}

/// Writes a raw (uncompressed) IDX file of unsigned bytes, atomically.
pub fn write_idx(path: &Path, dims: &[usize], data: &[u8]) -> anyhow::Result<()> {
    crate::store::write_atomic(path, &encode(dims, data)?)
}

/// Encodes an IDX array of unsigned bytes.
pub fn encode(dims: &[usize], data: &[u8]) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        dims.iter().product::<usize>() == data.len(),
        "IDX dimensions {dims:?} do not match {} data bytes",
        data.len()
    );
    anyhow::ensure!(dims.len() < 256, "IDX supports at most 255 dimensions");
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, DTYPE_U8, dims.len() as u8]);
    for &d in dims {
        let d = u32::try_from(d).map_err(|_| anyhow::anyhow!("IDX dimension {d} exceeds u32"))?;
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    Ok(out)
}

/// Fills `buf` as far as the stream allows; returns how many bytes were read.
fn read_up_to(stream: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn tmp(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn round_trip_raw_and_gzip() {
        let data: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8 * 7).collect();
        let bytes = encode(&[2, 3, 4], &data).unwrap();
        for payload in [bytes.clone(), gzip(&bytes)] {
            let (_d, path) = tmp("x-idx3-ubyte", &payload);
            let arr = read_idx(&path, 3).unwrap();
            assert_eq!(arr.dims, vec![2, 3, 4]);
            assert_eq!(arr.data, data);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w-idx1-ubyte");
        write_idx(&path, &[5], &[1, 2, 3, 4, 5]).unwrap();
        assert_eq!(read_idx(&path, 1).unwrap().data, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn rejects_each_kind_of_corruption() {
        let good = encode(&[2, 2, 2], &[9; 8]).unwrap();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "truncated data",
                good[..good.len() - 3].to_vec(),
                "truncated",
            ),
            ("truncated header", good[..6].to_vec(), "truncated"),
            ("empty", vec![], "not an IDX file"),
            (
                "wrong magic",
                [b"PK\x03\x04".as_slice(), &good[4..]].concat(),
                "not an IDX file",
            ),
            (
                "float dtype",
                [&[0, 0, 0x0d, 3][..], &good[4..]].concat(),
                "0x0d",
            ),
            (
                "wrong rank",
                encode(&[8], &[1; 8]).unwrap(),
                "expected 3 dimensions",
            ),
            ("trailing", [good.as_slice(), &[1, 2]].concat(), "trailing"),
            (
                "huge header",
                [
                    &[0, 0, 8, 3][..],
                    &0x8000_0000u32.to_be_bytes(),
                    &[0, 0, 0, 28, 0, 0, 0, 28],
                ]
                .concat(),
                "limit",
            ),
        ];
        for (what, bytes, needle) in cases {
            for payload in [bytes.clone(), gzip(&bytes)] {
                let (_d, path) = tmp("bad-idx3-ubyte", &payload);
                let err = read_idx(&path, 3).expect_err(what).to_string();
                assert!(err.contains(needle), "{what}: {err}");
                assert!(
                    err.contains("bad-idx3-ubyte"),
                    "{what}: error must name the file: {err}"
                );
            }
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_idx(Path::new("/nonexistent/t10k-labels-idx1-ubyte"), 1).unwrap_err();
        assert!(
            err.to_string()
                .contains("/nonexistent/t10k-labels-idx1-ubyte")
        );
    }
}
