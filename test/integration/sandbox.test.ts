/**
 * The private OVS sandbox (scripts/ovs-sandbox.sh via test/helpers/sandbox.ts): real
 * ovsdb-server and DPDK ovs-vswitchd, two at once, clean stop, vswitchd restart, db crash.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { pidAlive, readPidFile, run, waitFor } from '../helpers/proc';
import { cpuList, SANDBOX_SCRIPT, startSandbox, type Sandbox } from '../helpers/sandbox';
import { describeIf, firstReason, needsBinaries, needsOvs } from '../helpers/skip';

/** Value of `ovs-vsctl get` without quotes. */
function get(sb: Sandbox, ...args: string[]): string {
  return sb
    .vsctl('get', ...args)
    .trim()
    .replace(/^"(.*)"$/, '$1');
}

function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

it('prerequisite checks name what is missing', () => {
  expect(needsBinaries('sh', '/bin/sh')).toBeUndefined();
  expect(needsBinaries('sh', 'vhp-no-such-binary', '/nonexistent/x')).toBe(
    'missing binaries: vhp-no-such-binary, /nonexistent/x',
  );
  expect(firstReason(undefined, 'a', undefined, 'b')).toBe('a; b');
  expect(firstReason(undefined)).toBeUndefined();
});

describeIf(needsOvs({ dpdk: true }))('ovs-sandbox (DPDK)', () => {
  const started: Sandbox[] = [];
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });

  it('starts two sandboxes at once, each with br-int (netdev) and DPDK initialised', async () => {
    const sbs = await Promise.all([startSandbox(), startSandbox()]);
    started.push(...sbs);
    const [a, b] = sbs as [Sandbox, Sandbox];
    expect(a.netns).not.toBe(b.netns);
    expect(a.dpdkPrefix).not.toBe(b.dpdkPrefix);
    for (const sb of sbs) {
      expect(sb.db).toBe(`unix:${sb.dir}/db.sock`);
      expect(get(sb, 'Bridge', 'br-int', 'datapath_type')).toBe('netdev');
      expect(get(sb, 'Open_vSwitch', '.', 'dpdk_initialized')).toBe('true');
      expect(get(sb, 'Open_vSwitch', '.', 'cur_cfg')).toBe(get(sb, 'Open_vSwitch', '.', 'next_cfg'));
      const ifaceTypes = get(sb, 'Open_vSwitch', '.', 'iface_types');
      expect(ifaceTypes).toMatch(/\bdpdkvhostuser\b/);
      expect(ifaceTypes).toMatch(/\bdpdkvhostuserclient\b/);
      const oc = sb.vsctl('get', 'Open_vSwitch', '.', 'other_config');
      expect(oc).toContain(`--file-prefix ${sb.dpdkPrefix}`);
      expect(oc).toContain('pmd-maxsleep="10000"');
      // vswitchd lives in the sandbox's own netns, with its taps there and not here.
      const vsPid = readPidFile(path.join(sb.dir, 'ovs-vswitchd.pid'))!;
      expect(pidAlive(vsPid)).toBe(true);
      expect(run('ip', ['netns', 'identify', String(vsPid)]).trim()).toBe(sb.netns);
      expect(run('ip', ['-n', sb.netns, '-o', 'link', 'show'])).toMatch(/\bovs-netdev\b/);
      expect(existsSync(`/var/run/dpdk/${sb.dpdkPrefix}`)).toBe(true);
      // The helpers work: dump, JSON list, appctl on both daemons.
      const bridges = sb.dumpTable('Bridge');
      expect(bridges.map((r) => r.name)).toEqual(['br-int']);
      expect(bridges[0]!.datapath_type).toBe('netdev');
      const j = sb.vsctlJson('list', 'Bridge');
      expect(j.headings).toContain('name');
      expect(sb.appctl('ovs-vswitchd', 'version')).toMatch(/ovs-vswitchd/);
      expect(sb.appctl('ovsdb-server', 'version')).toMatch(/ovsdb-server/);
      expect(sb.ovsdbClient('list-dbs')).toMatch(/Open_vSwitch/);
    }
    // A port in one sandbox does not show up in the other.
    a.vsctl('add-port', 'br-int', 'vhu-a', '--', 'set', 'Interface', 'vhu-a', 'type=dpdkvhostuser');
    expect(existsSync(path.join(a.runDir, 'vhu-a'))).toBe(true);
    expect(b.vsctl('list-ports', 'br-int').trim()).toBe('');
  });

  it('stop leaves no process, netns, DPDK runtime dir or sandbox dir, and is idempotent', async () => {
    const sb = await startSandbox();
    const pids = ['ovsdb-server.pid', 'ovs-vswitchd.pid'].map((f) => readPidFile(path.join(sb.dir, f))!);
    sb.vsctl('add-port', 'br-int', 'vhu0', '--', 'set', 'Interface', 'vhu0', 'type=dpdkvhostuser');
    expect(pids.every(pidAlive)).toBe(true);
    await sb.stop();
    await sb.stop(); // twice is fine
    expect(pids.some(pidAlive)).toBe(false);
    expect(netnsExists(sb.netns)).toBe(false);
    expect(existsSync(`/var/run/dpdk/${sb.dpdkPrefix}`)).toBe(false);
    expect(existsSync(sb.dir)).toBe(false);
    // The script itself is idempotent on a sandbox that is gone.
    expect(() => run('bash', [SANDBOX_SCRIPT, 'stop', sb.dir])).not.toThrow();
  });

  it('restart-vswitchd keeps the rows and re-creates dpdkvhostuser sockets', async () => {
    const sb = await startSandbox();
    started.push(sb);
    sb.vsctl('add-port', 'br-int', 'vhu0', '--', 'set', 'Interface', 'vhu0', 'type=dpdkvhostuser');
    const sock = path.join(sb.runDir, 'vhu0');
    expect(existsSync(sock)).toBe(true);
    const oldPid = readPidFile(path.join(sb.dir, 'ovs-vswitchd.pid'))!;
    const cfgBefore = Number(get(sb, 'Open_vSwitch', '.', 'cur_cfg'));

    await sb.restartVswitchd();

    const newPid = readPidFile(path.join(sb.dir, 'ovs-vswitchd.pid'))!;
    expect(newPid).not.toBe(oldPid);
    expect(pidAlive(oldPid)).toBe(false);
    expect(pidAlive(newPid)).toBe(true);
    expect(Number(get(sb, 'Open_vSwitch', '.', 'cur_cfg'))).toBeGreaterThan(cfgBefore);
    expect(get(sb, 'Open_vSwitch', '.', 'dpdk_initialized')).toBe('true');
    expect(sb.vsctl('list-ports', 'br-int').trim()).toBe('vhu0');
    expect(existsSync(sock)).toBe(true);
    expect(get(sb, 'Interface', 'vhu0', 'error')).toBe('[]');
    expect(Number(get(sb, 'Interface', 'vhu0', 'ofport'))).toBeGreaterThan(0);
    expect(readFileSync(path.join(sb.dir, 'ovs-vswitchd.log'), 'utf8')).toMatch(/dpdkvhostuser|vhost/);
  });

  it('restart-vswitchd recovers from a vswitchd crash (stale taps and vhost-user sockets)', async () => {
    const sb = await startSandbox();
    started.push(sb);
    sb.vsctl('add-port', 'br-int', 'vhu1', '--', 'set', 'Interface', 'vhu1', 'type=dpdkvhostuser');
    const pid = readPidFile(path.join(sb.dir, 'ovs-vswitchd.pid'))!;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !pidAlive(pid), 'vswitchd to die');
    // What a crash leaves: the persistent taps in the netns and the dead vhost-user socket.
    expect(run('ip', ['-n', sb.netns, 'tuntap', 'show'])).toMatch(/ovs-netdev/);
    expect(existsSync(path.join(sb.runDir, 'vhu1'))).toBe(true);

    await sb.restartVswitchd();

    expect(get(sb, 'Interface', 'vhu1', 'error')).toBe('[]');
    expect(Number(get(sb, 'Interface', 'vhu1', 'ofport'))).toBeGreaterThan(0);
    expect(existsSync(path.join(sb.runDir, 'vhu1'))).toBe(true);
  });

  it('kill-db leaves db.sock behind; start-db brings the same database back', async () => {
    const sb = await startSandbox();
    started.push(sb);
    sb.vsctl('--no-wait', 'set', 'Open_vSwitch', '.', 'external_ids:vhp-test=kept');
    const dbPid = readPidFile(path.join(sb.dir, 'ovsdb-server.pid'))!;

    await sb.killDb();
    expect(pidAlive(dbPid)).toBe(false);
    expect(readdirSync(sb.dir)).toContain('db.sock'); // stale, as after a crash
    expect(() => sb.vsctl('--timeout=1', '--no-wait', 'show')).toThrow();

    await sb.startDb();
    expect(pidAlive(readPidFile(path.join(sb.dir, 'ovsdb-server.pid'))!)).toBe(true);
    expect(get(sb, 'Open_vSwitch', '.', 'external_ids:vhp-test')).toBe('kept');
    // vswitchd reconnects on its own and applies the next change.
    await waitFor(
      () => {
        try {
          sb.vsctl('--timeout=2', 'set', 'Open_vSwitch', '.', 'external_ids:vhp-test=applied');
          return true;
        } catch {
          return false;
        }
      },
      'vswitchd to reconnect and apply a change',
      20_000,
      200,
    );
    expect(get(sb, 'Open_vSwitch', '.', 'cur_cfg')).toBe(get(sb, 'Open_vSwitch', '.', 'next_cfg'));
  });
});

/** thread name -> CPUs it may run on, for every thread of a process. */
function threadCpus(pid: number): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))![1]!;
      out.set(`${comm}#${tid}`, cpuList(list));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

describeIf(needsOvs({ dpdk: true }))('ovs-sandbox --pmd busy', () => {
  it('busy-polls the PMD on its own core and pins every other OVS thread off it, across a vswitchd restart', async () => {
    // A busy PMD spins a whole core while a vhost-user port exists: this test keeps it short.
    const sb = await startSandbox({ pmd: 'busy' });
    try {
      expect(sb.pmd).toBe('busy');
      expect(get(sb, 'Open_vSwitch', '.', 'other_config:pmd-maxsleep')).toBe('0');
      expect(sb.pmdCpus.length).toBe(1);
      const pinnable = os.cpus().length > 1;
      // With one CPU there is nothing to keep off the PMD's core.
      expect(sb.housekeepingCpus.length > 0).toBe(pinnable);
      expect(sb.housekeepingCpus).not.toContain(sb.pmdCpus[0]);
      expect(run('bash', [SANDBOX_SCRIPT, 'status', sb.dir])).toMatch(/pmd: busy/);
      const check = () => {
        // The PMD thread exists only while a port needs polling.
        sb.vsctl(
          '--may-exist',
          'add-port',
          'br-int',
          'vhu-busy',
          '--',
          'set',
          'Interface',
          'vhu-busy',
          'type=dpdkvhostuser',
        );
        const vs = threadCpus(readPidFile(path.join(sb.dir, 'ovs-vswitchd.pid'))!);
        const pmd = [...vs].filter(([n]) => n.startsWith('pmd'));
        expect(pmd.length).toBe(1);
        expect(pmd[0]![1]).toEqual(sb.pmdCpus);
        if (pinnable) {
          // Every other thread, DPDK's control threads (vhost-events, eal-intr-thread) included.
          for (const [name, cpus] of vs)
            if (!name.startsWith('pmd')) expect({ name, cpus }).toEqual({ name, cpus: sb.housekeepingCpus });
          for (const [name, cpus] of threadCpus(readPidFile(path.join(sb.dir, 'ovsdb-server.pid'))!))
            expect({ name, cpus }).toEqual({ name, cpus: sb.housekeepingCpus });
        }
        sb.vsctl('del-port', 'br-int', 'vhu-busy');
      };
      check();
      await sb.restartVswitchd();
      check();
    } finally {
      await sb.stop();
    }
    // A sleeping sandbox pins nothing.
    const sleepy = await startSandbox();
    try {
      expect(sleepy.pmd).toBe('sleep');
      expect(sleepy.housekeepingCpus).toEqual([]);
      expect(get(sleepy, 'Open_vSwitch', '.', 'other_config:pmd-maxsleep')).toBe('10000');
    } finally {
      await sleepy.stop();
    }
  });

  it('refuses --pmd without DPDK or with a bad value', () => {
    expect(() =>
      run('bash', [SANDBOX_SCRIPT, 'start', '/tmp/vhp-sandbox-never', '--no-dpdk', '--pmd', 'busy']),
    ).toThrow(/--pmd busy needs DPDK/);
    expect(() => run('bash', [SANDBOX_SCRIPT, 'start', '/tmp/vhp-sandbox-never', '--pmd', 'spin'])).toThrow(
      /--pmd needs busy or sleep/,
    );
    expect(existsSync('/tmp/vhp-sandbox-never')).toBe(false);
  });
});

describeIf(needsOvs({ dpdk: false }))('ovs-sandbox watchdog', () => {
  it('stops the sandbox once its --owner process has died', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vhp-sandbox-owner-'));
    const owner = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      run('bash', [SANDBOX_SCRIPT, 'start', dir, '--no-dpdk', '--owner', String(owner.pid)]);
      const netns = /VHP_NETNS=(\S+)/.exec(run('bash', [SANDBOX_SCRIPT, 'env', dir]))![1]!;
      const pids = ['ovsdb-server.pid', 'ovs-vswitchd.pid'].map((f) => readPidFile(path.join(dir, f))!);
      expect(pids.every(pidAlive)).toBe(true);
      owner.kill('SIGKILL');
      await waitFor(() => !pids.some(pidAlive) && !netnsExists(netns), 'the watchdog to stop the sandbox', 10_000, 50);
      expect(readFileSync(path.join(dir, 'watchdog.log'), 'utf8')).toMatch(/owner \d+ is gone/);
    } finally {
      owner.kill('SIGKILL');
      run('bash', [SANDBOX_SCRIPT, 'stop', dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeIf(needsOvs({ dpdk: false }))('ovs-sandbox (--no-dpdk)', () => {
  it('runs the plain ovs-vswitchd with br-int and no DPDK', async () => {
    const sb = await startSandbox({ dpdk: false });
    try {
      expect(get(sb, 'Bridge', 'br-int', 'datapath_type')).toBe('netdev');
      expect(get(sb, 'Open_vSwitch', '.', 'dpdk_initialized')).toBe('false');
      expect(get(sb, 'Open_vSwitch', '.', 'cur_cfg')).toBe(get(sb, 'Open_vSwitch', '.', 'next_cfg'));
      expect(get(sb, 'Open_vSwitch', '.', 'iface_types')).not.toMatch(/dpdkvhostuser/);
    } finally {
      await sb.stop();
    }
    expect(netnsExists(sb.netns)).toBe(false);
  });
});

describeIf(needsOvs({ dpdk: true }))('ovs-sandbox failures', () => {
  it('a failed start exits non-zero with the log tail and leaves nothing running', () => {
    const dir = run('mktemp', ['-d', '/tmp/vhp-sandbox-fail-XXXXXX']).trim();
    try {
      let err: unknown;
      try {
        // A vswitchd binary that exits at once stands in for a broken DPDK start.
        run('bash', [SANDBOX_SCRIPT, 'start', dir], { env: { ...process.env, VHP_VSWITCHD_DPDK: '/bin/false' } });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Error);
      expect((err as { stderr: string }).stderr).toMatch(/start failed/);
      expect((err as { stderr: string }).stderr).toMatch(/tail of .*ovsdb-server\.log/);
      const env = run('bash', [SANDBOX_SCRIPT, 'env', dir]);
      const netns = /VHP_NETNS=(\S+)/.exec(env)![1]!;
      expect(netnsExists(netns)).toBe(false);
      expect(existsSync(path.join(dir, 'db.sock'))).toBe(false);
      expect(readPidFile(path.join(dir, 'ovsdb-server.pid'))).toBeUndefined();
    } finally {
      run('bash', [SANDBOX_SCRIPT, 'stop', dir]);
      run('rm', ['-rf', dir]);
    }
  });

  it('rejects an unknown command with usage help', () => {
    expect(() => run('bash', [SANDBOX_SCRIPT, 'frobnicate', '/tmp/x'])).toThrow(/unknown command/);
    expect(run('bash', [SANDBOX_SCRIPT, '--help'])).toMatch(/restart-vswitchd/);
  });
});
