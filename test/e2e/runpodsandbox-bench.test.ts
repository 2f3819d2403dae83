/**
 * RunPodSandbox latency through containerd 1.6 (CRI, as kubelet calls it) with vhostplug
 * (server, client, veth), the reference `ptp` plugin and no network (a hostNetwork pod), all
 * on one private node, in the same run, interleaved sample by sample (the machine is shared:
 * compare ratios, not absolute numbers). Each sample is Run + Stop + Remove; only Run is
 * timed. For vhostplug samples the daemon's own ADD time comes from its log ("cni request",
 * same sandbox id), so the report splits a sandbox into the daemon's ADD and the rest.
 *
 * In the suite (CI) it runs a few samples as a smoke test of the bench itself; a measurement:
 *   VHP_CRI_BENCH_SAMPLES=40 VHP_CRI_BENCH_OUT=bench/results/cri-sandbox.json \
 *     npx vitest run test/e2e/runpodsandbox-bench.test.ts
 * prints one JSON report with its conditions (and writes it to VHP_CRI_BENCH_OUT).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIf } from '../helpers/skip';
import { TestNode, needsContainerdNode } from '../helpers/cri/node';
import { importImages } from '../helpers/cri/images';
import { NodeDaemon, podConfig, REPO } from '../helpers/cri/pods';

const MAIN = path.join(REPO, 'dist/cli/main.js');
const SAMPLES = Number(process.env.VHP_CRI_BENCH_SAMPLES ?? 4);
const CELLS = ['server', 'client', 'veth', 'ptp', 'none'] as const;
type Cell = (typeof CELLS)[number];

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

describeIf(needsContainerdNode())('bench: RunPodSandbox with vhostplug vs ptp vs no network (containerd 1.6)', () => {
  let node: TestNode;
  let daemon: NodeDaemon;

  beforeAll(async () => {
    node = await TestNode.start({ handlers: ['vp-server', 'vp-client', 'vp-veth', 'ptp'] });
    try {
      importImages(node, []);
      daemon = await NodeDaemon.start(node);
      for (const [mode, subnet] of [
        ['server', '10.81.0.0/16'],
        ['client', '10.82.0.0/16'],
        ['veth', '10.83.0.0/16'],
      ] as const) {
        node.exec(
          [
            process.execPath,
            MAIN,
            'install-cni',
            '--bin-dir',
            '/opt/cni/bin',
            '--conf-dir',
            node.confDir(`vp-${mode}`),
            '--name',
            `vp-${mode}`,
            '--mode',
            mode,
            '--subnet',
            subnet,
          ],
          { net: false },
        );
      }
      node.installConflist('ptp', '10-ptp.conflist', {
        cniVersion: '1.0.0',
        name: 'ptp',
        plugins: [{ type: 'ptp', ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet: '10.84.0.0/16' }]] } }],
      });
      await new Promise((r) => setTimeout(r, 500));
    } catch (e) {
      await node.stop({ keepDir: true });
      throw e;
    }
  }, 30 * 60_000);

  afterAll(async () => {
    await node?.stop();
  });

  /** The daemon's logged ADD time for a sandbox (ms), if any. */
  function daemonAddMs(id: string): number | undefined {
    for (const line of fs.readFileSync(daemon.logFile, 'utf8').split('\n')) {
      if (!line.includes(id) || !line.includes('"cni request"')) continue;
      const rec = JSON.parse(line) as { command?: string; ms?: number };
      if (rec.command === 'ADD') return rec.ms;
    }
    return undefined;
  }

  /**
   * Where a sandbox's time goes, from containerd's debug log: request -> "begin cni setup"
   * (snapshot, container record), the CNI window up to "cni result" (loopback + the
   * network's plugin), then the pause task's start up to "returns sandbox id".
   */
  function phases(): Record<string, { preCni: number[]; cni: number[]; afterCni: number[] }> {
    const out: Record<string, { preCni: number[]; cni: number[]; afterCni: number[] }> = {};
    const ts = (l: string) =>
      Date.parse(/time="([^"]+)"/.exec(l)![1]!.replace(/(\.\d{3})\d*/, '$1')) +
      Number(/time="[^"]+\.\d{3}(\d{0,3})/.exec(l)?.[1]?.padEnd(3, '0') ?? 0) / 1000;
    let cur: { cell: string; t0: number; cni0?: number; cni1?: number } | undefined;
    for (const l of fs.readFileSync(node.containerdLog, 'utf8').split('\n')) {
      const m = /msg="RunPodSandbox for &PodSandboxMetadata\{Name:b-(\w+)-(\d+),/.exec(l);
      if (m && !l.includes('returns')) {
        cur = m[2] === '0' ? undefined : { cell: m[1]!, t0: ts(l) }; // round 0 is the warm-up
        continue;
      }
      if (!cur) continue;
      if (l.includes('begin cni setup')) cur.cni0 = ts(l);
      else if (l.includes('cni result') && cur.cni1 === undefined) cur.cni1 = ts(l);
      else if (l.includes('returns sandbox id')) {
        const p = (out[cur.cell] ??= { preCni: [], cni: [], afterCni: [] });
        if (cur.cni0 !== undefined && cur.cni1 !== undefined) {
          p.preCni.push(cur.cni0 - cur.t0);
          p.cni.push(cur.cni1 - cur.cni0);
          p.afterCni.push(ts(l) - cur.cni1);
        } else p.afterCni.push(ts(l) - cur.t0);
        cur = undefined;
      }
    }
    return out;
  }

  it(
    `${SAMPLES} interleaved samples per cell: p50/p99 and same-run ratios, printed as JSON with the conditions`,
    async () => {
      const ms: Record<Cell, number[]> = { server: [], client: [], veth: [], ptp: [], none: [] };
      const addMs: Record<string, number[]> = { server: [], client: [], veth: [] };
      // One warm-up round (image, first exec of each plugin), not counted.
      for (let round = -1; round < SAMPLES; round++) {
        for (const cell of CELLS) {
          const cfg = podConfig(node, `b-${cell}-${round + 1}`, { hostNetwork: cell === 'none' });
          const handler = cell === 'none' ? '' : cell === 'ptp' ? 'ptp' : `vp-${cell}`;
          const t0 = performance.now();
          const id = await node.cri.runPodSandbox(cfg, handler);
          const t = performance.now() - t0;
          await node.cri.stopPodSandbox(id);
          await node.cri.removePodSandbox(id);
          if (round < 0) continue;
          ms[cell].push(t);
          if (cell in addMs) {
            const a = daemonAddMs(id);
            if (a !== undefined) addMs[cell]!.push(a);
          }
        }
      }
      const p50 = Object.fromEntries(CELLS.map((c) => [c, pct(ms[c], 50)])) as Record<Cell, number>;
      const report = {
        bench: 'cri-runpodsandbox',
        conditions: {
          runtime: 'containerd 1.6 (Debian 12) + runc, cgroupfs, overlayfs, CRI v1 over gRPC from Node',
          cni: 'vhostplug shim -> daemon (host process, deploy/daemonset.yaml kuryr.conf) with host-local; ptp + host-local (Debian containernetworking-plugins 1.1.1); none = hostNetwork pod',
          ovs: 'private DPDK ovs-vswitchd (scripts/ovs-sandbox.sh defaults, no hugepages)',
          samplesPerCell: SAMPLES,
          interleaved: true,
          timed: 'RunPodSandbox only (Stop+Remove after each sample, untimed)',
          cpus: os.cpus().length,
          loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
          node: process.version,
          date: new Date().toISOString(),
        },
        p50,
        p99: Object.fromEntries(CELLS.map((c) => [c, pct(ms[c], 99)])),
        ratioToPtp: Object.fromEntries(CELLS.map((c) => [c, Math.round((p50[c] / p50.ptp) * 100) / 100])),
        ratioToNone: Object.fromEntries(CELLS.map((c) => [c, Math.round((p50[c] / p50.none) * 100) / 100])),
        daemonAddP50: Object.fromEntries(Object.entries(addMs).map(([c, xs]) => [c, xs.length ? pct(xs, 50) : null])),
        // From containerd's debug log (ms, p50): see phases().
        phasesP50: Object.fromEntries(
          Object.entries(phases()).map(([c, p]) => [
            c,
            {
              preCni: p.preCni.length ? pct(p.preCni, 50) : null,
              cniWindow: p.cni.length ? pct(p.cni, 50) : null,
              afterCni: pct(p.afterCni, 50),
            },
          ]),
        ),
        samples: ms,
      };
      console.log(JSON.stringify(report));
      if (process.env.VHP_CRI_BENCH_OUT)
        fs.writeFileSync(process.env.VHP_CRI_BENCH_OUT, JSON.stringify(report, null, 2) + '\n');
      for (const c of CELLS) expect(ms[c]).toHaveLength(SAMPLES);
      for (const c of ['server', 'client', 'veth']) expect(addMs[c]!.length).toBe(SAMPLES);
      expect(node.ports()).toEqual([]);
    },
    30 * 60_000,
  );
});
