/**
 * `vhostplug bench plug`: plug and unplug latency of vhost-user VIFs, acknowledged by
 * ovs-vswitchd, with N ports already on the bridge, for:
 * - `vhostplug`: the vhost-user driver (plug, client-mode socket move, config file);
 * - `os-vif`: Debian's python3-os-vif (`os_vif.plug`/`unplug`, ovs plugin, native backend)
 *   on the same VIF primitives, in a long-lived process (its start-up is reported apart);
 * - `ovs-vsctl`: the command line os-vif's vsctl driver issues, one process per call.
 * - `floor`: the bare transaction of the same rows (src/bench/floor.ts).
 * Systems are interleaved sample by sample on the same private OVS. It is `bench sequential`
 * for one mode and one acknowledgement setting.
 */
import type { TargetOptions } from './common';
import { osVifUnavailable } from './osvif';
import type { BenchReport } from './report';
import { runSequentialBench } from './sequential';

export const PLUG_SYSTEMS = ['floor', 'vhostplug', 'os-vif', 'ovs-vsctl'] as const;
export type PlugSystem = (typeof PLUG_SYSTEMS)[number];

export interface PlugBenchOptions extends TargetOptions {
  mode: 'server' | 'client';
  ports?: number;
  samples?: number;
  systems?: PlugSystem[];
  /** Wait for ovs-vswitchd (default true; os-vif always waits). */
  ack?: boolean;
  quiet?: boolean;
  command?: string;
}

/**
 * The plug scenario is the sequential one restricted to one mode and one acknowledgement
 * setting, with os-vif and ovs-vsctl (and the floor) as the systems.
 */
export async function runPlugBench(opts: PlugBenchOptions): Promise<BenchReport> {
  const r = await runSequentialBench({
    modes: [opts.mode],
    acks: [opts.ack ?? true],
    ports: opts.ports ?? 10,
    samples: opts.samples ?? 100,
    // os-vif dropped (and the report says why) when it cannot run here, unless asked for.
    systems: opts.systems ?? PLUG_SYSTEMS.filter((x) => x !== 'os-vif' || !osVifUnavailable()),
    db: opts.db,
    runDir: opts.runDir,
    pmd: opts.pmd,
    anchor: opts.anchor,
    quiet: opts.quiet,
    command: opts.command ?? `vhostplug bench plug --mode ${opts.mode}`,
  });
  const why = osVifUnavailable();
  if (!opts.systems && why) r.notes.push(`os-vif left out: ${why}`);
  return { ...r, benchmark: 'plug' };
}
