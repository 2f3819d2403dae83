/**
 * rtnetlink constants, one table per kernel header enum, spelled as the kernel spells
 * them (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h,
 * linux/veth.h, net/if.h). Values are kernel ABI and never change; the integration test
 * cross-checks the ones we send against `ip`'s view of the result.
 */

/** Address families used in rtnetlink headers. */
export const AF = { UNSPEC: 0, INET: 2, BRIDGE: 7, INET6: 10 } as const;

/** Fixed struct sizes (bytes). Attributes and messages are 4-byte aligned. */
export const SIZEOF = {
  nlmsghdr: 16,
  nlattr: 4,
  ifinfomsg: 16,
  ifaddrmsg: 8,
  rtmsg: 12,
  /** int error + the original nlmsghdr (payload capped by NETLINK_CAP_ACK). */
  nlmsgerr: 20,
} as const;
export const NLMSG_ALIGNTO = 4;
export const NLA_ALIGNTO = 4;
/** nla_type bits that are flags, not part of the type. */
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/** Control message types (linux/netlink.h). */
export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;

/** nlmsg_flags (linux/netlink.h). The same bits mean different things for GET and NEW. */
export const NLM_F = {
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  ECHO: 0x8,
  DUMP_INTR: 0x10,
  DUMP_FILTERED: 0x20,
  // GET requests
  ROOT: 0x100,
  MATCH: 0x200,
  DUMP: 0x300,
  // NEW requests
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
  APPEND: 0x800,
  // ACK / error replies
  CAPPED: 0x100,
  ACK_TLVS: 0x200,
} as const;

/** Extended-ACK attributes in an NLMSG_ERROR reply (NETLINK_EXT_ACK). */
export const NLMSGERR_ATTR = { MSG: 1, OFFS: 2, COOKIE: 3, POLICY: 4, MISS_TYPE: 5, MISS_NEST: 6 } as const;

/** rtnetlink message types (linux/rtnetlink.h). */
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
} as const;
export type RtmType = (typeof RTM)[keyof typeof RTM];

/** Names of the message types, used as `syscall` in errors (Node style: what was called). */
export const RTM_NAME: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(RTM).map(([k, v]) => [v, `RTM_${k}`]),
);

/** Link attributes (enum IFLA_* in linux/if_link.h). */
export const IFLA = {
  ADDRESS: 1,
  BROADCAST: 2,
  IFNAME: 3,
  MTU: 4,
  LINK: 5,
  MASTER: 10,
  TXQLEN: 13,
  OPERSTATE: 16,
  LINKINFO: 18,
  NET_NS_PID: 19,
  AF_SPEC: 26,
  NET_NS_FD: 28,
  PROMISCUITY: 30,
  CARRIER: 33,
  LINK_NETNSID: 37,
  MIN_MTU: 50,
  MAX_MTU: 51,
  ALT_IFNAME: 53,
} as const;

/** Nested in IFLA_LINKINFO. */
export const IFLA_INFO = { KIND: 1, DATA: 2, XSTATS: 3, SLAVE_KIND: 4, SLAVE_DATA: 5 } as const;

/** Nested in IFLA_INFO_DATA of kind "veth" (linux/veth.h): a whole ifinfomsg + attrs. */
export const VETH_INFO = { PEER: 1 } as const;

/** Nested in IFLA_INFO_DATA of kind "bridge". Times are in centiseconds (USER_HZ). */
export const IFLA_BR = { FORWARD_DELAY: 1, HELLO_TIME: 2, MAX_AGE: 3, AGEING_TIME: 4, STP_STATE: 5 } as const;

/** IFLA_OPERSTATE values (RFC 2863). */
export const IF_OPER = ['UNKNOWN', 'NOTPRESENT', 'DOWN', 'LOWERLAYERDOWN', 'TESTING', 'DORMANT', 'UP'] as const;

/** Interface flags (net/if.h, linux/if.h). */
export const IFF = {
  UP: 0x1,
  BROADCAST: 0x2,
  LOOPBACK: 0x8,
  POINTOPOINT: 0x10,
  RUNNING: 0x40,
  NOARP: 0x80,
  PROMISC: 0x100,
  MASTER: 0x400,
  SLAVE: 0x800,
  MULTICAST: 0x1000,
  LOWER_UP: 0x10000,
} as const;

/** Address attributes (linux/if_addr.h). */
export const IFA = { ADDRESS: 1, LOCAL: 2, LABEL: 3, BROADCAST: 4, ANYCAST: 5, CACHEINFO: 6, FLAGS: 8 } as const;

/** Address flags; the low 8 bits also fit ifa_flags, the rest only the IFA_FLAGS attribute. */
export const IFA_F = {
  SECONDARY: 0x01,
  NODAD: 0x02,
  OPTIMISTIC: 0x04,
  DADFAILED: 0x08,
  HOMEADDRESS: 0x10,
  DEPRECATED: 0x20,
  TENTATIVE: 0x40,
  PERMANENT: 0x80,
  MANAGETEMPADDR: 0x100,
  NOPREFIXROUTE: 0x200,
} as const;

/** Route attributes (enum rtattr_type_t). */
export const RTA = { DST: 1, SRC: 2, IIF: 3, OIF: 4, GATEWAY: 5, PRIORITY: 6, PREFSRC: 7, TABLE: 15 } as const;

export const RT_TABLE = { UNSPEC: 0, DEFAULT: 253, MAIN: 254, LOCAL: 255 } as const;
/** Route origin; BOOT is what `ip route add` uses. */
export const RTPROT = { UNSPEC: 0, KERNEL: 2, BOOT: 3, STATIC: 4 } as const;
export const RT_SCOPE = { UNIVERSE: 0, LINK: 253, HOST: 254, NOWHERE: 255 } as const;
export const RTN = { UNSPEC: 0, UNICAST: 1, LOCAL: 2, BROADCAST: 3 } as const;

/** Longest interface name, without the NUL (IFNAMSIZ - 1). */
export const IFNAMSIZ_MAX = 15;
