"""Codec throughput: Myna's sans-I/O codec against ExaBGP 5's, in one process, in one run.

Run it:  .venv/bin/python -m bench.codec_bench [--json] [--scale F]

Rows (prefixes per second, best of ``--repeat`` runs, one core):
  a  IPv4 /26 blocks packed into 4096-octet UPDATEs sharing one attribute set (Calico's shape)
  b  one IPv4 /32 per UPDATE, every UPDATE with its own attribute set (next hop, AS_PATH, MED)
  c  IPv6 /122 prefixes in MP_REACH_NLRI, packed, one attribute set

Data flow: the inputs are built once with Myna's encoder (the same bytes feed both decoders),
and the same routes, as ExaBGP's neutral dicts, feed ExaBGP's encoder. Decoding is timed the
way a session does it: the byte stream goes through ``MessageReader`` in 64 KiB chunks and
each message through ``decode_message``; ExaBGP's path is ``bench/exabgp_codec.py``. Encoding
is timed from attribute values and prefix ints to wire messages, building the attribute set
inside the timed loop, with the attribute cache emptied first so no encoding is reused from an
earlier round (ExaBGP's encode likewise includes building its objects).
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import ipaddress
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.exabgp_codec import OracleSession, exa_decode_bodies, exa_encode_routes
from bench.results_file import machine, save
from speaker.framing import MessageReader
from speaker.messages import decode_message
from speaker.negotiated import Negotiated
from speaker.path_attributes import ATTRIBUTES, PathAttributes
from speaker.update_message import Update, encode_announcements
from speaker.wire_codes import Family

LOCAL_AS = 64512
NEG = Negotiated(ibgp=True, peer_as=LOCAL_AS)
EXA = OracleSession(local_as=LOCAL_AS, peer_as=LOCAL_AS)
V4, V6 = Family.IPV4_UNICAST, Family.IPV6_UNICAST

# One route group: (family, attribute values, prefixes). Attribute values are the keyword
# arguments of PathAttributes so the set can be built inside the timed encode loop.
Group = tuple[Family, dict[str, Any], list[int]]


def calico_blocks(count: int) -> list[Group]:
    """/26 blocks from 198.18.0.0/15, one node's next hop: the shape a Calico mesh sends."""
    attrs = {"origin": 0, "as_path": (), "next_hop": bytes((198, 18, 0, 1)), "local_pref": 100}
    base = int(ipaddress.IPv4Address("198.18.0.0"))
    return [(V4, attrs, [((base + i * 64) << 8) | 26 for i in range(count)])]


def distinct_hosts(count: int) -> list[Group]:
    """One /32 per UPDATE, each with its own next hop, AS_PATH and MED."""
    base = int(ipaddress.IPv4Address("198.18.0.0"))
    groups: list[Group] = []
    for i in range(count):
        attrs = {
            "origin": 0,
            "as_path": ((2, (64512, 64600 + i % 300, 4200000000 + i)),),
            "next_hop": (base + 0x10000 + i % 60000).to_bytes(4, "big"),
            "med": i,
            "local_pref": 100,
        }
        groups.append((V4, attrs, [((base + i) << 8) | 32]))
    return groups


def ipv6_blocks(count: int) -> list[Group]:
    """IPv6 /122 blocks from 2001:db8::/32 in MP_REACH_NLRI."""
    attrs = {
        "origin": 0,
        "as_path": (),
        "next_hop": ipaddress.IPv6Address("2001:db8::1").packed,
        "local_pref": 100,
    }
    base = int(ipaddress.IPv6Address("2001:db8:1::"))
    return [(V6, attrs, [((base + i * 64) << 8) | 122 for i in range(count)])]


def myna_encode(groups: list[Group]) -> list[bytes]:
    """Encode every group with Myna's encoder."""
    out: list[bytes] = []
    for family, attrs, prefixes in groups:
        out.extend(encode_announcements(family, PathAttributes(**attrs), prefixes, NEG))
    return out


def myna_decode(stream: bytes) -> int:
    """Feed the stream through the framing reader and decode every message."""
    reader = MessageReader(NEG.max_message_len)
    count = 0
    for start in range(0, len(stream), 65536):
        for message_type, body in reader.feed(stream[start : start + 65536]):
            message = decode_message(message_type, body, NEG)
            if isinstance(message, Update):
                for reach in message.reach:
                    count += len(reach.prefixes)
    return count


def _text(family: Family, prefix: int) -> str:
    address = (
        ipaddress.ip_address(prefix >> 8) if family is V4 else ipaddress.IPv6Address(prefix >> 8)
    )
    return f"{address}/{prefix & 0xFF}"


def neutral_updates(groups: list[Group]) -> list[dict[str, Any]]:
    """The same routes as ExaBGP's neutral UPDATE dicts, split as Myna splits them."""
    out = []
    for family, attrs, prefixes in groups:
        name = "ipv4-unicast" if family is V4 else "ipv6-unicast"
        next_hop = str(ipaddress.ip_address(attrs["next_hop"]))
        neutral_attrs: dict[str, Any] = {
            "origin": attrs["origin"],
            "local_pref": attrs["local_pref"],
        }
        neutral_attrs["as_path"] = [(t, list(asns)) for t, asns in attrs["as_path"]]
        if "med" in attrs:
            neutral_attrs["med"] = attrs["med"]
        step = 800 if family is V4 else 230
        for i in range(0, len(prefixes), step):
            out.append(  # noqa: PERF401 - one dict per UPDATE reads better than a comprehension
                {
                    "type": "update",
                    "withdrawn": [],
                    "announced": [(name, _text(family, p), None) for p in prefixes[i : i + step]],
                    "next_hop": {name: next_hop},
                    "attributes": neutral_attrs,
                    "eor": None,
                }
            )
    return out


def best_rate(work: Callable[[], int], repeat: int) -> float:
    """Prefixes per second of the fastest of ``repeat`` runs (GC paused while timing)."""
    best = 0.0
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            done = work()
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        best = max(best, done / elapsed)
    return best


def run(scale: float, repeat: int) -> dict[str, dict[str, float]]:
    """Measure every row; returns row name -> {"myna", "exabgp", "ratio"}."""
    cases = {
        "a: IPv4 /26 packed, shared attributes": calico_blocks(int(200_000 * scale)),
        "b: IPv4 /32, one per UPDATE, distinct attributes": distinct_hosts(int(20_000 * scale)),
        "c: IPv6 /122 packed in MP_REACH_NLRI": ipv6_blocks(int(100_000 * scale)),
    }
    rows: dict[str, dict[str, float]] = {}
    for name, groups in cases.items():
        messages = myna_encode(groups)
        stream = b"".join(messages)
        total = sum(len(p) for _, _, p in groups)
        if myna_decode(stream) != total or exa_decode_bodies(messages, EXA) != total:
            raise SystemExit(f"{name}: a decoder did not return all {total} prefixes")
        neutral = neutral_updates(groups)

        def encode(groups: list[Group] = groups, total: int = total) -> int:
            ATTRIBUTES.sweep()
            myna_encode(groups)
            return total

        results = {
            "decode": (
                best_rate(lambda stream=stream: myna_decode(stream), repeat),
                best_rate(lambda messages=messages: exa_decode_bodies(messages, EXA), repeat),
            ),
            "encode": (
                best_rate(encode, repeat),
                best_rate(lambda neutral=neutral: exa_encode_routes(neutral, EXA), repeat),
            ),
        }
        for verb, (myna, exa) in results.items():
            rows[f"{name} [{verb}]"] = {"myna": myna, "exabgp": exa, "ratio": myna / exa}
    return rows


def table(rows: dict[str, dict[str, float]]) -> str:
    """A markdown table of the rows."""
    lines = [
        "| row | Myna prefixes/s | ExaBGP 5 prefixes/s | Myna / ExaBGP |",
        "|---|---:|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['myna']:,.0f} | {row['exabgp']:,.0f} | {row['ratio']:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every input size")
    parser.add_argument("--repeat", type=int, default=5, help="runs per row; the best counts")
    parser.add_argument("--save", type=Path, help="also write dated results into this directory")
    args = parser.parse_args(argv)
    rows = run(args.scale, args.repeat)
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    if args.save:
        path = save(
            "codec",
            "Codec benchmark",
            ".venv/bin/python -m bench.codec_bench --save bench/results",
            table(rows),
            {"rows": rows},
            args.save,
            machine(exabgp=importlib.metadata.version("exabgp")),
        )
        print(f"saved {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
