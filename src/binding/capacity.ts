/**
 * How many vhost-user ports one ovs-vswitchd can take, how many it has, and the local
 * refusal of a plug past the limit.
 *
 * DPDK's vhost library keeps a fixed table of `RTE_MAX_VHOST_DEVICE` devices (1024 in
 * every DPDK release so far, a build-time constant). Past it, ovs-vswitchd cannot create
 * the port: it retries and floods its log while the pod waits. So a plug that would exceed
 * the limit is refused here, before any OVSDB change, with an error that says so; and the
 * daemon advertises what is left to the scheduler (src/agent/node-capacity.ts).
 *
 * Every vhost-user Interface of the switch counts (`dpdkvhostuser` and
 * `dpdkvhostuserclient`, vhostplug's or not), plus plugs in flight that are not yet in the
 * OVSDB cache (a {@link PortBudget} reservation lasts until the cache holds the port).
 */
import * as fs from 'node:fs';
import { errnoOf, SystemError } from '../core/errors';
import { attachmentOf, OWNER_KEYS, OWNER_VALUE } from '../vswitch/ownership';
import type { InterfaceRow, VswitchRows } from '../vswitch/rows';

/** DPDK's RTE_MAX_VHOST_DEVICE in every release to date. */
export const DEFAULT_VHOSTUSER_LIMIT = 1024;

/** Headers of the DPDK build (dpdk-dev) that define RTE_MAX_VHOST_DEVICE, newest layout first. */
export const DPDK_LIMIT_HEADERS = [
  '/usr/include/dpdk/rte_vhost.h',
  '/usr/local/include/dpdk/rte_vhost.h',
  '/usr/include/dpdk/rte_config.h',
  '/usr/local/include/rte_vhost.h',
];

/** The limit and where it came from. */
export interface VhostUserLimit {
  limit: number;
  /** `config` ([vhostplug] vhostuser_port_limit), `dpdk-header:<path>`, or `default`. */
  source: string;
}

/** RTE_MAX_VHOST_DEVICE as a header defines it, or undefined. */
export function parseMaxVhostDevice(headerText: string): number | undefined {
  const m = /^\s*#\s*define\s+RTE_MAX_VHOST_DEVICE\s+\(?\s*(\d+)\s*\)?\s*$/m.exec(headerText);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * The vhost-user port limit of this node's ovs-vswitchd: the configured one (> 0), else
 * RTE_MAX_VHOST_DEVICE from the DPDK headers when they are installed (the same DPDK as
 * ovs-vswitchd's on a Debian node with dpdk-dev), else {@link DEFAULT_VHOSTUSER_LIMIT}.
 */
export function vhostUserLimit(
  configured: number | undefined,
  headers: readonly string[] = DPDK_LIMIT_HEADERS,
): VhostUserLimit {
  if (configured !== undefined && configured > 0) return { limit: configured, source: 'config' };
  for (const h of headers) {
    let text: string;
    try {
      text = fs.readFileSync(h, 'utf8');
    } catch {
      continue;
    }
    const n = parseMaxVhostDevice(text);
    if (n !== undefined) return { limit: n, source: `dpdk-header:${h}` };
  }
  return { limit: DEFAULT_VHOSTUSER_LIMIT, source: 'default' };
}

/** vhost-user Interfaces of the switch. */
export interface VhostUserPortCount {
  total: number;
  /** Carrying vhostplug's ownership keys (the warm pool's free ports included: they are there for pods). */
  managed: number;
  /** total - managed: ports the scheduler does not account for. */
  foreign: number;
}

const isVhostUserType = (t: unknown): boolean => t === 'dpdkvhostuser' || t === 'dpdkvhostuserclient';

/** Counts the vhost-user Interfaces (typed rows of the monitor cache, one scan). */
export function countVhostUserPorts(ifaces: Iterable<Pick<InterfaceRow, 'type' | 'external_ids'>>): VhostUserPortCount {
  let total = 0;
  let managed = 0;
  for (const iface of ifaces) {
    if (!isVhostUserType(iface.type)) continue;
    total++;
    // vhostplug's: attached, or a warm-pool port waiting for a pod (src/binding/pool.ts). A pod
    // that takes a pool port needs no new one, so the pool does not lower what is advertised.
    if (attachmentOf(iface.external_ids) || iface.external_ids[OWNER_KEYS.owner] === OWNER_VALUE) managed++;
  }
  return { total, managed, foreign: total - managed };
}

/** A plug was refused: the switch is at its vhost-user port limit. Nothing was changed. */
export class VhostUserLimitError extends SystemError {
  constructor(
    readonly limit: number,
    readonly count: VhostUserPortCount,
    readonly pending: number,
    readonly source: string,
  ) {
    super(
      { code: 'ENOSPC', errno: errnoOf('ENOSPC'), syscall: 'plug' },
      `ENOSPC: ovs-vswitchd is at its vhost-user port limit: ${count.total} ports ` +
        `(${count.foreign} not vhostplug's)${pending ? ` + ${pending} being plugged` : ''} of ${limit} (${source}); ` +
        `DPDK cannot create more, so the port was not added. Free a port, or schedule the pod on another node (resource vhostplug.io/vhostuser)`,
    );
  }
}

/** A slot held by a plug in flight; release it once the port is in the cache (or the plug failed). */
export interface PortReservation {
  release(): void;
}

/**
 * The local guard: {@link reserve} succeeds while ports + reservations stay within the
 * limit. The count is cached and recomputed after the cache's next Interface change.
 */
export class PortBudget {
  private pending = 0;
  private counted: VhostUserPortCount | undefined;

  constructor(
    private readonly rows: VswitchRows,
    readonly limit: VhostUserLimit,
  ) {
    rows.cache.onChange((c) => {
      if (c.reset || c.tables.has('Interface')) this.counted = undefined;
    });
  }

  /** The switch's vhost-user ports now (cache only). */
  count(): VhostUserPortCount {
    this.counted ??= countVhostUserPorts(this.rows.interfaces());
    return this.counted;
  }

  /** Plugs in flight holding a slot. */
  get inFlight(): number {
    return this.pending;
  }

  /** Holds one slot, or throws {@link VhostUserLimitError} when none is left. */
  reserve(): PortReservation {
    const c = this.count();
    if (c.total + this.pending >= this.limit.limit)
      throw new VhostUserLimitError(this.limit.limit, c, this.pending, this.limit.source);
    this.pending++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.pending--;
      },
    };
  }
}
