/**
 * `vhostplug pod-info`, the pod-side reader of interfaces.json: the built CLI (dist/) run as
 * an app's entrypoint would, against a directory updated the way the daemon updates it
 * (atomic renames), including a wait for a generation bump and for a client-mode socket.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildPodIndex,
  flatPodIndexFile,
  formatPodIndex,
  POD_INDEX_FILE,
  type PodIndexEntry,
} from '../../src/binding/pod-index';
import { writeFileAtomic } from '../../src/os/atomic-file';
import { queryPodIndex, waitForPodInfo } from '../../src/cli/pod-info';
import { describeIf } from '../helpers/skip';
import { useTmpRoot } from '../helpers/tmp';

const CLI = path.resolve(__dirname, '../../dist/cli/main.js');
const UID = '6f1d8a52-3b7e-4c0a-8e21-9d4b5c6a7f80';

function entry(over: Partial<PodIndexEntry> = {}): PodIndexEntry {
  return {
    ifname: 'net1',
    vhostname: 'vhu11111111-11',
    socket: 'vhu11111111-11',
    socket_path: '/var/run/vhostuser/vhu11111111-11',
    mode: 'server',
    mac: '02:00:00:00:00:01',
    mtu: 1500,
    generation: 1,
    config_file: 'ctr-net1',
    container_id: 'ctr',
    ...over,
  };
}

async function writeIndex(dir: string, entries: PodIndexEntry[]): Promise<void> {
  await writeFileAtomic(
    path.join(dir, POD_INDEX_FILE),
    formatPodIndex(buildPodIndex({ uid: UID, namespace: 'default', name: 'app' }, entries)),
    { fsync: false },
  );
}

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'pod-info', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts the CLI in the background; resolves with its result and how long it ran. */
function cliAsync(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  const p = spawn(process.execPath, [CLI, 'pod-info', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) =>
    p.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 })),
  );
}

describe('pod-info library', () => {
  const tmp = useTmpRoot('vhp-podinfo-lib-');

  it('answers at once, resolving paths inside the directory read', async () => {
    const d = tmp.freshDir();
    await writeIndex(d, [
      entry(),
      entry({ ifname: 'net2', socket: 'vhu2', vhostname: 'vhu2', config_file: 'ctr-net2' }),
    ]);
    const r = queryPodIndex({ dir: d, ifname: 'net2' });
    expect(r).toMatchObject({
      ok: true,
      interfaces: [{ ifname: 'net2', socket_path: path.join(d, 'vhu2'), config_path: path.join(d, 'ctr-net2') }],
    });
    expect(queryPodIndex({ dir: d, ifname: 'net9' })).toEqual({
      ok: false,
      reason: 'no interface net9 (the pod has: net1, net2)',
    });
    await expect(waitForPodInfo({ dir: d, ifname: 'net9' }, 0)).rejects.toThrow(/no interface net9/);
  });

  it('the flat layout: interfaces-<pod-uid>.json in the shared directory, found with the pod UID', async () => {
    const d = tmp.freshDir();
    await writeFileAtomic(path.join(d, flatPodIndexFile(UID)), formatPodIndex(buildPodIndex({ uid: UID }, [entry()])), {
      fsync: false,
    });
    expect(queryPodIndex({ dir: d })).toMatchObject({ ok: false });
    expect(queryPodIndex({ dir: d, podUid: UID })).toMatchObject({ ok: true, interfaces: [{ ifname: 'net1' }] });
    expect(() => queryPodIndex({ dir: d, podUid: '../x' })).toThrow(/--pod-uid/);
  });

  it('refuses an index that is a symlink (never followed)', async () => {
    const d = tmp.freshDir();
    const other = tmp.freshDir();
    await writeIndex(other, [entry()]);
    fs.symlinkSync(path.join(other, POD_INDEX_FILE), path.join(d, POD_INDEX_FILE));
    expect(() => queryPodIndex({ dir: d })).toThrow(expect.objectContaining({ code: 'ELOOP' }));
  });

  it('waits for a client-mode socket to be in place', async () => {
    const d = tmp.freshDir();
    await writeIndex(d, [entry({ mode: 'client' })]);
    expect(queryPodIndex({ dir: d, ifname: 'net1' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/socket of net1 .* is not there/),
    });
    const wait = waitForPodInfo({ dir: d, ifname: 'net1' }, 10_000);
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(path.join(d, 'vhu11111111-11'), r));
    try {
      await expect(wait).resolves.toMatchObject([{ ifname: 'net1', mode: 'client' }]);
    } finally {
      srv.close();
    }
  });
});

describeIf(fs.existsSync(CLI) ? undefined : 'dist/ is not built (npm run build)')('vhostplug pod-info CLI', () => {
  const tmp = useTmpRoot('vhp-podinfo-cli-');
  const timers: NodeJS.Timeout[] = [];
  afterEach(() => timers.splice(0).forEach(clearTimeout));

  it('prints every interface, one field, or JSON', async () => {
    const d = tmp.freshDir();
    await writeIndex(d, [
      entry(),
      entry({ ifname: 'net2', socket: 'vhu2', vhostname: 'vhu2', config_file: 'ctr-net2', mac: '02:00:00:00:00:02' }),
    ]);
    const all = cli('--dir', d);
    expect(all.code).toBe(0);
    expect(all.stdout).toBe(
      `net1 socket=${d}/vhu11111111-11 mac=02:00:00:00:00:01 mode=server mtu=1500 generation=1\n` +
        `net2 socket=${d}/vhu2 mac=02:00:00:00:00:02 mode=server mtu=1500 generation=1\n`,
    );
    expect(cli('--dir', d, '--ifname', 'net2', '--field', 'socket').stdout).toBe(`${d}/vhu2\n`);
    expect(cli('--dir', d, '--ifname', 'net2', '--field', 'mac').stdout).toBe('02:00:00:00:00:02\n');
    expect(JSON.parse(cli('--dir', d, '--ifname', 'net1', '--json').stdout)).toMatchObject({
      ifname: 'net1',
      socket_path: `${d}/vhu11111111-11`,
      generation: 1,
    });
    // The environment variable names the directory too.
    const r = spawnSync(process.execPath, [CLI, 'pod-info', '--ifname', 'net1', '--field', 'generation'], {
      encoding: 'utf8',
      env: { ...process.env, VHOSTPLUG_POD_DIR: d },
    });
    expect(r.stdout).toBe('1\n');
  });

  it('fails clearly: unknown interface, ambiguous --field, bad options, no index', async () => {
    const d = tmp.freshDir();
    const noIndex = cli('--dir', d, '--ifname', 'net1');
    expect(noIndex.code).toBe(1);
    expect(noIndex.stderr).toMatch(/interfaces\.json exists \(yet\)/);
    await writeIndex(d, [
      entry(),
      entry({ ifname: 'net2', socket: 'vhu2', vhostname: 'vhu2', config_file: 'ctr-net2' }),
    ]);
    const unknown = cli('--dir', d, '--ifname', 'eth9');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no interface eth9 \(the pod has: net1, net2\)/);
    const ambiguous = cli('--dir', d, '--field', 'socket');
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toMatch(/--field needs --ifname/);
    expect(cli('--dir', d, '--field', 'nope').code).toBe(2);
    expect(cli('--dir', d, '--wait', 'soon').code).toBe(2);
    fs.writeFileSync(path.join(d, POD_INDEX_FILE), '{"version": 7}');
    const broken = cli('--dir', d);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/invalid interfaces\.json: version 7 is not 1/);
  });

  it('--wait --after-generation returns the new state as soon as the daemon writes it', async () => {
    const d = tmp.freshDir();
    await writeIndex(d, [entry({ generation: 3 })]);
    const running = cliAsync('--dir', d, '--ifname', 'net1', '--wait', '20', '--after-generation', '3', '--json');
    // A rewrite that does not bump the generation does not end the wait; the bump does.
    timers.push(setTimeout(() => void writeIndex(d, [entry({ generation: 3, mtu: 9000 })]), 700));
    timers.push(setTimeout(() => void writeIndex(d, [entry({ generation: 4, mtu: 9000 })]), 1500));
    const r = await running;
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ifname: 'net1', generation: 4, mtu: 9000 });
    expect(r.ms).toBeGreaterThan(1400);
    expect(r.ms).toBeLessThan(20_000);
  });

  it('--wait gives up after S seconds, saying what it waited for', async () => {
    const d = tmp.freshDir();
    await writeIndex(d, [entry({ generation: 2 })]);
    const r = await cliAsync('--dir', d, '--ifname', 'net1', '--wait', '0.5', '--after-generation', '2');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ETIMEDOUT: gave up after 0\.5 s: net1 is still at generation 2/);
  });
});

const C_EXAMPLE = path.resolve(__dirname, '../../docs/examples/vhost-follow.c');

describeIf(
  fs.existsSync('/usr/include/jansson.h')
    ? undefined
    : 'libjansson-dev is not installed (dpdk-dev pulls it in: scripts/install-deps.sh)',
)('docs/examples/vhost-follow.c (the C app of docs/pod-side.md)', () => {
  const tmp = useTmpRoot('vhp-podinfo-c-');

  it('compiles, prints the socket once it is listed and again on each generation bump', async () => {
    const d = tmp.freshDir();
    const bin = path.join(tmp.root(), 'vhost-follow');
    const cc = spawnSync('cc', ['-O2', '-Wall', '-Werror', '-o', bin, C_EXAMPLE, '-ljansson'], { encoding: 'utf8' });
    expect(cc.stderr).toBe('');
    expect(cc.status).toBe(0);
    const p = spawn(bin, [d, 'net1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let buf = '';
    const waiters: (() => void)[] = [];
    p.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        waiters.splice(0).forEach((w) => w());
      }
    });
    const nextLine = async (n: number): Promise<string> => {
      const deadline = Date.now() + 10_000;
      while (lines.length < n && Date.now() < deadline)
        await new Promise<void>((r) => (waiters.push(r), setTimeout(r, 200)));
      return lines[n - 1] ?? '(none)';
    };
    try {
      // Not listed yet: nothing printed. Then listed: generation 1.
      await writeIndex(d, [entry({ ifname: 'net2', socket: 'vhu2', vhostname: 'vhu2', config_file: 'ctr-net2' })]);
      await new Promise((r) => setTimeout(r, 300));
      expect(lines).toEqual([]);
      await writeIndex(d, [entry()]);
      expect(await nextLine(1)).toBe(`1 ${d}/vhu11111111-11`);
      // A rewrite without a bump prints nothing; the bump prints the new state.
      await writeIndex(d, [entry({ mtu: 9000 })]);
      await writeIndex(d, [entry({ generation: 2 })]);
      expect(await nextLine(2)).toBe(`2 ${d}/vhu11111111-11`);
      expect(lines).toHaveLength(2);
    } finally {
      p.kill();
    }
  });
});
