/**
 * Every CNI command for every supported version, driven as a runtime drives a plugin: the
 * real `vhostplug-cni` shim with the CNI environment and the config on stdin, in front of
 * the daemon (in this process), on a private DPDK OVS, with Debian's host-local IPAM.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { run } from '../helpers/proc';
import type { Daemon } from '../../src/daemon/daemon';
import { Reconciler } from '../../src/daemon/reconciler';
import { installCniCommand } from '../../src/cli/install-cni';
import { stablePortName } from '../../src/daemon/cni-plugin';
import { stateFileName } from '../../src/daemon/state';
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
  startTestDaemon,
  type DaemonDirs,
} from './daemon-harness';

const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
const atLeast = (v: string, min: string) => v.localeCompare(min, undefined, { numeric: true }) >= 0;

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: true }), needsBinaries(SHIM, HOST_LOCAL)))(
  'daemon: CNI commands through the shim',
  () => {
    const sandbox = useSandbox();
    let d: DaemonDirs;
    let daemon: Daemon;
    let seq = 0;

    beforeAll(async () => {
      d = makeDirs(sandbox(), 'cni');
      daemon = await startTestDaemon(sandbox(), d, { vswitchdPidFile: path.join(sandbox().dir, 'ovs-vswitchd.pid') });
    }, 60_000);
    afterAll(async () => {
      await daemon?.stop();
      deleteNetns(podNetns);
    });

    const podNetns: string[] = [];
    /** A real pod network namespace (veth). */
    function realNetns(id: string): { name: string; path: string } {
      const name = `vhpd-${process.pid}-${id}`.slice(0, 40);
      return { name, path: addNetns(name, podNetns) };
    }
    function dropNetns(name: string): void {
      run('ip', ['netns', 'delete', name]);
      podNetns.splice(podNetns.indexOf(name), 1);
    }
    const podAddrs = (ns: string, dev: string): string[] =>
      (
        JSON.parse(run('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', dev])) as {
          addr_info: { local: string; prefixlen: number }[];
        }[]
      )[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);

    for (const version of VERSIONS) {
      it(`${version} veth: ADD (link, MAC, address in a real pod netns), CHECK, DEL (twice, then with the netns gone)`, async () => {
        const cid = `v${version.replace(/\./g, '')}veth${++seq}`;
        const ns = realNetns(cid);
        const conf = netconf(d, version, 'veth');
        const add = await runShim(
          d.socket,
          cniEnv('ADD', cid, 'net1', ns.path, { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-v' }),
          JSON.stringify(conf),
        );
        expect(add.code, add.stdout).toBe(0);
        const res = add.json!;
        expect(res.cniVersion).toBe(version);
        const host = stablePortName(cid, 'net1', 'veth');
        const itfs = res.interfaces as Record<string, unknown>[];
        expect(itfs.map((i) => i.name)).toEqual([host, 'net1']);
        expect(itfs[1]!.sandbox).toBe(ns.path);
        // The host end carries its MAC too (docs/cni.md), the kernel's, as read back.
        const hostLink = JSON.parse(run('ip', ['-n', sandbox().netns, '-j', 'link', 'show', 'dev', host])) as {
          address: string;
        }[];
        expect(itfs[0]!.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
        expect(itfs[0]!.mac).toBe(hostLink[0]!.address);
        expect(itfs[0]!.sandbox).toBeUndefined();
        const ip = String((res.ips as Record<string, unknown>[])[0]!.address);
        expect((res.ips as Record<string, unknown>[])[0]!.interface).toBe(1);
        expect(podAddrs(ns.name, 'net1')).toContain(ip);
        const link = JSON.parse(run('ip', ['-n', ns.name, '-j', 'link', 'show', 'dev', 'net1'])) as {
          address: string;
          mtu: number;
        }[];
        expect(link[0]!.address).toBe(itfs[1]!.mac);
        expect(link[0]!.mtu).toBe(1500);
        expect(ports(sandbox())).toContain(host);
        expect(reservedIps(d)).toContain(ip.split('/')[0]);
        const withPrev = JSON.stringify({ ...conf, prevResult: res });
        const check = await runShim(d.socket, cniEnv('CHECK', cid, 'net1', ns.path), withPrev);
        if (atLeast(version, '0.4.0')) {
          expect(check.code, check.stdout).toBe(0);
          // The address removed inside the pod: CHECK notices.
          run('ip', ['-n', ns.name, 'addr', 'del', ip, 'dev', 'net1']);
          const bad = await runShim(d.socket, cniEnv('CHECK', cid, 'net1', ns.path), withPrev);
          expect([bad.code, bad.json?.code]).toEqual([1, 101]);
        } else expect([check.code, check.json?.code]).toEqual([1, 1]);
        expect((await runShim(d.socket, cniEnv('DEL', cid, 'net1', ns.path), withPrev)).code).toBe(0);
        expect(() => run('ip', ['-n', ns.name, 'link', 'show', 'dev', 'net1'])).toThrow();
        expect((await runShim(d.socket, cniEnv('DEL', cid, 'net1', ns.path), withPrev)).code).toBe(0);
        dropNetns(ns.name);
        expect((await runShim(d.socket, cniEnv('DEL', cid, 'net1', ns.path), JSON.stringify(conf))).code).toBe(0);
        expect(leftovers(sandbox(), d)).toEqual(NOTHING);
      }, 60_000);
    }

    it('veth: DEL after the pod netns vanished still removes the host end, the port and the IP', async () => {
      const ns = realNetns('vgone');
      const conf = JSON.stringify(netconf(d, '1.1.0', 'veth'));
      expect((await runShim(d.socket, cniEnv('ADD', 'vgone', 'eth0', ns.path), conf)).code).toBe(0);
      dropNetns(ns.name);
      expect((await runShim(d.socket, cniEnv('DEL', 'vgone', 'eth0', ns.path), conf)).code).toBe(0);
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
      const hostLinks = JSON.parse(run('ip', ['-n', sandbox().netns, '-j', 'link', 'show'])) as { ifname: string }[];
      expect(hostLinks.map((l) => l.ifname)).not.toContain(stablePortName('vgone', 'eth0', 'veth'));
    }, 60_000);

    for (const version of VERSIONS) {
      for (const mode of ['client', 'server'] as const) {
        it(`${version} ${mode}: ADD, CHECK, STATUS, GC, VERSION, DEL (twice, then without netns/prevResult)`, async () => {
          const cid = `c${version.replace(/\./g, '')}${mode}${++seq}`;
          const ns = fakeNetns(d, cid);
          const devFile = path.join(d.devinfo, `${cid}-net1.json`);
          const conf = netconf(d, version, mode, {
            capabilities: { CNIDeviceInfoFile: true },
            runtimeConfig: { CNIDeviceInfoFile: devFile },
          });
          const add = await runShim(
            d.socket,
            cniEnv('ADD', cid, 'net1', ns, {
              CNI_ARGS:
                'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-a;K8S_POD_UID=0a0b0a0b-0000-4000-8000-000000000001',
            }),
            JSON.stringify(conf),
          );
          expect(add.stderr).toBe('');
          expect(add.code, add.stdout).toBe(0);
          const res = add.json!;
          expect(res.cniVersion).toBe(version);
          const portName = stablePortName(cid, 'net1', 'vhostuser');
          const sock = path.join(d.mount, portName);
          const itf = (res.interfaces as Record<string, unknown>[])[0]!;
          expect(itf.name).toBe('net1');
          expect(itf.sandbox).toBeUndefined(); // no kernel interface claimed
          if (version === '1.1.0') {
            expect(itf.socketPath).toBe(sock);
            expect(itf.mtu).toBe(1500);
          } else {
            expect(itf.socketPath).toBeUndefined();
          }
          const ips = res.ips as Record<string, unknown>[];
          expect(ips).toHaveLength(1);
          expect(ips[0]!.address).toMatch(/^10\.99\.\d+\.\d+\/16$/);
          if (!atLeast(version, '1.0.0')) expect(ips[0]!.version).toBe('4');
          const ip = String(ips[0]!.address).split('/')[0]!;
          expect(reservedIps(d)).toContain(ip);
          expect(ports(sandbox())).toContain(portName);
          const iface = sandbox().vsctlJson('--columns=type,external_ids', 'list', 'Interface', portName);
          expect(iface.data[0]![0]).toBe(mode === 'client' ? 'dpdkvhostuser' : 'dpdkvhostuserclient');
          if (mode === 'client') expect(fs.lstatSync(sock).isSocket()).toBe(true);
          const cfg = JSON.parse(fs.readFileSync(path.join(d.mount, `${cid}-net1`), 'utf8')) as Record<string, unknown>;
          expect(cfg).toMatchObject({ vhostname: portName, mode, socket_path: sock });
          expect(JSON.parse(fs.readFileSync(devFile, 'utf8'))).toEqual({
            type: 'vhost-user',
            version: '1.1.0',
            'vhost-user': { mode, path: sock },
          });
          const rec = JSON.parse(fs.readFileSync(path.join(d.state, stateFileName(cid, 'net1')), 'utf8')) as Record<
            string,
            unknown
          >;
          expect(rec.phase).toBe('added');

          // A retried ADD gets the same answer and plugs nothing new.
          const again = await runShim(d.socket, cniEnv('ADD', cid, 'net1', ns), JSON.stringify(conf));
          expect(again.code).toBe(0);
          expect(again.json).toEqual(res);
          if (version === '1.1.0' && mode === 'server') {
            // A retried ADD whose port was removed behind our back is redone from scratch (same
            // names; the old reservation released, a new one taken), not answered from state.
            sandbox().vsctl('del-port', 'br-int', portName);
            await new Promise((r) => setTimeout(r, 100));
            const replug = await runShim(d.socket, cniEnv('ADD', cid, 'net1', ns), JSON.stringify(conf));
            expect(replug.code, replug.stdout).toBe(0);
            expect(ports(sandbox())).toContain(portName);
            const newIp = String((replug.json!.ips as { address: string }[])[0]!.address);
            expect(reservedIps(d)).toEqual([newIp.split('/')[0]]);
            Object.assign(res, replug.json);
          }

          const withPrev = JSON.stringify({ ...conf, prevResult: res });
          const check = await runShim(d.socket, cniEnv('CHECK', cid, 'net1', ns), withPrev);
          if (atLeast(version, '0.4.0')) expect(check.code, check.stdout).toBe(0);
          else expect([check.code, check.json?.code, check.json?.cniVersion]).toEqual([1, 1, version]);

          const status = await runShim(
            d.socket,
            { CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni' },
            JSON.stringify(conf),
          );
          const gc = await runShim(
            d.socket,
            { CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' },
            JSON.stringify({ ...conf, 'cni.dev/valid-attachments': [{ containerID: cid, ifname: 'net1' }] }),
          );
          if (version === '1.1.0') {
            expect(status.code, status.stdout).toBe(0);
            expect(gc.code, gc.stdout).toBe(0);
            expect(ports(sandbox())).toContain(portName); // valid: kept
          } else {
            expect([status.code, status.json?.code]).toEqual([1, 1]);
            expect([gc.code, gc.json?.code]).toEqual([1, 1]);
          }

          const ver = await runShim(d.socket, { CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: version }));
          expect(ver.code).toBe(0);
          expect(ver.json).toEqual({ cniVersion: version, supportedVersions: [...VERSIONS] });

          const del = await runShim(d.socket, cniEnv('DEL', cid, 'net1', ns), withPrev);
          expect(del.code, del.stdout).toBe(0);
          expect(del.stdout).toBe('');
          expect(leftovers(sandbox(), d)).toEqual(NOTHING);
          // Idempotent, and fine with the netns and prevResult gone.
          fs.rmSync(ns);
          expect((await runShim(d.socket, cniEnv('DEL', cid, 'net1', ns), withPrev)).code).toBe(0);
          expect((await runShim(d.socket, cniEnv('DEL', cid, 'net1'), JSON.stringify(conf))).code).toBe(0);
          expect(leftovers(sandbox(), d)).toEqual(NOTHING);
        }, 60_000);
      }
    }

    it("install-cni output works as a runtime uses it: the installed binary with the conflist's plugin config", async () => {
      const bin = path.join(d.root, 'opt-cni-bin');
      const confDir = path.join(d.root, 'net.d');
      const write = process.stdout.write;
      process.stdout.write = (() => true) as typeof process.stdout.write;
      try {
        expect(
          await installCniCommand.run([
            '--bin-dir',
            bin,
            '--conf-dir',
            confDir,
            '--name',
            'dpdk-net',
            '--mode',
            'client',
            '--subnet',
            '10.98.0.0/24',
          ]),
        ).toBe(0);
      } finally {
        process.stdout.write = write;
      }
      const list = JSON.parse(fs.readFileSync(path.join(confDir, '10-dpdk-net.conflist'), 'utf8')) as {
        cniVersion: string;
        name: string;
        plugins: Record<string, unknown>[];
      };
      // What libcni hands the plugin: the list's name and version plus the plugin's own keys.
      const plugin = list.plugins[0]!;
      const conf = {
        cniVersion: list.cniVersion,
        name: list.name,
        ...plugin,
        ipam: { ...(plugin.ipam as object), dataDir: d.ipamData },
      };
      const installed = path.join(bin, 'vhostplug');
      const ns = fakeNetns(d, 'inst');
      // As containerd and CRI-O pass it: the conflist's default (per-pod) layout needs K8S_POD_UID.
      const args = {
        CNI_ARGS:
          'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=inst;K8S_POD_UID=0f0e0d0c-0b0a-4000-8000-000000000001',
      };
      const add = await runShim(
        d.socket,
        cniEnv('ADD', 'inst', 'net1', ns, args),
        JSON.stringify(conf),
        60_000,
        installed,
      );
      expect(add.code, add.stdout).toBe(0);
      expect(String((add.json!.ips as { address: string }[])[0]!.address)).toMatch(/^10\.98\.0\./);
      expect(fs.readdirSync(path.join(d.mount, '0f0e0d0c-0b0a-4000-8000-000000000001')).sort()).toEqual(
        ['inst-net1', 'interfaces.json', stablePortName('inst', 'net1', 'vhostuser')].sort(),
      );
      expect(
        (await runShim(d.socket, cniEnv('DEL', 'inst', 'net1', ns, args), JSON.stringify(conf), 60_000, installed))
          .code,
      ).toBe(0);
      const ver = await runShim(d.socket, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.1.0"}', 60_000, installed);
      expect(ver.json?.supportedVersions).toContain('1.1.0');
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
    }, 60_000);

    it('the shim socket is 0600 in a 0700 directory', () => {
      expect(fs.lstatSync(d.socket).isSocket()).toBe(true);
      expect(fs.statSync(d.socket).mode & 0o777).toBe(0o600);
      expect(fs.statSync(path.dirname(d.socket)).mode & 0o777).toBe(0o700);
      expect(fs.statSync(d.state).mode & 0o777).toBe(0o700);
    });

    it('ADD, DEL and CHECK of one attachment racing each other: serialised, each attachment ends whole or gone', async () => {
      const conf = netconf(d, '1.1.0', 'client');
      const ids = Array.from({ length: 8 }, (_, i) => `race${i}`);
      const nss = ids.map((id) => fakeNetns(d, id));
      const calls = ids.flatMap((id, i) => [
        runShim(d.socket, cniEnv('ADD', id, 'net1', nss[i]), JSON.stringify(conf)),
        runShim(d.socket, cniEnv('DEL', id, 'net1', nss[i]), JSON.stringify(conf)),
        runShim(d.socket, cniEnv('ADD', id, 'net1', nss[i]), JSON.stringify(conf)),
        runShim(d.socket, cniEnv('CHECK', id, 'net1', nss[i]), JSON.stringify(conf)),
      ]);
      const out = await Promise.all(calls);
      // ADD and DEL always succeed; CHECK succeeds or says "unknown" (it ran while none was added).
      out.forEach((r, k) => {
        if (k % 4 === 3) expect(r.code === 0 || r.json?.code === 3, r.stdout).toBe(true);
        else expect(r.code, r.stdout).toBe(0);
      });
      const present = new Set(ports(sandbox()));
      for (const [i, id] of ids.entries()) {
        const name = stablePortName(id, 'net1', 'vhostuser');
        const files = [
          path.join(d.mount, name),
          path.join(d.mount, `${id}-net1`),
          path.join(d.state, stateFileName(id, 'net1')),
        ].map((f) => fs.existsSync(f));
        if (present.has(name)) {
          expect(files, id).toEqual([true, true, true]);
          expect((await runShim(d.socket, cniEnv('CHECK', id, 'net1', nss[i]), JSON.stringify(conf))).code).toBe(0);
        } else expect(files, id).toEqual([false, false, false]);
      }
      for (const [i, id] of ids.entries())
        expect((await runShim(d.socket, cniEnv('DEL', id, 'net1', nss[i]), JSON.stringify(conf))).code).toBe(0);
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
    }, 60_000);

    it('GC removes every attachment of the network not in cni.dev/valid-attachments (and only of that network)', async () => {
      const conf = netconf(d, '1.1.0', 'client');
      const other = {
        ...netconf(d, '1.1.0', 'server'),
        name: 'other-net',
        ipam: { ...(conf.ipam as object), dataDir: path.join(d.root, 'ipam-other') },
      };
      const ids = ['gc-keep', 'gc-drop1', 'gc-drop2'];
      for (const id of ids)
        expect((await runShim(d.socket, cniEnv('ADD', id, 'net1', fakeNetns(d, id)), JSON.stringify(conf))).code).toBe(
          0,
        );
      expect(
        (await runShim(d.socket, cniEnv('ADD', 'gc-other', 'net1', fakeNetns(d, 'gc-other')), JSON.stringify(other)))
          .code,
      ).toBe(0);
      expect(reservedIps(d)).toHaveLength(3);
      const gc = await runShim(
        d.socket,
        { CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' },
        JSON.stringify({ ...conf, 'cni.dev/valid-attachments': [{ containerID: 'gc-keep', ifname: 'net1' }] }),
      );
      expect(gc.code, gc.stdout).toBe(0);
      expect(ports(sandbox()).sort()).toEqual(
        [stablePortName('gc-keep', 'net1', 'vhostuser'), stablePortName('gc-other', 'net1', 'vhostuser')].sort(),
      );
      expect(reservedIps(d)).toHaveLength(1);
      for (const [id, c] of [
        ['gc-keep', conf],
        ['gc-other', other],
      ] as const)
        expect((await runShim(d.socket, cniEnv('DEL', id, 'net1'), JSON.stringify(c))).code).toBe(0);
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
    }, 60_000);

    it('CHECK reports what is wrong: unknown attachment (3), socket gone, config file changed (101)', async () => {
      const conf = netconf(d, '1.1.0', 'client');
      const unknown = await runShim(
        d.socket,
        cniEnv('CHECK', 'nobody', 'net1', '/var/run/netns/nobody'),
        JSON.stringify(conf),
      );
      expect([unknown.code, unknown.json?.code]).toEqual([1, 3]);
      const ns = fakeNetns(d, 'chk');
      const add = await runShim(d.socket, cniEnv('ADD', 'chk', 'net1', ns), JSON.stringify(conf));
      expect(add.code).toBe(0);
      const withPrev = JSON.stringify({ ...conf, prevResult: add.json });
      const sock = path.join(d.mount, stablePortName('chk', 'net1', 'vhostuser'));
      fs.renameSync(sock, `${sock}.away`);
      const noSock = await runShim(d.socket, cniEnv('CHECK', 'chk', 'net1', ns), withPrev);
      expect([noSock.code, noSock.json?.code]).toEqual([1, 101]);
      expect(String(noSock.json?.details)).toContain('socket');
      fs.renameSync(`${sock}.away`, sock);
      expect((await runShim(d.socket, cniEnv('CHECK', 'chk', 'net1', ns), withPrev)).code).toBe(0);
      const cfgFile = path.join(d.mount, 'chk-net1');
      const text = fs.readFileSync(cfgFile, 'utf8');
      fs.writeFileSync(cfgFile, text.replace(/"mode": "client"/, '"mode": "server"'));
      const badCfg = await runShim(d.socket, cniEnv('CHECK', 'chk', 'net1', ns), withPrev);
      expect([badCfg.code, badCfg.json?.code]).toEqual([1, 101]);
      expect(String(badCfg.json?.details)).toContain('mode');
      // A prevResult with an address we never assigned fails too.
      const forged = { ...(add.json as object), ips: [{ address: '10.99.250.250/16' }] };
      const badPrev = await runShim(
        d.socket,
        cniEnv('CHECK', 'chk', 'net1', ns),
        JSON.stringify({ ...conf, prevResult: forged }),
      );
      expect(badPrev.code).toBe(1);
      expect((await runShim(d.socket, cniEnv('DEL', 'chk', 'net1', ns), withPrev)).code).toBe(0);
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
    }, 60_000);

    it('the reconciler tears down an added attachment whose netns is gone (and releases its IP)', async () => {
      const conf = netconf(d, '1.0.0', 'server');
      const ns = fakeNetns(d, 'gone');
      expect((await runShim(d.socket, cniEnv('ADD', 'gone', 'net1', ns), JSON.stringify(conf))).code).toBe(0);
      expect((await daemon.reconciler.runOnce(false)).dead).toEqual([]);
      fs.rmSync(ns);
      const report = await daemon.reconciler.runOnce(false);
      expect(report.dead).toEqual(['gone:net1']);
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
    }, 60_000);

    it('the reconciler removes orphans: an owned port with no record, stray sockets/config files, temp files; never foreign ones', async () => {
      const sb = sandbox();
      const orphan = stablePortName('orphan', 'net1', 'vhostuser');
      sb.vsctl(
        'add-port',
        'br-int',
        orphan,
        '--',
        'set',
        'Interface',
        orphan,
        'type=dpdkvhostuserclient',
        `options:vhost-server-path=${path.join(d.mount, orphan)}`,
        'external_ids:vhostplug-owner=vhostplug',
        'external_ids:vhostplug-container-id=orphan',
        'external_ids:vhostplug-ifname=net1',
      );
      // A port tagged as ours but not named by the CNI plugin (e.g. `vhostplug plug`): kept.
      sb.vsctl(
        'add-port',
        'br-int',
        'vhu12345678-9a',
        '--',
        'set',
        'Interface',
        'vhu12345678-9a',
        'type=internal',
        'external_ids:vhostplug-owner=vhostplug',
        'external_ids:vhostplug-container-id=manual',
        'external_ids:vhostplug-ifname=net1',
      );
      sb.vsctl('add-port', 'br-int', 'foreign0', '--', 'set', 'Interface', 'foreign0', 'type=internal');
      const straySock = path.join(d.mount, 'vhuaaaaaaaa-bb');
      // A socket file left by a process that is gone (net.Server would unlink its own on close).
      run('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(straySock)})`]);
      fs.writeFileSync(
        path.join(d.mount, 'deadpod-net1'),
        JSON.stringify({ vhostname: 'vhuaaaaaaaa-bb', vhostmac: '02:00:00:00:00:01', mode: 'client', version: 1 }),
      );
      fs.writeFileSync(path.join(d.mount, 'notes.txt'), 'an operator file, not ours');
      fs.writeFileSync(path.join(d.state, '.x:net1.json.tmp-1-abc'), '{');
      await daemon.runtime.client.ready();
      await new Promise((r) => setTimeout(r, 200)); // let the cache see the ports
      const rec = new Reconciler({
        plugin: daemon.plugin,
        state: daemon.state,
        vswitch: daemon.runtime.vswitch,
        graceMs: 0,
      });
      const report = await rec.runOnce(false);
      expect(report.orphanPorts).toEqual([orphan]);
      expect(report.strayFiles.map((f) => path.basename(f)).sort()).toEqual([
        '.x:net1.json.tmp-1-abc',
        'deadpod-net1',
        'vhuaaaaaaaa-bb',
      ]);
      expect(report.errors).toEqual([]);
      expect(ports(sb).sort()).toEqual(['foreign0', 'vhu12345678-9a']);
      expect(fs.readdirSync(d.mount)).toEqual(['notes.txt']);
      sb.vsctl('del-port', 'br-int', 'foreign0');
      sb.vsctl('del-port', 'br-int', 'vhu12345678-9a');
      fs.rmSync(path.join(d.mount, 'notes.txt'));
      expect(leftovers(sb, d)).toEqual(NOTHING);
    }, 30_000);

    it('STATUS answers 50 for a broken mount point and 51 when ovs-vswitchd is gone', async () => {
      const conf = JSON.stringify(netconf(d, '1.1.0', 'client'));
      const env = { CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni' };
      fs.renameSync(d.mount, `${d.mount}.moved`);
      try {
        const broken = await runShim(d.socket, env, conf);
        expect([broken.code, broken.json?.code]).toEqual([1, 50]);
        expect(String(broken.json?.details)).toContain('mount_point');
      } finally {
        fs.renameSync(`${d.mount}.moved`, d.mount);
      }
      expect((await runShim(d.socket, env, conf)).code).toBe(0);
      const pidFile = path.join(sandbox().dir, 'ovs-vswitchd.pid');
      const real = fs.readFileSync(pidFile, 'utf8');
      fs.writeFileSync(pidFile, '999999\n'); // a pid that is not running: what a crashed vswitchd leaves
      try {
        const down = await runShim(d.socket, env, conf);
        expect([down.code, down.json?.code]).toEqual([1, 51]);
      } finally {
        fs.writeFileSync(pidFile, real);
      }
      // A clean exit removes the pid file: gone after being seen is "not running" too.
      fs.renameSync(pidFile, `${pidFile}.away`);
      try {
        const gone = await runShim(d.socket, env, conf);
        expect([gone.code, gone.json?.code]).toEqual([1, 51]);
        expect(String(gone.json?.details)).toContain('is gone');
      } finally {
        fs.renameSync(`${pidFile}.away`, pidFile);
      }
      expect((await runShim(d.socket, env, conf)).code).toBe(0);
    }, 30_000);

    it('ovs-vswitchd really killed: STATUS 51; restarted: STATUS 0 and ADD works', async () => {
      const conf = JSON.stringify(netconf(d, '1.1.0', 'client'));
      const env = { CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni' };
      const pid = Number(fs.readFileSync(path.join(sandbox().dir, 'ovs-vswitchd.pid'), 'utf8').trim());
      process.kill(pid, 'SIGKILL');
      try {
        for (let i = 0; i < 100; i++) {
          const st = fs.existsSync(`/proc/${pid}/stat`) ? fs.readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
          if (!st || / Z /.test(st.slice(st.lastIndexOf(')')))) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        const down = await runShim(d.socket, env, conf);
        expect([down.code, down.json?.code], down.stdout).toEqual([1, 51]);
      } finally {
        await sandbox().restartVswitchd();
      }
      const up = await runShim(d.socket, env, conf);
      expect(up.code, up.stdout).toBe(0);
      const ns = fakeNetns(d, 'vsd');
      expect((await runShim(d.socket, cniEnv('ADD', 'vsd', 'net1', ns), conf)).code).toBe(0);
      expect((await runShim(d.socket, cniEnv('DEL', 'vsd', 'net1', ns), conf)).code).toBe(0);
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
    }, 60_000);

    it('OVSDB down: STATUS 50, ADD 11 (try again later) with nothing left; back up: ADD works', async () => {
      const conf = JSON.stringify(netconf(d, '1.1.0', 'client'));
      await sandbox().killDb();
      try {
        await new Promise((r) => setTimeout(r, 300));
        const st = await runShim(d.socket, { CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni' }, conf);
        expect([st.code, st.json?.code]).toEqual([1, 50]);
        const add = await runShim(d.socket, cniEnv('ADD', 'nodb', 'net1', fakeNetns(d, 'nodb')), conf);
        expect([add.code, add.json?.code]).toEqual([1, 11]);
        expect(fs.readdirSync(d.state)).toEqual([]);
        expect(reservedIps(d)).toEqual([]);
        // The reconciler does nothing against a cache it cannot trust.
        const skipped = await new Reconciler({
          plugin: daemon.plugin,
          state: daemon.state,
          vswitch: daemon.runtime.vswitch,
          graceMs: 0,
        }).runOnce(true);
        expect(skipped.errors.join()).toContain('pass skipped');
        expect(skipped.strayFiles).toEqual([]);
      } finally {
        await sandbox().startDb();
      }
      await daemon.runtime.client.ready(20_000);
      const add = await runShim(d.socket, cniEnv('ADD', 'nodb', 'net1', fakeNetns(d, 'nodb')), conf);
      expect(add.code, add.stdout).toBe(0);
      expect((await runShim(d.socket, cniEnv('DEL', 'nodb', 'net1'), conf)).code).toBe(0);
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
    }, 60_000);

    it('vhost-user as the pod\'s primary interface (eth0) with IPAM: warned on the shim\'s stderr (the runtime logs it); "vhostUserPrimary": "refuse" refuses with 7 and leaves nothing', async () => {
      const conf = netconf(d, '1.0.0', 'server');
      const ns = fakeNetns(d, 'prim');
      const add = await runShim(d.socket, cniEnv('ADD', 'prim', 'eth0', ns), JSON.stringify(conf));
      expect(add.code, add.stdout).toBe(0);
      expect(add.stderr).toMatch(
        /^vhostplug: warning: network "dpdk-net" makes the pod's primary interface eth0 a vhost-user port: .*pod IP.*"vhostUserPrimary": "refuse"/,
      );
      expect((await runShim(d.socket, cniEnv('DEL', 'prim', 'eth0', ns), JSON.stringify(conf))).code).toBe(0);
      // A secondary interface, or no IPAM (no pod IP to mislead with): no warning.
      const second = await runShim(d.socket, cniEnv('ADD', 'prim', 'net1', ns), JSON.stringify(conf));
      expect([second.code, second.stderr]).toEqual([0, '']);
      expect((await runShim(d.socket, cniEnv('DEL', 'prim', 'net1', ns), JSON.stringify(conf))).code).toBe(0);
      const { ipam: _ipam, ...noIpam } = conf;
      const bare = await runShim(d.socket, cniEnv('ADD', 'prim', 'eth0', ns), JSON.stringify(noIpam));
      expect([bare.code, bare.stderr]).toEqual([0, '']);
      expect((await runShim(d.socket, cniEnv('DEL', 'prim', 'eth0', ns), JSON.stringify(noIpam))).code).toBe(0);
      // Refused before any side effect.
      const refuse = await runShim(
        d.socket,
        cniEnv('ADD', 'prim', 'eth0', ns),
        JSON.stringify({ ...conf, vhostUserPrimary: 'refuse' }),
      );
      expect([refuse.code, refuse.json?.code, refuse.json?.msg]).toEqual([
        1,
        7,
        "vhost-user network on the pod's primary interface",
      ]);
      expect(leftovers(sandbox(), d)).toEqual(NOTHING);
      const bad = await runShim(
        d.socket,
        cniEnv('ADD', 'prim', 'eth0', ns),
        JSON.stringify({ ...conf, vhostUserPrimary: 'maybe' }),
      );
      expect([bad.code, bad.json?.code]).toEqual([1, 7]);
    }, 60_000);
  },
);
