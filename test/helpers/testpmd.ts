/** dpdk-testpmd, the pod's DPDK application in tests (src/sandbox/testpmd.ts). */
import { expect } from 'vitest';
import type { Sandbox } from '../../src/sandbox/ovs-sandbox';
import { startTestpmd, type Testpmd } from '../../src/sandbox/testpmd';

export * from '../../src/sandbox/testpmd';

/** A plugged vhost-user pod end as the traffic check needs it. */
export interface PodEnd {
  vifName: string;
  socketPath: string;
  mac: string;
}

/**
 * Real packets through OVS between two pods: testpmd is the vhost-user server of
 * `server`'s socket (OVS dpdkvhostuserclient) and a client of `client`'s (OVS dpdkvhostuser),
 * both links come up, and each side receives and sends over 100 packets. The testpmd
 * processes are pushed to `pmds` as they start (the caller's afterEach stops them on failure)
 * and stopped here on success.
 */
export async function expectTrafficBetween(
  sb: Sandbox,
  server: PodEnd,
  client: PodEnd,
  pmds: Testpmd[],
): Promise<void> {
  const mine = [await startTestpmd({ ports: [{ path: server.socketPath, server: true, mac: server.mac }] })];
  pmds.push(mine[0]!);
  mine.push(await startTestpmd({ ports: [{ path: client.socketPath, mac: client.mac }] }));
  pmds.push(mine[1]!);
  for (const end of [server, client]) sb.vsctl('--timeout=20', 'wait-until', 'Interface', end.vifName, 'link_state=up');
  for (const t of mine) await t.startForwarding();
  for (const t of mine) {
    const [st] = await t.waitForTraffic({ minPackets: 100, timeoutMs: 20_000 });
    expect(st!.rxPackets).toBeGreaterThan(100);
    expect(st!.txPackets).toBeGreaterThan(100);
  }
  await Promise.all(mine.map((t) => t.stop()));
  for (const t of mine) pmds.splice(pmds.indexOf(t), 1);
}
