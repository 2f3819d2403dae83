/**
 * The veth and hybrid drivers end to end: real pod network namespaces (`ip netns add`), a
 * private OVS (ovs-vswitchd with the userspace netdev datapath, in its own netns, which is
 * where the host ends live), and real packets: ICMP echo between pods through br-int
 * (and through qbr for the hybrid plug), answered by the pods' kernels. `ip -j` and
 * `ovs-vsctl` are the independent judges of what the driver configured.
 *
 * ping(8) is not installed on these machines, so the echo requests are sent by a few
 * lines of Debian's /usr/bin/python3 over a raw socket; the replies come from the kernel.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OvsdbClient } from '../../src/ovsdb/client';
import { VSWITCH_CACHE } from '../../src/vswitch/rows';
import { Vswitch, PortConflictError } from '../../src/vswitch/vswitch';
import { VethDriver, VETH_KEYS, type VethConnectRequest } from '../../src/binding/veth';
import { BindingError } from '../../src/binding/driver';
import { hybridNames } from '../../src/binding/hybrid';
import { ipConfigFromIpam } from '../../src/binding/ipconfig';
import { closeHostNetlink } from '../../src/os/netlink';
import type { VIFBridge, VIFOpenVSwitch } from '../../src/vif/model';
import { vethHostName } from '../../src/vif/names';
import { useSandbox, type Sandbox } from '../helpers/sandbox';
import { describeIf, firstReason, needsBinaries, needsOvs, needsRoot } from '../helpers/skip';
import { run, runAsync } from '../helpers/proc';

const PY = '/usr/bin/python3';

/** Sends 3 ICMP/ICMPv6 echo requests over a raw socket; prints how many matching replies came back. */
const PING_PY = `
import os, socket, struct, sys, time
dst = sys.argv[1]; v6 = ':' in dst
if v6:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6); req, rep = 128, 129
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); req, rep = 8, 0
def csum(b):
    if len(b) % 2: b += b'\\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
ident = os.getpid() & 0xffff; ok = 0; s.settimeout(0.2)
for seq in (1, 2, 3):
    body = b'vhostplug-veth'
    hdr = struct.pack('!BBHHH', req, 0, 0, ident, seq)
    if not v6: hdr = struct.pack('!BBHHH', req, 0, csum(hdr + body), ident, seq)
    s.sendto(hdr + body, (dst, 0)); end = time.time() + 2
    while time.time() < end:
        try: data = s.recv(2048)
        except socket.timeout: continue
        if not v6: data = data[(data[0] & 15) * 4:]
        t, _, _, i, q = struct.unpack('!BBHHH', data[:8])
        if t == rep and i == ident and q == seq: ok += 1; break
print(ok)
`;

/** UDP echo: `server ADDR PORT` answers one datagram; `client ADDR PORT` prints the reply or 'timeout'. */
const UDP_PY = `
import socket, sys
mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ':' in addr else socket.AF_INET, socket.SOCK_DGRAM)
if mode == 'server':
    s.bind((addr, port)); s.settimeout(8); print('ready', flush=True)
    d, a = s.recvfrom(100); s.sendto(d, a)
else:
    s.settimeout(0.3)
    for _ in range(10):
        s.sendto(b'udp-through-ovs', (addr, port))
        try: print(s.recv(100).decode()); break
        except socket.timeout: pass
    else: print('timeout')
`;

const seqNo = 10;

function makeVif(kind: 'VIFOpenVSwitch', host: number): VIFOpenVSwitch;
function makeVif(kind: 'VIFBridge', host: number): VIFBridge;
function makeVif(kind: 'VIFOpenVSwitch' | 'VIFBridge', host: number): VIFOpenVSwitch | VIFBridge {
  const id = randomUUID();
  const common = {
    id,
    address: `fa:16:3e:${id.slice(0, 2)}:${id.slice(2, 4)}:${id.slice(4, 6)}`,
    network: {
      id: 'net-veth',
      bridge: 'br-int',
      mtu: 1450,
      subnets: [
        {
          cidr: '10.77.0.0/24',
          gateway: '10.77.0.1',
          ips: [{ address: `10.77.0.${host}` }],
          routes: [{ cidr: '10.88.0.0/16', gateway: '10.77.0.254' }],
        },
        {
          cidr: 'fd00:77::/64',
          gateway: 'fd00:77::1',
          ips: [{ address: `fd00:77::${host.toString(16)}` }],
          routes: [],
        },
      ],
    },
    plugin: 'ovs',
    active: true,
    port_profile: { kind: 'VIFPortProfileOpenVSwitch' as const, interface_id: id },
    vif_name: vethHostName(id),
  };
  return kind === 'VIFOpenVSwitch'
    ? { kind, ...common, bridge_name: 'br-int' }
    : { kind, ...common, bridge_name: hybridNames({ id }).bridge, plugin: 'ovs_hybrid_plug' };
}

interface IpAddrJson {
  ifname: string;
  address: string;
  mtu: number;
  operstate: string;
  master?: string;
  linkinfo?: { info_kind?: string };
  addr_info: { family: string; local: string; prefixlen: number; tentative?: boolean; scope: string }[];
}

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: false }), needsBinaries(PY)))(
  'veth and hybrid drivers on a private OVS (netdev datapath)',
  () => {
    const sandbox = useSandbox({ dpdk: false, prefix: 'vhp-veth-' });
    let client: OvsdbClient;
    let vswitch: Vswitch;
    let driver: VethDriver;
    let hostNetns: string;
    const netnsNames: string[] = [];

    const sb = (): Sandbox => sandbox();
    function newPod(): { name: string; path: string } {
      const name = `vhpv-${randomBytes(4).toString('hex')}`;
      run('ip', ['netns', 'add', name]);
      netnsNames.push(name);
      return { name, path: `/run/netns/${name}` };
    }
    const ipJson = <T>(ns: string, ...args: string[]): T =>
      JSON.parse(run('ip', ['-n', ns, '-j', '-d', ...args]) || '[]') as T;
    const hostLinks = (): string[] => ipJson<IpAddrJson[]>(sb().netns, 'link', 'show').map((l) => l.ifname);
    const ports = (): string[] => sb().vsctl('list-ports', 'br-int').split('\n').filter(Boolean);
    const ping = async (ns: string, dst: string): Promise<number> =>
      Number((await runAsync('ip', ['netns', 'exec', ns, PY, '-c', PING_PY, dst], { timeout: 20_000 })).trim());
    const request = (
      vif: VIFOpenVSwitch | VIFBridge,
      pod: { path: string },
      extra: Partial<VethConnectRequest> = {},
    ): VethConnectRequest => ({
      vif,
      containerId: `c${randomBytes(6).toString('hex')}`,
      ifname: 'eth0',
      netns: pod.path,
      podUid: randomUUID(),
      podNamespace: 'default',
      podName: `pod-${seqNo}`,
      isDefaultGateway: true,
      ...extra,
    });

    beforeAll(async () => {
      client = await OvsdbClient.connect(sb().db, { cache: VSWITCH_CACHE });
      vswitch = new Vswitch(client);
      hostNetns = `/run/netns/${sb().netns}`;
      driver = new VethDriver(vswitch, { hostNetns, defaultBridge: 'br-int' });
    });
    afterAll(async () => {
      driver?.close();
      await closeHostNetlink();
      client?.close();
      for (const n of netnsNames) {
        try {
          run('ip', ['netns', 'delete', n]);
        } catch {
          // already gone (a test deleted it)
        }
      }
    });

    // Shared across the tests below (they run in order).
    const podA = {
      vif: makeVif('VIFOpenVSwitch', 10),
      req: undefined as VethConnectRequest | undefined,
      pod: { name: '', path: '' },
    };
    const podB = {
      vif: makeVif('VIFOpenVSwitch', 11),
      req: undefined as VethConnectRequest | undefined,
      pod: { name: '', path: '' },
    };
    const podC = {
      vif: makeVif('VIFBridge', 12),
      req: undefined as VethConnectRequest | undefined,
      pod: { name: '', path: '' },
    };

    it('VIFOpenVSwitch: the container end has its name, MAC, MTU, IPv4+IPv6 (not tentative) and routes; the host end is an OVS port with the external_ids', async () => {
      podA.pod = newPod();
      podA.req = request(podA.vif, podA.pod);
      const res = await driver.connect(podA.req);
      expect(res.created).toBe(true);
      expect(res.hostIfname).toBe(podA.vif.vif_name);
      expect(res.mtu).toBe(1450);
      expect(res.addresses).toEqual(['10.77.0.10/24', 'fd00:77::a/64']);
      expect(res.timings.ackMs).toBeGreaterThan(0);

      const [eth0] = ipJson<IpAddrJson[]>(podA.pod.name, 'addr', 'show', 'dev', 'eth0');
      expect(eth0!.address).toBe(podA.vif.address);
      expect(eth0!.mtu).toBe(1450);
      expect(eth0!.linkinfo?.info_kind).toBe('veth');
      const global = eth0!.addr_info.filter((a) => a.scope === 'global');
      expect(global.map((a) => `${a.local}/${a.prefixlen}`).sort()).toEqual(['10.77.0.10/24', 'fd00:77::a/64']);
      expect(global.every((a) => !a.tentative)).toBe(true);

      const r4 = ipJson<{ dst: string; gateway?: string; dev: string }[]>(podA.pod.name, 'route', 'show');
      expect(r4).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ dst: 'default', gateway: '10.77.0.1', dev: 'eth0' }),
          expect.objectContaining({ dst: '10.88.0.0/16', gateway: '10.77.0.254', dev: 'eth0' }),
          expect.objectContaining({ dst: '10.77.0.0/24', dev: 'eth0' }),
        ]),
      );
      const r6 = ipJson<{ dst: string; gateway?: string }[]>(podA.pod.name, '-6', 'route', 'show');
      expect(r6).toEqual(expect.arrayContaining([expect.objectContaining({ dst: 'default', gateway: 'fd00:77::1' })]));

      // The host end lives in vswitchd's netns, up, with the same MTU.
      const [tap] = ipJson<IpAddrJson[]>(sb().netns, 'link', 'show', 'dev', res.hostIfname);
      expect(tap!.operstate).not.toBe('DOWN');
      expect(tap!.mtu).toBe(1450);
      expect(ports()).toContain(res.hostIfname);
      const get = (k: string) =>
        sb().vsctl('get', 'Interface', res.hostIfname, `external_ids:${k}`).trim().replace(/^"|"$/g, '');
      expect(get('iface-id')).toBe(podA.vif.port_profile!.interface_id);
      expect(get('iface-status')).toBe('active');
      expect(get('attached-mac')).toBe(podA.vif.address);
      expect(get('vm-uuid')).toBe(podA.req.podUid);
      expect(get('vhostplug-owner')).toBe('vhostplug');
      expect(get('vhostplug-container-id')).toBe(podA.req.containerId);
      expect(get('vhostplug-ifname')).toBe('eth0');
      expect(get(VETH_KEYS.hostIfname)).toBe(res.hostIfname);
      expect(Number(sb().vsctl('get', 'Interface', res.hostIfname, 'ofport').trim())).toBeGreaterThan(0);
      // Not converted, not forced: the bridge keeps its datapath; the port is a plain (system) one.
      expect(sb().vsctl('get', 'Interface', res.hostIfname, 'type').trim()).toBe('""');
      expect(await driver.check({ containerId: podA.req.containerId, ifname: 'eth0', netns: podA.pod.path })).toEqual(
        [],
      );
    });

    it('pings from one pod to another through br-int, IPv4 and IPv6 (IPv6 re-enabled in a pod that had it off)', async () => {
      podB.pod = newPod();
      // A runtime that turned IPv6 off in the pod: the driver turns it on, as Kuryr does.
      run('ip', [
        'netns',
        'exec',
        podB.pod.name,
        'sh',
        '-c',
        'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6',
      ]);
      podB.req = request(podB.vif, podB.pod);
      await driver.connect(podB.req);
      expect(await ping(podA.pod.name, '10.77.0.11')).toBe(3);
      expect(await ping(podB.pod.name, '10.77.0.10')).toBe(3);
      expect(await ping(podA.pod.name, 'fd00:77::b')).toBe(3);
      expect(await driver.check({ containerId: podB.req.containerId, ifname: 'eth0', netns: podB.pod.path })).toEqual(
        [],
      );
    });

    it('VIFBridge (hybrid): qbr with qvb and tap enslaved, qvo on OVS with the external_ids, and packets pass', async () => {
      podC.pod = newPod();
      podC.req = request(podC.vif, podC.pod);
      const res = await driver.connect(podC.req);
      const n = hybridNames(podC.vif);
      expect(res.portName).toBe(n.qvo);
      expect(res.hybrid).toEqual(n);
      const links = ipJson<IpAddrJson[]>(sb().netns, 'link', 'show');
      const by = (name: string) => links.find((l) => l.ifname === name);
      expect(by(n.bridge)?.linkinfo?.info_kind).toBe('bridge');
      expect(by(n.qvb)?.master).toBe(n.bridge);
      expect(by(n.tap)?.master).toBe(n.bridge);
      expect(by(n.qvo)?.linkinfo?.info_kind).toBe('veth');
      expect(by(n.qvo)?.master).toBeUndefined();
      expect(by(n.qvo)?.mtu).toBe(1450);
      // os-vif: qbr forgets MAC addresses at once (ageing 0) and has IPv6 off.
      expect(
        run('ip', ['netns', 'exec', sb().netns, 'cat', `/sys/class/net/${n.bridge}/bridge/ageing_time`]).trim(),
      ).toBe('0');
      expect(
        run('ip', ['netns', 'exec', sb().netns, 'cat', `/proc/sys/net/ipv6/conf/${n.bridge}/disable_ipv6`]).trim(),
      ).toBe('1');
      expect(ports()).toContain(n.qvo);
      expect(ports()).not.toContain(n.tap);
      expect(sb().vsctl('get', 'Interface', n.qvo, 'external_ids:attached-mac').trim()).toBe(`"${podC.vif.address}"`);
      expect(
        sb().vsctl('get', 'Interface', n.qvo, `external_ids:${VETH_KEYS.linuxBridge}`).trim().replace(/^"|"$/g, ''),
      ).toBe(n.bridge);
      expect(await driver.check({ containerId: podC.req.containerId, ifname: 'eth0', netns: podC.pod.path })).toEqual(
        [],
      );
      expect(await ping(podC.pod.name, '10.77.0.10')).toBe(3);
      expect(await ping(podA.pod.name, 'fd00:77::c')).toBe(3);
    });

    it('a repeated connect of the same attachment replaces the plug (created: false) and still passes CHECK', async () => {
      const res = await driver.connect(podA.req!);
      expect(res.created).toBe(false);
      expect(ports().filter((p) => p === res.hostIfname)).toHaveLength(1);
      expect(await driver.check({ containerId: podA.req!.containerId, ifname: 'eth0', netns: podA.pod.path })).toEqual(
        [],
      );
      expect(await ping(podA.pod.name, '10.77.0.11')).toBe(3);
    });

    it('check() reports a missing port, a missing host end and a wrong expected address', async () => {
      const { containerId } = podB.req!;
      const problems0 = await driver.check({
        containerId,
        ifname: 'eth0',
        netns: podB.pod.path,
        expect: { addresses: ['10.77.0.99/24'] },
      });
      expect(problems0).toEqual(['eth0 lacks address 10.77.0.99/24']);
      sb().vsctl('del-port', 'br-int', podB.vif.vif_name);
      await expect.poll(() => vswitch.findByAttachment(containerId, 'eth0')).toBeUndefined();
      const problems1 = await driver.check({ containerId, ifname: 'eth0', netns: podB.pod.path });
      expect(problems1.some((p) => p.startsWith('no OVS port'))).toBe(true);
      run('ip', ['-n', sb().netns, 'link', 'del', podB.vif.vif_name]);
      const problems2 = await driver.check({ containerId, ifname: 'eth0', netns: podB.pod.path });
      expect(problems2).toEqual(
        expect.arrayContaining([
          `host interface ${podB.vif.vif_name} does not exist`,
          `interface eth0 does not exist in netns ${podB.pod.path}`,
        ]),
      );
    });

    it('disconnect removes port and devices, twice is fine, and a deleted pod netns is fine', async () => {
      const a = await driver.disconnect({ containerId: podA.req!.containerId, ifname: 'eth0', netns: podA.pod.path });
      expect(a.removed).toEqual({ port: true, veth: true });
      const c = await driver.disconnect({ containerId: podC.req!.containerId, ifname: 'eth0', netns: podC.pod.path });
      expect(c.removed).toEqual({ port: true, veth: true, bridge: true });
      // B's port and host end were removed behind our back; its pod netns is deleted before DEL.
      run('ip', ['netns', 'delete', podB.pod.name]);
      const b = await driver.disconnect({
        containerId: podB.req!.containerId,
        ifname: 'eth0',
        netns: podB.pod.path,
        vif: podB.vif,
      });
      expect(b.removed).toEqual({ port: false, veth: false });
      for (const p of [podA, podC]) {
        const again = await driver.disconnect({
          containerId: p.req!.containerId,
          ifname: 'eth0',
          netns: p.pod.path,
          vif: p.vif,
        });
        expect(again.removed.port).toBe(false);
        expect(again.removed.veth).toBe(false);
        expect(ipJson<unknown[]>(p.pod.name, 'link', 'show', 'type', 'veth')).toEqual([]);
      }
      const n = hybridNames(podC.vif);
      const left = hostLinks();
      for (const name of [podA.vif.vif_name, podB.vif.vif_name, n.tap, n.bridge, n.qvb, n.qvo])
        expect(left).not.toContain(name);
      expect(ports()).toEqual([]);
      expect(driver.attachments()).toEqual([]);
    });

    it('rolls back every step when the kernel refuses an address (veth, port and hybrid devices gone)', async () => {
      for (const kind of ['VIFOpenVSwitch', 'VIFBridge'] as const) {
        const pod = newPod();
        const vif = kind === 'VIFOpenVSwitch' ? makeVif(kind, 20) : makeVif(kind, 21);
        // A multicast address passes our syntax checks; the kernel refuses it (EADDRNOTAVAIL).
        const req = request(vif, pod, { ipConfig: { addresses: ['10.77.0.20/24', 'ff0e::5/64'], routes: [] } });
        const err = (await driver.connect(req).catch((e: unknown) => e)) as BindingError;
        expect(err).toBeInstanceOf(BindingError);
        expect(err.step).toBe('address');
        expect(err.message).toMatch(/RTM_NEWADDR/);
        expect(ports()).toEqual([]);
        const left = hostLinks();
        const names = vif.kind === 'VIFBridge' ? Object.values(hybridNames(vif)) : [vif.vif_name];
        for (const name of names) expect(left).not.toContain(name);
        expect(ipJson<unknown[]>(pod.name, 'link', 'show', 'type', 'veth')).toEqual([]);
        expect(vswitch.findByAttachment(req.containerId, 'eth0')).toBeUndefined();
      }
    });

    it('a pod netns that does not exist fails the veth step with ENOENT and leaves nothing', async () => {
      const vif = makeVif('VIFBridge', 24);
      const err = (await driver
        .connect(request(vif, { path: '/run/netns/vhpv-does-not-exist' }))
        .catch((e: unknown) => e)) as BindingError;
      expect(err).toBeInstanceOf(BindingError);
      expect(err.step).toBe('veth');
      expect(err.code).toBe('ENOENT');
      const left = hostLinks();
      for (const name of Object.values(hybridNames(vif))) expect(left).not.toContain(name);
      expect(ports()).toEqual([]);
    });

    it("a hostNetns that is not vswitchd's: the port is committed but vswitchd cannot open the device; all rolled back", async () => {
      const wrongHost = newPod();
      const misconfigured = new VethDriver(vswitch, {
        hostNetns: wrongHost.path,
        defaultBridge: 'br-int',
        ackTimeoutMs: 10_000,
      });
      const pod = newPod();
      const vif = makeVif('VIFOpenVSwitch', 25);
      const err = (await misconfigured.connect(request(vif, pod)).catch((e: unknown) => e)) as BindingError;
      expect(err).toBeInstanceOf(BindingError);
      expect(err.step).toBe('plug');
      expect(err.message).toMatch(new RegExp(vif.vif_name));
      await expect.poll(() => ports()).toEqual([]);
      expect(ipJson<unknown[]>(wrongHost.name, 'link', 'show', 'type', 'veth')).toEqual([]);
      expect(ipJson<unknown[]>(pod.name, 'link', 'show', 'type', 'veth')).toEqual([]);
    });

    it('rolls back when the bridge has another datapath (no conversion), and refuses a port it does not own', async () => {
      const pod = newPod();
      const vif = makeVif('VIFBridge', 22);
      vif.port_profile = { kind: 'VIFPortProfileOpenVSwitch', interface_id: vif.id, datapath_type: 'system' };
      const err = (await driver.connect(request(vif, pod)).catch((e: unknown) => e)) as BindingError;
      expect(err).toBeInstanceOf(BindingError);
      expect(err.step).toBe('plug');
      expect(err.code).toBe('EDATAPATH');
      expect(sb().vsctl('get', 'Bridge', 'br-int', 'datapath_type').trim()).toBe('netdev');
      const n = hybridNames(vif);
      const left = hostLinks();
      for (const name of [n.tap, n.bridge, n.qvb, n.qvo]) expect(left).not.toContain(name);
      expect(ipJson<unknown[]>(pod.name, 'link', 'show', 'type', 'veth')).toEqual([]);

      // Someone else's port with our VIF's name: a conflict, and it is left exactly as it was.
      const other = makeVif('VIFOpenVSwitch', 23);
      sb().vsctl('add-port', 'br-int', other.vif_name, '--', 'set', 'Interface', other.vif_name, 'type=internal');
      await expect.poll(() => vswitch.portInfo(other.vif_name)).toBeDefined();
      const conflict = (await driver.connect(request(other, pod)).catch((e: unknown) => e)) as BindingError;
      expect(conflict.step).toBe('cleanup');
      expect(conflict.cause).toBeInstanceOf(PortConflictError);
      expect(conflict.code).toBe('EEXIST');
      expect(ports()).toEqual([other.vif_name]);
      expect(hostLinks()).toContain(other.vif_name); // its internal device was not taken for a leftover
      sb().vsctl('del-port', 'br-int', other.vif_name);
      await expect.poll(() => vswitch.portInfo(other.vif_name)).toBeUndefined();
    });

    it('20 plugs and unplugs of each kind: p50 per phase against ip(8) + ovs-vsctl in the same run; nothing left', async () => {
      const p50 = (xs: number[]) => +[...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(2);
      const N = 20;
      const summary: Record<string, unknown> = {
        bench: 'veth plug/unplug, ack from ovs-vswitchd, netdev datapath, 2 addresses + 3 routes per pod',
        n: N,
      };
      for (const kind of ['VIFOpenVSwitch', 'VIFBridge'] as const) {
        const connectMs: number[] = [];
        const disconnectMs: number[] = [];
        const phases: Record<string, number[]> = { bridgeMs: [], vethMs: [], ovsMs: [], addrMs: [] };
        const delPhases: Record<string, number[]> = { ovsMs: [], linkMs: [] };
        for (let i = 0; i < N; i++) {
          const pod = newPod();
          const req = request(kind === 'VIFOpenVSwitch' ? makeVif(kind, 100 + i) : makeVif(kind, 100 + i), pod);
          let t = performance.now();
          const res = await driver.connect(req);
          connectMs.push(performance.now() - t);
          for (const k of Object.keys(phases)) phases[k]!.push(res.timings[k as 'vethMs']);
          t = performance.now();
          const del = await driver.disconnect({ containerId: req.containerId, ifname: 'eth0', netns: pod.path });
          disconnectMs.push(performance.now() - t);
          delPhases.ovsMs!.push(del.timings!.ovsMs);
          delPhases.linkMs!.push(del.timings!.linkMs);
        }
        summary[kind] = {
          connectP50Ms: p50(connectMs),
          disconnectP50Ms: p50(disconnectMs),
          connectPhaseP50Ms: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, p50(v)])),
          disconnectPhaseP50Ms: Object.fromEntries(Object.entries(delPhases).map(([k, v]) => [k, p50(v)])),
        };
      }
      // Baseline: the same VIFOpenVSwitch plug with the tools, batched as tightly as they allow
      // (one `ip -b` per netns, one waiting ovs-vsctl); unplug = ovs-vsctl del-port + ip link del.
      const connectMs: number[] = [];
      const disconnectMs: number[] = [];
      const ns = sb().netns;
      for (let i = 0; i < N; i++) {
        const pod = newPod();
        const vif = makeVif('VIFOpenVSwitch', 100 + i);
        const tap = vif.vif_name;
        let t = performance.now();
        await runAsync('ip', ['-n', ns, '-b', '-'], {
          input: `link add ${tap} mtu 1450 type veth peer name eth0 netns ${pod.name} address ${vif.address} mtu 1450\nlink set ${tap} up\n`,
        });
        await runAsync('ip', ['-n', pod.name, '-b', '-'], {
          input:
            `link set eth0 up\naddr add 10.77.0.${100 + i}/24 dev eth0\naddr add fd00:77::${(100 + i).toString(16)}/64 dev eth0 nodad\n` +
            `route add 10.88.0.0/16 via 10.77.0.254\nroute add default via 10.77.0.1\nroute add ::/0 via fd00:77::1\n`,
        });
        await sb().vsctlAsync(
          '--may-exist',
          'add-port',
          'br-int',
          tap,
          '--',
          'set',
          'Interface',
          tap,
          `external_ids:iface-id=${vif.id}`,
          'external_ids:iface-status=active',
          `external_ids:attached-mac="${vif.address}"`,
          'external_ids:vm-uuid=kuryr',
        );
        connectMs.push(performance.now() - t);
        t = performance.now();
        await sb().vsctlAsync('--if-exists', 'del-port', 'br-int', tap);
        await runAsync('ip', ['-n', ns, 'link', 'del', tap]);
        disconnectMs.push(performance.now() - t);
      }
      summary['ip(8)+ovs-vsctl'] = { connectP50Ms: p50(connectMs), disconnectP50Ms: p50(disconnectMs) };
      const ours = summary['VIFOpenVSwitch'] as { connectP50Ms: number; disconnectP50Ms: number };
      summary['ratio vs ip(8)+ovs-vsctl'] = {
        connect: +(ours.connectP50Ms / p50(connectMs)).toFixed(2),
        disconnect: +(ours.disconnectP50Ms / p50(disconnectMs)).toFixed(2),
      };
      console.log(JSON.stringify(summary));
      expect(connectMs).toHaveLength(N);
      expect(ports()).toEqual([]);
      expect(hostLinks().filter((l) => /^(tap|qbr|qvb|qvo)/.test(l))).toEqual([]);
    });

    it('12 concurrent plugs of both kinds (half with IPAM-style L3) all pass CHECK and talk; concurrent unplugs leave nothing', async () => {
      const plugs = Array.from({ length: 12 }, (_, i) => {
        const pod = newPod();
        const host = 200 + i;
        const vif = i % 2 ? makeVif('VIFBridge', host) : makeVif('VIFOpenVSwitch', host);
        // host-local's result shape: ips with a gateway, a default route without gw.
        const ipConfig =
          i % 3 === 0
            ? ipConfigFromIpam({
                ips: [{ address: `10.77.0.${host}/24`, gateway: '10.77.0.1' }],
                routes: [{ dst: '0.0.0.0/0' }],
              })
            : undefined;
        return { pod, vif, req: request(vif, pod, ipConfig ? { ipConfig } : {}) };
      });
      const results = await Promise.all(plugs.map((p) => driver.connect(p.req)));
      expect(results.map((r) => r.created)).toEqual(plugs.map(() => true));
      const problems = await Promise.all(
        plugs.map((p) => driver.check({ containerId: p.req.containerId, ifname: 'eth0', netns: p.pod.path })),
      );
      expect(problems).toEqual(plugs.map(() => []));
      expect(ports()).toHaveLength(12);
      // IPAM-style pod 0 got its default route from the IP's gateway.
      expect(ipJson<{ dst: string; gateway?: string }[]>(plugs[0]!.pod.name, 'route', 'show')).toEqual(
        expect.arrayContaining([expect.objectContaining({ dst: 'default', gateway: '10.77.0.1' })]),
      );
      expect(await ping(plugs[0]!.pod.name, '10.77.0.211')).toBe(3); // VIFOpenVSwitch -> VIFBridge
      const dels = await Promise.all(
        plugs.map((p) => driver.disconnect({ containerId: p.req.containerId, ifname: 'eth0', netns: p.pod.path })),
      );
      expect(dels.every((d) => d.removed.port && d.removed.veth)).toBe(true);
      expect(ports()).toEqual([]);
      expect(hostLinks().filter((l) => /^(tap|qbr|qvb|qvo)/.test(l))).toEqual([]);
    });

    it('TCP/UDP need userspace-tso-enable on a netdev bridge: health() says so, and with it UDP passes', async () => {
      expect(driver.health().warnings.join('\n')).toMatch(/userspace-tso-enable/);
      sb().vsctl('set', 'Open_vSwitch', '.', 'other_config:userspace-tso-enable=true');
      await sb().restartVswitchd();
      await expect.poll(() => driver.health().warnings).toEqual([]);
      expect(driver.health()).toEqual({ ok: true, problems: [], warnings: [] });
      const a = newPod();
      const b = newPod();
      const ra = request(makeVif('VIFOpenVSwitch', 30), a);
      const rb = request(makeVif('VIFOpenVSwitch', 31), b);
      await driver.connect(ra);
      await driver.connect(rb);
      const server = runAsync('ip', ['netns', 'exec', b.name, PY, '-c', UDP_PY, 'server', '10.77.0.31', '7000'], {
        timeout: 15_000,
      });
      await new Promise((r) => setTimeout(r, 300));
      const reply = await runAsync('ip', ['netns', 'exec', a.name, PY, '-c', UDP_PY, 'client', '10.77.0.31', '7000'], {
        timeout: 15_000,
      });
      await server;
      expect(reply.trim()).toBe('udp-through-ovs');
      await driver.disconnect({ containerId: ra.containerId, ifname: 'eth0', netns: a.path });
      await driver.disconnect({ containerId: rb.containerId, ifname: 'eth0', netns: b.path });
      expect(ports()).toEqual([]);
      expect(fs.existsSync(hostNetns)).toBe(true);
    });
  },
);
