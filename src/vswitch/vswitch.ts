/**
 * Typed port operations on the Open_vSwitch database over one {@link OvsdbClient}:
 * every call is one transaction (merged with concurrent callers by the write queue),
 * decided from the monitor cache with no read round trip, and acknowledged by
 * ovs-vswitchd (`next_cfg`/`cur_cfg`, then `ofport`/`error` of what we inserted) unless
 * the caller says `waitForVswitchd: false` (src/vswitch/ack.ts).
 *
 * ```ts
 * const vs = await Vswitch.connect('unix:/var/run/openvswitch/db.sock');
 * await vs.addPort({ bridge: 'br-int', name: 'vhu1', type: 'dpdkvhostuserclient', external_ids: {} });
 * vs.rows.iface('vhu1')?.ofport;   // typed rows, from the monitor cache
 * ```
 */
import { VhostplugError } from '../core/errors';
import { OvsdbClient, type ClientOptions } from '../ovsdb/client';
import { CommitError, ConstraintViolationError, TimedOutError } from '../ovsdb/errors';
import type { OpResult, Operation } from '../ovsdb/txn';
import { Transaction } from '../ovsdb/txn';
import { WriteQueue } from '../ovsdb/write-queue';
import { VswitchdAck } from './ack';
import { attachmentOf, sameAttachment, type Attachment } from './ownership';
import { delPortOps, ensureBridgeOps, insertPortOps, updateInterfaceOps, type PortSpec } from './ports';
import { VSWITCH_CACHE, VswitchRows, type InterfaceRow } from './rows';

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
export class PortConflictError extends VhostplugError {
  constructor(
    readonly port: string,
    readonly owner: Attachment | undefined,
  ) {
    super(
      'EEXIST',
      owner
        ? `port ${port} already exists for attachment ${owner.containerId}/${owner.ifname}`
        : `port ${port} already exists and is not owned by vhostplug`,
    );
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
  /** Typed reads of the monitor cache. */
  readonly rows: VswitchRows;
  /** The ovs-vswitchd acknowledgement over this client's cache. */
  readonly ack: VswitchdAck;

  /** attachment key → Interface name of owned ports; rebuilt lazily after Interface changes. */
  private ownerIndex: Map<string, string> | undefined;
  /** Port uuid → Bridge name (the reverse of Bridge.ports); rebuilt lazily after Bridge changes. */
  private bridgeIndex: Map<string, string> | undefined;

  /** Connects an {@link OvsdbClient} with the cache vhostplug needs ({@link VSWITCH_CACHE}); `client.close()` closes it. */
  static async connect(endpoint: string, opts: Omit<ClientOptions, 'cache'> & VswitchOptions = {}): Promise<Vswitch> {
    const { allowDatapathChange, requestTimeoutMs, ...clientOpts } = opts;
    const client = await OvsdbClient.connect(endpoint, { ...clientOpts, requestTimeoutMs, cache: VSWITCH_CACHE });
    return new Vswitch(client, { allowDatapathChange, requestTimeoutMs });
  }

  /** Throws TypeError unless `client`'s cache covers {@link VSWITCH_CACHE}. */
  constructor(
    readonly client: OvsdbClient,
    private readonly opts: VswitchOptions = {},
  ) {
    this.rows = new VswitchRows(client.cache);
    this.ack = new VswitchdAck(client.cache);
    this.queue = new WriteQueue(client, {
      db: 'Open_vSwitch',
      ack: this.ack,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
    });
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
  bridgeOfPort(portUuid: string): string | undefined {
    if (!this.bridgeIndex) {
      const idx = new Map<string, string>();
      for (const br of this.rows.bridges()) for (const u of br.ports) if (!idx.has(u)) idx.set(u, br.name);
      this.bridgeIndex = idx;
    }
    return this.bridgeIndex.get(portUuid);
  }

  /**
   * Builds the add-port transaction for `specs` against the current cache. Existing ports
   * of the same attachment are updated in place (idempotent); others conflict.
   */
  private buildAdd(
    specs: readonly PortSpec[],
    owners: readonly (Attachment | undefined)[],
  ): { txn: Transaction; results: AddPortResult[] } {
    const txn = new Transaction();
    const results: AddPortResult[] = [];
    const ensured = new Set<string>();
    specs.forEach((spec, i) => {
      const existing = this.rows.port(spec.name);
      if (existing) {
        const owner = attachmentOf(this.rows.iface(spec.name)?.external_ids ?? {});
        const want = owners[i];
        if (!owner || !want || !sameAttachment(owner, want)) throw new PortConflictError(spec.name, owner);
        updateInterfaceOps(txn, spec);
        results.push({ name: spec.name, created: false });
        return;
      }
      // A bridge ensured (or created) by an earlier spec of this transaction needs nothing more.
      if (!ensured.has(spec.bridge)) {
        ensureBridgeOps(txn, spec.bridge, this.rows.bridge(spec.bridge), spec.datapath_type, {
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
   * Commits operations through the write queue, merged with concurrent writers; with the
   * acknowledgement (the default), next_cfg is bumped in the same transaction and the
   * write resolves once ovs-vswitchd applied it, or rejects with VswitchdError naming the
   * Interfaces it inserted that got `ofport` -1 or an `error`. Timed per phase.
   */
  async transact(
    ops: readonly Operation[] | Transaction,
    opts: WriteAckOptions = {},
  ): Promise<{ results: OpResult[]; timings: WriteTimings }> {
    const wait = opts.waitForVswitchd ?? true;
    const t0 = performance.now();
    let t1 = 0;
    const results = await this.queue.submit(ops, {
      ack: wait,
      timeoutMs: opts.timeoutMs ?? 120_000,
      onCommitted: () => (t1 = performance.now()),
    });
    const t2 = performance.now();
    return { results, timings: { commitMs: (t1 || t2) - t0, ackMs: wait ? t2 - (t1 || t2) : 0 } };
  }

  private async write(txn: Transaction, opts: WriteAckOptions): Promise<WriteTimings> {
    return (await this.transact(txn, opts)).timings;
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
  async addPort(
    spec: PortSpec,
    owner?: Attachment,
    opts: WriteAckOptions = {},
  ): Promise<AddPortResult & { timings: WriteTimings }> {
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
      const port = this.rows.port(name);
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
    if (!this.rows.port(name)) return undefined;
    const iface = this.rows.iface(name);
    return { type: iface?.type ?? '', attachment: attachmentOf(iface?.external_ids ?? {}) };
  }

  /** The port of that name as the cache sees it, with its owner, or undefined. */
  portInfo(name: string): (Omit<OwnedPort, 'attachment'> & { attachment: Attachment | undefined }) | undefined {
    const port = this.rows.port(name);
    if (!port) return undefined;
    return ownedPortOf(name, this.bridgeOfPort(port.uuid), this.rows.iface(name));
  }

  /** Every port whose Interface carries vhostplug's ownership keys. */
  ownedPorts(): OwnedPort[] {
    const out: OwnedPort[] = [];
    for (const iface of this.rows.interfaces()) {
      if (!attachmentOf(iface.external_ids)) continue;
      const info = this.portInfo(iface.name);
      if (info?.attachment) out.push(info as OwnedPort);
    }
    return out;
  }

  /** The owned port of an attachment, or undefined (an index, not a scan, between changes). */
  findByAttachment(containerId: string, ifname: string): OwnedPort | undefined {
    if (!this.ownerIndex) {
      const idx = new Map<string, string>();
      for (const iface of this.rows.interfaces()) {
        const a = attachmentOf(iface.external_ids);
        if (a) idx.set(`${a.containerId}/${a.ifname}`, iface.name);
      }
      this.ownerIndex = idx;
    }
    const name = this.ownerIndex.get(`${containerId}/${ifname}`);
    const info = name === undefined ? undefined : this.portInfo(name);
    return info?.attachment ? (info as OwnedPort) : undefined;
  }
}

/** A port's owner view from its Interface row. */
function ownedPortOf(
  name: string,
  bridge: string | undefined,
  iface: InterfaceRow | undefined,
): Omit<OwnedPort, 'attachment'> & { attachment: Attachment | undefined } {
  const ids = iface?.external_ids ?? {};
  return {
    name,
    bridge,
    type: iface?.type ?? '',
    attachment: attachmentOf(ids),
    external_ids: ids,
    options: iface?.options ?? {},
    mtu_request: iface?.mtu_request,
    ofport: iface?.ofport,
    error: iface?.error,
  };
}
