/**
 * The daemon's reconciler: at start-up and periodically it removes what no live attachment
 * holds. Multus delivers CNI GC only to the cluster network, so NAD plugins need this.
 *
 * Liveness rule (docs/daemon.md):
 * - An attachment is LIVE when its state record says "added" and the network namespace
 *   the runtime gave at ADD (CNI_NETNS) still exists, for veth and vhost-user alike: the
 *   runtime creates the sandbox netns before the first ADD and removes it only after the
 *   last DEL (StopPodSandbox), so a vanished netns means the pod is gone and its DEL was
 *   lost. A vhost-user pod never moves an interface into that netns, but it is still the
 *   sandbox's: the socket's liveness (the app may not have connected yet) is not used.
 *   A record without a netns (never written by ADD, which requires one) counts as live, and
 *   so does one whose netns directory is not visible at all (a missing mount proves nothing).
 * - A record saying "adding" is a half-done ADD. At start-up none can be in flight (this
 *   process did not run it), so all are rolled back at once; during periodic passes only
 *   those older than the grace period whose attachment lock is free.
 * - An OVS port with our ownership external_ids, a name derived from its (container id,
 *   ifname) (so made by this CNI plugin, not `vhostplug plug`) and no record is an orphan
 *   (ADD writes the record before the port exists): removed with its socket and config file.
 * - What the drivers left in their directories (`BindingDriver.sweep`; the vhost-user
 *   driver: sockets and config files of ports no owned port holds, stray temp files in
 *   `[vhostuser] mount_point`, flat indexes `interfaces-<uid>.json` of pods with no owned
 *   port, pod directories `<pod-uid>/` no owned port or connect in flight holds (emptied
 *   and removed), and the same strays inside held pod directories), older than the grace
 *   period. Never followed.
 * - IP reservations are released through IPAM DEL with the record's network configuration
 *   and CNI environment: every reservation has a record (written before IPAM ADD, removed
 *   after IPAM DEL).
 *
 * Every removal runs under the attachment's lock and re-reads the record first, so a pass
 * never races an ADD or DEL of the same attachment.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isPoolPort } from '../binding/pool';
import { hasCode } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import { existsNoFollow } from '../os/lstat';
import type { Vswitch } from '../vswitch/vswitch';
import { isDerivedPort, planForOrphanPort, type VhostplugCniPlugin } from './cni-plugin';
import { attachmentKey } from '../agent/locks';
import type { AttachmentRecord, StateStore } from './state';

export interface ReconcilerOptions {
  plugin: VhostplugCniPlugin;
  state: StateStore;
  vswitch: Vswitch;
  log?: Logger;
  /** ADDs in flight younger than this are never touched (default 60 s). */
  graceMs?: number;
  /** Period of the background passes (default 60 s; 0 disables them). */
  intervalMs?: number;
  /** The warm port pools, reconciled at each pass (broken pool ports replaced, levels restored). */
  pools?: { reconcile(): Promise<void> };
}

/** What one pass did. */
export interface ReconcileReport {
  startup: boolean;
  /** Half-done ADDs rolled back. */
  rolledBack: string[];
  /** Added attachments whose netns is gone, torn down. */
  dead: string[];
  /** Owned ports without a record, removed. */
  orphanPorts: string[];
  /** Stray sockets, config files and temp files removed. */
  strayFiles: string[];
  /** Corrupt state files (left in place for an operator; reported every pass). */
  badStateFiles: string[];
  errors: string[];
  ms: number;
}

/** What one pass knows: whether it is the start-up one, the age test and its report. */
interface Pass {
  startup: boolean;
  old(t: string | number): boolean;
  r: ReconcileReport;
}

/** True when the record's attachment is live (see the file comment). */
export function isLive(rec: AttachmentRecord): boolean {
  if (rec.phase !== 'added') return false;
  if (!rec.netns) return true;
  if (existsNoFollow(rec.netns)) return true;
  // A directory we cannot see at all (e.g. /var/run/netns not mounted into the daemon's
  // container) proves nothing: only a missing entry in a visible directory means "gone".
  return !existsNoFollow(path.dirname(rec.netns));
}

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReconcileReport> | undefined;
  private readonly log: Logger;
  private readonly graceMs: number;
  /** Called after every pass (metrics, tests). */
  onReport: ((r: ReconcileReport) => void) | undefined;

  constructor(private readonly opts: ReconcilerOptions) {
    this.log = opts.log ?? silentLogger;
    this.graceMs = opts.graceMs ?? 60_000;
  }

  /** Starts the periodic passes (after {@link runOnce} at start-up). */
  start(): void {
    const every = this.opts.intervalMs ?? 60_000;
    if (every <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      void this.runOnce(false).catch((e) => this.log.error('reconciler: pass failed', { error: e }));
    }, every);
    this.timer.unref();
  }

  /** Stops the periodic passes and waits for a running one. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One pass; concurrent calls share the running pass. */
  runOnce(startup: boolean): Promise<ReconcileReport> {
    this.running ??= this.pass(startup).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(startup: boolean): Promise<ReconcileReport> {
    const t0 = performance.now();
    const { plugin, state, vswitch } = this.opts;
    const r: ReconcileReport = {
      startup,
      rolledBack: [],
      dead: [],
      orphanPorts: [],
      strayFiles: [],
      badStateFiles: [],
      errors: [],
      ms: 0,
    };
    const now = Date.now();
    const old = (iso: string | number): boolean =>
      now - (typeof iso === 'number' ? iso : Date.parse(iso)) > this.graceMs;
    // Without a synced cache every port would look absent (and every socket stray): skip.
    const client = vswitch.client;
    if (client.state !== 'ready' || !client.cache.isSynced) {
      r.errors.push(`OVSDB not ready (${client.state}); pass skipped`);
      r.ms = performance.now() - t0;
      this.log.warn('reconciler: pass skipped, OVSDB not ready', { state: client.state });
      this.onReport?.(r);
      return r;
    }

    const { records, bad, temps } = await state.list();
    for (const b of bad) r.badStateFiles.push(`${b.file}: ${b.reason}`);
    for (const t of temps) {
      try {
        if (startup || old(fs.lstatSync(t).mtimeMs)) {
          fs.unlinkSync(t);
          r.strayFiles.push(t);
        }
      } catch (e) {
        if (!hasCode(e, 'ENOENT')) r.errors.push(`${t}: ${(e as Error).message}`);
      }
    }

    // Attachments with a record. Derived from the listing above, not a second one: a record
    // written since (an ADD) is caught by the re-read under the lock in step 2.
    const held = new Set(records.map((rec) => attachmentKey(rec.containerId, rec.ifname)));
    const pass: Pass = { startup, old, r };
    await this.reconcileRecords(records, held, pass); // 1. half-done ADDs and dead attachments
    await this.removeOrphanPorts(held, pass); // 2. owned ports that no record holds
    // 3. The warm pools: ports without their socket replaced, levels restored.
    if (this.opts.pools) {
      try {
        await this.opts.pools.reconcile();
      } catch (e) {
        r.errors.push(`pools: ${(e as Error).message}`);
      }
    }
    // 4. Stray files the drivers left in their directories (only against a synced cache, see above).
    if (client.state === 'ready' && client.cache.isSynced) {
      for (const d of plugin.drivers.all()) {
        const swept = d.sweep?.({ startup, isOld: old });
        if (swept) {
          r.strayFiles.push(...swept.removed);
          r.errors.push(...swept.errors);
        }
      }
    } else r.errors.push('OVSDB connection lost during the pass; mount dir sweep skipped');

    r.ms = performance.now() - t0;
    const changed = r.rolledBack.length + r.dead.length + r.orphanPorts.length + r.strayFiles.length;
    if (changed > 0 || r.errors.length > 0 || r.badStateFiles.length > 0) {
      this.log[r.errors.length ? 'warn' : 'info']('reconciler: pass done', { ...r });
    }
    this.onReport?.(r);
    return r;
  }

  /** Rolls back half-done ADDs and tears down added attachments whose netns is gone. */
  private async reconcileRecords(
    records: readonly AttachmentRecord[],
    held: Set<string>,
    { startup, old, r }: Pass,
  ): Promise<void> {
    const { plugin, state } = this.opts;
    for (const rec of records) {
      const key = attachmentKey(rec.containerId, rec.ifname);
      const halfDone = rec.phase === 'adding';
      if (halfDone && !startup && !old(rec.updatedAt)) continue;
      if (!halfDone && isLive(rec)) continue;
      if (!startup && plugin.locks.isHeld(key)) continue; // an ADD/DEL/CHECK is running on it
      try {
        // Shared gate: a CNI GC (exclusive) never overlaps a removal of ours.
        const done = await plugin.gate.runShared(() =>
          plugin.locks.run(key, async () => {
            const cur = await state.read(rec.containerId, rec.ifname);
            if (!cur) return false;
            if (cur.phase === 'added' && isLive(cur)) return false;
            if (cur.phase === 'adding' && !startup && !old(cur.updatedAt)) return false;
            await plugin.teardown(plugin.planFromRecord(cur), 'RECONCILE');
            await state.remove(cur.containerId, cur.ifname);
            return true;
          }),
        );
        if (done) {
          (halfDone ? r.rolledBack : r.dead).push(key);
          held.delete(key);
        }
      } catch (e) {
        r.errors.push(`${key}: ${(e as Error).message}`);
      }
    }
  }

  /** Removes owned ports with a derived name (the CNI plugin's) that no record holds. */
  private async removeOrphanPorts(held: ReadonlySet<string>, { startup, r }: Pass): Promise<void> {
    const { plugin, state, vswitch } = this.opts;
    for (const p of vswitch.ownedPorts()) {
      const { containerId, ifname } = p.attachment;
      const key = attachmentKey(containerId, ifname);
      // Our ports: the name derived from the attachment, or a port the attachment took from a pool.
      if (held.has(key) || !(isDerivedPort(p.name, containerId, ifname) || isPoolPort(p.name, p.external_ids)))
        continue;
      if (!startup && plugin.locks.isHeld(key)) continue;
      try {
        const done = await plugin.gate.runShared(() =>
          plugin.locks.run(key, async () => {
            if (await state.read(containerId, ifname)) return false;
            await plugin.teardown(planForOrphanPort(p.name, p.type, containerId, ifname), 'RECONCILE');
            return true;
          }),
        );
        if (done) r.orphanPorts.push(p.name);
      } catch (e) {
        r.errors.push(`${p.name}: ${(e as Error).message}`);
      }
    }
  }
}
