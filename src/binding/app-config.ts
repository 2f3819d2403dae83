/**
 * The per-interface config file the DPDK app reads: `<mount_point>/<container-id>-<ifname>`.
 *
 * The first three keys are exactly Kuryr's (`vhostname`, `vhostmac`, `mode`, in that order,
 * Python `json.dumps` separators, no trailing newline), so apps written for Kuryr keep
 * working. vhostplug appends documented keys after them (docs/app-config.md):
 * - `socket_path`: the absolute path of the socket on the host side of the mount;
 * - `mtu`: the MTU OVS was asked for (Interface.mtu_request);
 * - `generation`: bumped each time the socket is re-created (client mode, after an
 *   ovs-vswitchd restart): an app that sees it change reconnects;
 * - `version`: the layout version of this file (1).
 */
import type { VHostUserMode } from '../core/validate';

export const APP_CONFIG_VERSION = 1;

export interface AppConfig {
  vhostname: string;
  vhostmac: string;
  mode: VHostUserMode;
  socket_path: string;
  mtu: number;
  generation: number;
}

/** Python's json.dumps(obj) for a flat object of strings and numbers (", " and ": "). */
function pythonJsonDumps(entries: [string, string | number][]): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')}}`;
}

/** The file's text, Kuryr's keys first. */
export function formatAppConfig(c: AppConfig): string {
  return pythonJsonDumps([
    ['vhostname', c.vhostname],
    ['vhostmac', c.vhostmac],
    ['mode', c.mode],
    ['socket_path', c.socket_path],
    ['mtu', c.mtu],
    ['generation', c.generation],
    ['version', APP_CONFIG_VERSION],
  ]);
}

/**
 * The generation recorded in an existing file, or 0. The file is pod-writable, so only a
 * bounded integer is taken from it, and only to keep the counter increasing across a
 * daemon restart; no name or path is ever read back from it.
 */
export function generationOf(text: string): number {
  try {
    const g = (JSON.parse(text) as { generation?: unknown }).generation;
    return typeof g === 'number' && Number.isSafeInteger(g) && g >= 0 && g < 2 ** 31 ? g : 0;
  } catch {
    return 0;
  }
}
