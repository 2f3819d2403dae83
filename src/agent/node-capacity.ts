/**
 * The node's vhost-user capacity as a Kubernetes extended resource, so the scheduler never
 * puts pod 1025 on a full ovs-vswitchd (DPDK's RTE_MAX_VHOST_DEVICE; src/binding/capacity.ts).
 *
 * The daemon (when it has Kubernetes access) keeps its Node's `status.capacity` and
 * `status.allocatable` at
 *
 *     vhostplug.io/vhostuser = limit - (vhost-user ports on the switch not made by vhostplug)
 *
 * Ports vhostplug makes are accounted by the scheduler itself (each pod requests
 * `vhostplug.io/vhostuser: 1` per interface); ports made by others (ovs-vsctl, another
 * agent) only show up here. This is how extended resources without a device plugin are
 * advertised (a merge patch of the Node's status subresource, as ovs-cni's marker does).
 *
 * Kept current: re-patched (debounced) when the OVSDB cache's Interface table changes the
 * value, and re-checked every `resyncMs` against the Node (kubelet zeroes extended
 * resources when it re-registers a node); failures are retried with backoff.
 */
import type * as k8s from '@kubernetes/client-node';
import { silentLogger, type Logger } from '../core/log';
import type { PortBudget } from '../binding/capacity';
import type { OvsdbCache } from '../ovsdb/cache';

/** The extended resource name. */
export const VHOSTUSER_RESOURCE = 'vhostplug.io/vhostuser';

/** What the advertiser needs of the Kubernetes API (a stand-in in tests). */
export interface NodeStatusClient {
  /** The Node's `status.capacity[resource]` (undefined when absent). Throws on API errors. */
  getCapacity(node: string, resource: string): Promise<string | undefined>;
  /** A merge patch (RFC 7386) of the Node's status subresource. Throws on API errors. */
  patchStatus(node: string, patch: Record<string, unknown>): Promise<void>;
}

/** The status merge patch that sets the resource to `value` in capacity and allocatable. */
export function capacityPatch(value: number, resource = VHOSTUSER_RESOURCE): Record<string, unknown> {
  const q = String(Math.max(0, Math.floor(value)));
  return { status: { capacity: { [resource]: q }, allocatable: { [resource]: q } } };
}

export interface NodeCapacityOptions {
  nodeName: string;
  client: NodeStatusClient;
  budget: PortBudget;
  cache: Pick<OvsdbCache, 'onChange'>;
  log?: Logger;
  /** Re-check against the Node this often (default 60 s). */
  resyncMs?: number;
  /** Coalesce bursts of port changes (default 250 ms). */
  debounceMs?: number;
  /** First retry after a failed call (default 1 s, doubling to 60 s). */
  retryMs?: number;
}

/** What the advertiser last did (health, metrics, tests). */
export interface NodeCapacityStatus {
  /** The value it would advertise now. */
  value: number;
  /** The value the Node was last patched to (or found at). */
  advertised: number | undefined;
  patches: number;
  lastError: string | undefined;
}

export class NodeCapacityAdvertiser {
  private readonly log: Logger;
  private advertised: number | undefined;
  private patches = 0;
  private lastError: string | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private resync: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private retryMs: number;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly opts: NodeCapacityOptions) {
    this.log = opts.log ?? silentLogger;
    this.retryMs = opts.retryMs ?? 1000;
  }

  /** limit - foreign vhost-user ports, never below 0. */
  value(): number {
    return Math.max(0, this.opts.budget.limit.limit - this.opts.budget.count().foreign);
  }

  status(): NodeCapacityStatus {
    return { value: this.value(), advertised: this.advertised, patches: this.patches, lastError: this.lastError };
  }

  /** Checks the Node now and patches it when it differs; then follows the switch. Resolves after the first sync (failures are retried in the background). */
  async start(): Promise<void> {
    this.unsubscribe = this.opts.cache.onChange((c) => {
      if (c.reset || c.tables.has('Interface')) this.schedule();
    });
    const every = this.opts.resyncMs ?? 60_000;
    if (every > 0) {
      this.resync = setInterval(() => void this.sync(true), every);
      this.resync.unref();
    }
    await this.sync(true);
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    for (const t of [this.debounce, this.retry]) clearTimeout(t);
    clearInterval(this.resync);
    return this.running?.catch(() => undefined) ?? Promise.resolve();
  }

  private schedule(): void {
    if (this.stopped || this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      // Only a change of the advertised value is worth a call.
      if (this.value() !== this.advertised) void this.sync(false);
    }, this.opts.debounceMs ?? 250);
    this.debounce.unref();
  }

  /** One sync at a time; a request during one runs once more after it. */
  private sync(check: boolean): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.once(check).finally(() => {
      this.running = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.sync(false);
      }
    });
    return this.running;
  }

  private async once(check: boolean): Promise<void> {
    const { client, nodeName } = this.opts;
    const value = this.value();
    try {
      if (check) {
        const cur = await client.getCapacity(nodeName, VHOSTUSER_RESOURCE);
        if (cur === String(value)) {
          this.advertised = value;
          this.ok();
          return;
        }
      }
      await client.patchStatus(nodeName, capacityPatch(value));
      this.advertised = value;
      this.patches++;
      this.ok();
      this.log.info('capacity: node resource advertised', {
        node: nodeName,
        resource: VHOSTUSER_RESOURCE,
        value,
        limit: this.opts.budget.limit.limit,
        source: this.opts.budget.limit.source,
      });
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log.warn('capacity: cannot update the node resource; retrying', {
        node: nodeName,
        error: err,
        retryInMs: this.retryMs,
      });
      clearTimeout(this.retry);
      this.retry = setTimeout(() => void this.sync(true), this.retryMs);
      this.retry.unref();
      this.retryMs = Math.min(this.retryMs * 2, 60_000);
    }
  }

  private ok(): void {
    this.lastError = undefined;
    this.retryMs = this.opts.retryMs ?? 1000;
  }
}

/**
 * The real client over @kubernetes/client-node (loaded lazily by the caller: `mod`), with
 * the node's KubeConfig. RBAC: `get` and `patch` on nodes/status.
 */
export function kubeNodeStatusClient(mod: typeof k8s, kc: k8s.KubeConfig): NodeStatusClient {
  const core = kc.makeApiClient(mod.CoreV1Api);
  const mergePatch = mod.setHeaderOptions('Content-Type', mod.PatchStrategy.MergePatch);
  return {
    async getCapacity(node, resource) {
      const n = await core.readNodeStatus({ name: node });
      const v = n.status?.capacity?.[resource];
      return v === undefined ? undefined : String(v);
    },
    async patchStatus(node, patch) {
      await core.patchNodeStatus({ name: node, body: patch }, mergePatch);
    },
  };
}
