/**
 * `vhostplug demo`: the whole product in one run on a private OVS it starts itself:
 * vhost-user ports in both modes through the driver, real packets from dpdk-testpmd
 * through each socket, measured plug latencies, and a clean stop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { OvsdbClient } from '../ovsdb/client';
import { Vswitch } from '../vswitch/vswitch';
import { VSWITCH_CACHE } from '../vswitch/rows';
import { VhostUserDriver, type ConnectResult } from '../binding/vhostuser';
import { startSandbox, type Sandbox } from '../sandbox/ovs-sandbox';
import { startTestpmd, type Testpmd } from '../sandbox/testpmd';
import { which } from '../sandbox/proc';
import { LatencyRecorder } from './stats';
import { makeVHostUserVif } from '../vif/model';
import { exec } from './common';
import { UsageError } from '../core/errors';
import type { Command } from '../cli/command';

/** A fresh VIFVHostUser on br-int with a random port id and MAC. */
const vif = (mode: 'server' | 'client', mount: string) => makeVHostUserVif(mode, mount);

const ms = (x: number) => `${x.toFixed(1)} ms`;

function phases(r: ConnectResult): string {
  const t = r.timings;
  const parts = [`OVSDB commit ${ms(t.commitMs)}`, `vswitchd ${ms(t.ackMs)}`];
  if (r.mode === 'client') parts.push(`socket wait ${ms(t.socketWaitMs)}`, `rename ${ms(t.renameMs)}`);
  parts.push(`config file ${ms(t.fileMs)}`);
  return parts.join(', ');
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'plug vhost-user ports on a private DPDK OVS, pass packets with testpmd, print timings',
  usage: `
usage: vhostplug demo [--samples N] [--traffic-seconds S] [--keep]

Starts a private ovsdb-server + DPDK ovs-vswitchd (no hugepages, own netns), plugs one
server-mode and one client-mode vhost-user VIF through the vhost-user driver, runs
dpdk-testpmd on each socket and shows the packets that went through OVS, measures N
plug/unplug pairs per mode (default 20) against ovs-vsctl, unplugs everything and stops
OVS. --keep leaves the sandbox directory for inspection.
`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { samples: { type: 'string' }, 'traffic-seconds': { type: 'string' }, keep: { type: 'boolean' } },
      strict: true,
    });
    const samples = Number(values.samples ?? 20);
    if (!Number.isInteger(samples) || samples < 1) throw new UsageError('--samples must be a positive integer');
    const trafficS = Number(values['traffic-seconds'] ?? 3);
    const out = (s = '') => process.stdout.write(s + '\n');

    out('vhostplug demo: vhost-user ports for DPDK pods on Open vSwitch\n');
    let t = performance.now();
    const sb: Sandbox = await startSandbox({ dpdk: true, prefix: 'vhp-demo-', keepDir: values.keep });
    out(`[1/5] private OVS started in ${ms(performance.now() - t)}: ${sb.dir}`);
    out(`      ovsdb-server + DPDK ovs-vswitchd (no hugepages, netns ${sb.netns}), bridge br-int (netdev)`);
    const pmds: Testpmd[] = [];
    let client: OvsdbClient | undefined;
    try {
      t = performance.now();
      client = await OvsdbClient.connect(sb.db, { transport: 'native', cache: VSWITCH_CACHE });
      out(`[2/5] OVSDB connected (native transport, monitor cache synced) in ${ms(performance.now() - t)}`);
      const mount = path.join(sb.dir, 'vhostuser');
      fs.mkdirSync(mount);
      const driver = new VhostUserDriver(new Vswitch(client), { mountPoint: mount, ovsVhuPath: sb.runDir });
      const health = driver.health();
      if (!health.ok) throw new Error(health.problems.join('; '));

      out(`[3/5] plugging two vhost-user VIFs (mount point ${mount}):`);
      const a = await driver.connect({
        vif: vif('server', mount),
        containerId: 'demo-pod-a',
        ifname: 'eth0',
        podUid: randomUUID(),
      });
      const b = await driver.connect({
        vif: vif('client', mount),
        containerId: 'demo-pod-b',
        ifname: 'eth0',
        podUid: randomUUID(),
      });
      for (const r of [a, b]) {
        out(`      ${r.mode.padEnd(6)} mode  ${r.vifName}  plugged in ${ms(r.timings.totalMs)} (${phases(r)})`);
        out(`                    socket ${r.socketPath}`);
        out(`                    ${path.basename(r.configPath)}: ${fs.readFileSync(r.configPath, 'utf8')}`);
      }

      if (which('dpdk-testpmd')) {
        out(`[4/5] dpdk-testpmd on each socket (the pods' DPDK apps), ${trafficS} s of traffic through br-int:`);
        pmds.push(await startTestpmd({ ports: [{ path: a.socketPath, server: true, mac: a.mac }] }));
        pmds.push(await startTestpmd({ ports: [{ path: b.socketPath, mac: b.mac }] }));
        sb.vsctl('--timeout=20', 'wait-until', 'Interface', a.vifName, 'link_state=up');
        sb.vsctl('--timeout=20', 'wait-until', 'Interface', b.vifName, 'link_state=up');
        for (const p of pmds) await p.startForwarding();
        await new Promise((r) => setTimeout(r, trafficS * 1000));
        for (const [i, p] of pmds.entries()) {
          const [st] = await p.stats();
          const r = i === 0 ? a : b;
          out(
            `      ${r.mode.padEnd(6)} mode  ${r.vifName}  RX ${st?.rxPackets ?? 0} packets, TX ${st?.txPackets ?? 0} packets`,
          );
        }
        await Promise.all(pmds.splice(0).map((p) => p.stop()));
      } else {
        out('[4/5] dpdk-testpmd not found (apt-get install dpdk-dev): traffic skipped');
      }
      await driver.disconnect({ containerId: 'demo-pod-a', ifname: 'eth0' });
      await driver.disconnect({ containerId: 'demo-pod-b', ifname: 'eth0' });

      out(`[5/5] plug latency, ${samples} plug+unplug pairs per mode, acknowledged by ovs-vswitchd:`);
      for (const mode of ['server', 'client'] as const) {
        const plug = new LatencyRecorder();
        const unplug = new LatencyRecorder();
        const vsctl = new LatencyRecorder();
        for (let i = 0; i < samples; i++) {
          const v = vif(mode, mount);
          const r = await driver.connect({ vif: v, containerId: `demo-${i}`, ifname: 'eth0' });
          plug.record(r.timings.totalMs);
          const u = performance.now();
          await driver.disconnect({ containerId: `demo-${i}`, ifname: 'eth0' });
          unplug.record(performance.now() - u);
          const name = `vsctl${i}`;
          const opt = mode === 'server' ? [`options:vhost-server-path=${mount}/${name}`] : [];
          const s = performance.now();
          await exec('ovs-vsctl', [
            `--db=${sb.db}`,
            'add-port',
            'br-int',
            name,
            '--',
            'set',
            'Interface',
            name,
            `type=${mode === 'server' ? 'dpdkvhostuserclient' : 'dpdkvhostuser'}`,
            ...opt,
          ]);
          vsctl.record(performance.now() - s);
          await exec('ovs-vsctl', [`--db=${sb.db}`, 'del-port', 'br-int', name]);
        }
        const p = plug.summary();
        const u = unplug.summary();
        const v = vsctl.summary();
        out(
          `      ${mode.padEnd(6)} mode  plug p50 ${ms(p.p50)}, p99 ${ms(p.p99)}; unplug p50 ${ms(u.p50)}, p99 ${ms(u.p99)}; ` +
            `ovs-vsctl add-port p50 ${ms(v.p50)}`,
        );
      }
      const left = sb.vsctl('list-ports', 'br-int').trim();
      const files = fs.readdirSync(mount);
      out(
        `\nunplugged everything: ${left ? `ports left: ${left}` : 'no port'} on br-int, ${files.length ? `files left: ${files.join(' ')}` : 'no file'} in the mount point`,
      );
    } finally {
      await Promise.all(pmds.map((p) => p.stop()));
      client?.close();
      t = performance.now();
      await sb.stop();
      out(`private OVS stopped in ${ms(performance.now() - t)}${values.keep ? ` (kept ${sb.dir})` : ''}`);
    }
    return 0;
  },
};
