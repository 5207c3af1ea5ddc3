"""Runs the PyTorch peer under CPU bf16 autocast, as a PyTorch user turns it on.

    python bench/torch_bf16.py PEER_SCRIPT [PEER ARGS...]

The whole script runs inside torch.autocast("cpu", dtype=torch.bfloat16): the
ops autocast covers (convolutions, transposed convolutions, linear layers) take
bf16 operands through oneDNN, on the AMX tiles where the CPU has them; the rest,
the weights and Adam stay fp32. Backward follows the forward's types.
"""

import runpy
import sys

import torch

peer = sys.argv[1]
sys.argv = [peer] + sys.argv[2:]
with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
    runpy.run_path(peer, run_name="__main__")
