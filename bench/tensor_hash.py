#!/usr/bin/env python3
"""Hashes the tensors of safetensors files, not their bytes (the header's key
order may vary between writers): one sha256 over every tensor's name, dtype,
shape and data, in name order. Usage: bench/tensor_hash.py FILE [FILE ...]
Used to show that a refactor leaves training bit-identical (CONTRIBUTING.md, "Behaviour-preserving changes")."""
import hashlib
import json
import struct
import sys


def tensor_hash(path):
    with open(path, "rb") as f:
        blob = f.read()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + header_len])
    data = blob[8 + header_len :]
    h = hashlib.sha256()
    for name in sorted(k for k in header if k != "__metadata__"):
        t = header[name]
        start, end = t["data_offsets"]
        h.update(f"{name}|{t['dtype']}|{t['shape']}|".encode())
        h.update(data[start:end])
    return h.hexdigest(), len(header) - ("__metadata__" in header)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        digest, count = tensor_hash(path)
        print(f"{digest}  {count} tensors  {path}")
