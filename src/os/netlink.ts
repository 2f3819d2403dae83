/**
 * rtnetlink for the veth and hybrid (linux-bridge) drivers: veth pairs born in the pod
 * netns, links, addresses and routes, without spawning `ip`.
 *
 * Split of work: the addon (native/netlink.cc) only opens sockets (in another netns on a
 * short-lived dedicated thread), sends and receives datagrams. Every message is built and
 * parsed here from the tables in ./netlink-constants. See docs/namespaces-and-threads.md.
 *
 * Protocol invariants this module relies on (tested in test/integration/netlink.test.ts):
 * - every request carries NLM_F_REQUEST|NLM_F_ACK and a sequence number unique on its
 *   socket; replies are matched by nlmsg_seq only (the kernel is the only sender);
 * - an NLMSG_ERROR with error 0 is the ACK that ends a request; a negative error fails it
 *   with the kernel's extended-ACK text (NETLINK_EXT_ACK, NLMSGERR_ATTR_MSG);
 * - dumps end with NLMSG_DONE and are retried when a part carries NLM_F_DUMP_INTR;
 * - ENOBUFS on the socket means replies were dropped: every pending request fails, and
 *   the socket stays in use; at most MAX_IN_FLIGHT requests are outstanding per socket,
 *   so that ordinary bursts never get there;
 * - the kernel handles a request inside sendto. Requests for which that takes long
 *   (blocksInKernel: RTM_DELLINK, link creation) are sent from a short-lived dedicated
 *   thread, at most MAX_THREAD_SENDS at a time per socket, so the event loop never waits
 *   for them. They run concurrently with each other and with later requests: only a
 *   request whose promise has settled is known to be done before the next one starts.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import * as util from 'node:util';
import { native, type RawNetlinkSocket, type SystemError } from '../native';
import {
  AF,
  IFA,
  IFA_F,
  IFF,
  IFLA,
  IFLA_BR,
  IFLA_INFO,
  IF_OPER,
  IFNAMSIZ_MAX,
  NLA_ALIGNTO,
  NLA_F_NESTED,
  NLA_TYPE_MASK,
  NLMSG,
  NLMSG_ALIGNTO,
  NLMSGERR_ATTR,
  NLM_F,
  RTA,
  RTM,
  RTM_NAME,
  RTN,
  RTPROT,
  RT_SCOPE,
  RT_TABLE,
  SIZEOF,
  VETH_INFO,
} from './netlink-constants';

// ---------------------------------------------------------------------------------------
// Errors

const { EAGAIN, EBADF, ENODEV } = osConstants.errno;

/** A failed rtnetlink request: Node's SystemError shape plus the kernel's own words. */
export class NetlinkError extends Error implements SystemError {
  /** errno name, e.g. 'EEXIST'. */
  code: string;
  /** Negative errno, as Node reports it. */
  errno: number;
  /** The rtnetlink message type that failed, e.g. 'RTM_NEWLINK'. */
  syscall: string;
  /** The kernel's extended-ACK message (NLMSGERR_ATTR_MSG), when it gave one. */
  extack?: string;
  /** The network namespace file the request ran in; absent for the host netns. */
  netns?: string;
  /** The link (name or index) the request was about. */
  link?: string | number;

  constructor(errnum: number, syscall: string, detail: { extack?: string; netns?: string; link?: string | number } = {}) {
    const [code, desc] = errnoName(errnum);
    let msg = `${code}: ${desc}, ${syscall}`;
    if (detail.link !== undefined) msg += ` '${detail.link}'`;
    if (detail.netns) msg += ` in netns '${detail.netns}'`;
    if (detail.extack) msg += ` (kernel: ${detail.extack})`;
    super(msg);
    this.name = 'Error';
    this.code = code;
    this.errno = -errnum;
    this.syscall = syscall;
    if (detail.extack) this.extack = detail.extack;
    if (detail.netns) this.netns = detail.netns;
    if (detail.link !== undefined) this.link = detail.link;
  }
}

function errnoName(errnum: number): [string, string] {
  const entry = util.getSystemErrorMap().get(-errnum);
  return entry ? [entry[0], entry[1]] : ['UNKNOWN', `errno ${errnum}`];
}

function invalidArg(name: string, value: unknown, why: string): TypeError {
  const err = new TypeError(`The argument '${name}' ${why}. Received ${JSON.stringify(value)}`);
  (err as TypeError & { code: string }).code = 'ERR_INVALID_ARG_VALUE';
  return err;
}

// ---------------------------------------------------------------------------------------
// Encoding: a message is a header, a fixed struct and a tree of attributes.

const align = (n: number, to: number): number => (n + to - 1) & ~(to - 1);

/** One netlink attribute; `nested` children are encoded as its payload. */
export type NlAttr = { type: number; data: Uint8Array } | { type: number; nested: NlAttr[] };

/** Encodes attributes, each padded to NLA_ALIGNTO. */
export function encodeAttrs(attrs: NlAttr[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of attrs) {
    const payload = 'nested' in a ? encodeAttrs(a.nested) : Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
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
export function ifinfomsg(f: { family?: number; type?: number; index?: number; flags?: number; change?: number } = {}): Buffer {
  const b = Buffer.alloc(SIZEOF.ifinfomsg);
  b.writeUInt8(f.family ?? AF.UNSPEC, 0);
  b.writeUInt16LE(f.type ?? 0, 2);
  b.writeInt32LE(f.index ?? 0, 4);
  b.writeUInt32LE((f.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((f.change ?? 0) >>> 0, 12);
  return b;
}

/** struct ifaddrmsg. */
export function ifaddrmsg(f: { family: number; prefixlen: number; flags?: number; scope?: number; index: number }): Buffer {
  const b = Buffer.alloc(SIZEOF.ifaddrmsg);
  b.writeUInt8(f.family, 0);
  b.writeUInt8(f.prefixlen, 1);
  b.writeUInt8((f.flags ?? 0) & 0xff, 2);
  b.writeUInt8(f.scope ?? RT_SCOPE.UNIVERSE, 3);
  b.writeUInt32LE(f.index >>> 0, 4);
  return b;
}

/** struct rtmsg. */
export function rtmsg(f: { family: number; dstLen: number; table: number; protocol: number; scope: number; type: number }): Buffer {
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
  const body = Buffer.concat([fixed, Buffer.alloc(align(fixed.length, NLMSG_ALIGNTO) - fixed.length), encodeAttrs(attrs)]);
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

const attrStr = (b: Buffer | undefined): string | undefined => {
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
// One socket: request/reply matching by sequence number

interface Pending {
  replies: NlMessage[];
  dump: boolean;
  dumpInterrupted: boolean;
  resolve(r: { replies: NlMessage[]; interrupted: boolean }): void;
  reject(e: Error): void;
  syscall: string;
  link?: string | number;
  /** Settles (never rejects) once the sendto on a dedicated thread has returned. */
  sending?: Promise<void>;
}

/** Per-request context used in error messages. */
interface RequestContext {
  link?: string | number;
}

/**
 * Requests in flight per socket. The kernel answers each request inside sendmsg, so the
 * window is mostly replies waiting in our receive buffer; past about a thousand the
 * kernel drops them (ENOBUFS). Further requests wait in a queue, in order.
 */
const MAX_IN_FLIGHT = 128;

/**
 * Whether the kernel may take long (milliseconds, not microseconds) inside sendto for
 * this request, so that it must not be sent from the main thread. Measured here:
 * - RTM_DELLINK runs unregister_netdevice and waits for RCU grace periods: p50 20 ms,
 *   max 40 ms per link;
 * - RTM_NEWLINK with NLM_F_CREATE (a veth pair, a bridge): p50 0.7 ms but max 8 ms, and
 *   a burst of pod ADDs sends many in one tick;
 * - changing a link (up, MTU, master: RTM_NEWLINK without NLM_F_CREATE) and lookups take
 *   0.04-0.14 ms and stay on the main thread, where a thread costs more than the request.
 */
export function blocksInKernel(type: number, flags: number): boolean {
  return type === RTM.DELLINK || (type === RTM.NEWLINK && (flags & NLM_F.CREATE) !== 0);
}

/**
 * Dedicated sender threads per socket. Deletions overlap their RCU waits: 20 take about
 * 100 ms with 8 threads, 60 ms with 16, 300 ms with 2 (400 ms one by one). Creations
 * serialise on the RTNL lock, whose waiters spin while the holder runs: with 16 threads
 * on 2 cores they starved the main thread (loop gaps up to 34 ms for 20 creations), with
 * 8 the gaps stay under 10 ms. Further such requests wait in a queue, in order.
 */
const MAX_THREAD_SENDS = 8;

/** A NETLINK_ROUTE socket bound to one netns, with its in-flight requests. */
export class RtnlSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: (() => void)[] = [];
  /** Sends running on dedicated threads, and requests waiting for one (each woken with its slot). */
  private threadSends = 0;
  private readonly threadWaiting: (() => void)[] = [];
  private raw: RawNetlinkSocket | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    /** The netns file this socket lives in; undefined for the process's own netns. */
    readonly netns: string | undefined,
    private readonly idleMs: number,
    private readonly onIdleClose: (s: RtnlSocket) => void,
  ) {}

  /** Opens a socket in `netns` (an open netns file `fd`), or in our own netns when fd < 0. */
  static async open(fd: number, netns: string | undefined, idleMs: number, onIdleClose: (s: RtnlSocket) => void): Promise<RtnlSocket> {
    const s = new RtnlSocket(netns, idleMs, onIdleClose);
    s.raw = await native().netlinkOpen(
      fd,
      netns ?? '',
      (datagrams) => s.onDatagrams(datagrams),
      (err) => s.onSocketError(err),
    );
    s.raw.unref(); // idle sockets never hold the process open
    s.touch();
    return s;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Sends one request and resolves with its reply messages (none for a plain ACK).
   * Dumps (NLM_F_DUMP) resolve at NLMSG_DONE and are retried up to 5 times on NLM_F_DUMP_INTR.
   */
  async request(type: number, flags: number, fixed: Buffer, attrs: NlAttr[], ctx: RequestContext = {}): Promise<NlMessage[]> {
    const dump = (flags & NLM_F.DUMP) === NLM_F.DUMP && (type === RTM.GETLINK || type === RTM.GETADDR || type === RTM.GETROUTE);
    for (let attempt = 1; ; attempt++) {
      const r = await this.send(type, flags, fixed, attrs, ctx, dump);
      if (!r.interrupted) return r.replies;
      // The table changed under the dump every time: an inconsistent view is worse than an error.
      if (attempt >= 5) throw new NetlinkError(EAGAIN, RTM_NAME[type] ?? `RTM_${type}`, { netns: this.netns, link: ctx.link });
    }
  }

  private async send(type: number, flags: number, fixed: Buffer, attrs: NlAttr[], ctx: RequestContext, dump: boolean) {
    const onThread = blocksInKernel(type, flags);
    if (onThread) await this.threadSlot();
    if (this.pending.size >= MAX_IN_FLIGHT || this.waiting.length > 0) {
      await new Promise<void>((go) => this.waiting.push(go));
    }
    return new Promise<{ replies: NlMessage[]; interrupted: boolean }>((resolve, reject) => {
      const syscall = RTM_NAME[type] ?? `RTM_${type}`;
      if (this.closed || !this.raw) {
        if (onThread) this.releaseThreadSlot();
        reject(new NetlinkError(EBADF, syscall, { netns: this.netns, link: ctx.link }));
        return;
      }
      this.seq = (this.seq + 1) >>> 0 || 1;
      const seq = this.seq;
      // Dumps end with NLMSG_DONE; everything else with the ACK we ask for.
      const msg = encodeMessage(type, flags | NLM_F.REQUEST | (dump ? 0 : NLM_F.ACK), seq, fixed, attrs);
      let sending: Promise<void> | undefined;
      try {
        if (onThread) sending = this.sendOnThread(this.raw, seq, msg);
        else this.raw.send(msg);
      } catch (e) {
        if (onThread) this.releaseThreadSlot();
        reject(e as Error);
        return;
      }
      if (this.pending.size === 0) {
        this.raw.ref();
        if (this.idleTimer) clearTimeout(this.idleTimer);
        this.idleTimer = undefined;
      }
      this.pending.set(seq, { replies: [], dump, dumpInterrupted: false, resolve, reject, syscall, link: ctx.link, sending });
    });
  }

  /**
   * Sends from a dedicated thread. The reply comes through onDatagrams as usual, before or
   * after the send settles; a failed sendto (no reply will come) fails the request. The
   * returned promise settles, never rejecting, once sendto has returned.
   */
  private sendOnThread(raw: RawNetlinkSocket, seq: number, msg: Buffer): Promise<void> {
    return raw.sendOnThread(msg).then(
      () => {
        this.releaseThreadSlot();
        const p = this.pending.get(seq);
        if (p) p.sending = undefined;
      },
      (e: Error) => {
        this.releaseThreadSlot();
        const p = this.pending.get(seq);
        if (!p) return;
        p.sending = undefined;
        this.settle(seq, p, e);
      },
    );
  }

  /**
   * Fails a request. One still inside sendto on its thread fails only once sendto has
   * returned: until then the kernel may still read what the caller keeps open for it (the
   * IFLA_NET_NS_FD of a veth peer), and a caller that closed it on an early EBADF (socket
   * closed) or ENOBUFS could let the fd number be reused under the kernel's feet.
   */
  private fail(p: Pending, err: Error): void {
    if (p.sending) void p.sending.then(() => p.reject(err));
    else p.reject(err);
  }

  /** Takes a dedicated-thread slot, waiting for one if all are busy. */
  private threadSlot(): Promise<void> | void {
    if (this.threadSends < MAX_THREAD_SENDS) {
      this.threadSends++;
      return;
    }
    return new Promise<void>((go) => this.threadWaiting.push(go));
  }

  /** Hands the slot to the next waiting request, or frees it. */
  private releaseThreadSlot(): void {
    const next = this.threadWaiting.shift();
    if (next) next();
    else this.threadSends--;
  }

  private onDatagrams(datagrams: Buffer[]): void {
    for (const d of datagrams) {
      for (const m of parseMessages(d)) this.onMessage(m);
    }
  }

  private onMessage(m: NlMessage): void {
    const p = this.pending.get(m.seq);
    if (!p) return; // a late reply to a request that already failed (e.g. after ENOBUFS)
    if (m.flags & NLM_F.DUMP_INTR) p.dumpInterrupted = true;
    if (m.type === NLMSG.ERROR) {
      const e = parseError(m);
      if (e.errno === 0) this.settle(m.seq, p, null);
      else this.settle(m.seq, p, new NetlinkError(e.errno, p.syscall, { extack: e.extack, netns: this.netns, link: p.link }));
    } else if (m.type === NLMSG.DONE) {
      // A dump's DONE carries an int error (0 on success).
      const err = m.payload.length >= 4 ? -m.payload.readInt32LE(0) : 0;
      this.settle(m.seq, p, err > 0 ? new NetlinkError(err, p.syscall, { netns: this.netns, link: p.link }) : null);
    } else if (m.type !== NLMSG.NOOP && m.type !== NLMSG.OVERRUN) {
      p.replies.push(m);
    }
  }

  private settle(seq: number, p: Pending, err: Error | null): void {
    this.pending.delete(seq);
    if (err) this.fail(p, err);
    else p.resolve({ replies: p.replies, interrupted: p.dumpInterrupted });
    this.waiting.shift()?.();
    if (this.pending.size === 0 && !this.closed) {
      this.raw?.unref();
      this.touch();
    }
  }

  private onSocketError(err: SystemError): void {
    // ENOBUFS: the kernel dropped replies, so no pending request can be trusted to finish.
    for (const [seq, p] of [...this.pending]) this.settle(seq, p, err);
    if (err.code !== 'ENOBUFS') this.close();
  }

  /** Restarts the idle timer (sockets in other netns close when idle; they pin the netns). */
  touch(): void {
    if (this.netns === undefined || this.closed || this.pending.size > 0) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.pending.size === 0) this.close();
    }, this.idleMs);
    this.idleTimer.unref();
  }

  /** Closes the socket; pending requests fail with EBADF. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.raw?.close();
    for (const [seq, p] of [...this.pending]) {
      this.pending.delete(seq);
      this.fail(p, new NetlinkError(EBADF, p.syscall, { netns: this.netns, link: p.link }));
    }
    // Queued requests go on and fail with EBADF in send(), returning their thread slots.
    for (const go of this.threadWaiting.splice(0)) {
      this.threadSends++;
      go();
    }
    for (const go of this.waiting.splice(0)) go();
    this.onIdleClose(this);
  }
}

// ---------------------------------------------------------------------------------------
// The socket cache: one socket per netns, keyed by the netns file's dev+ino

/** Options of every operation: the netns to act in (a file such as /var/run/netns/x or /proc/PID/ns/net). */
export interface NetnsOption {
  /** Network namespace file; omitted = the daemon's own (host) netns. */
  netns?: string;
}

const cache = new Map<string, Promise<RtnlSocket>>();
const SELF_KEY = 'self';
let idleCloseMs = 5000;

/**
 * How long a socket in another netns stays open without requests. A socket pins its
 * netns (the kernel keeps the namespace, and the pod's veth, alive while it exists), so
 * it must not outlive the pod for long; call releaseNetns() on CNI DEL to close at once.
 */
export function setNetnsSocketIdleMs(ms: number): void {
  if (!Number.isInteger(ms) || ms < 0) throw invalidArg('ms', ms, 'must be a non-negative integer');
  idleCloseMs = ms;
}

function cacheGet(key: string, open: () => Promise<RtnlSocket>): Promise<RtnlSocket> {
  const hit = cache.get(key);
  if (hit) return hit;
  const p = open();
  cache.set(key, p);
  p.catch(() => {
    if (cache.get(key) === p) cache.delete(key);
  });
  return p;
}

/** Netns path -> cache key it last named, so a socket can be released after the file is gone. */
const keyByPath = new Map<string, string>();

function evictOnClose(key: string): (s: RtnlSocket) => void {
  return (s) => {
    void cache.get(key)?.then((cur) => {
      if (cur !== s) return;
      cache.delete(key);
      for (const [path, k] of keyByPath) if (k === key) keyByPath.delete(path);
    });
  };
}

/** Opens a netns file; ENOENT etc. come out as Node's own fs errors with the path. */
async function openNetnsFile(netns: string): Promise<{ fh: fs.promises.FileHandle; key: string }> {
  const fh = await fs.promises.open(netns, fs.constants.O_RDONLY);
  try {
    const st = await fh.stat({ bigint: true });
    return { fh, key: `${st.dev}:${st.ino}` };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** The cached socket for a netns (opening it if needed). */
export async function socketFor(netns?: string): Promise<RtnlSocket> {
  for (;;) {
    let key = SELF_KEY;
    let p: Promise<RtnlSocket>;
    if (netns === undefined) {
      p = cacheGet(key, () => RtnlSocket.open(-1, undefined, 0, evictOnClose(SELF_KEY)));
    } else {
      // Fast path: one stat names the netns (dev+ino of the nsfs inode) and finds its socket.
      const st = await fs.promises.stat(netns, { bigint: true });
      key = `${st.dev}:${st.ino}`;
      const hit = cache.get(key);
      if (hit) {
        p = hit;
      } else {
        // Open, then key by what we actually opened (the path may have changed since stat).
        const f = await openNetnsFile(netns);
        key = f.key;
        try {
          // netlinkOpen dups the fd synchronously, so closing our handle afterwards is safe.
          p = cacheGet(key, () => RtnlSocket.open(f.fh.fd, netns, idleCloseMs, evictOnClose(key)));
          await p;
        } finally {
          await f.fh.close();
        }
      }
    }
    const s = await p;
    if (netns !== undefined) keyByPath.set(netns, key);
    if (!s.isClosed) {
      // Only microtasks separate this from the caller's request, so the idle timer cannot
      // close the socket in between.
      s.touch();
      return s;
    }
    if (cache.get(key) === p) cache.delete(key);
  }
}

/**
 * Closes the cached socket of one netns (e.g. on CNI DEL), so it no longer pins the netns.
 * Works after the netns file is gone too (the socket is found by the path it was opened by).
 */
export async function releaseNetns(netns: string): Promise<void> {
  const keys = new Set<string>();
  const known = keyByPath.get(netns);
  if (known) keys.add(known);
  try {
    const st = await fs.promises.stat(netns, { bigint: true });
    keys.add(`${st.dev}:${st.ino}`);
  } catch {
    // the file is gone: the path map is all we have
  }
  keyByPath.delete(netns);
  for (const key of keys) {
    const hit = cache.get(key);
    cache.delete(key);
    if (hit) (await hit.catch(() => undefined))?.close();
  }
}

/** Closes every cached socket (daemon shutdown, tests). */
export async function closeNetlinkSockets(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  keyByPath.clear();
  for (const s of await Promise.all(all.map((p) => p.catch(() => undefined)))) s?.close();
}

/** Number of cached sockets (tests, metrics). */
export function cachedSocketCount(): number {
  return cache.size;
}

// ---------------------------------------------------------------------------------------
// Argument checks and address parsing (pure)

/** A link by name or by ifindex. */
export type LinkRef = string | number;

export function checkIfname(name: unknown, arg = 'name'): string {
  // The kernel's dev_valid_name(): 1..15 bytes, no '/', ':' or whitespace, not "." or "..".
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > IFNAMSIZ_MAX || name === '.' || name === '..' || /[/:\s]/.test(name)) {
    throw invalidArg(arg, name, `must be a Linux interface name (1-${IFNAMSIZ_MAX} bytes, no '/', ':' or whitespace)`);
  }
  return name;
}

function checkLink(link: unknown, arg = 'link'): LinkRef {
  if (typeof link === 'number') {
    if (!Number.isInteger(link) || link <= 0 || link > 0x7fffffff) throw invalidArg(arg, link, 'must be a positive ifindex');
    return link;
  }
  return checkIfname(link, arg);
}

function checkU32(v: unknown, arg: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw invalidArg(arg, v, 'must be an unsigned 32-bit integer');
  return v;
}

/** Parses 'aa:bb:cc:dd:ee:ff' into 6 bytes. */
export function parseMac(mac: unknown, arg = 'mac'): Buffer {
  if (typeof mac !== 'string' || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) throw invalidArg(arg, mac, 'must be a MAC address like 02:00:00:00:00:01');
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function formatMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** inet_ntop: dotted quad, or RFC 5952 IPv6 (longest run of 2+ zero groups as "::"). */
export function formatIp(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const g = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** An IP address as bytes, with its family. */
export interface IpBytes {
  family: typeof AF.INET | typeof AF.INET6;
  bytes: Buffer;
}

/** inet_pton for both families; throws ERR_INVALID_ARG_VALUE. */
export function parseIp(ip: unknown, arg = 'address'): IpBytes {
  if (typeof ip === 'string' && net.isIPv4(ip)) return { family: AF.INET, bytes: Buffer.from(ip.split('.').map(Number)) };
  if (typeof ip === 'string' && net.isIPv6(ip) && !ip.includes('%')) {
    let s = ip;
    const tail: number[] = [];
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
    if (v4) {
      tail.push(...v4[1].split('.').map(Number));
      s = s.slice(0, -v4[1].length) + '0:0'; // stand-in groups, replaced below
    }
    const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
    const groups = (x: string | undefined) => (x ? x.split(':').filter((g) => g !== '') : []);
    const h = groups(head);
    const r = groups(rest);
    const all = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill('0'), ...r];
    const bytes = Buffer.alloc(16);
    all.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), i * 2));
    if (tail.length) Buffer.from(tail).copy(bytes, 12);
    return { family: AF.INET6, bytes };
  }
  throw invalidArg(arg, ip, 'must be an IPv4 or IPv6 address');
}

/** Parses 'a.b.c.d/len' or 'x::y/len'. */
export function parseCidr(cidr: unknown, arg = 'cidr'): IpBytes & { prefix: number } {
  if (typeof cidr !== 'string') throw invalidArg(arg, cidr, 'must be an address with a prefix length');
  const slash = cidr.lastIndexOf('/');
  if (slash < 0) throw invalidArg(arg, cidr, 'must be an address with a prefix length');
  const ip = parseIp(cidr.slice(0, slash), arg);
  const lenText = cidr.slice(slash + 1);
  const prefix = Number(lenText);
  const max = ip.family === AF.INET ? 32 : 128;
  if (!/^\d{1,3}$/.test(lenText) || prefix > max) throw invalidArg(arg, cidr, `must have a prefix length 0-${max}`);
  return { ...ip, prefix };
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
function linkSelector(link: LinkRef, f: { flags?: number; change?: number } = {}): { fixed: Buffer; attrs: NlAttr[] } {
  return typeof link === 'number'
    ? { fixed: ifinfomsg({ index: link, ...f }), attrs: [] }
    : { fixed: ifinfomsg(f), attrs: [attrString(IFLA.IFNAME, link)] };
}

// ---------------------------------------------------------------------------------------
// Links

/** What `linkGet` reports about a link. */
export interface LinkInfo {
  index: number;
  name: string;
  /** IFF_* flags (IFF_UP, IFF_RUNNING, IFF_LOWER_UP, IFF_PROMISC, ...). */
  flags: number;
  up: boolean;
  mtu: number;
  mac?: string;
  /** ifindex of the master (bridge) this link is enslaved to. */
  master?: number;
  /** rtnl_link_ops kind: 'veth', 'bridge', 'openvswitch', ... */
  kind?: string;
  operstate?: string;
  /** Peer ifindex for veth (IFLA_LINK), in the netns given by linkNetnsId. */
  link?: number;
  linkNetnsId?: number;
}

export function parseLink(m: NlMessage): LinkInfo {
  const p = m.payload;
  const index = p.readInt32LE(4);
  const flags = p.readUInt32LE(8);
  const a = parseAttrs(p.subarray(SIZEOF.ifinfomsg));
  const u32 = (t: number) => a.get(t)?.readUInt32LE(0);
  const info: LinkInfo = { index, name: attrStr(a.get(IFLA.IFNAME)) ?? '', flags, up: (flags & IFF.UP) !== 0, mtu: u32(IFLA.MTU) ?? 0 };
  const mac = a.get(IFLA.ADDRESS);
  if (mac && mac.length === 6) info.mac = formatMac(mac);
  const master = u32(IFLA.MASTER);
  if (master) info.master = master;
  const li = a.get(IFLA.LINKINFO);
  if (li) {
    const kind = attrStr(parseAttrs(li).get(IFLA_INFO.KIND));
    if (kind) info.kind = kind;
  }
  const oper = a.get(IFLA.OPERSTATE);
  if (oper) info.operstate = IF_OPER[oper[0]] ?? String(oper[0]);
  const peer = u32(IFLA.LINK);
  if (peer !== undefined && peer !== index) info.link = peer;
  const nsid = a.get(IFLA.LINK_NETNSID);
  if (nsid) info.linkNetnsId = nsid.readInt32LE(0);
  return info;
}

/** Looks up one link by name or index. Rejects with ENODEV when it does not exist. */
export async function linkGet(link: LinkRef, opts: NetnsOption = {}): Promise<LinkInfo> {
  link = checkLink(link);
  const s = await socketFor(opts.netns);
  const { fixed, attrs } = linkSelector(link);
  const replies = await s.request(RTM.GETLINK, 0, fixed, attrs, { link });
  const m = replies.find((r) => r.type === RTM.NEWLINK);
  if (!m) throw new NetlinkError(ENODEV, 'RTM_GETLINK', { netns: opts.netns, link });
  return parseLink(m);
}

/** One dump request in a netns; the replies of the given type (retried when interrupted). */
async function dump(type: number, replyType: number, fixed: Buffer, opts: NetnsOption): Promise<NlMessage[]> {
  const s = await socketFor(opts.netns);
  return (await s.request(type, NLM_F.DUMP, fixed, [])).filter((r) => r.type === replyType);
}

/** Lists every link of a netns. */
export async function linkList(opts: NetnsOption = {}): Promise<LinkInfo[]> {
  return (await dump(RTM.GETLINK, RTM.NEWLINK, ifinfomsg(), opts)).map(parseLink);
}

/** Link index of a name (or the index itself). */
async function ifindexOf(link: LinkRef, opts: NetnsOption): Promise<number> {
  return typeof link === 'number' ? link : (await linkGet(link, opts)).index;
}

/** RTM_NEWLINK on an existing link (by index or name) with extra flags and attributes. */
async function linkModify(link: LinkRef, f: { flags?: number; change?: number }, extra: NlAttr[], opts: NetnsOption): Promise<void> {
  link = checkLink(link);
  const s = await socketFor(opts.netns);
  const { fixed, attrs } = linkSelector(link, f);
  await s.request(RTM.NEWLINK, 0, fixed, [...attrs, ...extra], { link });
}

/** `ip link set LINK up`. */
export async function linkSetUp(link: LinkRef, opts: NetnsOption = {}): Promise<void> {
  return linkModify(link, { flags: IFF.UP, change: IFF.UP }, [], opts);
}

/** `ip link set LINK down`. */
export async function linkSetDown(link: LinkRef, opts: NetnsOption = {}): Promise<void> {
  return linkModify(link, { flags: 0, change: IFF.UP }, [], opts);
}

/** `ip link set LINK mtu N`; the kernel checks the range and says why in the error. */
export async function linkSetMtu(link: LinkRef, mtu: number, opts: NetnsOption = {}): Promise<void> {
  return linkModify(link, {}, [attrU32(IFLA.MTU, checkU32(mtu, 'mtu'))], opts);
}

/** `ip link set LINK address MAC`. */
export async function linkSetAddress(link: LinkRef, mac: string, opts: NetnsOption = {}): Promise<void> {
  return linkModify(link, {}, [attrBytes(IFLA.ADDRESS, parseMac(mac))], opts);
}

/** `ip link set LINK promisc on|off`. */
export async function setPromisc(link: LinkRef, on: boolean, opts: NetnsOption = {}): Promise<void> {
  return linkModify(link, { flags: on ? IFF.PROMISC : 0, change: IFF.PROMISC }, [], opts);
}

/** `ip link set LINK master BRIDGE` (enslave to a linux bridge); master null = `nomaster`. */
export async function linkSetMaster(link: LinkRef, master: LinkRef | null, opts: NetnsOption = {}): Promise<void> {
  const index = master === null ? 0 : await ifindexOf(checkLink(master, 'master'), opts);
  return linkModify(link, {}, [attrU32(IFLA.MASTER, index)], opts);
}

/**
 * `ip link del LINK`. With `ifExists`, a missing link (ENODEV) is not an error; resolves
 * true when a link was deleted. Deleting either end of a veth deletes both.
 */
export async function linkDel(link: LinkRef, opts: NetnsOption & { ifExists?: boolean } = {}): Promise<boolean> {
  link = checkLink(link);
  const s = await socketFor(opts.netns);
  const { fixed, attrs } = linkSelector(link);
  try {
    await s.request(RTM.DELLINK, 0, fixed, attrs, { link });
    return true;
  } catch (e) {
    if (opts.ifExists && (e as NetlinkError).code === 'ENODEV') return false;
    throw e;
  }
}

/** Options of createVethPair. */
export interface VethPairOptions extends NetnsOption {
  /** Name of the local end (in `netns`, default the host netns): the host tap. */
  name: string;
  /** Name of the peer (the container end). */
  peerName: string;
  /** Netns file the peer is born in (the pod netns); default: the same netns as `name`. */
  peerNetnsPath?: string;
  /** MTU of both ends. */
  mtu?: number;
  mac?: string;
  peerMac?: string;
  /** Bring both ends up (default false): the local end in the create message, the peer right after. */
  up?: boolean;
}

/** The attributes of one veth end (used both for the link and inside VETH_INFO_PEER). */
function vethEnd(name: string, mtu: number | undefined, mac: Buffer | undefined, nsFd?: number): NlAttr[] {
  const attrs: NlAttr[] = [attrString(IFLA.IFNAME, name)];
  if (mtu !== undefined) attrs.push(attrU32(IFLA.MTU, mtu));
  if (mac) attrs.push(attrBytes(IFLA.ADDRESS, mac));
  if (nsFd !== undefined) attrs.push(attrU32(IFLA.NET_NS_FD, nsFd));
  return attrs;
}

/** The RTM_NEWLINK body of a veth pair; the peer is a whole ifinfomsg + attrs (linux/veth.h). */
export function vethPairMessage(o: { name: string; peerName: string; mtu?: number; mac?: Buffer; peerMac?: Buffer; peerNsFd?: number; up?: boolean }): { fixed: Buffer; attrs: NlAttr[] } {
  // Only the local end can come up in the create message: the kernel configures the peer
  // before the pair is linked, and opening it then fails with ENOTCONN.
  const upFlags = o.up ? { flags: IFF.UP, change: IFF.UP } : {};
  const peer = Buffer.concat([ifinfomsg(), encodeAttrs(vethEnd(o.peerName, o.mtu, o.peerMac, o.peerNsFd))]);
  return {
    fixed: ifinfomsg(upFlags),
    attrs: [
      ...vethEnd(o.name, o.mtu, o.mac),
      attrNest(IFLA.LINKINFO, [attrString(IFLA_INFO.KIND, 'veth'), attrNest(IFLA_INFO.DATA, [attrBytes(VETH_INFO.PEER, peer)])]),
    ],
  };
}

/**
 * Creates a veth pair in one RTM_NEWLINK (NLM_F_CREATE|NLM_F_EXCL): `name` in `netns`
 * (default: host), its peer born directly in `peerNetnsPath` with its final name, MAC and
 * MTU, so the container end never appears in the host netns. EEXIST if a name is taken.
 */
export async function createVethPair(o: VethPairOptions): Promise<void> {
  const name = checkIfname(o.name, 'name');
  const peerName = checkIfname(o.peerName, 'peerName');
  const mtu = o.mtu === undefined ? undefined : checkU32(o.mtu, 'mtu');
  const mac = o.mac === undefined ? undefined : parseMac(o.mac, 'mac');
  const peerMac = o.peerMac === undefined ? undefined : parseMac(o.peerMac, 'peerMac');
  // IFLA_NET_NS_FD is read by the kernel during the send, so the file stays open until the reply.
  const peerNs = o.peerNetnsPath === undefined ? undefined : await fs.promises.open(o.peerNetnsPath, fs.constants.O_RDONLY);
  try {
    const s = await socketFor(o.netns);
    const { fixed, attrs } = vethPairMessage({ name, peerName, mtu, mac, peerMac, peerNsFd: peerNs?.fd, up: o.up });
    await s.request(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL, fixed, attrs, { link: name });
  } finally {
    await peerNs?.close();
  }
  if (!o.up) return;
  try {
    await linkSetUp(peerName, { netns: o.peerNetnsPath ?? o.netns });
  } catch (e) {
    // No half-made pair: deleting the local end deletes the peer too.
    await linkDel(name, { netns: o.netns, ifExists: true }).catch(() => undefined);
    throw e;
  }
}

/** Options of createBridge. */
export interface BridgeOptions extends NetnsOption {
  mtu?: number;
  mac?: string;
  /** FDB ageing time in seconds; os-vif uses 0 for qbr (no learning timeouts). Default 0. */
  ageingTime?: number;
  up?: boolean;
  /** Write 1 to /proc/sys/net/ipv6/conf/<name>/disable_ipv6, as os-vif does for qbr (default true). */
  disableIpv6?: boolean;
}

/** Creates a linux bridge (`ip link add NAME type bridge ageing_time 0`). EEXIST if it exists. */
export async function createBridge(name: string, o: BridgeOptions = {}): Promise<void> {
  name = checkIfname(name);
  const attrs: NlAttr[] = [attrString(IFLA.IFNAME, name)];
  if (o.mtu !== undefined) attrs.push(attrU32(IFLA.MTU, checkU32(o.mtu, 'mtu')));
  if (o.mac !== undefined) attrs.push(attrBytes(IFLA.ADDRESS, parseMac(o.mac)));
  // IFLA_BR_AGEING_TIME is in clock_t (centiseconds).
  const ageing = checkU32(Math.round((o.ageingTime ?? 0) * 100), 'ageingTime');
  attrs.push(attrNest(IFLA.LINKINFO, [attrString(IFLA_INFO.KIND, 'bridge'), attrNest(IFLA_INFO.DATA, [attrU32(IFLA_BR.AGEING_TIME, ageing)])]));
  const s = await socketFor(o.netns);
  const upFlags = o.up ? { flags: IFF.UP, change: IFF.UP } : {};
  await s.request(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL, ifinfomsg(upFlags), attrs, { link: name });
  if (o.disableIpv6 !== false) await disableIpv6(name, o);
}

/** Turns IPv6 off on a link; a kernel without IPv6 (no such file) is fine. */
async function disableIpv6(name: string, opts: NetnsOption): Promise<void> {
  try {
    await setSysctl(`ipv6/conf/${name}/disable_ipv6`, '1', opts);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

// ---------------------------------------------------------------------------------------
// Per-netns sysctls (net.*)

/**
 * `sysctl -w net.<name>=<value>` in a netns, e.g. setSysctl('ipv6/conf/all/disable_ipv6',
 * '0', {netns}) before adding IPv6 addresses to a pod whose runtime disabled IPv6 (Kuryr
 * does this). /proc/sys/net shows the netns of the thread that opens it, so for another
 * netns the write runs on a dedicated thread inside it; for our own netns it is a plain
 * write (our fs threads never leave the host netns).
 */
export async function setSysctl(name: string, value: string, opts: NetnsOption = {}): Promise<void> {
  // Dotted (ipv6.conf.all.disable_ipv6) or slashed names; interface names may contain dots
  // only in the slashed form.
  const rel = typeof name !== 'string' ? '' : name.includes('/') ? name : name.replace(/\./g, '/');
  if (!/^[A-Za-z0-9_.\/-]+$/.test(rel) || rel.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw invalidArg('name', name, "must be a sysctl under net., e.g. 'ipv6/conf/all/disable_ipv6'");
  }
  if (opts.netns === undefined) {
    await fs.promises.writeFile(`/proc/sys/net/${rel}`, value);
    return;
  }
  const fh = await fs.promises.open(opts.netns, fs.constants.O_RDONLY);
  try {
    await native().netnsWriteSysctl(fh.fd, opts.netns, rel, value);
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------
// Addresses and routes

/**
 * `ip addr add CIDR dev LINK`: IPv4 with IFA_LOCAL, IFA_ADDRESS and IFA_BROADCAST; IPv6
 * with IFA_F_NODAD so it is usable at once (no tentative state). EEXIST if present.
 */
export async function addAddress(link: LinkRef, cidr: string, opts: NetnsOption = {}): Promise<void> {
  link = checkLink(link);
  const c = parseCidr(cidr);
  const index = await ifindexOf(link, opts);
  const attrs: NlAttr[] = [attrBytes(IFA.LOCAL, c.bytes), attrBytes(IFA.ADDRESS, c.bytes)];
  let flags = 0;
  if (c.family === AF.INET) {
    const brd = ipv4Broadcast(c.bytes, c.prefix);
    if (brd) attrs.push(attrBytes(IFA.BROADCAST, brd));
  } else {
    flags = IFA_F.NODAD;
    attrs.push(attrU32(IFA.FLAGS, flags));
  }
  const s = await socketFor(opts.netns);
  await s.request(RTM.NEWADDR, NLM_F.CREATE | NLM_F.EXCL, ifaddrmsg({ family: c.family, prefixlen: c.prefix, flags, index }), attrs, { link });
}

/** A route to add; dst 'default' means 0.0.0.0/0 or ::/0 (family from the gateway). */
export interface RouteSpec {
  dst: string;
  gateway?: string;
  /** Output link (name or index); needed for link-scope routes and IPv6 link-local gateways. */
  link?: LinkRef;
  metric?: number;
  table?: number;
  /** Family when dst is 'default' and there is no gateway; default 4. */
  family?: 4 | 6;
}

/** The RTM_NEWROUTE body for a route (pure; exported for tests). */
export function routeMessage(r: RouteSpec, oif?: number): { fixed: Buffer; attrs: NlAttr[] } {
  const gw = r.gateway === undefined ? undefined : parseIp(r.gateway, 'gateway');
  let dst: (IpBytes & { prefix: number }) | undefined;
  let family: number;
  if (r.dst === 'default') {
    family = gw?.family ?? (r.family === 6 ? AF.INET6 : AF.INET);
  } else {
    dst = parseCidr(r.dst, 'dst');
    family = dst.family;
  }
  if (gw && gw.family !== family) throw invalidArg('gateway', r.gateway, 'must be of the same family as dst');
  if (!gw && oif === undefined) throw invalidArg('route', r, 'needs a gateway or a link');
  const table = r.table ?? RT_TABLE.MAIN;
  const attrs: NlAttr[] = [];
  if (dst && dst.prefix > 0) attrs.push(attrBytes(RTA.DST, dst.bytes));
  if (gw) attrs.push(attrBytes(RTA.GATEWAY, gw.bytes));
  if (oif !== undefined) attrs.push(attrU32(RTA.OIF, oif));
  if (r.metric !== undefined) attrs.push(attrU32(RTA.PRIORITY, checkU32(r.metric, 'metric')));
  if (table >= 256) attrs.push(attrU32(RTA.TABLE, table));
  const fixed = rtmsg({
    family,
    dstLen: dst?.prefix ?? 0,
    table,
    protocol: RTPROT.BOOT,
    // Without a gateway the destination is on the link itself.
    scope: gw ? RT_SCOPE.UNIVERSE : RT_SCOPE.LINK,
    type: RTN.UNICAST,
  });
  return { fixed, attrs };
}

/**
 * `ip route add DST [via GW] [dev LINK] [metric M]`. A route that exists already (e.g. the
 * default route) rejects with code 'EEXIST', which callers may ignore as Kuryr does.
 */
export async function addRoute(r: RouteSpec, opts: NetnsOption = {}): Promise<void> {
  const oif = r.link === undefined ? undefined : await ifindexOf(checkLink(r.link), opts);
  const { fixed, attrs } = routeMessage(r, oif);
  const s = await socketFor(opts.netns);
  await s.request(RTM.NEWROUTE, NLM_F.CREATE | NLM_F.EXCL, fixed, attrs, { link: r.link });
}

// ---------------------------------------------------------------------------------------
// Listing addresses and routes (CHECK, reconciliation)

/** One address as `addrList` reports it. */
export interface AddressInfo {
  index: number;
  family: 4 | 6;
  /** The local address (IFA_LOCAL, else IFA_ADDRESS). */
  address: string;
  prefix: number;
  /** IFA_F_* flags (the 32-bit IFA_FLAGS when present). */
  flags: number;
  /** Still in duplicate-address detection: not usable yet. */
  tentative: boolean;
  scope: number;
}

export function parseAddress(m: NlMessage): AddressInfo {
  const p = m.payload;
  const a = parseAttrs(p.subarray(SIZEOF.ifaddrmsg));
  const bytes = a.get(IFA.LOCAL) ?? a.get(IFA.ADDRESS) ?? Buffer.alloc(p[0] === AF.INET ? 4 : 16);
  const flags = a.get(IFA.FLAGS)?.readUInt32LE(0) ?? p[2];
  return {
    index: p.readUInt32LE(4),
    family: p[0] === AF.INET ? 4 : 6,
    address: formatIp(bytes),
    prefix: p[1],
    flags,
    tentative: (flags & IFA_F.TENTATIVE) !== 0,
    scope: p[3],
  };
}

/** Addresses of a netns (`ip addr`), optionally of one link only. */
export async function addrList(opts: NetnsOption & { link?: LinkRef } = {}): Promise<AddressInfo[]> {
  const index = opts.link === undefined ? undefined : await ifindexOf(checkLink(opts.link), opts);
  const replies = await dump(RTM.GETADDR, RTM.NEWADDR, ifaddrmsg({ family: AF.UNSPEC, prefixlen: 0, index: 0 }), opts);
  return replies.map(parseAddress).filter((x) => index === undefined || x.index === index);
}

/** One route as `routeList` reports it. */
export interface RouteInfo {
  family: 4 | 6;
  /** 'default' or a CIDR. */
  dst: string;
  gateway?: string;
  oif?: number;
  metric?: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
}

export function parseRoute(m: NlMessage): RouteInfo {
  const p = m.payload;
  const a = parseAttrs(p.subarray(SIZEOF.rtmsg));
  const family = p[0] === AF.INET ? 4 : 6;
  const dstLen = p[1];
  const dst = a.get(RTA.DST);
  const r: RouteInfo = {
    family,
    dst: dstLen === 0 ? 'default' : `${formatIp(dst ?? Buffer.alloc(family === 4 ? 4 : 16))}/${dstLen}`,
    table: a.get(RTA.TABLE)?.readUInt32LE(0) ?? p[4],
    protocol: p[5],
    scope: p[6],
    type: p[7],
  };
  const gw = a.get(RTA.GATEWAY);
  if (gw) r.gateway = formatIp(gw);
  const oif = a.get(RTA.OIF);
  if (oif) r.oif = oif.readUInt32LE(0);
  const prio = a.get(RTA.PRIORITY);
  if (prio) r.metric = prio.readUInt32LE(0);
  return r;
}

/** Unicast routes of a netns (`ip route` + `ip -6 route`), of the main table unless told. */
export async function routeList(opts: NetnsOption & { table?: number } = {}): Promise<RouteInfo[]> {
  const table = opts.table ?? RT_TABLE.MAIN;
  const fixed = rtmsg({ family: AF.UNSPEC, dstLen: 0, table: RT_TABLE.UNSPEC, protocol: 0, scope: 0, type: 0 });
  const replies = await dump(RTM.GETROUTE, RTM.NEWROUTE, fixed, opts);
  return replies.map(parseRoute).filter((r) => r.table === table && r.type === RTN.UNICAST);
}
