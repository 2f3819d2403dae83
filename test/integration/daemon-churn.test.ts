/**
 * Pod churn through the real shim: 100 pods (vhost-user client and server, veth in real
 * netns) ADDed and DELeted concurrently; nothing may leak (OVS ports, sockets, config and
 * device-info files, host-local reservations, state files, links).
 *
 * Also prints (never asserts) ADD/DEL latency through the shim against the daemon call
 * alone and a `node -e 0` cold start, measured in the same run (docs/daemon.md quotes it).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon';
import { run } from '../helpers/proc';
import { useSandbox } from '../helpers/sandbox';
import { describeIf, firstReason, needsBinaries, needsOvs, needsRoot } from '../helpers/skip';
import {
  addNetns,
  cniEnv,
  deleteNetns,
  fakeNetns,
  HOST_LOCAL,
  leftovers,
  makeDirs,
  netconf,
  NOTHING,
  percentile,
  ports,
  reservedIps,
  runShim,
  SHIM,
  startTestDaemon,
  type DaemonDirs,
} from './daemon-harness';

const PODS = 100;
const VETH_PODS = 20;

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: true }), needsBinaries(SHIM, HOST_LOCAL)))(
  'daemon: pod churn through the shim',
  () => {
    const sandbox = useSandbox();
    let d: DaemonDirs;
    let daemon: Daemon;
    const netnsNames: string[] = [];

    beforeAll(async () => {
      d = makeDirs(sandbox(), 'churn');
      daemon = await startTestDaemon(sandbox(), d);
    }, 60_000);
    afterAll(async () => {
      await daemon?.stop();
      deleteNetns(netnsNames);
    });

    interface Pod {
      id: string;
      mode: 'client' | 'server' | 'veth';
      netns: string;
      conf: string;
    }

    function pods(tag: string): Pod[] {
      return Array.from({ length: PODS }, (_, i) => {
        const mode = i < VETH_PODS ? 'veth' : i % 2 ? 'client' : 'server';
        const id = `${tag}${String(i).padStart(3, '0')}`;
        let netns: string;
        if (mode === 'veth') netns = addNetns(`vhpc-${process.pid}-${id}`, netnsNames);
        else netns = fakeNetns(d, id);
        const devFile = path.join(d.devinfo, `${id}.json`);
        const extra =
          mode === 'veth'
            ? {}
            : { capabilities: { CNIDeviceInfoFile: true }, runtimeConfig: { CNIDeviceInfoFile: devFile } };
        return { id, mode, netns, conf: JSON.stringify(netconf(d, '1.1.0', mode, extra)) };
      });
    }

    it(`${PODS} pods: all ADDs at once, then all DELs at once; then ADD+DEL per pod, pods in parallel: nothing leaks`, async () => {
      const batch = pods('p');
      const adds = await Promise.all(
        batch.map((p) => runShim(d.socket, cniEnv('ADD', p.id, 'net1', p.netns), p.conf, 120_000)),
      );
      for (const [i, a] of adds.entries()) expect(a.code, `${batch[i]!.id}: ${a.stdout}`).toBe(0);
      const ips = adds.map((a) => String((a.json!.ips as { address: string }[])[0]!.address));
      expect(new Set(ips).size).toBe(PODS);
      expect(reservedIps(d)).toHaveLength(PODS);
      expect(ports(sandbox())).toHaveLength(PODS);
      // Every attachment passes CHECK right after ADD (as CRI-O runs it).
      const checks = await Promise.all(
        batch.map((p, i) =>
          runShim(
            d.socket,
            cniEnv('CHECK', p.id, 'net1', p.netns),
            JSON.stringify({ ...JSON.parse(p.conf), prevResult: adds[i]!.json }),
          ),
        ),
      );
      for (const [i, c] of checks.entries()) expect(c.code, `${batch[i]!.id}: ${c.stdout}`).toBe(0);
      const dels = await Promise.all(
        batch.map((p) => runShim(d.socket, cniEnv('DEL', p.id, 'net1', p.netns), p.conf, 120_000)),
      );
      for (const [i, r] of dels.entries()) expect(r.code, `${batch[i]!.id}: ${r.stdout}`).toBe(0);
      expect({ ...leftovers(sandbox(), d), mount: leftovers(sandbox(), d).mount }).toEqual(NOTHING);

      // Interleaved: each pod ADD then DEL (serialised per pod, as runtimes do), pods in parallel.
      const second = pods('q');
      const outcomes = await Promise.all(
        second.map(async (p) => {
          const a = await runShim(d.socket, cniEnv('ADD', p.id, 'net1', p.netns), p.conf, 120_000);
          const r = await runShim(d.socket, cniEnv('DEL', p.id, 'net1', p.netns), p.conf, 120_000);
          return [a.code, r.code];
        }),
      );
      expect(outcomes.filter(([a, r]) => a !== 0 || r !== 0)).toEqual([]);
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
      for (const n of netnsNames) {
        const links = (JSON.parse(run('ip', ['-n', n, '-j', 'link', 'show'])) as { ifname: string }[]).map(
          (l) => l.ifname,
        );
        expect(links).toEqual(['lo']);
      }
      const hostLinks = (
        JSON.parse(run('ip', ['-n', sandbox().netns, '-j', 'link', 'show'])) as { ifname: string }[]
      ).map((l) => l.ifname);
      expect(hostLinks.filter((l) => l.startsWith('tap'))).toEqual([]);
    }, 180_000);

    it('latency: ADD/DEL through the shim vs the daemon call alone vs a node cold start (printed, not asserted)', async () => {
      const N = 40;
      const shimAdd: number[] = [];
      const shimDel: number[] = [];
      const callAdd: number[] = [];
      const callDel: number[] = [];
      const conf = JSON.stringify(netconf(d, '1.1.0', 'client'));
      const viaShim = async (cmd: string, id: string, ns: string): Promise<number> => {
        const r = await runShim(d.socket, cniEnv(cmd, id, 'net1', ns), conf);
        expect(r.code, r.stdout).toBe(0);
        return r.ms;
      };
      const direct = async (cmd: string, id: string, ns: string): Promise<number> => {
        const t = performance.now();
        const r = await daemon.handle({ env: cniEnv(cmd, id, 'net1', ns), stdin: conf });
        const ms = performance.now() - t;
        expect(r.exitCode, r.stdout).toBe(0);
        return ms;
      };
      for (let i = 0; i < N; i++) {
        const ns = fakeNetns(d, `lat${i}`);
        // Alternating which goes first, so drift and vswitchd's after-work hit both alike.
        if (i % 2 === 0) {
          shimAdd.push(await viaShim('ADD', `lat-s${i}`, ns));
          callAdd.push(await direct('ADD', `lat-c${i}`, ns));
          shimDel.push(await viaShim('DEL', `lat-s${i}`, ns));
          callDel.push(await direct('DEL', `lat-c${i}`, ns));
        } else {
          callAdd.push(await direct('ADD', `lat-c${i}`, ns));
          shimAdd.push(await viaShim('ADD', `lat-s${i}`, ns));
          callDel.push(await direct('DEL', `lat-c${i}`, ns));
          shimDel.push(await viaShim('DEL', `lat-s${i}`, ns));
        }
      }
      const spawnMs = async (file: string, args: string[]): Promise<number> => {
        const t = performance.now();
        await new Promise<void>((resolve, reject) => {
          const c = spawn(file, args, { stdio: 'ignore' });
          c.on('error', reject);
          c.on('close', () => resolve());
        });
        return performance.now() - t;
      };
      const cold: number[] = [];
      const trueExec: number[] = [];
      for (let i = 0; i < 15; i++) {
        cold.push(await spawnMs(process.execPath, ['-e', '0']));
        trueExec.push(await spawnMs('/bin/true', []));
      }
      const stat = (xs: number[]) => ({
        p50: +percentile(xs, 50).toFixed(2),
        p99: +percentile(xs, 99).toFixed(2),
        n: xs.length,
      });
      const out = {
        bench: 'daemon-cni-latency',
        conditions: {
          mode: 'client (dpdkvhostuser, socket rename)',
          ipam: 'host-local',
          cniVersion: '1.1.0',
          fsync: false,
          cpus: 2,
          note: 'shared machine; sequential, order alternated; shim spawned from node (spawnBinTrue is that spawn cost alone)',
        },
        addShim: stat(shimAdd),
        addDaemonCall: stat(callAdd),
        delShim: stat(shimDel),
        delDaemonCall: stat(callDel),
        nodeColdStart: stat(cold),
        spawnBinTrue: stat(trueExec),
        shimOverheadP50Ms: {
          add: +(percentile(shimAdd, 50) - percentile(callAdd, 50)).toFixed(2),
          del: +(percentile(shimDel, 50) - percentile(callDel, 50)).toFixed(2),
        },
      };
      process.stdout.write(JSON.stringify(out) + '\n');
      expect(leftovers(sandbox(), d).ports).toEqual([]);
    }, 120_000);
  },
);
