/**
 * IPAM delegation against Debian's real host-local (containernetworking-plugins, 1.1.1 here:
 * it speaks up to CNI 1.0.0 and has no GC/STATUS), with a private dataDir per test.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { parseCniEnv } from '../../src/cni/env';
import { CniError } from '../../src/cni/errors';
import {
  commonVersion,
  execPlugin,
  findPlugin,
  ipamAdd,
  ipamCheck,
  ipamDel,
  ipamGc,
  ipamStatus,
  pluginVersions,
} from '../../src/cni/ipam';
import { parseNetConf, type NetConf } from '../../src/cni/netconf';
import { encodeResult, vhostUserResult } from '../../src/cni/result';
import { describeIf, needsBinaries } from '../helpers/skip';

const CNI_DIR = '/usr/lib/cni';
const HOST_LOCAL = path.join(CNI_DIR, 'host-local');

describeIf(needsBinaries(HOST_LOCAL))('IPAM delegation to host-local', () => {
  let dataDir: string;

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhostplug-ipam-'));
  });
  afterEach(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  function conf(version = '1.1.0', extra: Record<string, unknown> = {}): NetConf {
    return parseNetConf({
      cniVersion: version,
      name: 'dpdk-net',
      type: 'vhostplug',
      mode: 'client',
      ipam: {
        type: 'host-local',
        dataDir,
        ranges: [[{ subnet: '10.77.0.0/29', gateway: '10.77.0.1' }], [{ subnet: 'fd77::/120' }]],
        routes: [{ dst: '0.0.0.0/0' }],
      },
      ...extra,
    });
  }

  function env(command: string, containerId = 'c0ffee', ifname = 'net1') {
    return parseCniEnv({
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: '/var/run/netns/x',
      CNI_IFNAME: ifname,
      CNI_PATH: `/nonexistent:${CNI_DIR}`,
    });
  }

  /** Reservation files host-local keeps: one per allocated IP, named by the address. */
  function reserved(): string[] {
    const dir = path.join(dataDir, 'dpdk-net');
    if (!fs.existsSync(dir)) return [];
    return fs
      .readdirSync(dir)
      .filter((f) => !f.startsWith('last_reserved_ip') && f !== 'lock')
      .sort();
  }

  it('finds the plugin along CNI_PATH and negotiates down to its newest version', async () => {
    expect(await findPlugin('host-local', ['/nonexistent', CNI_DIR])).toBe(HOST_LOCAL);
    await expect(findPlugin('host-local', ['/nonexistent'])).rejects.toMatchObject({ cniCode: 7 });
    await expect(findPlugin('../host-local', [CNI_DIR])).rejects.toMatchObject({ cniCode: 7 });
    const versions = await pluginVersions(HOST_LOCAL);
    expect(versions).toContain('0.4.0');
    // host-local 1.1.1 tops out at 1.0.0: a 1.1.0 config is delegated as 1.0.0.
    const common = commonVersion('1.1.0', versions);
    expect(common === '1.0.0' || common === '1.1.0').toBe(true);
    expect(commonVersion('0.3.1', versions)).toBe('0.3.1');
  });

  it('ADD allocates, CHECK passes, DEL releases and is idempotent (1.1.0 config)', async () => {
    const c = conf();
    const res = await ipamAdd(c, env('ADD'));
    expect(res.ips.map((i) => i.address)).toEqual(['10.77.0.2/29', 'fd77::2/120']);
    expect(res.ips[0]!.gateway).toBe('10.77.0.1');
    // host-local returns routes as configured (no gw: the default gateway applies).
    expect(res.routes).toEqual([{ dst: '0.0.0.0/0' }]);
    expect(reserved()).toEqual(['10.77.0.2', 'fd77::2']);

    // The attachment's full result, fed back as prevResult for CHECK and DEL.
    const full = vhostUserResult({ ifname: 'net1', mac: '0a:00:00:00:00:01', socketPath: '/run/x', ipam: res });
    const withPrev = conf('1.1.0', { prevResult: encodeResult(full, '1.1.0') });
    expect(await ipamCheck(withPrev, env('CHECK'))).toEqual({});

    await ipamDel(withPrev, env('DEL'));
    expect(reserved()).toEqual([]);
    // Repeated DEL, and DEL without prevResult or netns, still succeed.
    await ipamDel(withPrev, env('DEL'));
    await ipamDel(
      conf(),
      parseCniEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c0ffee', CNI_IFNAME: 'net1', CNI_PATH: CNI_DIR }),
    );
    expect(reserved()).toEqual([]);
  });

  it('CHECK fails once the reservation is gone (host-local error passed up)', async () => {
    const c = conf('0.4.0');
    const res = await ipamAdd(c, env('ADD', 'abc'));
    const withPrev = conf('0.4.0', { prevResult: encodeResult(res, '0.4.0') });
    await ipamDel(withPrev, env('DEL', 'abc'));
    const err = await ipamCheck(withPrev, env('CHECK', 'abc')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).msg).toMatch(/.+/);
  });

  it("allocates distinct addresses per attachment and reports exhaustion as the plugin's error", async () => {
    const got = new Set<string>();
    // /29 minus network, gateway and broadcast: 5 addresses.
    for (let i = 0; i < 5; i++) {
      const r = await ipamAdd(conf(), env('ADD', `pod${i}`));
      got.add(r.ips[0]!.address);
    }
    expect(got.size).toBe(5);
    const err = await ipamAdd(conf(), env('ADD', 'pod-extra')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).msg).toContain('no IP addresses available');
    for (let i = 0; i < 5; i++) await ipamDel(conf(), env('DEL', `pod${i}`));
    expect(reserved()).toEqual([]);
  });

  it('every supported config version works end to end', async () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
      const r = await ipamAdd(conf(v), env('ADD', `v${v.replace(/\./g, '')}`));
      expect(r.ips, v).toHaveLength(2);
      await ipamDel(conf(v), env('DEL', `v${v.replace(/\./g, '')}`));
    }
    expect(reserved()).toEqual([]);
  });

  it('GC and STATUS are skipped, not failed, when the delegate predates CNI 1.1', async () => {
    const versions = await pluginVersions(HOST_LOCAL);
    const gcEnv = parseCniEnv({ CNI_COMMAND: 'GC', CNI_PATH: CNI_DIR });
    const gc = await ipamGc(conf('1.1.0', { 'cni.dev/valid-attachments': [] }), gcEnv);
    const status = await ipamStatus(conf(), parseCniEnv({ CNI_COMMAND: 'STATUS', CNI_PATH: CNI_DIR }));
    if (versions.includes('1.1.0')) {
      expect(gc).toEqual({});
      expect(status).toEqual({});
    } else {
      expect(gc.skipped).toContain('does not support GC');
      expect(status.skipped).toContain('does not support STATUS');
    }
  });

  it('a missing IPAM section or plugin is a config error (7); a plugin that fails is reported with its code', async () => {
    const noIpam = parseNetConf({ cniVersion: '1.1.0', name: 'n', type: 'vhostplug' });
    await expect(ipamAdd(noIpam, env('ADD'))).rejects.toMatchObject({ cniCode: 7 });
    const missing = parseNetConf({ cniVersion: '1.1.0', name: 'n', type: 'vhostplug', ipam: { type: 'no-such-ipam' } });
    await expect(ipamAdd(missing, env('ADD'))).rejects.toMatchObject({
      cniCode: 7,
      msg: 'failed to find plugin "no-such-ipam" in path',
    });
    // host-local with no ranges: its own invalid-config error comes back.
    const broken = parseNetConf({
      cniVersion: '1.0.0',
      name: 'n',
      type: 'vhostplug',
      ipam: { type: 'host-local', dataDir },
    });
    const err = (await ipamAdd(broken, env('ADD')).catch((e: unknown) => e)) as CniError;
    expect(err).toBeInstanceOf(CniError);
    expect(err.cniCode).toBeGreaterThan(0);
    expect(err.msg.length).toBeGreaterThan(0);
  });

  it("runs the delegate with only the caller's CNI_* environment", async () => {
    const probe = path.join(dataDir, 'probe');
    fs.writeFileSync(
      probe,
      '#!/bin/sh\nenv | sort | grep -v "^PWD=\\|^SHLVL=\\|^_=" > "$0.env"\necho \'{"cniVersion":"1.0.0","ips":[]}\'\n',
      { mode: 0o755 },
    );
    process.env.VHOSTPLUG_TEST_LEAK = 'should-not-leak';
    try {
      await execPlugin(probe, { CNI_COMMAND: 'ADD', CNI_IFNAME: 'net1' }, '{}');
    } finally {
      delete process.env.VHOSTPLUG_TEST_LEAK;
    }
    const seen = fs.readFileSync(`${probe}.env`, 'utf8').trim().split('\n');
    expect(seen.filter((l) => !l.startsWith('PATH='))).toEqual(['CNI_COMMAND=ADD', 'CNI_IFNAME=net1']);
  });

  it('a hung delegate is killed at the timeout (code 5)', async () => {
    const hang = path.join(dataDir, 'hang');
    fs.writeFileSync(hang, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
    const t0 = Date.now();
    await expect(execPlugin(hang, { CNI_COMMAND: 'ADD' }, '{}', { timeoutMs: 300 })).rejects.toMatchObject({
      cniCode: 5,
    });
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
