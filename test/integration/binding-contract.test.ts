/**
 * The binding driver contract (src/binding/driver.ts), one suite run against every driver
 * (as @parcel/watcher runs one suite against every backend): the vhost-user driver (server
 * and client mode) and the veth driver, on one private DPDK OVS with a real pod netns.
 * What a consumer (the CNI daemon, the Kuryr flows) relies on is the same for all of them:
 * connect returns the common result, a repeat is idempotent, CHECK is empty for a healthy
 * attachment and names what broke, disconnect removes everything and is idempotent, a bad
 * request is BindingError at step `validate` with nothing left behind.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OvsdbClient } from '../../src/ovsdb/client';
import { Vswitch } from '../../src/vswitch/vswitch';
import { VSWITCH_CACHE } from '../../src/vswitch/rows';
import { BindingError, DriverRegistry, type BindingDriver } from '../../src/binding/driver';
import { VhostUserDriver } from '../../src/binding/vhostuser';
import { VethDriver } from '../../src/binding/veth';
import { closeHostNetlink } from '../../src/os/netlink';
import { makeVHostUserVif, type VIF } from '../../src/vif/model';
import { vethHostName } from '../../src/vif/names';
import { useSandbox } from '../helpers/sandbox';
import { run } from '../helpers/proc';
import { describeIf, firstReason, needsOvs, needsRoot } from '../helpers/skip';

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: true })))(
  'the binding driver contract, against every driver',
  () => {
    const sandbox = useSandbox({ prefix: 'vhp-contract-' });
    let client: OvsdbClient;
    let drivers: DriverRegistry;
    let mount: string;
    const netns: string[] = [];

    beforeAll(async () => {
      client = await OvsdbClient.connect(sandbox().db, { cache: VSWITCH_CACHE });
      const vswitch = new Vswitch(client);
      mount = path.join(sandbox().dir, 'vhostuser');
      fs.mkdirSync(mount);
      drivers = new DriverRegistry([
        new VhostUserDriver(vswitch, { mountPoint: mount, ovsVhuPath: sandbox().runDir, fsync: false }),
        new VethDriver(vswitch, { hostNetns: `/run/netns/${sandbox().netns}`, defaultBridge: 'br-int' }),
      ]);
    });
    afterAll(async () => {
      drivers?.close();
      await closeHostNetlink();
      client?.close();
      for (const n of netns) run('ip', ['netns', 'delete', n]);
    });

    function newPod(): string {
      const name = `vhpc-${randomBytes(4).toString('hex')}`;
      run('ip', ['netns', 'add', name]);
      netns.push(name);
      return `/run/netns/${name}`;
    }

    const vifs: Record<string, () => VIF> = {
      'vhost-user server': () => makeVHostUserVif('server', mount),
      'vhost-user client': () => makeVHostUserVif('client', mount),
      veth: () => {
        const id = randomUUID();
        return {
          kind: 'VIFOpenVSwitch',
          id,
          address: `fa:16:3e:${id.slice(0, 2)}:${id.slice(2, 4)}:${id.slice(4, 6)}`,
          network: {
            id: 'n',
            bridge: 'br-int',
            mtu: 1400,
            subnets: [{ cidr: '10.66.0.0/24', ips: [{ address: '10.66.0.7' }], routes: [] }],
          },
          plugin: 'ovs',
          active: true,
          port_profile: { kind: 'VIFPortProfileOpenVSwitch', interface_id: id },
          vif_name: vethHostName(id),
          bridge_name: 'br-int',
        };
      },
    };

    describe.each(Object.keys(vifs))('%s', (name) => {
      const ports = () => sandbox().vsctl('list-ports', 'br-int').split('\n').filter(Boolean);

      it('connect → common result; again → created false; CHECK empty; disconnect removes all, twice; CHECK then names what is gone', async () => {
        const vif = vifs[name]!();
        const driver: BindingDriver = drivers.forVif(vif.kind);
        const req = {
          vif,
          containerId: `ctr${randomBytes(4).toString('hex')}`,
          ifname: 'eth0',
          netns: newPod(),
          podUid: randomUUID(),
          isDefaultGateway: true,
        };
        const res = await driver.connect(req);
        expect(res).toMatchObject({
          driver: driver.kind,
          containerId: req.containerId,
          ifname: 'eth0',
          created: true,
          warnings: expect.any(Array),
        });
        expect(res.mac).toBe(vif.address);
        expect(res.mtu).toBeGreaterThan(0);
        expect(ports()).toContain(res.portName);
        expect(res.phases['ovsdb-commit']).toBeGreaterThan(0);
        expect(res.phases['vswitchd-ack']).toBeGreaterThan(0);
        // What the pod gets: a socket or a device, as the driver says it does.
        if (driver.podSocket) expect(res.socketPath && res.configPath).toBeTruthy();
        else expect(res.hostIfname).toBeTruthy();
        expect(driver.attachments()).toContainEqual(
          expect.objectContaining({ containerId: req.containerId, ifname: 'eth0' }),
        );

        const again = await driver.connect(req);
        expect(again.portName).toBe(res.portName);
        // vhost-user keeps the plug (created false); veth tears the previous one down first (created false too).
        expect(again.created).toBe(false);

        // A server-mode socket is the pod app's to create; everything else is ours and in place.
        expect(
          await driver.check({
            containerId: req.containerId,
            ifname: 'eth0',
            netns: req.netns,
            expect: { mac: res.mac, portName: res.portName },
          }),
        ).toEqual([]);
        expect(driver.health()).toMatchObject({ ok: true, problems: [] });

        const gone = await driver.disconnect({ containerId: req.containerId, ifname: 'eth0', netns: req.netns });
        expect(gone.removed['port']).toBe(true);
        expect(ports()).not.toContain(res.portName);
        if (res.socketPath) expect(fs.existsSync(res.socketPath)).toBe(false);
        if (res.configPath) expect(fs.existsSync(res.configPath)).toBe(false);
        const twice = await driver.disconnect({ containerId: req.containerId, ifname: 'eth0', netns: req.netns });
        expect(Object.values(twice.removed).some(Boolean)).toBe(false);
        expect(driver.attachments()).not.toContainEqual(expect.objectContaining({ containerId: req.containerId }));
        const problems = await driver.check({
          containerId: req.containerId,
          ifname: 'eth0',
          netns: req.netns,
          expect: { portName: res.portName },
        });
        expect(problems.join('\n')).toMatch(/missing|no .*port is recorded|does not exist/);
      });

      it('a bad request is BindingError at step validate (EVALIDATION), and nothing is created', async () => {
        const vif = vifs[name]!();
        const driver = drivers.forVif(vif.kind);
        const before = ports();
        const err = await driver
          .connect({ vif, containerId: '../escape', ifname: 'eth0', netns: newPod() })
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BindingError);
        expect(err).toMatchObject({ driver: driver.kind, step: 'validate', code: 'EVALIDATION' });
        expect(ports()).toEqual(before);
        // The wrong VIF class for this driver is refused the same way.
        const other = Object.values(vifs)
          .map((f) => f())
          .find((v) => !driver.vifKinds.includes(v.kind))!;
        await expect(
          driver.connect({ vif: other, containerId: 'c1', ifname: 'eth0', netns: newPod() }),
        ).rejects.toMatchObject({ step: 'validate', code: 'EVALIDATION' });
      });
    });
  },
);
