/**
 * Typed port operations on the Open_vSwitch database over one {@link OvsdbClient}:
 * every call is one transaction (merged with concurrent callers by the write queue),
 * decided from the monitor cache with no read round trip, and optionally acknowledged
 * by ovs-vswitchd (`next_cfg`/`cur_cfg`, then `ofport`/`error` of what we inserted).
 */
import type { OvsdbClient } from '../ovsdb/client';
import type { CachedRow } from '../ovsdb/cache';
import { CommitError, ConstraintViolationError, TimedOutError } from '../ovsdb/errors';
import { decodeOptional, decodeSet, decodeStringMap } from '../ovsdb/notation';
import { nextCfgFromResult, Transaction } from '../ovsdb/txn';
import { insertedInterfaceUuids } from '../ovsdb/client';
import { WriteQueue } from '../ovsdb/write-queue';
import { attachmentOf, sameAttachment, type Attachment } from './ownership';
import { delPortOps, ensureBridgeOps, insertPortOps, updateInterfaceOps, type PortSpec } from './ports';

export interface VswitchOptions {
  /** Convert an existing bridge's datapath_type instead of refusing (default false). */
  allowDatapathChange?: boolean;
  /** Reply timeout of each transaction, ms (default 30000). */
  requestTimeoutMs?: number;
}

export interface WriteAckOptions {
  /** Resolve only once ovs-vswitchd applied the change (default true). */
  waitForVswitchd?: boolean;
  /** Deadline for the acknowledgement, ms (default 120000, os-vif's ovs_vsctl_timeout). */
  timeoutMs?: number;
}

/** The result of one add-port. */
export interface AddPortResult {
  name: string;
  /** False when the port already existed for the same attachment (a repeated plug). */
  created: boolean;
}

/** Where the time of one write went: the OVSDB commit, then ovs-vswitchd applying it. */
export interface WriteTimings {
  commitMs: number;
  /** 0 without the vswitchd acknowledgement. */
  ackMs: number;
}

/** A port vhostplug owns, as the cache sees it. */
export interface OwnedPort {
  name: string;
  bridge: string | undefined;
  type: string;
  attachment: Attachment;
  external_ids: Record<string, string>;
  options: Record<string, string>;
  mtu_request: number | undefined;
  ofport: number | undefined;
  error: string | undefined;
}

/** A port of that name exists but belongs to someone else (another attachment, or not ours). */
export class PortConflictError extends Error {
  readonly code = 'EEXIST';
  constructor(
    readonly port: string,
    readonly owner: Attachment | undefined,
  ) {
    super(
      owner
        ? `port ${port} already exists for attachment ${owner.containerId}/${owner.ifname}`
        : `port ${port} already exists and is not owned by vhostplug`,
    );
    this.name = 'PortConflictError';
  }
}

function isRetryableRace(err: unknown): boolean {
  // A bridge created, deleted or converted by someone else between our cache read and the
  // commit: the bridge `wait` fails (timed out with timeout 0) or a unique index clashes.
  if (err instanceof CommitError) return err.cause instanceof ConstraintViolationError;
  return err instanceof TimedOutError || err instanceof ConstraintViolationError;
}

/** Port operations on the Open_vSwitch database. */
export class Vswitch {
  readonly queue: WriteQueue;

  /** attachment key → Interface name of owned ports; rebuilt lazily after Interface changes. */
  private ownerIndex: Map<string, string> | undefined;
  /** Port uuid → Bridge name (the reverse of Bridge.ports); rebuilt lazily after Bridge changes. */
  private bridgeIndex: Map<string, string> | undefined;

  constructor(
    readonly client: OvsdbClient,
    private readonly opts: VswitchOptions = {},
  ) {
    this.queue = new WriteQueue(client, { requestTimeoutMs: opts.requestTimeoutMs ?? 30_000 });
    client.cache.onChange((c) => {
      if (c.reset || c.tables.has('Interface')) this.ownerIndex = undefined;
      if (c.reset || c.tables.has('Bridge')) this.bridgeIndex = undefined;
    });
  }

  /**
   * The bridge of a port (by the cache's Bridge.ports), or undefined. OVSDB has no
   * Port→Bridge column, so the reverse of Bridge.ports is indexed once per Bridge change
   * instead of scanning every bridge's ports per call (ownedPorts() was O(ports²)).
   */
  bridgeOfPort(port: CachedRow): string | undefined {
    if (!this.bridgeIndex) {
      const idx = new Map<string, string>();
      for (const br of this.client.cache.rows('Bridge')) {
        const name = String(br['name']);
        for (const u of decodeSet(br['ports'])) if (Array.isArray(u) && u[0] === 'uuid' && !idx.has(u[1])) idx.set(u[1], name);
      }
      this.bridgeIndex = idx;
    }
    return this.bridgeIndex.get(port._uuid[1]);
  }

  /**
   * Builds the add-port transaction for `specs` against the current cache. Existing ports
   * of the same attachment are updated in place (idempotent); others conflict.
   */
  private buildAdd(specs: readonly PortSpec[], owners: readonly (Attachment | undefined)[]): { txn: Transaction; results: AddPortResult[] } {
    const txn = new Transaction();
    const results: AddPortResult[] = [];
    const cache = this.client.cache;
    const ensured = new Set<string>();
    specs.forEach((spec, i) => {
      const existing = cache.port(spec.name);
      if (existing) {
        const iface = cache.iface(spec.name);
        const owner = attachmentOf(iface ? decodeStringMap(iface['external_ids']) : {});
        const want = owners[i];
        if (!owner || !want || !sameAttachment(owner, want)) throw new PortConflictError(spec.name, owner);
        updateInterfaceOps(txn, spec);
        results.push({ name: spec.name, created: false });
        return;
      }
      // A bridge ensured (or created) by an earlier spec of this transaction needs nothing more.
      if (!ensured.has(spec.bridge)) {
        ensureBridgeOps(txn, spec.bridge, cache.bridge(spec.bridge), spec.datapath_type, {
          allowDatapathChange: this.opts.allowDatapathChange,
        });
        ensured.add(spec.bridge);
      }
      insertPortOps(txn, spec);
      results.push({ name: spec.name, created: true });
    });
    return { txn, results };
  }

  /**
   * Commits `txn` through the write queue; with the acknowledgement, bumps next_cfg in the
   * same transaction and waits for ovs-vswitchd (and the ofport/error of inserted
   * Interfaces). Timed per phase for metrics.
   */
  private async write(txn: Transaction, opts: WriteAckOptions): Promise<WriteTimings> {
    const wait = opts.waitForVswitchd ?? true;
    const n = txn.ops.length;
    if (wait) txn.bumpNextCfg();
    const t0 = performance.now();
    const results = await this.queue.submit(txn);
    const t1 = performance.now();
    if (wait) {
      await this.client.ackVswitchd(nextCfgFromResult(results[n + 1]), insertedInterfaceUuids(txn.ops, results), opts.timeoutMs ?? 120_000);
    }
    return { commitMs: t1 - t0, ackMs: wait ? performance.now() - t1 : 0 };
  }

  /**
   * Adds ports in ONE transaction (the batching API: one vswitchd reconfigure for all).
   * `owners[i]` is the attachment of `specs[i]`, used to accept a repeated plug.
   * Retries once when another client raced us on the bridge.
   */
  async addPorts(
    specs: readonly PortSpec[],
    owners: readonly (Attachment | undefined)[] = [],
    opts: WriteAckOptions = {},
  ): Promise<{ ports: AddPortResult[]; timings: WriteTimings }> {
    for (let attempt = 0; ; attempt++) {
      const { txn, results } = this.buildAdd(specs, owners);
      try {
        const timings = await this.write(txn, opts);
        return { ports: results, timings };
      } catch (err) {
        if (attempt === 0 && isRetryableRace(err)) continue;
        throw err;
      }
    }
  }

  /** Adds one port; see {@link addPorts}. */
  async addPort(spec: PortSpec, owner?: Attachment, opts: WriteAckOptions = {}): Promise<AddPortResult & { timings: WriteTimings }> {
    const { ports, timings } = await this.addPorts([spec], [owner], opts);
    return { ...ports[0]!, timings };
  }

  /**
   * Deletes ports by name in one transaction; names not present are skipped (idempotent).
   * Returns the names actually deleted.
   */
  async delPorts(names: readonly string[], opts: WriteAckOptions = {}): Promise<string[]> {
    const txn = new Transaction();
    const deleted: string[] = [];
    for (const name of names) {
      const port = this.client.cache.port(name);
      if (!port) continue;
      delPortOps(txn, port);
      deleted.push(name);
    }
    if (deleted.length > 0) await this.write(txn, opts);
    return deleted;
  }

  /** Deletes one port if it exists; resolves true when it was deleted. */
  async delPort(name: string, opts: WriteAckOptions = {}): Promise<boolean> {
    return (await this.delPorts([name], opts)).length === 1;
  }

  /**
   * The Interface type and owner of the port of that name, or undefined when there is no
   * such port: what plug/unplug decide on, without portInfo()'s decoding and bridge lookup.
   */
  portOwner(name: string): { type: string; attachment: Attachment | undefined } | undefined {
    const cache = this.client.cache;
    if (!cache.port(name)) return undefined;
    const iface = cache.iface(name);
    return {
      type: iface && typeof iface['type'] === 'string' ? iface['type'] : '',
      attachment: attachmentOf(iface ? decodeStringMap(iface['external_ids']) : {}),
    };
  }

  /** The port of that name as the cache sees it, with its owner, or undefined. */
  portInfo(name: string): (Omit<OwnedPort, 'attachment'> & { attachment: Attachment | undefined }) | undefined {
    const cache = this.client.cache;
    const port = cache.port(name);
    if (!port) return undefined;
    const iface = cache.iface(name);
    const ids = iface ? decodeStringMap(iface['external_ids']) : {};
    const ofport = iface ? decodeOptional(iface['ofport']) : undefined;
    const error = iface ? decodeOptional(iface['error']) : undefined;
    const mtu = iface ? decodeOptional(iface['mtu_request']) : undefined;
    return {
      name,
      bridge: this.bridgeOfPort(port),
      type: iface && typeof iface['type'] === 'string' ? iface['type'] : '',
      attachment: attachmentOf(ids),
      external_ids: ids,
      options: iface ? decodeStringMap(iface['options']) : {},
      mtu_request: typeof mtu === 'number' ? mtu : undefined,
      ofport: typeof ofport === 'number' ? ofport : undefined,
      error: typeof error === 'string' && error !== '' ? error : undefined,
    };
  }

  /** Every port whose Interface carries vhostplug's ownership keys. */
  ownedPorts(): OwnedPort[] {
    const out: OwnedPort[] = [];
    for (const iface of this.client.cache.rows('Interface')) {
      const ids = decodeStringMap(iface['external_ids']);
      if (!attachmentOf(ids)) continue;
      const info = this.portInfo(String(iface['name']));
      if (info?.attachment) out.push(info as OwnedPort);
    }
    return out;
  }

  /** The owned port of an attachment, or undefined (an index, not a scan, between changes). */
  findByAttachment(containerId: string, ifname: string): OwnedPort | undefined {
    if (!this.ownerIndex) {
      const idx = new Map<string, string>();
      for (const iface of this.client.cache.rows('Interface')) {
        const a = attachmentOf(decodeStringMap(iface['external_ids']));
        if (a) idx.set(`${a.containerId}/${a.ifname}`, String(iface['name']));
      }
      this.ownerIndex = idx;
    }
    const name = this.ownerIndex.get(`${containerId}/${ifname}`);
    const info = name === undefined ? undefined : this.portInfo(name);
    return info?.attachment ? (info as OwnedPort) : undefined;
  }
}
