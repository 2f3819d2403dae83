/**
 * docs/api.md's ten-line example, through the package root, against a private DPDK OVS.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { Vswitch, VhostUserDriver, decodeVIF, encodeVIF, vhostUserPortName } from '../../src/index';
import { useSandbox } from '../helpers/sandbox';
import { describeIf, firstReason, needsOvs, needsRoot } from '../helpers/skip';

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: true })))('the docs/api.md example', () => {
  const sandbox = useSandbox();

  it('plugs and unplugs a vhost-user port through the package root', async () => {
    const mount = path.join(sandbox().dir, 'vhostuser');
    fs.mkdirSync(mount);
    const id = randomUUID();
    const kuryrPort = {
      status: {
        vifs: {
          eth0: {
            default: true,
            vif: encodeVIF({
              kind: 'VIFVHostUser',
              id,
              address: 'fa:16:3e:01:02:03',
              mode: 'client',
              vif_name: vhostUserPortName(id),
              network: { id: randomUUID(), bridge: 'br-int', mtu: 1500, subnets: [] },
              port_profile: { kind: 'VIFPortProfileOpenVSwitch', interface_id: id },
            }),
          },
        },
      },
    };
    const containerId = 'api-example';
    const podUid = randomUUID();

    // --- the example ---
    const vswitch = await Vswitch.connect(sandbox().db);
    const driver = new VhostUserDriver(vswitch, { mountPoint: mount, ovsVhuPath: sandbox().runDir });
    const vif = decodeVIF(kuryrPort.status.vifs.eth0.vif);
    const att = await driver.connect({ vif, containerId, ifname: 'eth0', podUid });
    expect(fs.lstatSync(att.socketPath).isSocket()).toBe(true);
    expect(fs.existsSync(att.configPath)).toBe(true);
    expect(att.timings.totalMs).toBeGreaterThan(0);
    await driver.disconnect({ containerId, ifname: 'eth0' });
    vswitch.client.close();
    // --- end ---

    expect(fs.readdirSync(mount)).toEqual([]);
    expect(sandbox().vsctl('list-ports', 'br-int').trim()).toBe('');
  });
});
