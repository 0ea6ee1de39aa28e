"""Every rtnetlink number kernel sync reads or writes, as an enum named after its C constant.

Data flow: nothing flows through here. ``route_messages`` (the sans-I/O codec) and
``netlink_socket`` (the asyncio shell) import these names so that no netlink code is a bare
literal; the values come from the Linux UAPI headers ``linux/netlink.h``,
``linux/rtnetlink.h``, ``linux/if_link.h``, ``linux/if_addr.h`` and ``linux/if.h``.

Members drop the C prefix (``RTM_NEWROUTE`` is ``MessageType.NEWROUTE``, ``RTA_GATEWAY`` is
``RouteAttr.GATEWAY``); each class docstring names the prefix. The NLM_F_* flags whose bits
mean different things for GET, NEW and ACK messages are split into one class per meaning so
that no flag is an alias of another.
"""

from __future__ import annotations

import socket
from enum import IntEnum, IntFlag

NETLINK_ROUTE = 0  # the rtnetlink protocol of an AF_NETLINK socket
NLMSG_ALIGNTO = 4
NLMSG_HDRLEN = 16  # struct nlmsghdr
RTMSG_LEN = 12  # struct rtmsg
RTA_HDRLEN = 4  # struct rtattr
RTNH_LEN = 8  # struct rtnexthop
IFINFOMSG_LEN = 16  # struct ifinfomsg
IFADDRMSG_LEN = 8  # struct ifaddrmsg
NLMSGERR_LEN = 4 + NLMSG_HDRLEN  # struct nlmsgerr: error, then the offending header
IP6_RT_PRIO_USER = 1024  # the metric the kernel gives an IPv6 route added with metric 0


class AddressFamily(IntEnum):
    """AF_*: the families a route, link or address message can carry."""

    UNSPEC = 0
    INET = socket.AF_INET  # 2
    BRIDGE = 7
    INET6 = socket.AF_INET6  # 10
    MPLS = 28


class MessageType(IntEnum):
    """NLMSG_* control messages and the RTM_* link, address and route messages."""

    NOOP = 1
    ERROR = 2  # an ack when its error is 0
    DONE = 3  # end of a multipart (dump) reply
    OVERRUN = 4
    NEWLINK = 16
    DELLINK = 17
    GETLINK = 18
    SETLINK = 19
    NEWADDR = 20
    DELADDR = 21
    GETADDR = 22
    NEWROUTE = 24
    DELROUTE = 25
    GETROUTE = 26
    NEWNEIGH = 28
    DELNEIGH = 29
    GETNEIGH = 30
    NEWRULE = 32
    DELRULE = 33
    GETRULE = 34


class MessageFlag(IntFlag):
    """NLM_F_* flags with one meaning in every message (the low byte)."""

    REQUEST = 0x01
    MULTI = 0x02  # part of a multipart reply, ended by NLMSG_DONE
    ACK = 0x04  # reply with an NLMSG_ERROR, error 0 on success
    ECHO = 0x08
    DUMP_INTR = 0x10  # the dump was inconsistent (the table changed during it): redo it
    DUMP_FILTERED = 0x20  # the kernel applied the dump request's filter


class GetFlag(IntFlag):
    """NLM_F_* modifiers of GET requests."""

    ROOT = 0x100
    MATCH = 0x200
    ATOMIC = 0x400
    DUMP = ROOT | MATCH


class NewFlag(IntFlag):
    """NLM_F_* modifiers of NEW requests."""

    REPLACE = 0x100  # override an existing object
    EXCL = 0x200  # fail (EEXIST) when it exists
    CREATE = 0x400  # create it when it does not exist
    APPEND = 0x800  # add to the end of the list (an extra ECMP path)


class DeleteFlag(IntFlag):
    """NLM_F_* modifiers of DELETE requests."""

    NONREC = 0x100
    BULK = 0x200


class AckFlag(IntFlag):
    """NLM_F_* flags of NLMSG_ERROR (ack) replies."""

    CAPPED = 0x100  # the echoed request was cut to its header (NETLINK_CAP_ACK)
    ACK_TLVS = 0x200  # extended-ack attributes follow (NETLINK_EXT_ACK)


class ExtAckAttr(IntEnum):
    """NLMSGERR_ATTR_*: extended-ack attributes after an NLMSG_ERROR's echoed request."""

    UNUSED = 0
    MSG = 1  # a NUL-terminated text saying what was wrong
    OFFS = 2  # u32 offset of the offending attribute in the request
    COOKIE = 3
    POLICY = 4
    MISS_TYPE = 5
    MISS_NEST = 6


class RouteAttr(IntEnum):
    """RTA_*: attributes of an rtmsg."""

    UNSPEC = 0
    DST = 1
    SRC = 2
    IIF = 3
    OIF = 4
    GATEWAY = 5
    PRIORITY = 6  # the metric
    PREFSRC = 7
    METRICS = 8
    MULTIPATH = 9  # rtnexthop entries, each with nested attributes
    PROTOINFO = 10
    FLOW = 11
    CACHEINFO = 12
    SESSION = 13
    MP_ALGO = 14
    TABLE = 15  # u32 table id; rtm_table holds only 8 bits
    MARK = 16
    MFC_STATS = 17
    VIA = 18
    NEWDST = 19
    PREF = 20
    ENCAP_TYPE = 21
    ENCAP = 22
    EXPIRES = 23
    PAD = 24
    UID = 25
    TTL_PROPAGATE = 26
    IP_PROTO = 27
    SPORT = 28
    DPORT = 29
    NH_ID = 30
    FLOWLABEL = 31


class RouteType(IntEnum):
    """RTN_*: what a route does with a packet (rtm_type)."""

    UNSPEC = 0
    UNICAST = 1
    LOCAL = 2
    BROADCAST = 3
    ANYCAST = 4
    MULTICAST = 5
    BLACKHOLE = 6
    UNREACHABLE = 7
    PROHIBIT = 8
    THROW = 9
    NAT = 10
    XRESOLVE = 11


class RouteProtocol(IntEnum):
    """RTPROT_*: who installed a route (rtm_protocol). Any 0..255 value may occur.

    Calico's values are ``BIRD`` (12, what BIRD and Myna write), ``BOOT`` (3, Felix's workload
    routes) and 80 (Felix's blackholes and tunnel routes), which has no name; the GoBGP
    daemon wrote 17, which the kernel header names ``MROUTED``.
    """

    UNSPEC = 0
    REDIRECT = 1
    KERNEL = 2
    BOOT = 3
    STATIC = 4
    GATED = 8
    RA = 9
    MRT = 10
    ZEBRA = 11
    BIRD = 12
    DNROUTED = 13
    XORP = 14
    NTK = 15
    DHCP = 16
    MROUTED = 17
    KEEPALIVED = 18
    BABEL = 42
    OVN = 84
    OPENR = 99
    BGP = 186
    ISIS = 187
    OSPF = 188
    RIP = 189
    EIGRP = 192


class RouteScope(IntEnum):
    """RT_SCOPE_*: how far a route's destination is (rtm_scope)."""

    UNIVERSE = 0
    SITE = 200
    LINK = 253  # a route straight onto a device, no gateway
    HOST = 254
    NOWHERE = 255


class RouteTable(IntEnum):
    """RT_TABLE_*: the reserved table ids."""

    UNSPEC = 0
    COMPAT = 252  # rtm_table of a route whose table id does not fit 8 bits
    DEFAULT = 253
    MAIN = 254
    LOCAL = 255


class NextHopFlag(IntFlag):
    """RTNH_F_*: next-hop flags, in rtnh_flags and, for a single-path route, in rtm_flags."""

    DEAD = 0x01
    PERVASIVE = 0x02
    ONLINK = 0x04  # the gateway is on the device even if no address says so
    OFFLOAD = 0x08
    LINKDOWN = 0x10
    UNRESOLVED = 0x20
    TRAP = 0x40


class RouteMessageFlag(IntFlag):
    """RTM_F_*: rtm_flags bits above the RTNH_F_* byte."""

    NOTIFY = 0x100
    CLONED = 0x200  # a cache entry, not a FIB route
    EQUALIZE = 0x400
    PREFIX = 0x800
    LOOKUP_TABLE = 0x1000
    FIB_MATCH = 0x2000
    OFFLOAD = 0x4000
    TRAP = 0x8000
    OFFLOAD_FAILED = 0x20000000


class LinkAttr(IntEnum):
    """IFLA_*: attributes of an ifinfomsg (the ones kernel sync may read)."""

    UNSPEC = 0
    ADDRESS = 1
    BROADCAST = 2
    IFNAME = 3
    MTU = 4
    LINK = 5
    QDISC = 6
    STATS = 7
    COST = 8
    PRIORITY = 9
    MASTER = 10
    WIRELESS = 11
    PROTINFO = 12
    TXQLEN = 13
    MAP = 14
    WEIGHT = 15
    OPERSTATE = 16
    LINKMODE = 17
    LINKINFO = 18
    NET_NS_PID = 19
    IFALIAS = 20
    NUM_VF = 21
    VFINFO_LIST = 22
    STATS64 = 23
    VF_PORTS = 24
    PORT_SELF = 25
    AF_SPEC = 26
    GROUP = 27
    NET_NS_FD = 28
    EXT_MASK = 29
    PROMISCUITY = 30
    NUM_TX_QUEUES = 31
    NUM_RX_QUEUES = 32
    CARRIER = 33


class LinkFlag(IntFlag):
    """IFF_*: device flags (ifi_flags)."""

    UP = 0x1
    BROADCAST = 0x2
    DEBUG = 0x4
    LOOPBACK = 0x8
    POINTOPOINT = 0x10
    NOTRAILERS = 0x20
    RUNNING = 0x40
    NOARP = 0x80
    PROMISC = 0x100
    ALLMULTI = 0x200
    MASTER = 0x400
    SLAVE = 0x800
    MULTICAST = 0x1000
    PORTSEL = 0x2000
    AUTOMEDIA = 0x4000
    DYNAMIC = 0x8000
    LOWER_UP = 0x10000  # carrier
    DORMANT = 0x20000
    ECHO = 0x40000


class AddressAttr(IntEnum):
    """IFA_*: attributes of an ifaddrmsg."""

    UNSPEC = 0
    ADDRESS = 1  # the peer address on point-to-point links, else the local one
    LOCAL = 2
    LABEL = 3
    BROADCAST = 4
    ANYCAST = 5
    CACHEINFO = 6
    MULTICAST = 7
    FLAGS = 8  # u32 flags; supersedes the 8-bit ifa_flags
    RT_PRIORITY = 9
    TARGET_NETNSID = 10
    PROTO = 11


class AddressFlag(IntFlag):
    """IFA_F_*: address flags."""

    SECONDARY = 0x01
    NODAD = 0x02
    OPTIMISTIC = 0x04
    DADFAILED = 0x08
    HOMEADDRESS = 0x10
    DEPRECATED = 0x20
    TENTATIVE = 0x40
    PERMANENT = 0x80
    MANAGETEMPADDR = 0x100
    NOPREFIXROUTE = 0x200
    MCAUTOJOIN = 0x400
    STABLE_PRIVACY = 0x800


class MulticastGroupMask(IntFlag):
    """RTMGRP_*: the legacy bind-time group mask (``nl_groups`` of sockaddr_nl)."""

    LINK = 0x1
    NOTIFY = 0x2
    NEIGH = 0x4
    TC = 0x8
    IPV4_IFADDR = 0x10
    IPV4_MROUTE = 0x20
    IPV4_ROUTE = 0x40
    IPV4_RULE = 0x80
    IPV6_IFADDR = 0x100
    IPV6_MROUTE = 0x200
    IPV6_ROUTE = 0x400
    IPV6_IFINFO = 0x800


class MulticastGroup(IntEnum):
    """RTNLGRP_*: group numbers for NETLINK_ADD_MEMBERSHIP (group N is mask bit N - 1)."""

    NONE = 0
    LINK = 1
    NOTIFY = 2
    NEIGH = 3
    TC = 4
    IPV4_IFADDR = 5
    IPV4_MROUTE = 6
    IPV4_ROUTE = 7
    IPV4_RULE = 8
    IPV6_IFADDR = 9
    IPV6_MROUTE = 10
    IPV6_ROUTE = 11
    IPV6_IFINFO = 12


class SocketLevel(IntEnum):
    """setsockopt levels used on netlink sockets."""

    SOL_SOCKET = socket.SOL_SOCKET
    SOL_NETLINK = 270


class SocketOption(IntEnum):
    """SO_* options at SOL_SOCKET that kernel sync sets (the two not in Python's socket)."""

    SNDBUF = socket.SO_SNDBUF
    RCVBUF = socket.SO_RCVBUF
    SNDBUFFORCE = 32  # SO_SNDBUF beyond net.core.wmem_max; needs CAP_NET_ADMIN
    RCVBUFFORCE = 33  # SO_RCVBUF beyond net.core.rmem_max; needs CAP_NET_ADMIN


class NetlinkOption(IntEnum):
    """NETLINK_*: socket options at SOL_NETLINK."""

    ADD_MEMBERSHIP = 1
    DROP_MEMBERSHIP = 2
    PKTINFO = 3
    BROADCAST_ERROR = 4
    NO_ENOBUFS = 5  # never set here: an overrun must be seen, it means a resync
    LISTEN_ALL_NSID = 8
    LIST_MEMBERSHIPS = 9
    CAP_ACK = 10  # acks echo only the request's header, not its whole payload
    EXT_ACK = 11  # errors carry NLMSGERR_ATTR_* (a text saying what was wrong)
    GET_STRICT_CHK = 12  # dump requests are checked, and their filters applied by the kernel
