"""ExaBGP 5.0's codec, driven in-process, as the baseline a Myna codec benchmark is timed against.

Data flow: a benchmark hands in whole BGP messages (19-octet header included) or neutral
UPDATE dicts (the plain-Python form ``tests/exabgp_oracle.py`` defines) plus an
``OracleSession``; ExaBGP objects are built, decoded or encoded, and only a prefix count comes
back, so nothing ExaBGP made leaks into the caller. ExaBGP is a test oracle and benchmark
baseline only: the daemon never imports it, and neither does anything outside tests/ and bench/.

What is timed
    ``exa_decode_bodies`` runs each message through the path an established ExaBGP session
    takes when it parses UPDATEs (adj-rib-in on, the 5.0 default): the header checks of
    ``Connection.reader`` (``split_message`` from the oracle), ``Message.unpack(type, body,
    Direction.IN, negotiated)``, and the reactor's treat-as-withdraw rewrite of the NLRI
    actions. It stops at ExaBGP's own objects: the oracle's neutral conversion is not timed.
    ``exa_encode_routes`` builds ExaBGP's attribute and NLRI objects from each neutral dict
    and asks ``Update.messages(negotiated)`` for the wire, consuming every message; object
    construction is included because that is what encoding costs a caller.

Negotiated.cached_attributes
    ExaBGP keeps, per session, the last attribute blob it parsed and the objects it made from
    it, and reuses them when the next UPDATE's attribute bytes are identical and carried no
    MP_REACH/MP_UNREACH. A real session hits that cache for consecutive UPDATEs that share
    their attribute bytes, and never otherwise. ``exa_decode_bodies`` clears it once at the
    start of each call (a fresh session has parsed nothing, and a timing loop that repeats
    the same list must not carry the last message's attributes into the next round) and
    then leaves it alone, so within a call it is hit exactly when a real session would hit
    it: never for a list of distinct attribute sets, which is therefore not made
    artificially fast; for IPv4 UPDATEs that share one attribute set, every UPDATE after
    the first is a hit, as in a real session. ``attribute_cache_hits`` (not timed) counts
    the hits a list produces so a benchmark can print it beside the numbers. ExaBGP's other
    caches do not enter: ``Attribute.unpack``'s per-code cache is dead in 5.0.15 (it tests
    the base class's ``CACHING = False``) and ``Community.cached`` is not used when parsing.

Prefix counts
    A prefix in an MP_REACH with a 32-octet next hop (global + link-local) is decoded by
    ExaBGP as two NLRI objects, one per address. ``exa_decode_bodies`` counts it once:
    an NLRI immediately following one with the same family, prefix and path id but a
    different next hop is not counted. An End-of-RIB counts zero.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from exabgp.bgp.message import Update
from exabgp.bgp.message.action import Action
from exabgp.bgp.message.update.attribute import Attribute
from exabgp.bgp.message.update.eor import EOR


def _load_oracle() -> ModuleType:
    """tests/exabgp_oracle.py, under the name pytest gives it, loaded once."""
    loaded = sys.modules.get("exabgp_oracle")
    if loaded is not None:
        return loaded
    path = Path(__file__).resolve().parent.parent / "tests" / "exabgp_oracle.py"
    spec = importlib.util.spec_from_file_location("exabgp_oracle", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["exabgp_oracle"] = module
    spec.loader.exec_module(module)
    return module


_oracle = _load_oracle()
OracleSession = _oracle.OracleSession

_TREAT_AS_WITHDRAW = Attribute.CODE.INTERNAL_TREAT_AS_WITHDRAW


def _count(nlris: list[Any]) -> int:
    count = 0
    previous = None
    for nlri in nlris:
        if (
            previous is None
            or nlri.cidr != previous.cidr
            or nlri.afi != previous.afi
            or nlri.safi != previous.safi
            or nlri.path_info != previous.path_info
            or nlri.nexthop == previous.nexthop
        ):
            count += 1
        previous = nlri
    return count


def exa_decode_bodies(messages: list[bytes], session: Any) -> int:
    """Decode every whole message as an ExaBGP session would; return the prefixes decoded."""
    negotiated = _oracle.negotiated_for(session)
    _oracle.reset_attribute_cache(negotiated)
    split_message = _oracle.split_message
    unpack_message = _oracle.unpack_message
    prefixes = 0
    for wire in messages:
        msg_type, body = split_message(wire, negotiated)
        message = unpack_message(msg_type, body, negotiated)
        if isinstance(message, EOR) or not isinstance(message, Update):
            continue
        if _TREAT_AS_WITHDRAW in message.attributes:
            for nlri in message.nlris:
                nlri.action = Action.WITHDRAW
        prefixes += _count(message.nlris)
    return prefixes


def attribute_cache_hits(messages: list[bytes], session: Any) -> int:
    """How many of ``messages`` reuse ExaBGP's cached attributes in ``exa_decode_bodies``."""
    negotiated = _oracle.negotiated_for(session)
    _oracle.reset_attribute_cache(negotiated)
    hits = 0
    for wire in messages:
        msg_type, body = _oracle.split_message(wire, negotiated)
        if msg_type == 2 and len(body) >= 4:
            _, attributes, _ = Update.split(body)
            if negotiated.cached_attributes is not None and attributes == negotiated.cached_wire:
                hits += 1
        _oracle.unpack_message(msg_type, body, negotiated)
    _oracle.reset_attribute_cache(negotiated)
    return hits


def exa_encode_routes(neutral_updates: list[dict[str, Any]], session: Any) -> int:
    """Build ExaBGP objects from neutral UPDATE dicts and encode them; return prefixes encoded."""
    negotiated = _oracle.negotiated_for(session)
    exabgp_attributes = _oracle.exabgp_attributes
    nlris_for = _oracle.nlris_for
    exabgp_family = _oracle.exabgp_family
    prefixes = 0
    for neutral in neutral_updates:
        eor = neutral.get("eor")
        if eor is not None:
            EOR(*exabgp_family(eor)).message()
            continue
        attributes = exabgp_attributes(neutral.get("attributes", {}))
        nlris = nlris_for(neutral, attributes)
        for _wire in Update(nlris, attributes).messages(negotiated):
            pass
        prefixes += len(nlris)  # ExaBGP silently drops families the session did not negotiate
    return prefixes
