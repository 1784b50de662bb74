#!/usr/bin/python3
"""Prints name, shape, sum, first and last value of every tensor in a safetensors file, read
with numpy straight from the bytes (no safetensors library). The expected values in
tests/Tessera.Model.Tests/SafetensorsTests.cs come from running this on
../shared/data/formats/syoyo_gen_model.safetensors."""
import json, struct, sys
import numpy as np

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1"}

with open(sys.argv[1], "rb") as f:
    raw = f.read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
for name, e in header.items():
    if name == "__metadata__":
        continue
    b, end = e["data_offsets"]
    a = np.frombuffer(data[b:end], dtype=DTYPES[e["dtype"]])
    print(name, e["shape"], repr(float(a.sum())), repr(float(a[0])), repr(float(a[-1])))
