/**
 * The warm port pool through the node daemon (real shim, real DPDK OVS): kuryr.conf's
 * [vhostplug] pool_size fills a pool at start; a client-mode CNI ADD takes a pool port and
 * records it; /metrics shows the pool; DEL removes the port and nothing else is left; a
 * restarted daemon adopts the pool instead of creating ports, and its reconciler removes a
 * pooled port whose record is gone; a netconf "pool" starts one where kuryr.conf has none.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon/daemon';
import { stateFileName } from '../../src/daemon/state';
import { CniMetrics } from '../../src/agent/metrics';
import { POOL_PORT_NAME } from '../../src/binding/pool';
import { waitFor } from '../helpers/proc';
import { useSandbox } from '../helpers/sandbox';
import { describeIf, firstReason, needsBinaries, needsOvs, needsRoot } from '../helpers/skip';
import {
  cniEnv,
  fakeNetns,
  HOST_LOCAL,
  loadTestConfig,
  makeDirs,
  netconf,
  ports,
  runShim,
  SHIM,
  type DaemonDirs,
} from './daemon-harness';

const pooled = (names: string[]) => names.filter((n) => POOL_PORT_NAME.test(n));

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: true }), needsBinaries(SHIM, HOST_LOCAL)))(
  'daemon: warm port pool',
  () => {
    const sandbox = useSandbox();
    let d: DaemonDirs;
    let daemon: Daemon | undefined;

    const start = (poolSize: number) => {
      const config = loadTestConfig(d);
      config.vhostplug.pool_size = poolSize;
      config.vhostplug.pool_low_water = poolSize;
      return Daemon.start({ config, fsync: false, reconcileIntervalMs: 0, deviceInfo: { allowedDirs: [d.devinfo] } });
    };

    beforeAll(() => {
      d = makeDirs(sandbox(), 'pool');
    });
    afterEach(async () => {
      await daemon?.stop();
      daemon = undefined;
    });
    afterAll(async () => {
      for (const n of pooled(ports(sandbox()))) sandbox().vsctl('--if-exists', 'del-port', 'br-int', n);
    });

    it('kuryr.conf pool: ADD takes a pool port, /metrics shows it, DEL deletes it; a restart adopts the pool; the reconciler removes an orphaned pooled port', async () => {
      const sb = sandbox();
      daemon = await start(2);
      await waitFor(() => daemon!.runtime.pools.get('br-int')?.stats().available === 2, 'the pool to fill', 20_000, 50);
      const free = pooled(ports(sb)).sort();
      expect(free.length).toBe(2);

      const conf = JSON.stringify(netconf(d, '1.1.0', 'client'));
      const add = await runShim(d.socket, cniEnv('ADD', 'poolc1', 'eth0', fakeNetns(d, 'poolc1')), conf);
      expect(add.code).toBe(0);
      const itf = (add.json!.interfaces as { name: string; socketPath?: string }[]).find((i) => i.socketPath)!;
      expect(fs.lstatSync(itf.socketPath!).isSocket()).toBe(true);
      const rec = JSON.parse(fs.readFileSync(path.join(d.state, stateFileName('poolc1', 'eth0')), 'utf8')) as {
        portName: string;
        socketPath: string;
      };
      expect(free).toContain(rec.portName);
      expect(rec.socketPath).toBe(itf.socketPath);
      await waitFor(
        () => daemon!.runtime.pools.get('br-int')!.stats().available === 2,
        'the pool to refill',
        20_000,
        50,
      );

      const m = new CniMetrics();
      m.observePools(() => daemon!.runtime.pools.stats());
      const text = m.expose();
      expect(text).toContain('vhostplug_pool_ports{bridge="br-int",state="available"} 2');
      expect(text).toContain('vhostplug_pool_takes_total{bridge="br-int",result="hit"} 1');
      expect(text).toMatch(/# TYPE vhostplug_pool_refills_total counter/);

      // A second attachment, then a restart: the new daemon adopts the 2 free ports.
      expect((await runShim(d.socket, cniEnv('ADD', 'poolc2', 'eth0', fakeNetns(d, 'poolc2')), conf)).code).toBe(0);
      const rec2 = JSON.parse(fs.readFileSync(path.join(d.state, stateFileName('poolc2', 'eth0')), 'utf8')) as {
        portName: string;
        socketPath: string;
      };
      await waitFor(
        () => daemon!.runtime.pools.get('br-int')!.stats().available === 2,
        'the pool to refill',
        20_000,
        50,
      );
      const freeBefore = pooled(ports(sb))
        .filter((n) => n !== rec.portName && n !== rec2.portName)
        .sort();
      await daemon.stop();
      // poolc2's record disappears while the daemon is down: its pooled port is an orphan now.
      fs.unlinkSync(path.join(d.state, stateFileName('poolc2', 'eth0')));
      daemon = await start(2);
      const pool = daemon.runtime.pools.get('br-int')!;
      await pool.settled();
      expect(pool.stats()).toMatchObject({ available: 2, created: 0 });
      expect(
        pooled(ports(sb))
          .filter((n) => n !== rec.portName)
          .sort(),
      ).toEqual(freeBefore);
      expect(fs.existsSync(rec2.socketPath)).toBe(false);

      // DEL of the surviving attachment through the new daemon.
      const del = await runShim(d.socket, cniEnv('DEL', 'poolc1', 'eth0', path.join(d.netns, 'poolc1')), conf);
      expect(del.code).toBe(0);
      expect(ports(sb)).not.toContain(rec.portName);
      expect(fs.existsSync(itf.socketPath!)).toBe(false);
      expect(fs.readdirSync(d.state).filter((f) => f.endsWith('.json'))).toEqual([]);
      expect(pooled(ports(sb)).length).toBe(2);
      await daemon.stop();
      daemon = undefined;
    }, 120_000);

    it('a netconf "pool" starts one for its bridge when kuryr.conf has none', async () => {
      const sb = sandbox();
      for (const n of pooled(ports(sb))) sb.vsctl('del-port', 'br-int', n);
      daemon = await start(0);
      expect(daemon.runtime.pools.get('br-int')).toBeUndefined();
      const conf = JSON.stringify(netconf(d, '1.1.0', 'client', { pool: { size: 1, lowWater: 1 } }));
      const add = await runShim(d.socket, cniEnv('ADD', 'poolnc', 'eth0', fakeNetns(d, 'poolnc')), conf);
      expect(add.code).toBe(0);
      expect(daemon.runtime.pools.get('br-int')?.size).toBe(1);
      await waitFor(() => pooled(ports(sb)).length === 1, 'the netconf pool to fill', 20_000, 50);
      expect((await runShim(d.socket, cniEnv('DEL', 'poolnc', 'eth0', path.join(d.netns, 'poolnc')), conf)).code).toBe(
        0,
      );
      const bad = await runShim(
        d.socket,
        cniEnv('ADD', 'poolbad', 'eth0', fakeNetns(d, 'poolbad')),
        JSON.stringify(netconf(d, '1.1.0', 'client', { pool: { size: -1 } })),
      );
      expect(bad.code).not.toBe(0);
      expect(bad.stdout).toMatch(/pool must be/);
    }, 90_000);
  },
);
