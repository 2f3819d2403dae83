/**
 * The daemon (the real `vhostplug daemon` process from dist/) SIGKILLed at random points
 * while pods churn through the real shim, then restarted. After the start-up
 * reconciliation: no half-done ADD survives, every ADD that returned success is intact and
 * passes CHECK, an ADD whose answer was lost is either wholly there or wholly gone, and
 * after the runtime's DELs nothing is left (ports, sockets, files, IPs, state, links).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stablePortName } from '../../src/daemon/cni-plugin';
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
  ports,
  reservedIps,
  runShim,
  SHIM,
  type DaemonDirs,
} from './daemon-harness';

const CLI = path.resolve(__dirname, '../../dist/cli/main.js');
const PODS = 48;
const KILLS = 4;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeIf(
  firstReason(
    needsRoot(),
    needsOvs({ dpdk: true }),
    needsBinaries(SHIM, HOST_LOCAL),
    fs.existsSync(CLI) ? undefined : 'dist/ is not built (npm run build)',
  ),
)('daemon: SIGKILL during churn, restart, reconcile', () => {
  const sandbox = useSandbox();
  let d: DaemonDirs;
  let proc: ChildProcess | undefined;
  const logs: string[] = [];
  const netnsNames: string[] = [];

  async function startDaemon(): Promise<void> {
    const child = spawn(
      process.execPath,
      [
        CLI,
        'daemon',
        '--config',
        d.confFile,
        '--log-level',
        'info',
        '--reconcile-interval',
        '0',
        '--veth-host-netns',
        `/run/netns/${sandbox().netns}`,
        '--metrics-port',
        '0',
        '--health-port',
        '0',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
    proc = child;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`daemon exited ${child.exitCode}: ${logs.join('').slice(-2000)}`);
      const up = await new Promise<boolean>((resolve) => {
        const c = net.connect(d.socket);
        c.once('connect', () => {
          c.destroy();
          resolve(true);
        });
        c.once('error', () => resolve(false));
      });
      if (up) return;
      if (Date.now() > deadline) throw new Error(`daemon did not come up: ${logs.join('').slice(-2000)}`);
      await sleep(50);
    }
  }

  async function killDaemon(): Promise<void> {
    const child = proc!;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  beforeAll(() => {
    d = makeDirs(sandbox(), 'crash');
  });
  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc!.once('exit', r));
    }
    deleteNetns(netnsNames);
  });

  interface Pod {
    id: string;
    mode: 'client' | 'server' | 'veth';
    netns: string;
    conf: Record<string, unknown>;
    /** ADD answered success (and the runtime keeps the pod). */
    added?: Record<string, unknown>;
    /** ADD answered an error (the runtime will DEL it). */
    addFailed?: boolean;
    deleted?: boolean;
  }

  it('SIGTERM during an ADD: the ADD is answered, the daemon exits 0 and removes its socket; JSON logs', async () => {
    await startDaemon();
    const ns = fakeNetns(d, 'term');
    const conf = JSON.stringify(netconf(d, '1.1.0', 'client'));
    // Metrics and health, served on the ports the log names.
    const portOf = (msg: string): number => {
      const line = logs
        .join('')
        .split('\n')
        .filter((l) => l.includes(msg))
        .pop()!;
      return (JSON.parse(line) as { port: number }).port;
    };
    const warm = await runShim(d.socket, cniEnv('DEL', 'term', 'net1', ns), conf);
    expect(warm.code).toBe(0);
    const metrics = await (await fetch(`http://127.0.0.1:${portOf('metrics listening')}/metrics`)).text();
    expect(metrics).toMatch(/vhostplug_cni_request_duration_seconds_count\{command="DEL",result="success"\} 1/);
    const ready = await fetch(`http://[::1]:${portOf('health listening')}/ready`);
    expect([ready.status, await ready.text()]).toEqual([200, 'ok\n']);
    const adding = runShim(d.socket, cniEnv('ADD', 'term', 'net1', ns), conf);
    await sleep(15);
    const child = proc!;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    const a = await adding;
    expect(a.code, a.stdout).toBe(0);
    expect(await exited).toBe(0);
    expect(fs.existsSync(d.socket)).toBe(false);
    const lines = logs.join('').split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines)
      expect(JSON.parse(l)).toMatchObject({
        ts: expect.any(String),
        level: expect.any(String),
        msg: expect.any(String),
      });
    // The attachment survives the restart intact.
    await startDaemon();
    const c = await runShim(
      d.socket,
      cniEnv('CHECK', 'term', 'net1', ns),
      JSON.stringify({ ...JSON.parse(conf), prevResult: a.json }),
    );
    expect(c.code, c.stdout).toBe(0);
    expect((await runShim(d.socket, cniEnv('DEL', 'term', 'net1', ns), conf)).code).toBe(0);
    expect(leftovers(sandbox(), d)).toEqual(NOTHING);
    await killDaemon();
  }, 60_000);

  it(`${PODS} pods churning while the daemon is SIGKILLed ${KILLS} times`, async () => {
    await startDaemon();
    const pods: Pod[] = Array.from({ length: PODS }, (_, i) => {
      const mode = i % 6 === 0 ? 'veth' : i % 2 ? 'client' : 'server';
      const id = `k${String(i).padStart(3, '0')}`;
      let netns: string;
      if (mode === 'veth') netns = addNetns(`vhpk-${process.pid}-${id}`, netnsNames);
      else netns = fakeNetns(d, id);
      return { id, mode, netns, conf: netconf(d, '1.1.0', mode) };
    });

    /** DEL until it succeeds, as containerd retries it (11 while the daemon is down). */
    const delUntilDone = async (p: Pod): Promise<void> => {
      for (let i = 0; ; i++) {
        const r = await runShim(d.socket, cniEnv('DEL', p.id, 'net1', p.netns), JSON.stringify(p.conf));
        if (r.code === 0) return;
        expect(r.json?.code, r.stdout).toBe(11);
        if (i > 400) throw new Error(`DEL of ${p.id} never succeeded: ${r.stdout}`);
        await sleep(50);
      }
    };

    let churning = true;
    const worker = async (p: Pod, delay: number): Promise<void> => {
      await sleep(delay);
      const a = await runShim(d.socket, cniEnv('ADD', p.id, 'net1', p.netns), JSON.stringify(p.conf));
      if (a.code === 0) p.added = a.json;
      else {
        // Only the daemon going away may fail an ADD here.
        expect([11, 5], a.stdout).toContain(a.json?.code);
        if (process.env.VHP_DEBUG) process.stderr.write(`ADD ${p.id} failed: ${a.stdout} ${a.stderr}\n`);
        p.addFailed = true;
        return; // the runtime's DEL comes later, after the checks below
      }
      if (Number(p.id.slice(1)) % 3 === 1) {
        await sleep(Math.random() * 300);
        await delUntilDone(p);
        p.deleted = true;
      }
    };

    const work = Promise.all(pods.map((p, i) => worker(p, i * 60 + Math.random() * 100)));
    const killer = (async () => {
      for (let k = 0; k < KILLS && churning; k++) {
        await sleep(400 + Math.random() * 900);
        await killDaemon();
        await sleep(Math.random() * 200);
        await startDaemon();
      }
    })();
    await work;
    churning = false;
    await killer;
    // One more crash and restart with everything settled: reconciliation must be a no-op
    // for live attachments.
    await killDaemon();
    await startDaemon();

    const failed = pods.filter((p) => p.addFailed);
    const kept = pods.filter((p) => p.added && !p.deleted);
    expect(pods.every((p) => p.added || p.addFailed)).toBe(true);
    // The kills must have hit something, or this test shows nothing.
    expect(failed.length).toBeGreaterThan(0);
    expect(kept.length).toBeGreaterThan(0);

    // No half-done ADD survives the start-up reconciliation.
    for (const f of fs.readdirSync(d.state)) {
      const rec = JSON.parse(fs.readFileSync(path.join(d.state, f), 'utf8')) as { phase: string };
      expect(rec.phase, f).toBe('added');
    }
    // Every successful ADD is intact and passes CHECK.
    for (const p of kept) {
      const c = await runShim(
        d.socket,
        cniEnv('CHECK', p.id, 'net1', p.netns),
        JSON.stringify({ ...p.conf, prevResult: p.added }),
      );
      expect(c.code, `${p.id} (${p.mode}): ${c.stdout}`).toBe(0);
    }
    // An ADD whose answer was lost is either wholly there (and checks) or wholly gone.
    const present = new Set(ports(sandbox()));
    let lostButDone = 0;
    for (const p of failed) {
      const name = stablePortName(p.id, 'net1', p.mode === 'veth' ? 'veth' : 'vhostuser');
      if (present.has(name)) {
        lostButDone++;
        const c = await runShim(d.socket, cniEnv('CHECK', p.id, 'net1', p.netns), JSON.stringify(p.conf));
        expect(c.code, `${p.id}: ${c.stdout}`).toBe(0);
      } else {
        expect(fs.existsSync(path.join(d.mount, `${p.id}-net1`)), p.id).toBe(false);
      }
    }
    expect(ports(sandbox()).length).toBe(kept.length + lostButDone);
    expect(reservedIps(d).length).toBe(kept.length + lostButDone);
    expect(fs.readdirSync(d.state).length).toBe(kept.length + lostButDone);

    // The runtime's DELs for failed ADDs and for the pods it still has: nothing is left.
    for (const p of [...failed, ...kept]) await delUntilDone(p);
    expect(leftovers(sandbox(), d)).toEqual(NOTHING);
    for (const n of netnsNames) {
      const links = (JSON.parse(run('ip', ['-n', n, '-j', 'link', 'show'])) as { ifname: string }[]).map(
        (l) => l.ifname,
      );
      expect(links, n).toEqual(['lo']);
    }
    const hostLinks = (
      JSON.parse(run('ip', ['-n', sandbox().netns, '-j', 'link', 'show'])) as { ifname: string }[]
    ).map((l) => l.ifname);
    expect(hostLinks.filter((l) => l.startsWith('tap'))).toEqual([]);
    // What the start-up reconciliations did (from the daemon's JSON logs).
    const startups = logs
      .join('')
      .split('\n')
      .filter((l) => l.includes('start-up reconciliation done'))
      .map((l) => JSON.parse(l) as { rolledBack: number; orphanPorts: number; strayFiles: number; errors: string[] });
    for (const s of startups) expect(s.errors).toEqual([]);
    const rolledBack = startups.reduce((n, s) => n + s.rolledBack, 0);
    process.stdout.write(
      JSON.stringify({
        crash: {
          pods: PODS,
          kills: KILLS + 1,
          addFailed: failed.length,
          lostButDone,
          kept: kept.length,
          rolledBackAtStartup: rolledBack,
        },
      }) + '\n',
    );
  }, 200_000);
});
