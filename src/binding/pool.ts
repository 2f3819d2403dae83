/**
 * A warm pool of client-mode vhost-user ports (Kuryr's port pools, for vhost-user): per
 * bridge, N `dpdkvhostuser` ports created ahead of time, whose sockets ovs-vswitchd has
 * already made in ovs_vhu_path. A client-mode plug then takes one instead of adding a port:
 * ONE transaction sets its external_ids (os-vif's keys, the ownership keys, the pod-visible
 * socket name) and MTU, and the socket is renamed into the pod's mount dir under the VIF's
 * name, so the name a pod sees does not depend on the OVS port's. No ovs-vswitchd port add,
 * no datapath reconfiguration, no PMD reload on the plug path. The pool refills in the
 * background, in batched transactions; an unplug deletes the port as usual (a port a pod
 * has touched is never reused).
 *
 * Pool ports are named `vhp` + 12 hex digits and carry `vhostplug-owner=vhostplug` and
 * `vhostplug-pool=<bridge>` and no attachment, so nothing that handles attachments (the
 * reconciler's orphan pass) touches them. They outlive the daemon: a new pool adopts the
 * ports of its bridge whose socket is in place (an ovs-vswitchd restart re-creates them
 * there) and deletes the ones whose socket is gone (a take that crashed between its
 * transaction and the rename leaves an attachment, not a pool port).
 *
 * Invariants (tested in test/integration/binding-pool.test.ts):
 * - a port is handed out at most once: taken from the in-memory list, and the claim
 *   transaction `wait`s for the pool's own external_ids, so another process's claim fails it;
 * - a claimed port belongs to its attachment from the claim's commit on (ownership keys in
 *   the same transaction); failures after that delete it like any plug's rollback.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { hasCode, invalidArgument } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import { isSocket, waitForEntry } from '../os/inotify';
import { isSocketAt } from '../os/lstat';
import { map } from '../ovsdb/notation';
import { Transaction } from '../ovsdb/txn';
import { OWNER_KEYS, OWNER_VALUE } from '../vswitch/ownership';
import type { PortSpec } from '../vswitch/ports';
import type { Vswitch, WriteTimings } from '../vswitch/vswitch';

/** external_ids key marking a pool port (value: its bridge); kept after a take (the port's origin). */
export const POOL_KEY = 'vhostplug-pool';
/** external_ids key of a taken pool port: the socket's name in the pod's mount dir. */
export const SOCKET_NAME_KEY = 'vhostplug-socket-name';
/** Pool port names: `vhp` + 12 hex digits (15 bytes, IFNAMSIZ - 1). */
export const POOL_PORT_NAME = /^vhp[0-9a-f]{12}$/;

/** Largest refill transaction: past ~32 ports per transaction ovs-vswitchd's per-port cost grows (bench batch). */
const MAX_REFILL_BATCH = 32;

export interface PortPoolOptions {
  bridge: string;
  /** Ports to keep ready. */
  size: number;
  /** Refill when fewer than this are ready (default size / 2, rounded up). */
  lowWater?: number;
  /** Where ovs-vswitchd creates dpdkvhostuser sockets (`[vhostuser] ovs_vhu_path`). */
  ovsVhuPath: string;
  /** mtu_request of new pool ports (a take sets the VIF's when it differs). Default 1500. */
  mtu?: number;
  /** How long a refill waits for ovs-vswitchd's acknowledgement and for the sockets (ms, default 30000). */
  timeoutMs?: number;
  /** Delay before retrying a failed refill (ms, default 1000). */
  retryMs?: number;
  /**
   * The switch's vhost-user port budget (the driver's, src/binding/capacity.ts): a refill
   * takes one slot per port it adds and stops at the limit, so the pool never pushes
   * ovs-vswitchd past DPDK's device table; a pod that takes a pool port needs no new slot.
   */
  budget?: { reserve(): { release(): void } };
  /**
   * Wait for ovs-vswitchd to acknowledge a claim even when it changes only external_ids
   * (default false; see {@link VhostUserPortPool.claim}). A claim that changes the MTU
   * always waits.
   */
  ackClaims?: boolean;
  log?: Logger;
}

/** Counters and levels of one pool (metrics, tests, benchmarks). */
export interface PoolStats {
  bridge: string;
  size: number;
  lowWater: number;
  /** Ports ready to be taken. */
  available: number;
  /** Ports being created by a refill. */
  creating: number;
  /** Takes served from the pool. */
  hits: number;
  /** Takes that found the pool empty (the plug then adds a port as usual). */
  misses: number;
  /** Refill transactions that succeeded / failed. */
  refills: number;
  refillErrors: number;
  /** Pool ports created, and deleted by the pool (broken, surplus, drained). */
  created: number;
  deleted: number;
}

/** What a take hands to the driver. */
export interface PooledPort {
  /** The OVS port (and Interface) name. */
  name: string;
  /** Where its socket is now: `<ovs_vhu_path>/<name>`. */
  socketPath: string;
}

/** The external_ids a free pool port of `bridge` carries. */
export function poolExternalIds(bridge: string): Record<string, string> {
  return { [OWNER_KEYS.owner]: OWNER_VALUE, [POOL_KEY]: bridge };
}

/** A new pool port name. */
export function poolPortName(): string {
  return `vhp${randomBytes(6).toString('hex')}`;
}

/** A port the warm pool made (free, or taken by an attachment): its name and its pool key. */
export function isPoolPort(name: string, externalIds: Readonly<Record<string, string>>): boolean {
  return POOL_PORT_NAME.test(name) && externalIds[POOL_KEY] !== undefined;
}

/** The warm pool of one bridge. */
export class VhostUserPortPool {
  readonly bridge: string;
  readonly size: number;
  readonly lowWater: number;
  private readonly free: string[] = [];
  private creating = 0;
  private refilling: Promise<void> | undefined;
  /** A refill asked for by {@link refillSoon}, not started yet. */
  private soon: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The last refill found the switch at its vhost-user port limit (logged once). */
  private atLimit = false;
  private readonly log: Logger;
  private readonly counters = { hits: 0, misses: 0, refills: 0, refillErrors: 0, created: 0, deleted: 0 };

  constructor(
    private readonly vswitch: Vswitch,
    private readonly opts: PortPoolOptions,
  ) {
    if (!Number.isInteger(opts.size) || opts.size < 0)
      throw invalidArgument('size', opts.size, 'must be an integer >= 0', 'ERR_OUT_OF_RANGE');
    this.bridge = opts.bridge;
    this.size = opts.size;
    this.lowWater = Math.min(opts.size, opts.lowWater ?? Math.ceil(opts.size / 2));
    if (!Number.isInteger(this.lowWater) || this.lowWater < 0)
      throw invalidArgument('lowWater', opts.lowWater, 'must be an integer >= 0', 'ERR_OUT_OF_RANGE');
    this.log = opts.log ?? silentLogger;
  }

  /** The free pool ports of this bridge that OVSDB holds, with their socket state. */
  private scan(): { name: string; socket: boolean }[] {
    const out: { name: string; socket: boolean }[] = [];
    for (const iface of this.vswitch.rows.interfaces()) {
      const name = iface.name;
      if (!POOL_PORT_NAME.test(name)) continue;
      const ids = iface.external_ids;
      if (ids[POOL_KEY] !== this.bridge || ids[OWNER_KEYS.containerId] !== undefined) continue;
      if (iface.type !== 'dpdkvhostuser' || !this.vswitch.rows.port(name)) continue;
      out.push({ name, socket: isSocketAt(path.join(this.opts.ovsVhuPath, name)) });
    }
    return out;
  }

  /**
   * Adopts the bridge's free pool ports (a restarted daemon finds them in OVSDB), deletes
   * those without a socket and any beyond `size`, then fills up. Call with a synced cache.
   */
  async start(): Promise<void> {
    await this.reconcile();
  }

  /** Brings the pool back in line with OVSDB and the run dir; see {@link start}. Safe to call any time. */
  async reconcile(): Promise<void> {
    const found = this.scan();
    const keep = new Set<string>();
    const drop: string[] = [];
    for (const p of found) {
      if (p.socket && keep.size < this.size) keep.add(p.name);
      else drop.push(p.name);
    }
    // The in-memory list follows OVSDB: adopt what is there, forget what is gone.
    this.free.splice(
      0,
      this.free.length,
      ...this.free.filter((n) => keep.has(n)),
      ...[...keep].filter((n) => !this.free.includes(n)),
    );
    if (drop.length) {
      this.log.info('vhost-user pool: deleting pool ports without a socket or beyond the size', {
        bridge: this.bridge,
        ports: drop,
      });
      await this.vswitch.delPorts(drop, { timeoutMs: this.opts.timeoutMs ?? 30_000 });
      this.counters.deleted += drop.length;
    }
    this.maybeRefill(true);
    await this.refilling;
  }

  /**
   * Takes a ready port, or undefined when none is (the caller adds a port as usual). Never
   * hands out a port twice. The refill is NOT started here: its port-adding transaction
   * would go out before the take's claim and the claim would wait for vswitchd to add those
   * ports too (measured: 4.7 instead of ~1 ms); the caller calls {@link refillSoon} once
   * its plug is done. A miss starts one at once (nothing is waiting on the pool).
   */
  take(): PooledPort | undefined {
    while (this.free.length > 0) {
      const name = this.free.shift()!;
      const socketPath = path.join(this.opts.ovsVhuPath, name);
      // Still ours and still complete: realised by vswitchd (ofport, no error) and its socket
      // there (a vswitchd restart may be re-creating it).
      const iface = this.vswitch.rows.iface(name);
      if (
        this.vswitch.rows.port(name) &&
        iface?.ofport !== undefined &&
        iface.ofport > 0 &&
        iface.error === undefined &&
        isSocketAt(socketPath)
      ) {
        this.counters.hits++;
        return { name, socketPath };
      }
      this.log.warn('vhost-user pool: skipping a pool port without its socket or row', {
        bridge: this.bridge,
        port: name,
      });
    }
    this.counters.misses++;
    this.maybeRefill();
    return undefined;
  }

  /**
   * The claim transaction of a take: the Interface gets `externalIds` (and `mtu` when it
   * differs), on the condition that it still carries exactly the pool's own external_ids.
   *
   * ovs-vswitchd acknowledged this port when the pool created it (ofport assigned, socket
   * made; {@link take} checks both). A claim that changes only external_ids changes nothing
   * vswitchd realises (iface-id and friends are for controllers such as ovn-controller, which
   * the vswitchd acknowledgement does not cover either), so it is not re-acknowledged unless
   * `ackClaims`; one that changes `mtu_request` is, as the MTU reconfigures the port.
   */
  async claim(
    port: PooledPort,
    externalIds: Record<string, string>,
    mtu: number | undefined,
    opts: { waitForVswitchd?: boolean; timeoutMs?: number },
  ): Promise<WriteTimings> {
    const t = new Transaction();
    const where: [string, '==', string][] = [['name', '==', port.name]];
    t.wait('Interface', where, ['external_ids'], '==', [{ external_ids: map(poolExternalIds(this.bridge)) }], 0);
    const row: Record<string, unknown> = { external_ids: map({ ...externalIds, [POOL_KEY]: this.bridge }) };
    const mtuChanges = mtu !== undefined && this.vswitch.rows.iface(port.name)?.mtu_request !== mtu;
    if (mtuChanges) row['mtu_request'] = mtu;
    t.update('Interface', where, row as never);
    const ack = (opts.waitForVswitchd ?? true) && (mtuChanges || this.opts.ackClaims === true);
    return (await this.vswitch.transact(t, { ...opts, waitForVswitchd: ack })).timings;
  }

  /**
   * Refills in the background if the pool is below its low-water mark (after a take's
   * plug). Deferred to the next loop turn: building and sending the refill's transaction
   * is a few hundred microseconds the plug's caller should not wait for.
   */
  refillSoon(): void {
    this.soon ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.soon = undefined;
        this.maybeRefill();
        resolve();
      }),
    );
  }

  private maybeRefill(force = false): void {
    if (this.closed || this.refilling || this.retryTimer) return;
    if (!force && this.free.length >= this.lowWater) return;
    if (this.free.length + this.creating >= this.size) return;
    this.refilling = this.refill().finally(() => {
      this.refilling = undefined;
      // Takes during the refill may have drained it again.
      // Not at the switch's limit: that waits for the next take or reconcile.
      if (!this.closed && !this.atLimit && this.free.length < this.lowWater && !this.retryTimer) this.maybeRefill();
    });
  }

  /** Holds up to `want` slots of the switch's budget (fewer at its limit). */
  private reserveSlots(want: number): { release(): void }[] {
    const slots: { release(): void }[] = [];
    if (!this.opts.budget) return Array.from({ length: want }, () => ({ release: () => undefined }));
    try {
      while (slots.length < want) slots.push(this.opts.budget.reserve());
    } catch (err) {
      if (!hasCode(err, 'ENOSPC')) {
        for (const s of slots) s.release();
        throw err;
      }
      if (!this.atLimit)
        this.log.warn('vhost-user pool: the switch is at its vhost-user port limit; the pool stays short', {
          bridge: this.bridge,
          ready: this.free.length,
          size: this.size,
        });
    }
    this.atLimit = slots.length < want;
    return slots;
  }

  /** Creates ports up to `size`, in batched, acknowledged transactions, and waits for their sockets. */
  private async refill(): Promise<void> {
    while (!this.closed) {
      const want = Math.min(MAX_REFILL_BATCH, this.size - this.free.length - this.creating);
      if (want <= 0) return;
      // One slot per port, held until the ports are in the cache (they count themselves then).
      const slots = this.reserveSlots(want);
      const need = slots.length;
      if (need === 0) return; // at the limit: the next take or reconcile tries again
      const names = Array.from({ length: need }, () => poolPortName());
      const timeoutMs = this.opts.timeoutMs ?? 30_000;
      const ac = new AbortController();
      // Watches armed before the transaction: a socket's creation cannot be missed.
      const sockets = names.map((n) =>
        waitForEntry(this.opts.ovsVhuPath, n, { timeoutMs, predicate: isSocket, persistent: false, signal: ac.signal }),
      );
      for (const s of sockets) s.catch(() => undefined);
      const specs: PortSpec[] = names.map((name) => ({
        bridge: this.bridge,
        name,
        type: 'dpdkvhostuser',
        external_ids: poolExternalIds(this.bridge),
        mtu_request: this.opts.mtu ?? 1500,
        datapath_type: 'netdev',
      }));
      this.creating += need;
      try {
        try {
          await this.vswitch.addPorts(specs, [], { waitForVswitchd: true, timeoutMs });
        } finally {
          for (const s of slots) s.release();
        }
        this.counters.created += need;
        await Promise.all(sockets);
        this.counters.refills++;
        if (this.closed) return;
        this.free.push(...names);
      } catch (err) {
        ac.abort();
        this.counters.refillErrors++;
        this.log.error('vhost-user pool: refill failed; retrying', { bridge: this.bridge, ports: need, error: err });
        // Whatever was created without its socket goes at the next reconcile (or now).
        await this.vswitch.delPorts(names, { timeoutMs }).then(
          (gone) => void (this.counters.deleted += gone.length),
          () => undefined,
        );
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.maybeRefill(true);
        }, this.opts.retryMs ?? 1000);
        this.retryTimer.unref();
        return;
      } finally {
        this.creating -= need;
      }
    }
  }

  /** Resolves once no refill is running (tests, benchmarks). */
  async settled(): Promise<void> {
    while (this.soon || this.refilling) await (this.soon ?? this.refilling);
  }

  stats(): PoolStats {
    return {
      bridge: this.bridge,
      size: this.size,
      lowWater: this.lowWater,
      available: this.free.length,
      creating: this.creating,
      ...this.counters,
    };
  }

  /** Stops refilling; the ports stay (a restarted daemon adopts them). */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Deletes every free pool port (shrinking to nothing, or a test's clean-up) and stops. */
  async drain(): Promise<void> {
    this.close();
    await this.settled();
    const names = this.scan().map((p) => p.name);
    this.free.length = 0;
    if (names.length)
      this.counters.deleted += (
        await this.vswitch.delPorts(names, { timeoutMs: this.opts.timeoutMs ?? 30_000 })
      ).length;
  }
}

/** The pools of a node agent, one per bridge, created from the configuration or on demand (netconf). */
export class PoolSet {
  private readonly pools = new Map<string, VhostUserPortPool>();

  constructor(
    private readonly vswitch: Vswitch,
    private readonly base: Omit<PortPoolOptions, 'bridge' | 'size' | 'lowWater'>,
  ) {}

  /** The pool of a bridge, if it has one. */
  get(bridge: string): VhostUserPortPool | undefined {
    return this.pools.get(bridge);
  }

  /**
   * The pool of `bridge`, created (and filled in the background) when it has none. An
   * existing pool keeps its size: the first configuration wins; the log says when another
   * asks for a different one.
   */
  ensure(bridge: string, size: number, lowWater?: number): VhostUserPortPool {
    const had = this.pools.get(bridge);
    if (had) {
      if (had.size !== size)
        this.base.log?.warn('vhost-user pool: a pool of another size was asked for; keeping the first', {
          bridge,
          size: had.size,
          asked: size,
        });
      return had;
    }
    const pool = new VhostUserPortPool(this.vswitch, { ...this.base, bridge, size, lowWater });
    this.pools.set(bridge, pool);
    pool.start().catch((err: unknown) => this.base.log?.error('vhost-user pool: start failed', { bridge, error: err }));
    return pool;
  }

  /** Reconciles every pool against OVSDB and the run dir (the daemon's reconciler runs it). */
  async reconcile(): Promise<void> {
    for (const p of this.pools.values()) await p.reconcile();
  }

  stats(): PoolStats[] {
    return [...this.pools.values()].map((p) => p.stats());
  }

  all(): VhostUserPortPool[] {
    return [...this.pools.values()];
  }

  close(): void {
    for (const p of this.pools.values()) p.close();
  }
}

/** The bridges kuryr.conf pools: `[vhostplug] pool_bridges`, else `[neutron_defaults] ovs_bridge`, else br-int. */
export function pooledBridges(poolBridges: string, defaultBridge: string | null | undefined): string[] {
  const list = poolBridges
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  return list.length ? list : [defaultBridge || 'br-int'];
}
