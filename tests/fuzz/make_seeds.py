#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from the committed
fixtures. Plain Python (no torch): the TorchScript seeds are written by a small pickle emitter and
ZIP writer that follow what torch.jit.save produces (protocol-2 data.pkl, stored data/<key>
records, extra/ files), so that they stay a few KB instead of the fixtures' 100+ KB.

    python3 tests/fuzz/make_seeds.py          # from the repository root

The policy seeds are csa-calibrate outputs (stories260K, --tokens 2048) and cuts of them, and
small-kv-group.json gzipped (small-kv-group.json.gz: Python's gzip.compress at level 9, mtime
0); they are not regenerated here. Keep the corpora small (< 200 KB in all): libFuzzer grows its own
working corpus under build-fuzz/corpus/.
"""
import json
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def out(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


# --- safetensors -----------------------------------------------------------------------------

def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def safetensors_bytes(tensors, meta=None):
    header, data = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds():
    for model in ("gpt2-tiny", "llama-tiny"):
        header, data = read_safetensors(os.path.join(FIXTURES, "models", model, "model.safetensors"))
        meta = header.pop("__metadata__", None)
        keep = {}
        for name, e in header.items():
            a, b = e["data_offsets"]
            if b - a <= 256 and len(keep) < 6:
                keep[name] = (e["dtype"], e["shape"], data[a:b])
        out("safetensors", model + "-small.safetensors", safetensors_bytes(keep, meta))
    out("safetensors", "dtypes.safetensors", safetensors_bytes({
        "f32": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)),
        "f16": ("F16", [3], b"\x00\x3c" * 3),
        "bf16": ("BF16", [1, 2], b"\x80\x3f" * 2),
        "f64": ("F64", [], struct.pack("<d", 1.5)),
        "i64": ("I64", [2], struct.pack("<2q", -1, 7)),
        "i32": ("I32", [1], b"\x01\0\0\0"),
        "i16": ("I16", [2], b"\x01\0\x02\0"),
        "i8": ("I8", [3], b"\x01\x02\x03"),
        "u8": ("U8", [0, 4], b""),
        "bool": ("BOOL", [2], b"\x01\x00"),
    }, {"format": "pt", "note": "csa fuzz seed"}))


# --- config.json -----------------------------------------------------------------------------

def config_seeds():
    models = os.path.join(FIXTURES, "models")
    for model in sorted(os.listdir(models)):
        for name in ("config.json", "legacy_config.json"):
            path = os.path.join(models, model, name)
            if os.path.exists(path):
                suffix = "-legacy" if name.startswith("legacy") else ""
                out("config", model + suffix + ".json", open(path, "rb").read())
    c = json.load(open(os.path.join(models, "llama-tiny", "config.json")))
    c.pop("rope_parameters", None)
    c["rope_theta"] = 500000.0
    c["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    out("config", "llama3-rope.json", json.dumps(c, indent=2).encode())


# --- tokenizer -------------------------------------------------------------------------------

def tokenizer_seeds():
    strings = json.load(open(os.path.join(FIXTURES, "tokenizers", "strings.json")))["strings"]
    per = (len(strings) + 3) // 4
    for i in range(4):  # mode byte 0: raw bytes
        chunk = strings[i * per:(i + 1) * per]
        out("tokenizer", "strings-%d.txt" % i, b"\x00" + "\n".join(chunk).encode())
    out("tokenizer", "special-token.txt", b"\x00" + "Hello<|endoftext|> world<|endoftext|>".encode())
    out("tokenizer", "invalid-utf8.txt",
        b"\x00abc\xff\xfe def \xc3( \xed\xa0\x80 \xf4\x90\x80\x80 caf\xc3\xa9 \xe2\x82")
    cps = [0x41, 0x20, 0xE9, 0x4E2D, 0x1F600, 0x10FFFF, 0x0, 0xFFFD, 0x2028, 0x0A, 0x85]
    out("tokenizer", "codepoints.bin", b"\x01" + b"".join(c.to_bytes(3, "big") for c in cps))


# --- pickle / TorchScript --------------------------------------------------------------------

class Pickle:
    """Protocol-2 opcodes as torch.jit.save's pickler writes them."""

    def __init__(self):
        self.b = bytearray(b"\x80\x02")
        self.memo = 0

    def put(self):
        self.b += b"q" + bytes([self.memo]) if self.memo < 256 else b"r" + struct.pack("<I", self.memo)
        self.memo += 1
        return self.memo - 1

    def get(self, i):
        self.b += b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)

    def glob(self, module, name):
        self.b += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        return self.put()

    def str(self, s):
        e = s.encode()
        self.b += b"X" + struct.pack("<I", len(e)) + e
        return self.put()

    def int(self, v):
        if 0 <= v < 256:
            self.b += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.b += b"M" + struct.pack("<H", v)
        else:
            self.b += b"J" + struct.pack("<i", v)

    def ints(self, vs):
        self.b += b"("
        for v in vs:
            self.int(v)
        self.b += b"t"

    def tensor(self, storage_type, key, numel, offset, size, stride, parameter=False):
        if parameter:
            self.glob("torch._utils", "_rebuild_parameter")
            self.b += b"("
        self.glob("torch._utils", "_rebuild_tensor_v2")
        self.b += b"(("
        self.str("storage")
        self.glob("torch", storage_type)
        self.str(key)
        self.str("cpu")
        self.int(numel)
        self.b += b"tQ"  # TUPLE, BINPERSID
        self.int(offset)
        self.ints(size)
        self.ints(stride)
        self.b += b"\x89"  # requires_grad False
        self.glob("collections", "OrderedDict")
        self.b += b")Rt"  # EMPTY_TUPLE, REDUCE, TUPLE
        self.b += b"R"  # REDUCE
        if parameter:
            self.b += b"\x88t"  # requires_grad True, TUPLE
            self.b += b"R"

    def module(self, cls, fill):
        self.glob("__torch__.csa_export", cls)
        self.b += b")\x81}("  # EMPTY_TUPLE NEWOBJ EMPTY_DICT MARK
        self.str("training")
        self.b += b"\x88"
        fill()
        self.b += b"ub"  # SETITEMS BUILD

    def stop(self):
        self.b += b"."
        return bytes(self.b)


def tiny_pickle():
    p = Pickle()

    def layer():
        p.str("weight")
        p.tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1], parameter=True)
        p.str("bias")
        p.tensor("HalfStorage", "1", 3, 0, [3], [1])
        p.str("view")  # shares storage 0 at an offset, transposed strides
        p.tensor("FloatStorage", "0", 6, 1, [2, 2], [1, 3])
        p.str("empty")
        p.tensor("LongStorage", "2", 0, 0, [0, 4], [4, 1])

    def root():
        p.str("layer")
        p.module("Module1", layer)
        p.str("scalar")
        p.tensor("DoubleStorage", "3", 1, 0, [], [])
        p.str("ids")
        p.tensor("IntStorage", "4", 4, 0, [4], [1])

    p.module("Module0", root)
    storages = {"0": struct.pack("<6f", *range(6)), "1": b"\x00\x3c" * 3, "2": b"",
                "3": struct.pack("<d", 2.5), "4": struct.pack("<4i", 1, 2, 3, 4)}
    return p.stop(), storages


def zip_bytes(entries, zip64=False):
    """entries: (name, data, deflate). Writes local headers, central directory and EOCD (ZIP64
    records with 0xFFFFFFFF placeholders and extra fields when zip64)."""
    body, central = b"", b""
    for name, data, deflate in entries:
        n = name.encode()
        comp = zlib.compress(data)[2:-4] if deflate else data
        method = 8 if deflate else 0
        crc = zlib.crc32(data)
        offset = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(comp),
                            len(data), len(n), 0) + n + comp
        extra = b""
        csize, usize, off = len(comp), len(data), offset
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, len(data), len(comp), offset)
            csize = usize = off = 0xFFFFFFFF
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 20, 0, method, 0, 0, crc,
                               csize, usize, len(n), len(extra), 0, 0, 0, 0, off) + n + extra
    cd_offset = len(body)
    tail = b""
    if zip64:
        eocd64 = cd_offset + len(central)
        tail += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries),
                            len(central), cd_offset)
        tail += struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1)
        tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central),
                            cd_offset, 0)
    return body + central + tail


def torchscript_seeds():
    pkl, storages = tiny_pickle()
    out("pickle", "tiny-module.pkl", pkl)
    import zipfile
    for model in ("gpt2-tiny", "llama-tiny"):
        for archive in ("model.pt", "traced.pt"):
            z = zipfile.ZipFile(os.path.join(FIXTURES, "models", model, archive))
            name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            out("pickle", "%s-%s-data.pkl" % (model, archive.split(".")[0]), z.read(name))
    config = open(os.path.join(FIXTURES, "models", "llama-tiny", "config.json"), "rb").read()
    entries = [("archive/data.pkl", pkl, False)]
    entries += [("archive/data/" + k, v, False) for k, v in storages.items()]
    entries += [("archive/extra/config.json", config, True), ("archive/version", b"3\n", False),
                ("archive/byteorder", b"little", False)]
    out("torchscript", "tiny.pt", zip_bytes(entries))
    out("torchscript", "tiny-zip64.pt", zip_bytes(entries, zip64=True))


if __name__ == "__main__":
    safetensors_seeds()
    config_seeds()
    tokenizer_seeds()
    torchscript_seeds()
