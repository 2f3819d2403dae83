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
 * - In `[vhostuser] mount_point`: sockets named like our ports and config files naming one
 *   of our ports (`vhostname`), held by no record and no owned port and older than the
 *   grace period; stray temp files of atomic writes. Entries are unlinked, never followed.
 * - IP reservations are released through IPAM DEL with the record's network configuration
 *   and CNI environment: every reservation has a record (written before IPAM ADD, removed
 *   after IPAM DEL).
 *
 * Every removal runs under the attachment's lock and re-reads the record first, so a pass
 * never races an ADD or DEL of the same attachment.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { silentLogger, type Logger } from '../core/log';
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

const PORT_NAME = /^(vhu|tap)[0-9a-f]{8}-[0-9a-f]{2}$/;

function existsNoFollow(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
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
    const r: ReconcileReport = { startup, rolledBack: [], dead: [], orphanPorts: [], strayFiles: [], badStateFiles: [], errors: [], ms: 0 };
    const now = Date.now();
    const old = (iso: string | number): boolean => now - (typeof iso === 'number' ? iso : Date.parse(iso)) > this.graceMs;
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
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') r.errors.push(`${t}: ${(e as Error).message}`);
      }
    }

    // Attachments with a record. Derived from the listing above, not a second one: a record
    // written since (an ADD) is caught by the re-read under the lock in step 2.
    const held = new Set(records.map((rec) => attachmentKey(rec.containerId, rec.ifname)));

    // 1. Records: half-done ADDs and dead attachments.
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

    // 2. Owned ports that no record holds.
    for (const p of vswitch.ownedPorts()) {
      const { containerId, ifname } = p.attachment;
      const key = attachmentKey(containerId, ifname);
      if (held.has(key) || !isDerivedPort(p.name, containerId, ifname)) continue;
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

    // 3. Stray files in the mount dir (only against a synced cache, see above).
    if (client.state === 'ready' && client.cache.isSynced) this.sweepMountDir(startup, old, r);
    else r.errors.push('OVSDB connection lost during the pass; mount dir sweep skipped');

    r.ms = performance.now() - t0;
    const changed = r.rolledBack.length + r.dead.length + r.orphanPorts.length + r.strayFiles.length;
    if (changed > 0 || r.errors.length > 0 || r.badStateFiles.length > 0) {
      this.log[r.errors.length ? 'warn' : 'info']('reconciler: pass done', { ...r });
    }
    this.onReport?.(r);
    return r;
  }

  private sweepMountDir(startup: boolean, old: (t: number) => boolean, r: ReconcileReport): void {
    const { plugin, vswitch } = this.opts;
    const mount = plugin.vhostuser.mountPoint;
    let names: string[];
    try {
      names = fs.readdirSync(mount);
    } catch (e) {
      r.errors.push(`${mount}: ${(e as Error).message}`);
      return;
    }
    // What is held: every owned port's socket and config file (records all have a port
    // once added; "adding" ones are covered by their port or were just rolled back).
    const heldPorts = new Set<string>();
    const heldFiles = new Set<string>();
    for (const p of vswitch.ownedPorts()) {
      heldPorts.add(p.name);
      heldFiles.add(path.basename(plugin.vhostuser.configPathOf(p.attachment.containerId, p.attachment.ifname)));
    }
    for (const name of names) {
      const file = path.join(mount, name);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(file);
      } catch {
        continue;
      }
      if (!startup && !old(st.mtimeMs)) continue;
      let stray = false;
      if (name.startsWith('.') && name.includes('.tmp-') && st.isFile()) stray = true;
      else if (PORT_NAME.test(name) && st.isSocket()) stray = !heldPorts.has(name);
      else if (st.isFile() && !heldFiles.has(name) && st.size < 64 * 1024) {
        // Pod-writable: only this entry itself can be removed on the strength of its content.
        try {
          const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { vhostname?: unknown; version?: unknown };
          stray = typeof doc.vhostname === 'string' && PORT_NAME.test(doc.vhostname) && doc.version !== undefined && !heldPorts.has(doc.vhostname);
        } catch {
          stray = false;
        }
      }
      if (!stray) continue;
      try {
        fs.unlinkSync(file);
        r.strayFiles.push(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') r.errors.push(`${file}: ${(e as Error).message}`);
      }
    }
  }
}
