/**
 * The warm port pool (src/binding/pool.ts) with the vhost-user driver on a private DPDK OVS:
 * the pool fills with real dpdkvhostuser ports whose sockets ovs-vswitchd made; a client-mode
 * plug takes one in one transaction and the pod's socket carries the VIF's name; testpmd
 * passes packets through it; unplug deletes the port (no reuse) and the pool refills in a
 * batch; a restarted agent adopts the pool and rebuilds pooled attachments; an ovs-vswitchd
 * restart brings a pooled socket back to the pod; a port claimed elsewhere is not handed out.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { OvsdbClient } from '../../src/ovsdb/client';
import { Vswitch } from '../../src/vswitch/vswitch';
import { VhostUserDriver } from '../../src/binding/vhostuser';
import {
  POOL_KEY,
  POOL_PORT_NAME,
  PoolSet,
  pooledBridges,
  SOCKET_NAME_KEY,
  VhostUserPortPool,
} from '../../src/binding/pool';
import { makeVHostUserVif, type VIFVHostUser } from '../../src/vif/model';
import { vhostUserPortName } from '../../src/vif/names';
import { VSWITCH_CACHE } from '../../src/vswitch/rows';
import { useSandbox, type Sandbox } from '../helpers/sandbox';
import { expectTrafficBetween, type Testpmd } from '../helpers/testpmd';
import { describeIf, firstReason, needsOvs, needsRoot, needsTestpmd } from '../helpers/skip';
import { waitFor } from '../helpers/proc';
import { DirWatcher } from '../../src/os/inotify';
import { countVhostUserPorts } from '../../src/binding/capacity';

const vifOf = (mode: 'client' | 'server', mount: string): VIFVHostUser =>
  makeVHostUserVif(mode, mount, { network: { bridge: 'br-int' } });

/** Pool ports of br-int still free in OVSDB (ovs-vsctl's view). */
function freePoolPorts(sb: Sandbox): string[] {
  return sb
    .vsctl('--bare', '--columns=name', 'find', 'Interface', `external_ids:${POOL_KEY}=br-int`)
    .split('\n')
    .map((l) => l.trim())
    .filter(
      (n) =>
        POOL_PORT_NAME.test(n) && !sb.vsctl('get', 'Interface', n, 'external_ids').includes('vhostplug-container-id'),
    );
}

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: true }), needsTestpmd()))(
  'warm port pool on a private DPDK OVS',
  () => {
    const sandbox = useSandbox();
    let client: OvsdbClient;
    let vswitch: Vswitch;
    let mount: string;
    const pmds: Testpmd[] = [];
    const pools: VhostUserPortPool[] = [];

    function agent(size: number, lowWater?: number): { pool: VhostUserPortPool; driver: VhostUserDriver } {
      const pool = new VhostUserPortPool(vswitch, {
        bridge: 'br-int',
        size,
        lowWater,
        ovsVhuPath: sandbox().runDir,
        timeoutMs: 20_000,
      });
      pools.push(pool);
      const driver = new VhostUserDriver(vswitch, {
        mountPoint: mount,
        ovsVhuPath: sandbox().runDir,
        fsync: false,
        pools: (b) => (b === 'br-int' ? pool : undefined),
      });
      return { pool, driver };
    }

    beforeAll(async () => {
      client = await OvsdbClient.connect(sandbox().db, { cache: VSWITCH_CACHE });
      vswitch = new Vswitch(client);
      mount = path.join(sandbox().dir, 'vhostuser');
      fs.mkdirSync(mount);
    });
    afterEach(async () => {
      await Promise.all(pmds.splice(0).map((t) => t.stop()));
      for (const p of pools.splice(0)) await p.drain();
    });
    afterAll(() => client?.close());

    it('fills with dpdkvhostuser ports whose sockets are ready; a client plug takes one; testpmd traffic; unplug deletes it and the pool refills', async () => {
      const sb = sandbox();
      const { pool, driver } = agent(3, 3);
      await pool.start();
      const filled = freePoolPorts(sb);
      expect(filled.length).toBe(3);
      for (const n of filled) {
        expect(sb.vsctl('get', 'Interface', n, 'type').trim()).toBe('dpdkvhostuser');
        expect(fs.lstatSync(path.join(sb.runDir, n)).isSocket()).toBe(true);
        expect(Number(sb.vsctl('get', 'Interface', n, 'ofport').trim())).toBeGreaterThan(0);
      }
      expect(pool.stats()).toMatchObject({ available: 3, created: 3, refills: 1, hits: 0 });

      // A client-mode plug: the port is a pool port, the pod's socket has the VIF's name.
      const vif = vifOf('client', mount);
      const podUid = randomUUID();
      const r = await driver.connect({ vif, containerId: 'pooled-a', ifname: 'eth0', podUid });
      expect(POOL_PORT_NAME.test(r.vifName)).toBe(true);
      expect(filled).toContain(r.vifName);
      expect(r.socketPath).toBe(path.join(mount, vhostUserPortName(vif.id)));
      expect(fs.lstatSync(r.socketPath).isSocket()).toBe(true);
      expect(fs.existsSync(path.join(sb.runDir, r.vifName))).toBe(false);
      expect(r.timings.socketWaitMs).toBe(0);
      const ids = sb.vsctl('get', 'Interface', r.vifName, 'external_ids');
      for (const kv of [
        `iface-id="${vif.id}"`,
        `attached-mac="${vif.address}"`,
        `vm-uuid="${podUid}"`,
        'vhostplug-container-id=pooled-a',
        `${SOCKET_NAME_KEY}=${vhostUserPortName(vif.id)}`,
        `${POOL_KEY}=br-int`,
      ]) {
        expect(ids).toContain(kv);
      }
      expect(JSON.parse(fs.readFileSync(path.join(mount, 'pooled-a-eth0'), 'utf8'))).toMatchObject({
        vhostname: vhostUserPortName(vif.id),
        mode: 'client',
        socket_path: r.socketPath,
      });
      // The take dropped the pool under its low-water mark: it refills back to 3 free ports.
      await waitFor(async () => (await pool.settled(), pool.stats().available === 3), 'the pool to refill', 20_000, 50);
      expect(freePoolPorts(sb).length).toBe(3);

      // Real packets through the pooled port: a server-mode pod on the same bridge talks to it.
      const peer = vifOf('server', mount);
      const p = await driver.connect({ vif: peer, containerId: 'pooled-peer', ifname: 'eth0' });
      await expectTrafficBetween(
        sb,
        { vifName: p.vifName, socketPath: p.socketPath, mac: peer.address! },
        { vifName: r.vifName, socketPath: r.socketPath, mac: vif.address! },
        pmds,
      );

      // Unplug: the port is deleted (a pod touched it), socket and config file go.
      const gone = await driver.disconnect({ containerId: 'pooled-a', ifname: 'eth0' });
      expect(gone).toMatchObject({ vifName: r.vifName, removed: { port: true, socket: true, configFile: true } });
      expect(sb.vsctl('list-ports', 'br-int')).not.toContain(r.vifName);
      expect(fs.existsSync(r.socketPath)).toBe(false);
      await driver.disconnect({ containerId: 'pooled-peer', ifname: 'eth0' });
      // Server mode is never pooled.
      expect(POOL_PORT_NAME.test(p.vifName)).toBe(false);
    }, 90_000);

    it('a restarted agent adopts the free ports and rebuilds a pooled attachment; ovs-vswitchd restart brings its socket back', async () => {
      const sb = sandbox();
      const first = agent(2, 2);
      await first.pool.start();
      const vif = vifOf('client', mount);
      const r = await first.driver.connect({ vif, containerId: 'pooled-r', ifname: 'eth0' });
      await first.pool.settled();
      const free = freePoolPorts(sb).sort();
      expect(free.length).toBe(2);
      first.pool.close();

      // A new agent (daemon restart): same OVSDB, nothing in memory.
      const second = agent(2, 2);
      await second.pool.start();
      expect(second.pool.stats()).toMatchObject({ available: 2, created: 0, deleted: 0 });
      expect(freePoolPorts(sb).sort()).toEqual(free);
      const rebuilt = second.driver.rebuildFromOvsdb().find((a) => a.containerId === 'pooled-r')!;
      expect(rebuilt).toMatchObject({ vifName: r.vifName, socketPath: r.socketPath, mode: 'client', pool: 'br-int' });

      // ovs-vswitchd restarts: it re-creates the pooled port's socket under the OVS name; the
      // driver moves it back to the pod's (VIF-named) path; the free pool ports get theirs back.
      second.driver.startSocketRecovery();
      const restored = new Promise<void>((resolve) => second.driver.once('socket-restored', () => resolve()));
      await sb.restartVswitchd();
      await restored;
      expect(fs.lstatSync(r.socketPath).isSocket()).toBe(true);
      expect(fs.existsSync(path.join(sb.runDir, r.vifName))).toBe(false);
      await waitFor(
        () => free.every((n) => fs.existsSync(path.join(sb.runDir, n))),
        'the free pool sockets to come back',
        20_000,
        50,
      );
      second.driver.stopSocketRecovery();
      // A re-plug of the same attachment keeps its pooled port (idempotent).
      const again = await second.driver.connect({ vif, containerId: 'pooled-r', ifname: 'eth0' });
      expect(again).toMatchObject({ vifName: r.vifName, created: false, socketPath: r.socketPath });
      await second.driver.disconnect({ containerId: 'pooled-r', ifname: 'eth0' });
      expect(sb.vsctl('list-ports', 'br-int')).not.toContain(r.vifName);
    }, 90_000);

    it('reconcile drops pool ports without a socket; a port claimed elsewhere is not handed out; an empty pool falls back to a plain plug', async () => {
      const sb = sandbox();
      const { pool, driver } = agent(2, 0);
      await pool.start();
      const [a, b] = freePoolPorts(sb);
      // a: its socket vanished (a crashed take moved it); b: another agent claimed it.
      fs.unlinkSync(path.join(sb.runDir, a!));
      sb.vsctl('set', 'Interface', b!, 'external_ids:vhostplug-container-id=elsewhere');
      const vif = vifOf('client', mount);
      const r = await driver.connect({ vif, containerId: 'pooled-f', ifname: 'eth0' });
      // Neither could be used: a plain port with the VIF's own name.
      expect(r.vifName).toBe(vhostUserPortName(vif.id));
      // The lost claim left b's socket to its owner, and our config file names our own socket.
      expect(fs.lstatSync(path.join(sb.runDir, b!)).isSocket()).toBe(true);
      expect(JSON.parse(fs.readFileSync(r.configPath, 'utf8'))).toMatchObject({
        vhostname: r.vifName,
        socket_path: r.socketPath,
      });
      expect(pool.stats().misses + pool.stats().hits).toBeGreaterThan(0);
      await driver.disconnect({ containerId: 'pooled-f', ifname: 'eth0' });
      await pool.reconcile();
      expect(sb.vsctl('list-ports', 'br-int')).not.toContain(a!);
      expect(freePoolPorts(sb).length).toBe(2);
      sb.vsctl('del-port', 'br-int', b!);
    }, 90_000);

    it("per-pod layout: a pooled claim puts the socket in the pod's directory with the pod's owner and mode (already so when it appears there), the config file and interfaces.json owned too", async () => {
      const sb = sandbox();
      const { pool, driver } = agent(2, 2);
      await pool.start();
      const podUid = randomUUID();
      const access = { uid: 4242, gid: 4343, socketMode: 0o660 };
      const dir = path.join(mount, podUid);
      const plug = (ifname: string) =>
        driver.connect({
          vif: vifOf('client', mount),
          containerId: 'pooled-pp',
          ifname,
          podUid,
          socketLayout: 'per-pod',
          access,
        });
      const first = await plug('net1');
      expect(POOL_PORT_NAME.test(first.vifName)).toBe(true);
      expect(path.dirname(first.socketPath)).toBe(dir);
      await pool.settled();

      // The second interface of the pod: watch its directory and look at the socket the moment
      // it appears there (the rename): owner and mode are already the pod's.
      const seen: { name: string; uid: number; gid: number; mode: number }[] = [];
      const w = new DirWatcher(dir, (ev) => {
        if (ev.type !== 'moved_to' && ev.type !== 'create') return;
        try {
          const st = fs.lstatSync(path.join(dir, ev.name));
          if (st.isSocket()) seen.push({ name: ev.name, uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 });
        } catch {
          // gone again
        }
      });
      let second: Awaited<ReturnType<typeof plug>>;
      try {
        second = await plug('net2');
        await waitFor(() => seen.length > 0, 'the inotify event of the socket', 5_000, 10);
      } finally {
        w.close();
      }
      expect(POOL_PORT_NAME.test(second.vifName)).toBe(true);
      expect(seen[0]).toEqual({ name: path.basename(second.socketPath), uid: 4242, gid: 4343, mode: 0o660 });
      const st = fs.lstatSync(second.socketPath);
      expect([st.isSocket(), st.uid, st.gid, st.mode & 0o777]).toEqual([true, 4242, 4343, 0o660]);
      expect(fs.existsSync(path.join(sb.runDir, second.vifName))).toBe(false);
      const cfg = fs.statSync(second.configPath);
      expect([path.dirname(second.configPath), cfg.uid, cfg.gid]).toEqual([dir, 4242, 4343]);
      expect(JSON.parse(fs.readFileSync(second.configPath, 'utf8'))).toMatchObject({
        vhostname: path.basename(second.socketPath),
        socket_path: second.socketPath,
      });
      const index = JSON.parse(fs.readFileSync(path.join(dir, 'interfaces.json'), 'utf8')) as {
        interfaces: { ifname: string; vhostname: string; socket: string }[];
      };
      expect(index.interfaces.map((i) => [i.ifname, i.vhostname, i.socket]).sort()).toEqual([
        ['net1', path.basename(first.socketPath), path.basename(first.socketPath)],
        ['net2', path.basename(second.socketPath), path.basename(second.socketPath)],
      ]);
      expect(fs.statSync(path.join(dir, 'interfaces.json')).uid).toBe(4242);
      // CHECK finds nothing wrong with a pooled attachment in its pod's directory.
      expect(await driver.check({ containerId: 'pooled-pp', ifname: 'net2' })).toEqual([]);
      // A restarted agent places it again from OVSDB (layout, pod, owner, socket name).
      const again = agent(2, 2);
      const rebuilt = again.driver
        .rebuildFromOvsdb()
        .find((a) => a.containerId === 'pooled-pp' && a.ifname === 'net2')!;
      expect(rebuilt).toMatchObject({
        vifName: second.vifName,
        socketPath: second.socketPath,
        socketLayout: 'per-pod',
        uid: 4242,
        pool: 'br-int',
      });
      again.pool.close();

      await driver.disconnect({ containerId: 'pooled-pp', ifname: 'net1' });
      expect(fs.existsSync(dir)).toBe(true);
      const gone = await driver.disconnect({ containerId: 'pooled-pp', ifname: 'net2' });
      expect(gone.removed).toMatchObject({ port: true, socket: true, configFile: true, podDir: true });
      expect(fs.existsSync(dir)).toBe(false);
    }, 90_000);

    it("capacity: refills take slots of the switch's vhost-user budget and stop at its limit; a pooled claim needs none; pool ports are vhostplug's, not foreign", async () => {
      const sb = sandbox();
      const count = () => countVhostUserPorts(vswitch.rows.interfaces());
      const before = count();
      // A limit that leaves room for 2 new vhost-user ports.
      const driver = new VhostUserDriver(vswitch, {
        mountPoint: mount,
        ovsVhuPath: sb.runDir,
        fsync: false,
        vhostUserPortLimit: before.total + 2,
        pools: () => pool,
      });
      const pool: VhostUserPortPool = new VhostUserPortPool(vswitch, {
        bridge: 'br-int',
        size: 4,
        lowWater: 4,
        ovsVhuPath: sb.runDir,
        timeoutMs: 20_000,
        budget: driver.budget,
      });
      pools.push(pool);
      await pool.start();
      expect(pool.stats()).toMatchObject({ available: 2, created: 2 });
      expect(count()).toMatchObject({ total: before.total + 2, foreign: before.foreign });
      expect(driver.budget.inFlight).toBe(0);
      // At the limit: a pooled claim still plugs (the port exists and is counted) ...
      const r = await driver.connect({ vif: vifOf('client', mount), containerId: 'pooled-cap', ifname: 'eth0' });
      expect(POOL_PORT_NAME.test(r.vifName)).toBe(true);
      await pool.settled();
      expect(count().total).toBe(before.total + 2);
      // ... a plain plug is refused before any change, and the pool did not grow past the limit.
      await expect(
        driver.connect({ vif: vifOf('server', mount), containerId: 'plain-cap', ifname: 'eth0' }),
      ).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(pool.stats().available).toBe(1);
      // The unplug frees a slot; the next reconcile refills into it.
      await driver.disconnect({ containerId: 'pooled-cap', ifname: 'eth0' });
      await pool.reconcile();
      expect(pool.stats().available).toBe(2);
      expect(count().total).toBe(before.total + 2);
    }, 90_000);

    it('PoolSet: one pool per bridge, the first size wins; pooledBridges reads kuryr.conf', async () => {
      const set = new PoolSet(vswitch, { ovsVhuPath: sandbox().runDir, timeoutMs: 20_000 });
      const p = set.ensure('br-int', 1);
      pools.push(p);
      expect(set.ensure('br-int', 5)).toBe(p);
      expect(set.get('br-other')).toBeUndefined();
      await p.settled();
      await waitFor(() => set.stats()[0]!.available === 1, 'the set pool to fill', 20_000, 50);
      set.close();
      expect(pooledBridges('', 'br-int')).toEqual(['br-int']);
      expect(pooledBridges(' br-a, br-b ', 'br-int')).toEqual(['br-a', 'br-b']);
      expect(pooledBridges('', null)).toEqual(['br-int']);
      expect(() => new VhostUserPortPool(vswitch, { bridge: 'br-int', size: -1, ovsVhuPath: '/x' })).toThrow(
        RangeError,
      );
    }, 60_000);
  },
);
