/**
 * A bad-input corpus through the real shim and daemon: each case gets the right CNI error
 * code, in the request's cniVersion where one could be read, and leaves nothing behind: no
 * port, socket, config/device-info file, IP reservation or state file, and no file
 * anywhere in the test tree (or the OVS run dir) that was not there before.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon';
import { useSandbox } from '../helpers/sandbox';
import { describeIf, firstReason, needsBinaries, needsOvs, needsRoot } from '../helpers/skip';
import {
  cniEnv,
  fakeNetns,
  HOST_LOCAL,
  leftovers,
  makeDirs,
  netconf,
  NOTHING,
  runShim,
  SHIM,
  startTestDaemon,
  tree,
  type DaemonDirs,
} from './daemon-harness';

interface Case {
  name: string;
  env: Record<string, string | undefined>;
  /** The config object (serialised) or raw stdin text. */
  stdin: Record<string, unknown> | string | Buffer;
  code: number;
  /** The version the error must be worded in (default: the config's, else 1.1.0). */
  version?: string;
}

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: true }), needsBinaries(SHIM, HOST_LOCAL)))(
  'daemon: bad-input corpus',
  () => {
    const sandbox = useSandbox();
    let d: DaemonDirs;
    let daemon: Daemon;
    let ns: string;

    beforeAll(async () => {
      d = makeDirs(sandbox(), 'bad');
      ns = fakeNetns(d, 'pod');
      daemon = await startTestDaemon(sandbox(), d);
    }, 60_000);
    afterAll(async () => {
      await daemon?.stop();
    });

    function cases(): Case[] {
      const good = netconf(d, '1.1.0', 'client');
      const add = (extra: Record<string, string | undefined> = {}) => ({
        ...cniEnv('ADD', 'bad0', 'net1', ns),
        ...extra,
      });
      const c = (name: string, env: Case['env'], stdin: Case['stdin'], code: number, version?: string): Case => ({
        name,
        env,
        stdin,
        code,
        version,
      });
      const conf = (patch: Record<string, unknown>) => ({ ...good, ...patch });
      return [
        // decoding (6)
        c('malformed JSON', add(), '{"cniVersion":"1.1.0","name":', 6),
        c('empty stdin', add(), '', 6),
        c('a JSON array', add(), '[1,2]', 6),
        c('invalid UTF-8 / binary', add(), Buffer.from([0xff, 0xfe, 0x00, 0x7b]), 6),
        c('oversize stdin (1 MiB + 1)', add(), JSON.stringify(conf({ pad: 'x'.repeat(1024 * 1024) })), 6),
        // environment (4)
        c('CNI_COMMAND missing', add({ CNI_COMMAND: undefined }), good, 4),
        c('CNI_COMMAND unknown', add({ CNI_COMMAND: 'PLUG' }), good, 4),
        c('CNI_CONTAINERID missing', add({ CNI_CONTAINERID: undefined }), good, 4),
        c('CNI_NETNS missing on ADD', add({ CNI_NETNS: undefined }), good, 4),
        c('CNI_IFNAME missing', add({ CNI_IFNAME: undefined }), good, 4),
        c('CNI_PATH missing', add({ CNI_PATH: undefined }), good, 4),
        c('container id path traversal', add({ CNI_CONTAINERID: '../../../etc/cron.d/x' }), good, 4),
        c('container id with a slash', add({ CNI_CONTAINERID: 'abc/def' }), good, 4),
        c('container id starting with a dot', add({ CNI_CONTAINERID: '..abc' }), good, 4),
        c('container id too long', add({ CNI_CONTAINERID: 'a'.repeat(240) }), good, 4),
        c('ifname traversal', add({ CNI_IFNAME: '../../x' }), good, 4),
        c('ifname ".."', add({ CNI_IFNAME: '..' }), good, 4),
        c('ifname too long', add({ CNI_IFNAME: 'eth0123456789abc' }), good, 4),
        c('ifname with a colon', add({ CNI_IFNAME: 'eth0:1' }), good, 4),
        c('CNI_NETNS relative', add({ CNI_NETNS: 'var/run/netns/x' }), good, 4),
        c('CNI_NETNS with ..', add({ CNI_NETNS: '/var/run/netns/../../etc' }), good, 4),
        c('CNI_PATH entry relative', add({ CNI_PATH: 'usr/lib/cni' }), good, 4),
        c('CNI_ARGS not K=V', add({ CNI_ARGS: 'IgnoreUnknown' }), good, 4),
        c('CNI_ARGS bad MAC', add({ CNI_ARGS: 'IgnoreUnknown=1;MAC=zz:zz:zz:zz:zz:zz' }), good, 4),
        c('CNI_ARGS multicast MAC', add({ CNI_ARGS: 'IgnoreUnknown=1;MAC=01:00:5e:00:00:01' }), good, 4),
        // versions (1)
        c('unknown cniVersion', add(), conf({ cniVersion: '9.9.9' }), 1, '1.1.0'),
        c('no cniVersion (implies 0.1.0)', add(), (({ cniVersion: _v, ...rest }) => rest)(good), 1),
        c('0.2.0 (no rich result)', add(), conf({ cniVersion: '0.2.0' }), 1, '1.1.0'),
        c('CHECK with 0.3.1', { ...add(), CNI_COMMAND: 'CHECK' }, conf({ cniVersion: '0.3.1' }), 1, '0.3.1'),
        c('GC with 1.0.0', { CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }, conf({ cniVersion: '1.0.0' }), 1, '1.0.0'),
        c(
          'STATUS with 0.4.0',
          { CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni' },
          conf({ cniVersion: '0.4.0' }),
          1,
          '0.4.0',
        ),
        // config (7)
        c('unknown mode', add(), conf({ mode: 'vdpa' }), 7),
        c('type of another plugin', add(), conf({ type: 'bridge' }), 7),
        c('name missing', add(), conf({ name: undefined }), 7),
        c('mtu as a string', add(), conf({ mtu: '1500' }), 7),
        c('mtu out of range', add(), conf({ mtu: 10 }), 7),
        c('bridge as a number', add(), conf({ bridge: 5 }), 7),
        c('bridge name too long / odd', add(), conf({ bridge: 'br-int-much-too-long' }), 7),
        c('bridge with a slash', add(), conf({ bridge: '../br' }), 7),
        c('ipam not an object', add(), conf({ ipam: 'host-local' }), 7),
        c('ipam type with a path', add(), conf({ ipam: { type: '../../../bin/sh' } }), 7),
        c('ipam plugin not in CNI_PATH', add(), conf({ ipam: { type: 'no-such-ipam' } }), 7),
        c('capabilities not booleans', add(), conf({ capabilities: { CNIDeviceInfoFile: 'yes' } }), 7),
        c('bad MAC in runtimeConfig', add(), conf({ runtimeConfig: { mac: 'zz:00:00:00:00:01' } }), 7),
        c('multicast MAC in runtimeConfig', add(), conf({ runtimeConfig: { mac: '01:00:5e:00:00:01' } }), 7),
        c(
          'device-info file outside its dir',
          add(),
          conf({
            capabilities: { CNIDeviceInfoFile: true },
            runtimeConfig: { CNIDeviceInfoFile: '/etc/vhostplug-pwned' },
          }),
          7,
        ),
        c(
          'device-info file traversal',
          add(),
          conf({ runtimeConfig: { CNIDeviceInfoFile: path.join(d.devinfo, '..', 'x') } }),
          7,
        ),
        c('daemonSocket relative', add(), conf({ daemonSocket: 'run/d.sock' }), 7),
        c('kuryrConf relative', add(), conf({ kuryrConf: 'etc/kuryr.conf' }), 7),
        c('cniVersions not strings', add(), conf({ cniVersions: [1, 2] }), 7),
        c(
          'prevResult garbage on CHECK',
          { ...add(), CNI_COMMAND: 'CHECK' },
          conf({ prevResult: { ips: [{ address: 'nope' }] } }),
          7,
        ),
        c('GC without cni.dev/valid-attachments', { CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }, good, 7),
        c(
          'valid-attachments junk on GC',
          { CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' },
          conf({ 'cni.dev/valid-attachments': [{ containerID: '../x', ifname: 'eth0' }] }),
          7,
        ),
        // a failing veth ADD (the pod netns does not exist) is rolled back
        c(
          'veth into a missing netns',
          add({ CNI_NETNS: '/run/netns/vhostplug-no-such-netns' }),
          conf({ mode: 'veth' }),
          5,
        ),
      ];
    }

    it('each case gets its code, in the right version, and leaves nothing behind', async () => {
      const before = { root: tree(d.root), run: tree(sandbox().runDir), etc: fs.existsSync('/etc/vhostplug-pwned') };
      const wrong: string[] = [];
      for (const k of cases()) {
        const env = Object.fromEntries(Object.entries(k.env).filter((e): e is [string, string] => e[1] !== undefined));
        const stdin = typeof k.stdin === 'string' || Buffer.isBuffer(k.stdin) ? k.stdin : JSON.stringify(k.stdin);
        const r = await runShim(d.socket, env, stdin);
        const want =
          k.version ??
          (typeof k.stdin === 'object' && !Buffer.isBuffer(k.stdin) && typeof k.stdin.cniVersion === 'string'
            ? k.stdin.cniVersion
            : '1.1.0');
        const got = r.json;
        if (r.code !== 1 || got?.code !== k.code || got?.cniVersion !== want || typeof got?.msg !== 'string') {
          wrong.push(`${k.name}: want code ${k.code} (${want}), got exit ${r.code} ${r.stdout.slice(0, 300)}`);
        }
      }
      expect(wrong).toEqual([]);
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
      // Nothing created anywhere in the tree or the OVS run dir (the pod netns file was there before).
      expect(tree(d.root).filter((p) => !p.startsWith('ipam'))).toEqual(
        before.root.filter((p) => !p.startsWith('ipam')),
      );
      expect(tree(sandbox().runDir).filter((p) => /^vhu|^\.vhu/.test(p))).toEqual([]);
      expect(fs.existsSync('/etc/vhostplug-pwned')).toBe(before.etc);
      // And the daemon still works.
      const ok = await runShim(
        d.socket,
        cniEnv('ADD', 'after', 'net1', ns),
        JSON.stringify(netconf(d, '1.1.0', 'client')),
      );
      expect(ok.code, ok.stdout).toBe(0);
      expect(
        (await runShim(d.socket, cniEnv('DEL', 'after', 'net1', ns), JSON.stringify(netconf(d, '1.1.0', 'client'))))
          .code,
      ).toBe(0);
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
    }, 120_000);

    it('DEL of bad or unknown input: bad names are refused (4), unknown attachments succeed', async () => {
      const conf = JSON.stringify(netconf(d, '1.1.0', 'server'));
      const trav = await runShim(d.socket, cniEnv('DEL', '../../etc', 'net1'), conf);
      expect([trav.code, trav.json?.code]).toEqual([1, 4]);
      const unknown = await runShim(d.socket, cniEnv('DEL', 'never-added', 'net1'), conf);
      expect(unknown.code, unknown.stdout).toBe(0);
      // A device-info path ADD would have refused does not make DEL fail forever.
      const odd = await runShim(
        d.socket,
        cniEnv('DEL', 'never-added', 'net1'),
        JSON.stringify({ ...JSON.parse(conf), runtimeConfig: { CNIDeviceInfoFile: '/etc/passwd' } }),
      );
      expect(odd.code, odd.stdout).toBe(0);
      expect(fs.existsSync('/etc/passwd')).toBe(true);
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
    }, 60_000);
  },
);
