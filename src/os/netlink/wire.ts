/**
 * The rtnetlink wire format: messages, fixed structs and attributes, encoded and parsed
 * here and nowhere else; plus the argument checks every request makes before anything is
 * sent. Pure functions, no I/O (the socket is ./socket.ts). Constants: ./constants.ts.
 */
import * as util from 'node:util';
import { ifnameProblem, parseCidr, parseIp, parseMac } from '../../core/net';
import { invalidArgument, SystemError } from '../../core/errors';
import {
  AF,
  IFLA,
  NLA_ALIGNTO,
  NLA_F_NESTED,
  NLA_TYPE_MASK,
  NLMSG_ALIGNTO,
  NLMSGERR_ATTR,
  NLM_F,
  RT_SCOPE,
  RT_TABLE,
  SIZEOF,
} from './constants';

// ---------------------------------------------------------------------------------------
// Errors

/** A failed rtnetlink request: Node's SystemError shape plus the kernel's own words. */
export class NetlinkError extends SystemError {
  /** The kernel's extended-ACK message (NLMSGERR_ATTR_MSG), when it gave one. */
  extack?: string;
  /** The network namespace file the request ran in; absent for the host netns. */
  netns?: string;
  /** The link (name or index) the request was about. */
  link?: string | number;

  constructor(
    errnum: number,
    syscall: string,
    detail: { extack?: string; netns?: string; link?: string | number } = {},
  ) {
    const [code, desc] = errnoName(errnum);
    let msg = `${code}: ${desc}, ${syscall}`;
    if (detail.link !== undefined) msg += ` '${detail.link}'`;
    if (detail.netns) msg += ` in netns '${detail.netns}'`;
    if (detail.extack) msg += ` (kernel: ${detail.extack})`;
    // `syscall` is the rtnetlink message type that failed, e.g. 'RTM_NEWLINK'.
    super({ code, errno: -errnum, syscall }, msg);
    if (detail.extack) this.extack = detail.extack;
    if (detail.netns) this.netns = detail.netns;
    if (detail.link !== undefined) this.link = detail.link;
  }
}

function errnoName(errnum: number): [string, string] {
  const entry = util.getSystemErrorMap().get(-errnum);
  return entry ? [entry[0], entry[1]] : ['UNKNOWN', `errno ${errnum}`];
}

/** Node's ERR_INVALID_ARG_VALUE: a bad argument, refused before anything is sent. */
export const invalidArg = (name: string, value: unknown, why: string): TypeError => invalidArgument(name, value, why);

// ---------------------------------------------------------------------------------------
// Encoding: a message is a header, a fixed struct and a tree of attributes.

/** `n` rounded up to a multiple of `to` (a power of two). */
export const align = (n: number, to: number): number => (n + to - 1) & ~(to - 1);

/** One netlink attribute; `nested` children are encoded as its payload. */
export type NlAttr = { type: number; data: Uint8Array } | { type: number; nested: NlAttr[] };

/** Encodes attributes, each padded to NLA_ALIGNTO. */
export function encodeAttrs(attrs: NlAttr[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of attrs) {
    const payload =
      'nested' in a ? encodeAttrs(a.nested) : Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
    const len = SIZEOF.nlattr + payload.length;
    const hdr = Buffer.alloc(SIZEOF.nlattr);
    hdr.writeUInt16LE(len, 0);
    hdr.writeUInt16LE('nested' in a ? a.type | NLA_F_NESTED : a.type, 2);
    parts.push(hdr, payload, Buffer.alloc(align(len, NLA_ALIGNTO) - len));
  }
  return Buffer.concat(parts);
}

export const attrU32 = (type: number, v: number): NlAttr => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return { type, data: b };
};
export const attrU8 = (type: number, v: number): NlAttr => ({ type, data: Buffer.from([v & 0xff]) });
/** A NUL-terminated string attribute (NLA_STRING/NLA_NUL_STRING both accept it). */
export const attrString = (type: number, s: string): NlAttr => ({ type, data: Buffer.from(`${s}\0`, 'utf8') });
export const attrBytes = (type: number, b: Uint8Array): NlAttr => ({ type, data: b });
export const attrNest = (type: number, nested: NlAttr[]): NlAttr => ({ type, nested });

/** struct ifinfomsg. `change` says which `flags` bits to apply (0: none). */
export function ifinfomsg(
  f: { family?: number; type?: number; index?: number; flags?: number; change?: number } = {},
): Buffer {
  const b = Buffer.alloc(SIZEOF.ifinfomsg);
  b.writeUInt8(f.family ?? AF.UNSPEC, 0);
  b.writeUInt16LE(f.type ?? 0, 2);
  b.writeInt32LE(f.index ?? 0, 4);
  b.writeUInt32LE((f.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((f.change ?? 0) >>> 0, 12);
  return b;
}

/** struct ifaddrmsg. */
export function ifaddrmsg(f: {
  family: number;
  prefixlen: number;
  flags?: number;
  scope?: number;
  index: number;
}): Buffer {
  const b = Buffer.alloc(SIZEOF.ifaddrmsg);
  b.writeUInt8(f.family, 0);
  b.writeUInt8(f.prefixlen, 1);
  b.writeUInt8((f.flags ?? 0) & 0xff, 2);
  b.writeUInt8(f.scope ?? RT_SCOPE.UNIVERSE, 3);
  b.writeUInt32LE(f.index >>> 0, 4);
  return b;
}

/** struct rtmsg. */
export function rtmsg(f: {
  family: number;
  dstLen: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
}): Buffer {
  const b = Buffer.alloc(SIZEOF.rtmsg);
  b.writeUInt8(f.family, 0);
  b.writeUInt8(f.dstLen, 1);
  b.writeUInt8(0, 2); // rtm_src_len
  b.writeUInt8(0, 3); // rtm_tos
  b.writeUInt8(f.table < 256 ? f.table : RT_TABLE.UNSPEC, 4);
  b.writeUInt8(f.protocol, 5);
  b.writeUInt8(f.scope, 6);
  b.writeUInt8(f.type, 7);
  b.writeUInt32LE(0, 8); // rtm_flags
  return b;
}

/** A whole message: nlmsghdr + fixed struct + attributes. */
export function encodeMessage(type: number, flags: number, seq: number, fixed: Buffer, attrs: NlAttr[]): Buffer {
  const body = Buffer.concat([
    fixed,
    Buffer.alloc(align(fixed.length, NLMSG_ALIGNTO) - fixed.length),
    encodeAttrs(attrs),
  ]);
  const hdr = Buffer.alloc(SIZEOF.nlmsghdr);
  hdr.writeUInt32LE(SIZEOF.nlmsghdr + body.length, 0);
  hdr.writeUInt16LE(type, 4);
  hdr.writeUInt16LE(flags, 6);
  hdr.writeUInt32LE(seq >>> 0, 8);
  hdr.writeUInt32LE(0, 12); // nlmsg_pid: 0, the kernel fills in ours
  return Buffer.concat([hdr, body]);
}

// ---------------------------------------------------------------------------------------
// Decoding

/** One received netlink message; `payload` excludes the 16-byte header. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  payload: Buffer;
}

/** Splits one datagram into messages. Truncated trailing bytes are ignored. */
export function parseMessages(datagram: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + SIZEOF.nlmsghdr <= datagram.length) {
    const len = datagram.readUInt32LE(off);
    if (len < SIZEOF.nlmsghdr || off + len > datagram.length) break;
    out.push({
      type: datagram.readUInt16LE(off + 4),
      flags: datagram.readUInt16LE(off + 6),
      seq: datagram.readUInt32LE(off + 8),
      pid: datagram.readUInt32LE(off + 12),
      payload: datagram.subarray(off + SIZEOF.nlmsghdr, off + len),
    });
    off += align(len, NLMSG_ALIGNTO);
  }
  return out;
}

/** Attributes of one level, by type (flag bits masked off); the last one of a type wins. */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + SIZEOF.nlattr <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < SIZEOF.nlattr || off + len > buf.length) break;
    out.set(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, buf.subarray(off + SIZEOF.nlattr, off + len));
    off += align(len, NLA_ALIGNTO);
  }
  return out;
}

/** A NUL-terminated string attribute's text. */
export const attrStr = (b: Buffer | undefined): string | undefined => {
  if (!b) return undefined;
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, nul < 0 ? b.length : nul);
};

/** An NLMSG_ERROR payload: errno (positive; 0 = ACK) and the extended-ACK fields. */
export interface NlError {
  errno: number;
  extack?: string;
  /** Offset of the offending attribute in our request, when the kernel says. */
  extackOffset?: number;
}

export function parseError(msg: NlMessage): NlError {
  const p = msg.payload;
  if (p.length < 4) return { errno: 0 };
  const errno = -p.readInt32LE(0);
  const out: NlError = { errno };
  if (msg.flags & NLM_F.ACK_TLVS && p.length >= SIZEOF.nlmsgerr) {
    // The echoed request is capped to its header with NETLINK_CAP_ACK; otherwise it is whole.
    const origLen = msg.flags & NLM_F.CAPPED ? SIZEOF.nlmsghdr : p.readUInt32LE(4);
    const tlvs = parseAttrs(p.subarray(4 + align(origLen, NLMSG_ALIGNTO)));
    const text = attrStr(tlvs.get(NLMSGERR_ATTR.MSG));
    if (text) out.extack = text;
    const offs = tlvs.get(NLMSGERR_ATTR.OFFS);
    if (offs && offs.length >= 4) out.extackOffset = offs.readUInt32LE(0);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Argument checks (the text forms themselves are src/core/net.ts's)

/** A link by name or by ifindex. */
export type LinkRef = string | number;

/** An interface name by the kernel's dev_valid_name() rules, or ERR_INVALID_ARG_VALUE. */
export function checkIfname(name: unknown, arg = 'name'): string {
  const problem = ifnameProblem(name);
  if (problem) throw invalidArg(arg, name, `must be a Linux interface name (${problem.reason})`);
  return name as string;
}

/** A link name or a positive ifindex. */
export function checkLink(link: unknown, arg = 'link'): LinkRef {
  if (typeof link === 'number') {
    if (!Number.isInteger(link) || link <= 0 || link > 0x7fffffff)
      throw invalidArg(arg, link, 'must be a positive ifindex');
    return link;
  }
  return checkIfname(link, arg);
}

/** An unsigned 32-bit integer. */
export function checkU32(v: unknown, arg: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
    throw invalidArg(arg, v, 'must be an unsigned 32-bit integer');
  return v;
}

/** The 6 bytes of a MAC like 02:00:00:00:00:01. */
export function macBytes(mac: unknown, arg = 'mac'): Buffer {
  const b = parseMac(mac);
  if (!b) throw invalidArg(arg, mac, 'must be a MAC address like 02:00:00:00:00:01');
  return b;
}

/** An address as rtnetlink carries it: its AF_* family and bytes. */
export interface IpBytes {
  family: typeof AF.INET | typeof AF.INET6;
  bytes: Buffer;
}

/** inet_pton for both families, with the AF_* family. */
export function ipBytes(ip: unknown, arg = 'address'): IpBytes {
  const a = parseIp(ip);
  if (!a) throw invalidArg(arg, ip, 'must be an IPv4 or IPv6 address');
  return { family: a.family === 4 ? AF.INET : AF.INET6, bytes: a.bytes };
}

/** 'a.b.c.d/len' or 'x::y/len', with the AF_* family. */
export function cidrBytes(cidr: unknown, arg = 'cidr'): IpBytes & { prefix: number } {
  const n = parseCidr(cidr);
  if (!n) throw invalidArg(arg, cidr, 'must be an IPv4 or IPv6 address with a prefix length (0-32 or 0-128)');
  return { family: n.family === 4 ? AF.INET : AF.INET6, bytes: n.bytes, prefix: n.prefix };
}

/** The IPv4 directed broadcast address of addr/prefix; none for /31 and /32 (RFC 3021). */
export function ipv4Broadcast(addr: Buffer, prefix: number): Buffer | undefined {
  if (prefix >= 31) return undefined;
  const host = prefix === 0 ? 0xffffffff : (1 << (32 - prefix)) - 1;
  const b = Buffer.alloc(4);
  b.writeUInt32BE((addr.readUInt32BE(0) | host) >>> 0);
  return b;
}

/** ifinfomsg + attributes that address a link by index or by name (the kernel accepts both). */
export function linkSelector(
  link: LinkRef,
  f: { flags?: number; change?: number } = {},
): { fixed: Buffer; attrs: NlAttr[] } {
  return typeof link === 'number'
    ? { fixed: ifinfomsg({ index: link, ...f }), attrs: [] }
    : { fixed: ifinfomsg(f), attrs: [attrString(IFLA.IFNAME, link)] };
}
