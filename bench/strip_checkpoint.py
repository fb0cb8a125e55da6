"""Copies a zerolabel checkpoint without the Adam moments (`adam.*`): model weights and batch-norm
statistics only, as `features` needs them (a third of the size). Standard library only.

    python3 bench/strip_checkpoint.py RUN/best.safetensors OUT.safetensors   # also copies the .json
"""
import json
import shutil
import struct
import sys


def strip(src, dst):
    with open(src, "rb") as f:
        header_len = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_len))
        data = f.read()
    kept, chunks, offset = {}, [], 0
    for name in sorted(k for k in header if k != "__metadata__" and not k.startswith("adam.")):
        start, end = header[name]["data_offsets"]
        kept[name] = dict(header[name], data_offsets=[offset, offset + end - start])
        chunks.append(data[start:end])
        offset += end - start
    if "__metadata__" in header:
        kept["__metadata__"] = header["__metadata__"]
    text = json.dumps(kept, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    shutil.copyfile(src[: -len(".safetensors")] + ".json", dst[: -len(".safetensors")] + ".json")
    print(f"{dst}: {len(kept) - ('__metadata__' in kept)} tensors, {offset / 2**20:.1f} MiB (from {len(data) / 2**20:.1f} MiB)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    strip(sys.argv[1], sys.argv[2])
