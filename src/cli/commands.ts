/** The registry of subcommands, in the order `--help` lists them. */
import type { Command } from './command';
import { plugCommand, unplugCommand } from './plug';
import { kuryrDaemonCommand } from './kuryr-daemon';
import { daemonCommand } from './daemon';
import { installCniCommand } from './install-cni';
import { podInfoCommand } from './pod-info';
import { toolCommand } from './tools';

const demoCommand = toolCommand(
  'demo',
  'plug vhost-user ports on a private DPDK OVS, pass packets with testpmd, print timings',
  async () => (await import('../bench/demo')).demoCommand,
);
const benchCommand = toolCommand(
  'bench',
  'measure plug latency against the floor, ovs-vsctl, os-vif and node:net baselines',
  async () => (await import('../bench/command')).benchCommand,
);

export const commands: Command[] = [
  demoCommand,
  plugCommand,
  unplugCommand,
  benchCommand,
  kuryrDaemonCommand,
  daemonCommand,
  installCniCommand,
  podInfoCommand,
];
