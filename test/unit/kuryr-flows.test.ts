/**
 * The ADD/DEL flows' own logic, fast and without root: VIFs fed straight into the registry
 * (what the watches do), recording binding drivers, and a Kubernetes stub for pod lookups
 * and Events (the real kube-apiserver cannot run on these machines; the API stand-in and
 * real OVS ports are in test/integration/kuryr-daemon.test.ts). Shown: eth0 renamed to
 * CNI_IFNAME and the default gateway, rollback of a half-connected pod, no driver for a
 * VIF class, pod UID from the API, a predecessor's sentinel not blocking a new pod, DEL
 * errors, DEL of another pod incarnation, cancellation.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KuryrFlows, parseCniRequest, rewriteNetns, toKuryrError } from '../../src/kuryr/flows';
import {
  DriverRegistry,
  type BindingDriver,
  type BindingRequest,
  type BindingResult,
  type UnbindRequest,
} from '../../src/binding/driver';
import type { VIFKind } from '../../src/vif/model';
import type { KuryrKube, PodEvent, PodInfo } from '../../src/kuryr/k8s-source';
import { KuryrRegistry } from '../../src/kuryr/registry';
import { decodeKuryrPortVifs, decodeVIF } from '../../src/vif/ovo';
import type { PodVIF } from '../../src/vif/model';
import { kubeletCniArgs, kuryrDaemonBody } from '../helpers/kuryr-cni-client';

const KP = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/vif/kuryrport.json'), 'utf8'));
const OVS = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/vif/ovs.json'), 'utf8'));
const POD_UID = KP.spec.podUid as string;
const KEY = 'nfv/dpdk-pod';

function activeVifs(): PodVIF[] {
  const v = decodeKuryrPortVifs(KP);
  for (const p of v) p.vif.active = true;
  return v;
}

/** A stand-in driver that records what the flows ask of it (the contract, not a real plug). */
class Recorder implements BindingDriver {
  readonly kind = 'vhostuser';
  readonly podSocket = true;
  readonly log: string[] = [];
  failOn: string | undefined;
  constructor(readonly vifKinds: readonly VIFKind[] = ['VIFVHostUser', 'VIFOpenVSwitch', 'VIFBridge']) {}
  async connect(req: BindingRequest): Promise<BindingResult> {
    this.log.push(`connect ${req.ifname}${req.isDefaultGateway ? ' default' : ''} ${req.containerId}`);
    if (req.ifname === this.failOn) throw new Error(`${req.ifname} exploded`);
    return {
      driver: 'vhostuser',
      containerId: req.containerId,
      ifname: req.ifname,
      portName: 'p',
      mac: '02:00:00:00:00:01',
      mtu: 1500,
      created: true,
      warnings: [],
      phases: { 'ovsdb-commit': 1 },
    };
  }
  async disconnect(req: UnbindRequest) {
    this.log.push(
      req.containerId === 'c1' ? `disconnect ${req.ifname}` : `disconnect ${req.ifname} of ${req.containerId}`,
    );
    if (this.failOn === `del:${req.ifname}`) throw new Error('unplug failed');
    return { removed: {} };
  }
  async check() {
    return [];
  }
  health() {
    return { ok: true, problems: [] };
  }
  attachments() {
    return [];
  }
  close() {}
}

class KubeStub implements KuryrKube {
  readonly pods = new Map<string, PodInfo>();
  readonly events: PodEvent[] = [];
  gets = 0;
  async getPod(namespace: string, name: string) {
    this.gets++;
    return this.pods.get(`${namespace}/${name}`) ?? null;
  }
  emitEvent(ev: PodEvent) {
    this.events.push(ev);
  }
}

function setup(vifKinds?: VIFKind[]) {
  const registry = new KuryrRegistry();
  const kube = new KubeStub();
  const rec = new Recorder(vifKinds);
  const flows = new KuryrFlows({
    registry,
    kube,
    drivers: new DriverRegistry([rec]),
    vifTimeoutMs: 300,
    delTimeoutMs: 100,
  });
  return { registry, kube, rec, flows };
}

const params = (command: 'ADD' | 'DEL', cid: string, opts: { uid?: string; ifname?: string; pod?: string } = {}) =>
  parseCniRequest(
    JSON.parse(
      kuryrDaemonBody(command, {
        ifname: opts.ifname ?? 'eth0',
        netns: '/var/run/netns/x',
        containerId: cid,
        args: kubeletCniArgs('nfv', opts.pod ?? 'dpdk-pod', cid, opts.uid),
      }),
    ),
    command,
  );

describe('Kuryr ADD/DEL flows', () => {
  it('connects every VIF: eth0 as CNI_IFNAME with the default gateway, others by name; records the container id', async () => {
    const { registry, rec, flows } = setup();
    registry.upsert(KEY, { source: 'kuryrport', objectUid: 'kp', podUid: POD_UID, vifs: activeVifs() });
    const vif = await flows.add(params('ADD', 'c1', { uid: POD_UID, ifname: 'net0' }));
    expect(vif.id).toBe(KP.status.vifs.eth0.vif['versioned_object.data'].id);
    expect(rec.log.sort()).toEqual(['connect eth1 c1', 'connect net0 default c1']);
    const e = registry.get(KEY);
    expect(e?.kind === 'entry' && e.containerId).toBe('c1');
    expect(await flows.del(params('DEL', 'c1', { uid: POD_UID, ifname: 'net0' }))).toBe('disconnected');
    expect(rec.log.filter((l) => l.startsWith('disconnect')).sort()).toEqual(['disconnect eth1', 'disconnect net0']);
  });

  it('a VIF that fails to connect: the others are disconnected again, 500 code 999 naming it, no container recorded', async () => {
    const { registry, rec, flows } = setup();
    rec.failOn = 'eth1';
    registry.upsert(KEY, { source: 'kuryrport', objectUid: 'kp', podUid: POD_UID, vifs: activeVifs() });
    const err = toKuryrError(await flows.add(params('ADD', 'c1', { uid: POD_UID })).catch((e: unknown) => e));
    expect(err).toMatchObject({ status: 500, cniCode: 999, msg: 'Error processing request' });
    expect(err.details).toMatch(/connecting eth1 \(VIFVHostUser\) failed: eth1 exploded/);
    expect(rec.log).toContain('disconnect eth0');
    const e = registry.get(KEY);
    expect(e?.kind === 'entry' && e.containerId).toBe(null);
  });

  it('a VIF class without a driver is a clear 500', async () => {
    const { registry, flows } = setup(['VIFVHostUser']);
    registry.upsert(KEY, {
      source: 'kuryrport',
      objectUid: 'kp',
      podUid: POD_UID,
      vifs: [{ ifname: 'eth0', default: true, vif: { ...decodeVIF(OVS), active: true } }],
    });
    const err = toKuryrError(await flows.add(params('ADD', 'c1', { uid: POD_UID })).catch((e: unknown) => e));
    expect(err).toMatchObject({ status: 500, cniCode: 999 });
    expect(err.details).toMatch(/no binding driver for VIFOpenVSwitch.*drivers for VIFVHostUser/);
  });

  it('no K8S_POD_UID: the UID comes from the pod; a missing pod is 410 code 3', async () => {
    const { registry, kube, flows } = setup();
    expect(toKuryrError(await flows.add(params('ADD', 'c1')).catch((e: unknown) => e))).toMatchObject({
      status: 410,
      cniCode: 3,
    });
    kube.pods.set(KEY, { namespace: 'nfv', name: 'dpdk-pod', uid: POD_UID, static: false, deleting: false });
    registry.upsert(KEY, { source: 'kuryrport', objectUid: 'kp', podUid: POD_UID, vifs: activeVifs() });
    await expect(flows.add(params('ADD', 'c1'))).resolves.toMatchObject({ kind: 'VIFVHostUser' });
    expect(kube.gets).toBe(2);
  });

  it('the sentinel of a PREVIOUS pod with this name does not refuse the new pod (StatefulSet); its own sentinel does', async () => {
    const { registry, flows } = setup();
    registry.markPodGone(KEY, 'old-uid');
    const add = flows.add(params('ADD', 'c2', { uid: POD_UID }));
    setTimeout(
      () => registry.upsert(KEY, { source: 'kuryrport', objectUid: 'kp2', podUid: POD_UID, vifs: activeVifs() }),
      30,
    );
    await expect(add).resolves.toMatchObject({ kind: 'VIFVHostUser' });
    registry.remove(KEY);
    registry.markPodGone(KEY, POD_UID);
    expect(toKuryrError(await flows.add(params('ADD', 'c3', { uid: POD_UID })).catch((e: unknown) => e))).toMatchObject(
      { status: 410, cniCode: 3 },
    );
  });

  it('DEL: a failed disconnect is 500 and the entry is not marked unplugged; the VIFs of a newer pod are left alone', async () => {
    const { registry, rec, flows } = setup();
    registry.upsert(KEY, { source: 'kuryrport', objectUid: 'kp', podUid: POD_UID, vifs: activeVifs() });
    await flows.add(params('ADD', 'c1', { uid: POD_UID }));
    rec.failOn = 'del:eth1';
    expect(toKuryrError(await flows.del(params('DEL', 'c1', { uid: POD_UID })).catch((e: unknown) => e))).toMatchObject(
      { status: 500, cniCode: 999 },
    );
    const e = registry.get(KEY);
    expect(e?.kind === 'entry' && e.vifUnplugged).toBe(false);

    // A DEL naming the old pod's UID while the entry is the new pod's: cleanup by container id only.
    registry.upsert(KEY, { source: 'kuryrport', objectUid: 'kp-new', podUid: 'new-uid', vifs: activeVifs() });
    rec.log.length = 0;
    expect(await flows.del(params('DEL', 'old-container', { uid: POD_UID }))).toBe('cleaned-up');
    expect(rec.log).toEqual(['disconnect eth0 of old-container']);
  });

  it('a DEL that runs while the ADD waits for activation ends the ADD (never a 202 for removed VIFs)', async () => {
    const { registry, rec, flows } = setup();
    const vifs = activeVifs();
    vifs[1]!.vif.active = false;
    registry.upsert(KEY, { source: 'kuryrport', objectUid: 'kp', podUid: POD_UID, vifs });
    const add = flows.add(params('ADD', 'c1', { uid: POD_UID })).catch((e: unknown) => e);
    await expect.poll(() => rec.log.length).toBe(2);
    expect(await flows.del(params('DEL', 'c1', { uid: POD_UID }))).toBe('disconnected');
    expect(toKuryrError(await add)).toMatchObject({ status: 410, cniCode: 3 });
  });

  it('docker_mode: /proc netns paths go through netns_proc_dir; others unchanged', () => {
    expect(rewriteNetns('/proc/4242/ns/net', '/host_proc')).toBe('/host_proc/4242/ns/net');
    expect(rewriteNetns('/proc/4242/ns/net', '/host_proc/')).toBe('/host_proc/4242/ns/net');
    expect(rewriteNetns('/var/run/netns/cni-1', '/host_proc')).toBe('/var/run/netns/cni-1');
    expect(rewriteNetns('/proc/1/ns/net', null)).toBe('/proc/1/ns/net');
  });

  it('a cancelled ADD (client gone) is a retryable 504, not counted as our failure', async () => {
    const { flows } = setup();
    const ac = new AbortController();
    const add = flows.add(params('ADD', 'c1', { uid: POD_UID }), ac.signal);
    ac.abort();
    expect(toKuryrError(await add.catch((e: unknown) => e))).toMatchObject({
      status: 504,
      cniCode: 11,
      kind: 'timeout',
    });
  });
});
