#!/usr/bin/env python3
"""Reads a kindling checkpoint with the standard library only (json + struct), which shows the file
is plain safetensors that any tool can read.

    python3 read_checkpoint.py CHECKPOINT [EXPECT.json]

Without EXPECT it lists every tensor. EXPECT is a JSON object
    {"metadata": {"key": "value", ...},
     "tensors": {"name": {"dtype": "F32", "shape": [..], "values": [first values...]}, ...}}
and each listed metadata entry, dtype, shape and leading value must match exactly (floats are
compared as float32). Exits 0 when everything matches, 1 with a message naming the first mismatch.
"""
import json
import struct
import sys

FORMATS = {"F32": ("<f", 4), "I64": ("<q", 8), "U8": ("<B", 1), "BF16": ("<H", 2)}


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: {len(blob)} bytes, too short")
    (header_size,) = struct.unpack("<Q", blob[:8])
    if header_size > len(blob) - 8:
        raise ValueError(f"{path}: header length {header_size} exceeds the file")
    header = json.loads(blob[8:8 + header_size].decode("utf-8"))
    data = blob[8 + header_size:]
    metadata = header.pop("__metadata__", {})
    # The tensors must tile the data section exactly.
    end = 0
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        begin, stop = info["data_offsets"]
        if begin != end:
            raise ValueError(f"{path}: {name} starts at {begin}, expected {end}")
        count = 1
        for size in info["shape"]:
            count *= size
        if stop - begin != count * FORMATS[info["dtype"]][1]:
            raise ValueError(f"{path}: {name} has {stop - begin} bytes for shape {info['shape']}")
        end = stop
    if end != len(data):
        raise ValueError(f"{path}: {len(data) - end} bytes after the last tensor")
    return metadata, header, data


def values(info, data, count):
    fmt, size = FORMATS[info["dtype"]]
    begin = info["data_offsets"][0]
    return [struct.unpack_from(fmt, data, begin + i * size)[0] for i in range(count)]


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        return 2
    metadata, header, data = read(sys.argv[1])
    if len(sys.argv) == 2:
        for key, value in sorted(metadata.items()):
            print(f"__metadata__ {key} = {value}")
        for name, info in header.items():
            print(f"{name} {info['dtype']} {info['shape']}")
        return 0
    with open(sys.argv[2]) as f:
        expect = json.load(f)
    for key, value in expect.get("metadata", {}).items():
        if metadata.get(key) != value:
            print(f"metadata {key}: found {metadata.get(key)!r}, expected {value!r}")
            return 1
    for name, want in expect.get("tensors", {}).items():
        info = header.get(name)
        if info is None:
            print(f"{name}: missing")
            return 1
        if info["dtype"] != want["dtype"] or info["shape"] != want["shape"]:
            print(f"{name}: {info['dtype']}{info['shape']}, expected {want['dtype']}{want['shape']}")
            return 1
        wanted = want.get("values", [])
        if want["dtype"] == "F32":
            wanted = [struct.unpack("<f", struct.pack("<f", v))[0] for v in wanted]
        found = values(info, data, len(wanted))
        if found != wanted:
            print(f"{name}: values {found}, expected {wanted}")
            return 1
    print(f"{sys.argv[1]}: {len(header)} tensors, {len(metadata)} metadata entries; all expectations met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
