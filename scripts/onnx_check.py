#!/usr/bin/env python3
"""Runs an exported generator in onnxruntime and compares its images with
cdcgan's own for the same inputs (tests/onnx.rs writes them).

    onnx_check.py MODEL.onnx Z.f32 LABELS.i64 EXPECTED.f32

Z: float32 [N, latent], LABELS: int64 [N], EXPECTED: float32 images, all raw
little-endian. Prints the metadata, the output shape and the largest absolute
difference; exits 1 when it is 1e-4 or more."""
import json
import sys

import numpy as np
import onnxruntime as ort

model, z_path, labels_path, expected_path = sys.argv[1:5]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
labels = np.fromfile(labels_path, dtype="<i8")
z = np.fromfile(z_path, dtype="<f4").reshape(len(labels), -1)
(images,) = session.run(["images"], {"z": z, "label": labels})
expected = np.fromfile(expected_path, dtype="<f4").reshape(images.shape)
diff = float(np.abs(images - expected).max())
print(f"classes={','.join(json.loads(meta['classes']))} dataset={meta['dataset']} noise_scale={meta['noise_scale']}")
print(f"shape={list(images.shape)} range=[{images.min():.3f}, {images.max():.3f}] max_abs_diff={diff:.3g}")
sys.exit(0 if diff < 1e-4 else 1)
