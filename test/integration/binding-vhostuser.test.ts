/**
 * The vhost-user driver end to end on a private DPDK OVS, with dpdk-testpmd as the pod's
 * DPDK application: both modes pass packets, the client-mode socket survives an
 * ovs-vswitchd restart, unplug leaves nothing, and every fault is rolled back.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { OvsdbClient } from '../../src/ovsdb/client';
import { VSWITCH_CACHE } from '../../src/vswitch/rows';
import { Vswitch } from '../../src/vswitch/vswitch';
import { VhostUserDriver, type VhostUserDriverOptions } from '../../src/binding/vhostuser';
import { BindingError } from '../../src/binding/driver';
import { DirWatcher } from '../../src/os/inotify';
import { makeVHostUserVif, type VIFVHostUser } from '../../src/vif/model';
import { vhostUserPortName } from '../../src/vif/names';
import { useSandbox, type Sandbox } from '../helpers/sandbox';
import { expectTrafficBetween, type Testpmd } from '../helpers/testpmd';
import { describeIf, firstReason, needsOvs, needsRoot, needsTestpmd } from '../helpers/skip';
import { run } from '../helpers/proc';

function makeVif(mode: 'client' | 'server', mountPoint: string, bridge = 'br-int'): VIFVHostUser {
  return makeVHostUserVif(mode, mountPoint, { network: { bridge } });
}

function portNames(sb: Sandbox): string[] {
  return sb.vsctl('list-ports', 'br-int').split('\n').filter(Boolean);
}

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: true }), needsTestpmd()))(
  'vhost-user driver on a private DPDK OVS',
  () => {
    const sandbox = useSandbox();
    let client: OvsdbClient;
    let vswitch: Vswitch;
    let mount: string;
    const pmds: Testpmd[] = [];
    const extraMounts: string[] = [];

    function driver(extra: Partial<VhostUserDriverOptions> = {}): VhostUserDriver {
      return new VhostUserDriver(vswitch, { mountPoint: mount, ovsVhuPath: sandbox().runDir, fsync: false, ...extra });
    }

    /** Nothing of the attachment is left: port, socket (both dirs), config file. */
    function expectNothingLeft(vif: VIFVHostUser, containerId: string, ifname: string, mountPoint = mount): void {
      const name = vhostUserPortName(vif.id);
      expect(portNames(sandbox())).not.toContain(name);
      expect(fs.existsSync(path.join(mountPoint, name))).toBe(false);
      expect(fs.existsSync(path.join(mountPoint, `${containerId}-${ifname}`))).toBe(false);
      expect(fs.readdirSync(mountPoint).filter((f) => f.startsWith('.'))).toEqual([]);
    }

    beforeAll(async () => {
      client = await OvsdbClient.connect(sandbox().db, { cache: VSWITCH_CACHE });
      vswitch = new Vswitch(client);
      mount = path.join(sandbox().dir, 'vhostuser');
      fs.mkdirSync(mount);
    });
    afterEach(async () => {
      await Promise.all(pmds.splice(0).map((t) => t.stop()));
    });
    afterAll(() => {
      for (const m of extraMounts) {
        try {
          run('umount', [m]);
          fs.rmdirSync(m);
        } catch {
          // best effort
        }
      }
      client?.close();
    });

    it('server and client mode: ports, socket, config files, and testpmd traffic through both', async () => {
      const d = driver();
      const server = makeVif('server', mount);
      const clientVif = makeVif('client', mount);
      const a = await d.connect({ vif: server, containerId: 'ctr-a', ifname: 'eth0', podUid: randomUUID() });
      // The inode OVS's socket had when vswitchd created it (this watcher is registered before
      // the driver's, so it sees the entry before the driver moves it).
      let ovsIno = -1;
      const clientName = vhostUserPortName(clientVif.id);
      const w = new DirWatcher(sandbox().runDir, (ev) => {
        if (ev.type === 'create' && ev.name === clientName)
          ovsIno = fs.lstatSync(path.join(sandbox().runDir, clientName)).ino;
      });
      const b = await d.connect({ vif: clientVif, containerId: 'ctr-b', ifname: 'net1' });
      w.close();
      const sb = sandbox();
      expect(ovsIno).toBeGreaterThan(0);
      expect(fs.lstatSync(b.socketPath).ino).toBe(ovsIno);

      // Server mode: OVS is the vhost-user client of <mount>/<vif_name>; no socket touched.
      expect(sb.vsctl('get', 'Interface', a.vifName, 'type').trim()).toBe('dpdkvhostuserclient');
      expect(sb.vsctl('get', 'Interface', a.vifName, 'options:vhost-server-path').trim()).toBe(
        `"${path.join(mount, a.vifName)}"`,
      );
      expect(fs.readFileSync(path.join(mount, `ctr-a-eth0`), 'utf8')).toBe(
        `{"vhostname": "${a.vifName}", "vhostmac": "${server.address}", "mode": "server", "socket_path": "${a.socketPath}", "mtu": 1500, "generation": 1, "version": 1}`,
      );
      expect(fs.statSync(path.join(mount, 'ctr-a-eth0')).mode & 0o777).toBe(0o644);

      // Client mode: OVS created the socket in its run dir; it now sits in the mount dir.
      expect(sb.vsctl('get', 'Interface', b.vifName, 'type').trim()).toBe('dpdkvhostuser');
      expect(fs.lstatSync(b.socketPath).isSocket()).toBe(true);
      expect(fs.existsSync(path.join(sb.runDir, b.vifName))).toBe(false);
      expect(JSON.parse(fs.readFileSync(path.join(mount, 'ctr-b-net1'), 'utf8'))).toMatchObject({
        vhostname: b.vifName,
        mode: 'client',
      });
      expect(b.timings.socketWaitMs).toBeGreaterThanOrEqual(0);

      // Real packets: testpmd is the server for A and a client of the moved socket for B.
      await expectTrafficBetween(
        sb,
        { vifName: a.vifName, socketPath: a.socketPath, mac: server.address! },
        { vifName: b.vifName, socketPath: b.socketPath, mac: clientVif.address! },
        pmds,
      );

      // Unplug leaves nothing (and again: idempotent).
      await d.disconnect({ containerId: 'ctr-a', ifname: 'eth0' });
      await d.disconnect({ containerId: 'ctr-b', ifname: 'net1' });
      expectNothingLeft(server, 'ctr-a', 'eth0');
      expectNothingLeft(clientVif, 'ctr-b', 'net1');
      const again = await d.disconnect({ containerId: 'ctr-b', ifname: 'net1' });
      expect(again.removed).toEqual({ port: false, socket: false, configFile: false });
    });

    it('client mode survives an ovs-vswitchd restart: the socket is moved back within 100 ms and traffic resumes', async () => {
      const d = driver();
      d.startSocketRecovery();
      const peer = makeVif('server', mount);
      const vif = makeVif('client', mount);
      const p = await d.connect({ vif: peer, containerId: 'ctr-p', ifname: 'eth0' });
      const c = await d.connect({ vif, containerId: 'ctr-r', ifname: 'eth0' });
      const sb = sandbox();

      // When did OVS re-create the socket, and when was it back in the pod's dir?
      let createdAt = 0;
      const w = new DirWatcher(sb.runDir, (ev) => {
        if (ev.type === 'create' && ev.name === c.vifName) createdAt = performance.now();
      });
      const restored = new Promise<number>((resolve) => d.once('socket-restored', () => resolve(performance.now())));
      await sb.restartVswitchd();
      const restoredAt = await restored;
      w.close();
      expect(createdAt).toBeGreaterThan(0);
      expect(restoredAt - createdAt).toBeLessThan(100);
      expect(fs.lstatSync(c.socketPath).isSocket()).toBe(true);
      expect(JSON.parse(fs.readFileSync(c.configPath, 'utf8')).generation).toBe(2);

      // A new DPDK app connects to the same path and passes packets, without a replug.
      await expectTrafficBetween(
        sb,
        { vifName: p.vifName, socketPath: p.socketPath, mac: peer.address! },
        { vifName: c.vifName, socketPath: c.socketPath, mac: vif.address! },
        pmds,
      );
      d.stopSocketRecovery();
      await d.disconnect({ containerId: 'ctr-p', ifname: 'eth0' });
      await d.disconnect({ containerId: 'ctr-r', ifname: 'eth0' });
      expectNothingLeft(vif, 'ctr-r', 'eth0');
    });

    it('socket recovery re-arms after ovs_vhu_path is removed and re-created', async () => {
      const vif = makeVif('client', mount);
      const att = await driver().connect({ vif, containerId: 'ctr-w', ifname: 'eth0' });
      // A second driver (a restarted daemon) whose ovs_vhu_path we can delete: it learns the
      // attachment from OVSDB alone.
      const dir = fs.mkdtempSync(path.join(sandbox().dir, 'vhu-dir-'));
      const d = driver({ ovsVhuPath: dir });
      expect(d.rebuildFromOvsdb().map((a) => a.vifName)).toContain(att.vifName);
      d.startSocketRecovery();
      expect(d.health().ok).toBe(true);
      fs.rmSync(dir, { recursive: true });
      await expect.poll(() => d.health().problems.join(' '), { timeout: 2000 }).toMatch(/not watching/);
      fs.mkdirSync(dir);
      await expect.poll(() => d.health().ok, { timeout: 3000 }).toBe(true);
      const restored = new Promise<number>((resolve) =>
        d.once('socket-restored', (e) => resolve(e.attachment.generation)),
      );
      const srv = net.createServer().listen(path.join(dir, att.vifName));
      await new Promise((r) => srv.once('listening', r));
      expect(await restored).toBe(2);
      expect(fs.lstatSync(att.socketPath).isSocket()).toBe(true);
      srv.close();
      d.stopSocketRecovery();
      await d.disconnect({ containerId: 'ctr-w', ifname: 'eth0' });
      expectNothingLeft(vif, 'ctr-w', 'eth0');
    });

    it('EXDEV: a mount point on another tmpfs fails the plug with a typed error and leaves nothing', async () => {
      const other = fs.mkdtempSync(path.join(os.tmpdir(), 'vhp-other-mount-'));
      run('mount', ['-t', 'tmpfs', 'none', other]);
      extraMounts.push(other);
      const d = driver({ mountPoint: other });
      expect(d.health().ok).toBe(false);
      expect(d.health().problems.join('\n')).toMatch(/cross-mount setup detected/);
      const vif = makeVif('client', other);
      const err = await d.connect({ vif, containerId: 'ctr-x', ifname: 'eth0' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BindingError);
      expect((err as BindingError).code).toBe('EXDEV');
      expect((err as Error).message).toContain(other);
      expect((err as Error).message).toContain(sandbox().runDir);
      expectNothingLeft(vif, 'ctr-x', 'eth0', other);
      await expect.poll(() => fs.existsSync(path.join(sandbox().runDir, vhostUserPortName(vif.id)))).toBe(false);
    });

    it('vswitchd cannot realise the port (its socket path is taken): VswitchdError, and the committed port is rolled back', async () => {
      const vif = makeVif('client', mount);
      const blocker = path.join(sandbox().runDir, vhostUserPortName(vif.id));
      fs.writeFileSync(blocker, 'not a socket');
      const err = await driver()
        .connect({ vif, containerId: 'ctr-v', ifname: 'eth0' })
        .catch((e: unknown) => e);
      fs.unlinkSync(blocker);
      expect(err).toBeInstanceOf(BindingError);
      expect((err as BindingError).step).toBe('plug');
      expect((err as BindingError).code).toBe('EOVSDBVSWITCHD');
      expect((err as Error).message).toContain(vhostUserPortName(vif.id));
      expectNothingLeft(vif, 'ctr-v', 'eth0');
    });

    it('a socket that never appears times out, and the port is rolled back', async () => {
      const emptyDir = fs.mkdtempSync(path.join(sandbox().dir, 'not-ovs-'));
      const d = driver({ ovsVhuPath: emptyDir, socketTimeoutMs: 300 });
      const vif = makeVif('client', mount);
      const err = await d.connect({ vif, containerId: 'ctr-t', ifname: 'eth0' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BindingError);
      expect((err as BindingError).step).toBe('socket');
      expect((err as BindingError).code).toBe('ETIMEDOUT');
      expectNothingLeft(vif, 'ctr-t', 'eth0');
    });

    it('an OVSDB refusal (bridge of another datapath) fails the plug and writes nothing', async () => {
      const sb = sandbox();
      sb.vsctl('--no-wait', 'add-br', 'br-kern');
      await expect.poll(() => client.cache.lookup('Bridge', 'name', 'br-kern') !== undefined).toBe(true);
      const vif = makeVif('server', mount, 'br-kern');
      const err = await driver()
        .connect({ vif, containerId: 'ctr-o', ifname: 'eth0' })
        .catch((e: unknown) => e);
      expect((err as BindingError).step).toBe('plug');
      expect((err as BindingError).code).toBe('EDATAPATH');
      expect(sb.vsctl('list-ports', 'br-kern').trim()).toBe('');
      expectNothingLeft(vif, 'ctr-o', 'eth0');
      sb.vsctl('--no-wait', 'del-br', 'br-kern');
    });

    it('bad names and a too-long socket path are refused before anything is written', async () => {
      const d = driver();
      const vif = makeVif('server', mount);
      for (const [containerId, ifname] of [
        ['../../etc', 'eth0'],
        ['ctr', '../x'],
        ['ctr', 'a-very-long-ifname-over-15'],
        ['', 'eth0'],
      ] as const) {
        const err = await d.connect({ vif, containerId, ifname }).catch((e: unknown) => e);
        expect((err as BindingError).step).toBe('validate');
        expect((err as BindingError).code).toBe('EVALIDATION');
      }
      const noId = { ...vif, id: undefined as unknown as string, vif_name: undefined };
      const e0 = (await d
        .connect({ vif: noId, containerId: 'c', ifname: 'eth0' })
        .catch((e: unknown) => e)) as BindingError;
      expect(e0.step).toBe('validate');
      expect(e0.message).toMatch(/port id/);
      const badMac = { ...vif, address: 'ff:ff:ff:ff:ff:ff' };
      expect(
        ((await d.connect({ vif: badMac, containerId: 'c', ifname: 'eth0' }).catch((e: unknown) => e)) as BindingError)
          .step,
      ).toBe('validate');
      const deep = path.join(mount, 'x'.repeat(100));
      fs.mkdirSync(deep);
      const long = new VhostUserDriver(vswitch, { mountPoint: deep, ovsVhuPath: sandbox().runDir });
      const e2 = await long.connect({ vif, containerId: 'ctr-l', ifname: 'eth0' }).catch((e: unknown) => e);
      expect((e2 as Error).message).toMatch(/107/);
      expectNothingLeft(vif, 'ctr-l', 'eth0');
      fs.rmdirSync(deep);
    });

    it('a symlink planted in the mount dir is not followed: the plug fails and is rolled back', async () => {
      const d = driver();
      const vif = makeVif('server', mount);
      const victim = path.join(sandbox().dir, 'victim');
      fs.writeFileSync(victim, 'untouched');
      fs.symlinkSync(victim, path.join(mount, 'ctr-s-eth0'));
      const err = await d.connect({ vif, containerId: 'ctr-s', ifname: 'eth0' }).catch((e: unknown) => e);
      expect((err as BindingError).step).toBe('config-file');
      expect(fs.readFileSync(victim, 'utf8')).toBe('untouched');
      expect(portNames(sandbox())).not.toContain(vhostUserPortName(vif.id));
      fs.unlinkSync(path.join(mount, 'ctr-s-eth0'));
    });

    it('DEL removes a client-mode socket left in ovs_vhu_path after its port is gone (vswitchd could not unlink it, e.g. EROFS)', async () => {
      const d = driver();
      const vif = makeVif('client', mount);
      const name = vhostUserPortName(vif.id);
      // What a failed rename (mount dir read-only) leaves once the rollback removed the port and
      // vswitchd's own unlink failed too: OVS's socket, with no port.
      const stale = path.join(sandbox().runDir, name);
      run('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', stale]);
      expect(portNames(sandbox())).not.toContain(name);
      const res = await d.disconnect({ containerId: 'ctr-stale', ifname: 'eth0', vif });
      expect(res.removed.port).toBe(false);
      expect(fs.existsSync(stale)).toBe(false);
      // Never anything but a socket.
      fs.writeFileSync(stale, 'not a socket');
      await d.disconnect({ containerId: 'ctr-stale', ifname: 'eth0', vif });
      expect(fs.readFileSync(stale, 'utf8')).toBe('not a socket');
      fs.unlinkSync(stale);
      expectNothingLeft(vif, 'ctr-stale', 'eth0');
    });

    it('a repeated plug is idempotent; a config file rewritten by the pod does not steer the unplug', async () => {
      const d = driver();
      const vif = makeVif('client', mount);
      const first = await d.connect({ vif, containerId: 'ctr-i', ifname: 'eth0' });
      const second = await d.connect({ vif, containerId: 'ctr-i', ifname: 'eth0' });
      expect(first.created).toBe(true);
      expect(second.created).toBe(false);
      expect(portNames(sandbox()).filter((n) => n === first.vifName)).toHaveLength(1);
      expect(fs.lstatSync(first.socketPath).isSocket()).toBe(true);

      // The pod rewrites its config file to point at something else; DEL must ignore it.
      const bait = path.join(mount, 'bait.sock');
      fs.writeFileSync(bait, 'not ours');
      fs.writeFileSync(first.configPath, JSON.stringify({ vhostname: '../bait.sock', vhostmac: 'x', mode: 'client' }));
      const fresh = driver(); // a restarted daemon: no in-memory state, names come from OVSDB
      const res = await fresh.disconnect({ containerId: 'ctr-i', ifname: 'eth0' });
      expect(res).toEqual({ vifName: first.vifName, removed: { port: true, socket: true, configFile: true } });
      expect(fs.readFileSync(bait, 'utf8')).toBe('not ours');
      fs.unlinkSync(bait);
      expectNothingLeft(vif, 'ctr-i', 'eth0');
    });
  },
);
