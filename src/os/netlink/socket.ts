/**
 * The rtnetlink socket: one per {@link NetlinkHandle}, requests matched to replies by
 * sequence number. The addon (native/netlink.cc) only opens sockets (in another netns on a
 * short-lived dedicated thread), sends and receives datagrams; everything else is here.
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
import { constants as osConstants } from 'node:os';
import { native, type RawNetlinkSocket, type SystemError } from '../../native';
import { NLMSG, NLM_F, RTM, RTM_NAME } from './constants';
import { encodeMessage, NetlinkError, parseError, parseMessages, type NlAttr, type NlMessage } from './wire';

const { EAGAIN, EBADF } = osConstants.errno;

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

/**
 * An rtnetlink handle bound to ONE network namespace: the open netns file and a
 * NETLINK_ROUTE socket inside it, with its in-flight requests. Whoever opens a handle owns
 * it and closes it: a handle pins its netns (the kernel keeps the namespace, and a pod's
 * veth, alive while the socket exists), so a pod netns handle lives as long as the
 * operation that needed it. {@link hostNetlink} is the shared handle of our own netns.
 */
export class NetlinkHandle {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: (() => void)[] = [];
  /** Sends running on dedicated threads, and requests waiting for one (each woken with its slot). */
  private threadSends = 0;
  private readonly threadWaiting: (() => void)[] = [];
  private raw: RawNetlinkSocket | undefined;
  private closed = false;

  private constructor(
    /** The netns file this handle acts in; undefined for the process's own netns. */
    readonly netns: string | undefined,
    /** The open netns file (IFLA_NET_NS_FD of a veth peer, sysctl writes); -1 for our own netns. */
    readonly netnsFd: number,
  ) {}

  /**
   * Opens a handle in `netns` (a netns file such as /var/run/netns/x or /proc/PID/ns/net),
   * or in our own netns when omitted. A missing file rejects with Node's ENOENT (syscall
   * open); a file that is not a netns with EINVAL (syscall setns), both with the path.
   */
  static async open(netns?: string): Promise<NetlinkHandle> {
    // A plain fd (opening an nsfs file is a few microseconds), so that close() is synchronous.
    const fd = netns === undefined ? -1 : fs.openSync(netns, fs.constants.O_RDONLY);
    const h = new NetlinkHandle(netns, fd);
    try {
      h.raw = await native().netlinkOpen(
        fd,
        netns ?? '',
        (datagrams) => h.onDatagrams(datagrams),
        (err) => h.onSocketError(err),
      );
    } catch (e) {
      if (fd >= 0) fs.closeSync(fd);
      throw e;
    }
    h.raw.unref(); // an idle handle never holds the process open
    return h;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Sends one request and resolves with its reply messages (none for a plain ACK).
   * Dumps (NLM_F_DUMP) resolve at NLMSG_DONE and are retried up to 5 times on NLM_F_DUMP_INTR.
   */
  async request(
    type: number,
    flags: number,
    fixed: Buffer,
    attrs: NlAttr[],
    ctx: RequestContext = {},
  ): Promise<NlMessage[]> {
    const dump =
      (flags & NLM_F.DUMP) === NLM_F.DUMP && (type === RTM.GETLINK || type === RTM.GETADDR || type === RTM.GETROUTE);
    for (let attempt = 1; ; attempt++) {
      const r = await this.send(type, flags, fixed, attrs, ctx, dump);
      if (!r.interrupted) return r.replies;
      // The table changed under the dump every time: an inconsistent view is worse than an error.
      if (attempt >= 5)
        throw new NetlinkError(EAGAIN, RTM_NAME[type] ?? `RTM_${type}`, { netns: this.netns, link: ctx.link });
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
      if (this.pending.size === 0) this.raw.ref();
      this.pending.set(seq, {
        replies: [],
        dump,
        dumpInterrupted: false,
        resolve,
        reject,
        syscall,
        link: ctx.link,
        sending,
      });
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
      else
        this.settle(
          m.seq,
          p,
          new NetlinkError(e.errno, p.syscall, { extack: e.extack, netns: this.netns, link: p.link }),
        );
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
    if (this.pending.size === 0 && !this.closed) this.raw?.unref();
  }

  private onSocketError(err: SystemError): void {
    // ENOBUFS: the kernel dropped replies, so no pending request can be trusted to finish.
    for (const [seq, p] of [...this.pending]) this.settle(seq, p, err);
    if (err.code !== 'ENOBUFS') this.close();
  }

  /** Closes the socket and the netns file; pending requests fail with EBADF. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
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
    // Requests still inside sendto may name this fd (a veth peer): close it after them.
    const inSend = [...this.pending.values()].map((p) => p.sending).filter((x): x is Promise<void> => x !== undefined);
    if (this.netnsFd >= 0) void Promise.all(inSend).then(() => fs.closeSync(this.netnsFd));
  }

  /** One dump request; the replies of the given type (retried when interrupted). */
  async dump(type: number, replyType: number, fixed: Buffer): Promise<NlMessage[]> {
    return (await this.request(type, NLM_F.DUMP, fixed, [])).filter((r) => r.type === replyType);
  }
}

let host: Promise<NetlinkHandle> | undefined;

/**
 * The shared handle of the process's own netns (opened on first use, re-opened if its
 * socket failed). It pins nothing, so it stays open; {@link closeHostNetlink} closes it.
 */
export async function hostNetlink(): Promise<NetlinkHandle> {
  const cur = host;
  if (cur) {
    const h = await cur.catch(() => undefined);
    if (h && !h.isClosed) return h;
    if (host === cur) host = undefined;
  }
  host ??= NetlinkHandle.open();
  return host;
}

/** Closes the shared own-netns handle (daemon shutdown, tests). */
export async function closeHostNetlink(): Promise<void> {
  const cur = host;
  host = undefined;
  (await cur?.catch(() => undefined))?.close();
}
