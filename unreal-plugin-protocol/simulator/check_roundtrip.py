#!/usr/bin/env python3
"""Runs mm-game-sim into a fresh directory, decodes every request body with the independent decoder
of vectors/verify.py, and checks that every event the simulator says it recorded arrived.

usage: check_roundtrip.py <mm-game-sim> <scratch dir>
"""
import collections
import glob
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # keep vectors/ free of __pycache__ (mm-vectors --check rejects unknown files)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors"))
import verify  # noqa: E402


def main():
    sim, d = sys.argv[1], sys.argv[2]
    shutil.rmtree(d, ignore_errors=True)
    p = subprocess.run([sim, "--dir", d, "--seconds", "1.5", "--fps", "60", "--spans-per-frame", "300", "--seed", "11"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(p.stdout)
    if p.returncode != 0:
        print("mm-game-sim exited with %d" % p.returncode)
        return 1
    totals = p.stdout.split("MM_SIM_TOTALS", 1)[1].splitlines()[0]
    want = dict((k, int(v)) for k, v in re.findall(r"\b(spans|logs|metrics)=(\d+)", totals))
    streams, process, got = {}, None, collections.Counter()
    threads = set()
    for f in sorted(glob.glob(os.path.join(d, "*.cbor"))):
        route = os.path.basename(f).split("-", 1)[1][:-5]
        x = verify.validate(route, open(f, "rb").read())
        if route == "insert_process":
            process = x
        elif route == "insert_stream":
            streams[x["stream_id"]] = x
            threads.add(x["properties"].get("thread-name"))
        else:
            for e in verify.decode_block(x, streams[x["stream_id"]], process)["events"]:
                got[e["type"]] += 1
    have = {
        "spans": got["BeginThreadSpanEvent"] + got["BeginThreadNamedSpanEvent"],
        "logs": got["TaggedLogString"],
        "metrics": got["FloatMetricEvent"] + got["IntegerMetricEvent"],
    }
    print("decoded:", dict(got))
    ok = True
    for k, v in want.items():
        if have[k] != v:
            print("MISMATCH %s: recorded %d, decoded %d" % (k, v, have[k]))
            ok = False
    if got["BeginThreadSpanEvent"] != got["EndThreadSpanEvent"] or \
            got["BeginThreadNamedSpanEvent"] != got["EndThreadNamedSpanEvent"]:
        print("MISMATCH: unbalanced begin/end span events")
        ok = False
    if not {"GameThread", "RenderThread"} <= threads:
        print("MISSING thread streams, got %s" % threads)
        ok = False
    print("ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
