#!/usr/bin/env python3
"""Independent cross-check of the golden vectors (no code shared with the C++ generator).

For every manifest entry it decodes the body from scratch (CBOR, LZ4 frames through the `lz4`
command-line tool, transit records through the stream's UDT tables as PROTOCOL.md §5-§7 describe)
and compares the result with the expected JSON; for corrupt vectors it checks that the envelope
validation (status 400) or the transit decoder (decode error) fails for the stated reason.

usage: verify.py <vectors dir>      exit status 0 when every vector behaves as the manifest says
"""
import json
import os
import re
import struct
import subprocess
import sys


class DecodeError(Exception):
    pass


# ---------------------------------------------------------------- CBOR (definite and indefinite)
BREAK = object()


def cbor_decode(buf):
    v, i = _item(buf, 0)
    if v is BREAK:
        raise DecodeError("cbor: unexpected break")
    if i != len(buf):
        raise DecodeError("cbor: trailing bytes")
    return v


def _need(buf, i, n):
    if i + n > len(buf):
        raise DecodeError("cbor: truncated item")


def _arg(buf, i, ai):
    if ai < 24:
        return ai, i
    sizes = {24: 1, 25: 2, 26: 4, 27: 8}
    if ai not in sizes:
        raise DecodeError("cbor: bad additional info %d" % ai)
    n = sizes[ai]
    _need(buf, i, n)
    return int.from_bytes(buf[i:i + n], "big"), i + n


def _item(buf, i):
    _need(buf, i, 1)
    b = buf[i]
    i += 1
    major, ai = b >> 5, b & 31
    if b == 0xFF:
        return BREAK, i
    if major == 7:
        if ai == 20:
            return False, i
        if ai == 21:
            return True, i
        if ai == 22:
            return None, i
        if ai == 25:
            _need(buf, i, 2)
            return struct.unpack(">e", buf[i:i + 2])[0], i + 2
        if ai == 26:
            _need(buf, i, 4)
            return struct.unpack(">f", buf[i:i + 4])[0], i + 4
        if ai == 27:
            _need(buf, i, 8)
            return struct.unpack(">d", buf[i:i + 8])[0], i + 8
        raise DecodeError("cbor: unsupported simple value %d" % ai)
    if ai == 31:
        if major in (2, 3):
            parts = []
            while True:
                v, i = _item(buf, i)
                if v is BREAK:
                    break
                parts.append(v)
            return (b"".join(parts) if major == 2 else "".join(parts)), i
        if major == 4:
            out = []
            while True:
                v, i = _item(buf, i)
                if v is BREAK:
                    return out, i
                out.append(v)
        if major == 5:
            out = {}
            while True:
                k, i = _item(buf, i)
                if k is BREAK:
                    return out, i
                v, i = _item(buf, i)
                if v is BREAK:
                    raise DecodeError("cbor: break inside a map entry")
                out[k] = v
        raise DecodeError("cbor: indefinite length on major type %d" % major)
    n, i = _arg(buf, i, ai)
    if major == 0:
        return n, i
    if major == 1:
        return -1 - n, i
    if major in (2, 3):
        _need(buf, i, n)
        raw = bytes(buf[i:i + n])
        return (raw if major == 2 else raw.decode("utf-8")), i + n
    if major == 4:
        out = []
        for _ in range(n):
            v, i = _item(buf, i)
            out.append(v)
        return out, i
    if major == 5:
        out = {}
        for _ in range(n):
            k, i = _item(buf, i)
            v, i = _item(buf, i)
            out[k] = v
        return out, i
    raise DecodeError("cbor: unsupported major type %d" % major)


# ---------------------------------------------------------------- envelope validation
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def check_uuid(v, what):
    if not isinstance(v, str) or not UUID.match(v):
        raise DecodeError("bad uuid in %s" % what)


def check_time(v, what):
    if not isinstance(v, str) or not RFC3339.match(v):
        raise DecodeError("bad RFC 3339 time in %s" % what)


def lz4_walk(frame):
    """Structural walk of one LZ4 frame, as the gateway does (no decompression)."""
    if len(frame) < 7 or frame[:4] != b"\x04\x22\x4d\x18":
        raise DecodeError("lz4: bad frame magic")
    flg = frame[4]
    i = 6 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0) + 1
    while True:
        if i + 4 > len(frame):
            raise DecodeError("lz4: truncated frame")
        size = int.from_bytes(frame[i:i + 4], "little")
        i += 4
        if size == 0:
            break
        i += (size & 0x7FFFFFFF) + (4 if flg & 0x10 else 0)
    i += 4 if flg & 0x04 else 0
    if i != len(frame):
        raise DecodeError("lz4: truncated frame" if i > len(frame) else "lz4: trailing bytes after frame")


def as_bytes(v):
    if isinstance(v, bytes):
        return v
    if isinstance(v, list) and all(isinstance(x, int) and 0 <= x < 256 for x in v):
        return bytes(v)
    raise DecodeError("payload buffer is neither bytes nor an array of integers")


def validate(route, body):
    if not body:
        raise DecodeError("empty body")
    try:
        d = cbor_decode(body)
    except DecodeError as e:
        raise DecodeError("malformed cbor: %s" % e)
    if not isinstance(d, dict):
        raise DecodeError("cbor: body is not a map")
    if route == "insert_process":
        check_uuid(d["process_id"], "process_id")
        if d["parent_process_id"] not in (None, ""):
            check_uuid(d["parent_process_id"], "parent_process_id")
        check_time(d["start_time"], "start_time")
    elif route == "insert_stream":
        check_uuid(d["process_id"], "process_id")
        check_uuid(d["stream_id"], "stream_id")
    else:
        for k in ("begin_ticks", "end_ticks", "object_offset", "nb_objects"):
            if k not in d:
                raise DecodeError("missing field %s" % k)
            if not isinstance(d[k], int) or isinstance(d[k], bool):
                raise DecodeError("field %s is not an integer" % k)
        for k in ("block_id", "stream_id", "process_id"):
            check_uuid(d[k], k)
        check_time(d["begin_time"], "begin_time")
        check_time(d["end_time"], "end_time")
        for k in ("dependencies", "objects"):
            lz4_walk(as_bytes(d["payload"][k]))
    return d


# ---------------------------------------------------------------- transit
def lz4_decompress(frame):
    p = subprocess.run(["lz4", "-d", "-c"], input=frame, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise DecodeError("lz4 decompression failed: %s" % p.stderr.decode(errors="replace").strip())
    return p.stdout


def records(buf, udts):
    i = 0
    while i < len(buf):
        idx = buf[i]
        i += 1
        if idx >= len(udts):
            raise DecodeError("unknown type index %d" % idx)
        u = udts[idx]
        if u["size"]:
            n = u["size"]
        else:
            if i + 4 > len(buf):
                raise DecodeError("record size runs past the end of the buffer")
            n = int.from_bytes(buf[i:i + 4], "little")
            i += 4
        if i + n > len(buf):
            raise DecodeError("record of %s runs past the end of the buffer" % u["name"])
        yield u, bytes(buf[i:i + n])
        i += n


def u64(b, o):
    return int.from_bytes(b[o:o + 8], "little")


def dyn_text(codec, raw):
    if codec == 1:
        if len(raw) % 2:
            raise DecodeError("odd UTF-16 length")
        return raw.decode("utf-16-le", errors="replace")
    if codec in (0, 2):
        return raw.decode("utf-8", errors="replace")
    raise DecodeError("unknown string codec %d" % codec)


def dynstring(b, o):
    codec = b[o]
    n = int.from_bytes(b[o + 1:o + 5], "little")
    if o + 5 + n > len(b):
        raise DecodeError("dynamic string runs past the end of its record")
    return dyn_text(codec, b[o + 5:o + 5 + n]), o + 5 + n


SCALARS = {"u8": 1, "uint8": 1, "u32": 4, "uint32": 4, "u64": 8, "uint64": 8, "i64": 8, "int64": 8, "f64": 8}


class Transit:
    def __init__(self, stream):
        self.deps_udts = stream["dependencies_metadata"]
        self.obj_udts = stream["objects_metadata"]
        self.deps = {}

    def lookup(self, i):
        if i not in self.deps:
            raise DecodeError("reference to missing dependency id %d" % i)
        return self.deps[i]

    def reflect(self, u, w, table):
        members = []
        for m in u["members"]:
            if m["offset"] + m["size"] > u["size"]:
                raise DecodeError("member %s.%s past the end" % (u["name"], m["name"]))
            o = m["offset"]
            if m["is_reference"]:
                v = self.lookup(u64(w, o))
            elif m["type_name"] in SCALARS:
                t = m["type_name"]
                if SCALARS[t] != m["size"]:
                    raise DecodeError("size mismatch")
                if t in ("u8", "uint8"):
                    v = w[o]
                elif t in ("u32", "uint32"):
                    v = int.from_bytes(w[o:o + 4], "little")
                elif t in ("u64", "uint64"):
                    v = str(u64(w, o))
                elif t in ("i64", "int64"):
                    v = str(int.from_bytes(w[o:o + 8], "little", signed=True))
                else:
                    v = struct.unpack("<d", w[o:o + 8])[0]
            else:
                nu = self.udt(table, m["type_name"])
                v = self.reflect(nu, w[o:o + nu["size"]], table)
            members.append((m["name"], v))
        if u["is_reference"]:
            return dict(members)["id"]
        out = {"type": u["name"]}
        out.update(members)
        return out

    @staticmethod
    def udt(table, name):
        for u in table:
            if u["name"] == name:
                return u
        raise DecodeError("no UDT named %s" % name)

    def register(self, i, v):
        if i in self.deps:
            raise DecodeError("duplicate dependency id %d" % i)
        self.deps[i] = v

    def read_dependencies(self, buf):
        for u, b in records(buf, self.deps_udts):
            name = u["name"]
            if u["size"]:
                v = self.reflect(u, b, self.deps_udts)
                self.register(u64(b, 0), {k: x for k, x in v.items() if k != "id"})
            elif name == "StaticString":
                self.register(u64(b, 0), b[8:].decode("utf-8"))
            elif name == "StaticStringDependency":
                n = int.from_bytes(b[9:13], "little")
                self.register(u64(b, 0), dyn_text(b[8], b[13:13 + n]))
            elif name == "PropertySetDependency":
                pu = self.udt(self.deps_udts, "Property")
                n = int.from_bytes(b[8:12], "little")
                props = {}
                for k in range(n):
                    p = self.reflect(pu, b[12 + k * pu["size"]:12 + (k + 1) * pu["size"]], self.deps_udts)
                    props[p["name"]] = p["value"]
                self.register(u64(b, 0), {"type": "PropertySet", "properties": props})
            else:
                raise DecodeError("unknown variable-size dependency %s" % name)

    def read_objects(self, buf):
        """Returns (decoded events, number of object records, skipped ones included)."""
        out = []
        count = 0
        for u, b in records(buf, self.obj_udts):
            count += 1
            name = u["name"]
            if u["size"]:
                out.append(self.reflect(u, b, self.obj_udts))
                continue
            ev = {"type": name}
            if name == "LogStringEventV2":
                ev.update(desc=self.lookup(u64(b, 0)), time=str(struct.unpack("<q", b[8:16])[0]))
                ev["msg"], _ = dynstring(b, 16)
            elif name == "LogStringInteropEventV3":
                su = self.udt(self.obj_udts, "StaticStringRef")
                ev.update(time=str(struct.unpack("<q", b[0:8])[0]), level=b[8],
                          target=self.reflect(su, b[9:9 + su["size"]], self.obj_udts))
                ev["msg"], _ = dynstring(b, 9 + su["size"])
            elif name == "TaggedLogString":
                ev.update(desc=self.lookup(u64(b, 0)), properties=self.lookup(u64(b, 8)),
                          time=str(struct.unpack("<q", b[16:24])[0]))
                ev["msg"], _ = dynstring(b, 24)
            elif name == "TaggedLogInteropEvent":
                ev.update(time=str(struct.unpack("<q", b[0:8])[0]), level=b[8], target=self.lookup(u64(b, 9)),
                          properties=self.lookup(u64(b, 25)))
                ev["msg"], _ = dynstring(b, 33)
            elif name == "ImageEvent":
                ev["time"] = str(struct.unpack("<q", b[0:8])[0])
                ev["name"], o = dynstring(b, 8)
                ev["format"], o = dynstring(b, o)
                n = int.from_bytes(b[o:o + 4], "little")
                ev["data"] = b[o + 4:o + 4 + n].hex()
            else:
                continue  # unknown variable-size object: skipped
            out.append(ev)
        return out, count


def process_json(d):
    out = dict(d)
    for k in ("tsc_frequency", "start_ticks"):
        out[k] = str(d[k])
    return out


def decode_block(block, stream, process):
    t = Transit(stream)
    t.read_dependencies(lz4_decompress(as_bytes(block["payload"]["dependencies"])))
    events, count = t.read_objects(lz4_decompress(as_bytes(block["payload"]["objects"])))
    if count != block["nb_objects"]:
        raise DecodeError("nb_objects %d but %d objects" % (block["nb_objects"], count))
    return {
        "process": process_json(process),
        "stream": {k: stream[k] for k in ("stream_id", "process_id", "tags", "properties")},
        "block": {
            "block_id": block["block_id"].lower(), "stream_id": block["stream_id"],
            "process_id": block["process_id"], "begin_time": block["begin_time"],
            "begin_ticks": str(block["begin_ticks"]), "end_time": block["end_time"],
            "end_ticks": str(block["end_ticks"]), "object_offset": str(block["object_offset"]),
            "nb_objects": block["nb_objects"],
        },
        "events": events,
    }


def main():
    root = sys.argv[1]
    manifest = json.load(open(os.path.join(root, "manifest.json")))
    read = lambda p: open(os.path.join(root, p), "rb").read()
    failures = 0
    for v in manifest["vectors"]:
        exp = v["expect"]
        try:
            try:
                d = validate(v["route"], read(v["body"]))
            except (DecodeError, KeyError, UnicodeDecodeError) as e:
                if exp["gateway"]["status"] != 400:
                    raise AssertionError("gateway would reject: %s" % e)
                if exp["gateway"]["reason"].lower() not in str(e).lower():
                    raise AssertionError("rejected for another reason: %s" % e)
                print("ok   %-36s 400 (%s)" % (v["name"], e))
                continue
            if exp["gateway"]["status"] != 200:
                raise AssertionError("envelope accepted, manifest expects %s" % exp["gateway"]["status"])
            if v["route"] == "insert_process":
                got = {"process": process_json(d)}
            elif v["route"] == "insert_stream":
                got = {"stream": {k: d[k] for k in ("stream_id", "process_id", "tags", "properties")}}
            else:
                stream = cbor_decode(read(v["stream_info"]))
                process = cbor_decode(read(v["process_info"]))
                try:
                    got = decode_block(d, stream, process)
                except DecodeError as e:
                    if isinstance(exp["decode"], dict) and exp["decode"]["error"].lower() in str(e).lower():
                        print("ok   %-36s 200, decode error (%s)" % (v["name"], e))
                        continue
                    raise AssertionError("decode error: %s" % e)
            if isinstance(exp["decode"], dict):
                raise AssertionError("decoded, manifest expects error %r" % exp["decode"]["error"])
            want = json.load(open(os.path.join(root, exp["decode"])))
            if got != want:
                for k in want:
                    if got.get(k) != want[k]:
                        raise AssertionError("%s differs:\n got  %s\n want %s" % (k, json.dumps(got.get(k))[:2000],
                                                                                    json.dumps(want[k])[:2000]))
                raise AssertionError("extra keys: %s" % (set(got) - set(want)))
            print("ok   %-36s 200, decodes to %s" % (v["name"], exp["decode"]))
        except AssertionError as e:
            failures += 1
            print("FAIL %-36s %s" % (v["name"], e))
    print("%d vector(s), %d failure(s)" % (len(manifest["vectors"]), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
