/**
 * The Kuryr drop-in end to end: kuryr-cni's requests (test/helpers/kuryr-cni-client.ts
 * sends exactly what the Go executable sends) to the kuryr-daemon API, VIFs taken from
 * KuryrPort objects in the exact shapes Kuryr writes, REAL ports on a private DPDK OVS.
 *
 * The Kubernetes API is a STAND-IN (test/helpers/fake-k8s.ts): the real kube-apiserver
 * cannot run on these machines. It serves KuryrPort and Pod list and watch (chunked JSON
 * lines, resourceVersion) and Event POSTs with real JSON shapes, and requires a bearer
 * token, so the `[kubernetes] api_root` + `token_file` configuration path is exercised.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../../src/agent/config';
import { startKuryrDaemon, type KuryrDaemon } from '../../src/kuryr';
import { decodeVIF } from '../../src/vif/ovo';
import { FakeK8s, type RbacRule } from '../helpers/fake-k8s';
import { manifestObjects } from '../helpers/cri/pods';
import { kubeletCniArgs, makeDaemonRequest, toCni031Result, type KuryrCniArgs } from '../helpers/kuryr-cni-client';
import { useSandbox } from '../helpers/sandbox';
import { describeIf, firstReason, itIf, needsOvs, needsRoot } from '../helpers/skip';
import { run } from '../helpers/proc';

const NODE = 'node-1';
const CLI = path.resolve(__dirname, '../../dist/cli/main.js');

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}
const NS = 'nfv';
const FIXTURES = path.resolve(__dirname, '../fixtures/vif');
/** An os-vif primitive as JSON: fields are set freely on it, as os-vif's own dicts are. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Primitive = Record<string, any>;
const fixture = (name: string): Primitive => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8'));

/** A fixture primitive (made by real os-vif) with a fresh port id, our paths, `active` (default true); the shape is untouched. */
function vifPrimitive(file: string, opts: { mount?: string; active?: boolean; bridge?: string } = {}): Primitive {
  const p = fixture(file);
  const d = p['versioned_object.data'];
  const id = randomUUID();
  d.id = id;
  d.address = `fa:16:3e:${id.slice(0, 2)}:${id.slice(2, 4)}:${id.slice(4, 6)}`;
  const prefix = p['versioned_object.name'] === 'VIFVHostUser' ? 'vhu' : 'tap';
  d.vif_name = `${prefix}${id}`.slice(0, 14);
  if (p['versioned_object.name'] === 'VIFVHostUser') d.path = path.join(opts.mount ?? '/var/run/vhostuser', d.vif_name);
  if (p['versioned_object.name'] === 'VIFOpenVSwitch') d.bridge_name = opts.bridge ?? 'br-int';
  if (p['versioned_object.name'] === 'VIFBridge') d.bridge_name = `qbr${id}`.slice(0, 14);
  d.network['versioned_object.data'].bridge = opts.bridge ?? 'br-int';
  d.port_profile['versioned_object.data'].interface_id = id;
  d.active = opts.active ?? true;
  return p;
}

/** The rules of deploy/kuryr/rbac.yaml's ClusterRole. */
function kuryrClusterRoleRules(): RbacRule[] {
  const role = manifestObjects(path.resolve(__dirname, '../../deploy/kuryr/rbac.yaml')).find(
    (o) => o.kind === 'ClusterRole',
  ) as { rules: RbacRule[] };
  return role.rules;
}

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: true })))(
  'Kuryr drop-in: kuryr-cni protocol, KuryrPort watches (Kubernetes API stand-in: the real kube-apiserver cannot run on these machines), real ports on a DPDK OVS',
  () => {
    const sandbox = useSandbox();
    let fake: FakeK8s;
    let daemon: KuryrDaemon;
    let tmp: string;
    let mount: string;
    const netnses: string[] = [];

    const listPorts = (br = 'br-int'): string[] => {
      try {
        return sandbox().vsctl('list-ports', br).split('\n').filter(Boolean);
      } catch {
        return [];
      }
    };

    function cni(pod: string, containerId: string, extra: Partial<KuryrCniArgs> & { uid?: string } = {}): KuryrCniArgs {
      return {
        ifname: 'eth0',
        netns: `/var/run/netns/cni-${containerId.slice(0, 8)}`,
        containerId,
        args: kubeletCniArgs(NS, pod, containerId, extra.uid),
        ...extra,
      };
    }

    function newPod(name: string, annotations?: Record<string, string>): string {
      return fake.addPod(FakeK8s.pod(NS, name, NODE, { annotations })).metadata.uid as string;
    }

    beforeAll(async () => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vhp-kuryr-'));
      mount = path.join(sandbox().dir, 'vhostuser'); // same filesystem as the OVS run dir
      fs.mkdirSync(mount);
      // The API stand-in authorizes every request with deploy/kuryr/rbac.yaml's ClusterRole.
      fake = await FakeK8s.start({ token: 'kuryr-test-token', rbac: kuryrClusterRoleRules() });
      const tokenFile = path.join(tmp, 'token');
      fs.writeFileSync(tokenFile, 'kuryr-test-token\n');
      const { config, warnings } = parseConfig(
        [
          '[DEFAULT]',
          'debug = true',
          '[vhostuser]',
          `mount_point = ${mount}`,
          `ovs_vhu_path = ${sandbox().runDir}`,
          '[os_vif_ovs]',
          `ovsdb_connection = ${sandbox().db}`,
          'ovs_vsctl_timeout = 20',
          '[cni_daemon]',
          'vif_annotation_timeout = 2',
          'cni_failures_count = 2',
          '[kubernetes]',
          `api_root = ${fake.url}`,
          `token_file = ${tokenFile}`,
        ].join('\n'),
      );
      expect(warnings.map((w) => w.kind)).toEqual(['ignored']); // [DEFAULT] debug
      daemon = await startKuryrDaemon({
        config,
        nodeName: NODE,
        api: { host: '127.0.0.1', port: 0 },
        healthServer: { host: '127.0.0.1', port: 0 },
        metricsServer: { host: '127.0.0.1', port: 0 },
        delTimeoutMs: 800,
        vethHostNetns: `/run/netns/${sandbox().netns}`,
      });
    });
    afterEach(() => {
      for (const n of netnses.splice(0)) {
        try {
          run('ip', ['netns', 'del', n]);
        } catch {
          // already gone
        }
      }
    });
    afterAll(async () => {
      await daemon?.close();
      await fake?.stop();
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    it('ADD/DEL of a client-mode VIFVHostUser as kuryr-cni drives it: 202 body is the o.vo primitive, real port, socket and config file', async () => {
      const uid = newPod('dpdk-a');
      const vif = vifPrimitive('vhu-client.json', { mount });
      fake.createKuryrPort(FakeK8s.kuryrPort(NS, 'dpdk-a', NODE, uid, { eth0: { default: true, vif } }));
      const cid = randomUUID().replace(/-/g, '');
      const r = await makeDaemonRequest(daemon.api.url, 'ADD', cni('dpdk-a', cid, { uid }));
      expect(r.ok, JSON.stringify(r)).toBe(true);
      if (!r.ok) return;
      expect(r.raw.status).toBe(202);
      expect(r.raw.headers['content-type']).toBe('application/json');
      // The body is the default VIF's primitive in Kuryr's shape.
      const body = JSON.parse(r.raw.body);
      expect(body['versioned_object.name']).toBe('VIFVHostUser');
      expect(body['versioned_object.namespace']).toBe('os_vif');
      expect(body['versioned_object.version']).toBe('1.1');
      expect(body['versioned_object.data'].network['versioned_object.data'].subnets['versioned_object.name']).toBe(
        'SubnetList',
      );
      expect(body['versioned_object.data'].port_profile['versioned_object.name']).toBe('VIFPortProfileOpenVSwitch');
      expect(decodeVIF(body)).toEqual(decodeVIF(vif));
      // kuryr-cni turns it into its CNI 0.3.1 result.
      const result = toCni031Result(body, 'eth0', cid);
      expect(result).toMatchObject({
        cniVersion: '0.3.1',
        interfaces: [{ name: 'eth0', mac: vif['versioned_object.data'].address, sandbox: cid }],
        ips: [{ version: '4', interface: 0, address: '10.10.0.5/24', gateway: '10.10.0.1' }],
        dns: { nameservers: ['10.10.0.2', '8.8.8.8'] },
      });
      // A real port, the socket moved into the mount dir, the config file.
      const name = vif['versioned_object.data'].vif_name as string;
      expect(listPorts()).toContain(name);
      expect(sandbox().vsctl('get', 'Interface', name, 'type').trim()).toBe('dpdkvhostuser');
      expect(fs.lstatSync(path.join(mount, name)).isSocket()).toBe(true);
      expect(JSON.parse(fs.readFileSync(path.join(mount, `${cid}-eth0`), 'utf8'))).toMatchObject({
        vhostname: name,
        mode: 'client',
      });
      const entry = daemon.registry.get(`${NS}/dpdk-a`);
      expect(entry?.kind === 'entry' && entry.containerId).toBe(cid);

      const d = await makeDaemonRequest(daemon.api.url, 'DEL', cni('dpdk-a', cid, { uid }));
      expect(d).toMatchObject({ ok: true, raw: { status: 204, body: '' } });
      expect(listPorts()).not.toContain(name);
      expect(fs.existsSync(path.join(mount, name))).toBe(false);
      expect(fs.existsSync(path.join(mount, `${cid}-eth0`))).toBe(false);
      // The watcher's delete comes second: it removes the entry DEL marked unplugged.
      const marked = daemon.registry.get(`${NS}/dpdk-a`);
      expect(marked?.kind === 'entry' && marked.vifUnplugged).toBe(true);
      fake.deleteKuryrPort(NS, 'dpdk-a');
      await expect.poll(() => daemon.registry.get(`${NS}/dpdk-a`)).toBeUndefined();
    });

    it('two VIFs (server-mode eth0 + client-mode eth1): ADD before the KuryrPort, woken by watch events, waits for active with Kuryr Events', async () => {
      const uid = newPod('dpdk-b');
      const eth0 = vifPrimitive('vhu-server.json', { mount, active: false });
      const eth1 = vifPrimitive('vhu-client.json', { mount, active: false });
      const cid = randomUUID().replace(/-/g, '');
      const before = { ...fake.counts };
      const add = makeDaemonRequest(daemon.api.url, 'ADD', cni('dpdk-b', cid, { uid, ifname: 'eth0' }));
      // The controller: creates the KuryrPort, fills status.vifs, then activates.
      await new Promise((r) => setTimeout(r, 150));
      fake.createKuryrPort(FakeK8s.kuryrPort(NS, 'dpdk-b', NODE, uid));
      await new Promise((r) => setTimeout(r, 100));
      fake.setKuryrPortVifs(NS, 'dpdk-b', { eth0: { default: true, vif: eth0 }, eth1: { default: false, vif: eth1 } });
      const n0 = eth0['versioned_object.data'].vif_name as string;
      const n1 = eth1['versioned_object.data'].vif_name as string;
      // Connected and recorded: the ADD now waits for the activation.
      await expect
        .poll(
          () => {
            const e = daemon.registry.get(`${NS}/dpdk-b`);
            return e?.kind === 'entry' ? e.containerId : null;
          },
          { timeout: 5000 },
        )
        .toBe(cid);
      expect(listPorts()).toEqual(expect.arrayContaining([n0, n1]));
      fake.activateKuryrPort(NS, 'dpdk-b');
      const r = await add;
      expect(r.ok, JSON.stringify(r)).toBe(true);
      if (!r.ok) return;
      const body = JSON.parse(r.raw.body);
      expect(body['versioned_object.data'].id).toBe(eth0['versioned_object.data'].id);
      expect(body['versioned_object.data'].active).toBe(true);
      // No polling: the stand-in saw no extra list or pod GET for this ADD (UID was in CNI_ARGS).
      expect(fake.counts.kpLists - before.kpLists).toBe(0);
      expect(fake.counts.podGets - before.podGets).toBe(0);
      expect(sandbox().vsctl('get', 'Interface', n0, 'type').trim()).toBe('dpdkvhostuserclient');
      expect(sandbox().vsctl('get', 'Interface', n1, 'type').trim()).toBe('dpdkvhostuser');
      // eth0 is plugged as CNI_IFNAME, eth1 keeps its name.
      expect(fs.existsSync(path.join(mount, `${cid}-eth0`))).toBe(true);
      expect(fs.existsSync(path.join(mount, `${cid}-eth1`))).toBe(true);
      await expect.poll(() => fake.eventReasons(NS, 'dpdk-b')).toContain('CNIWaitingForActiveVIFs');
      const ev = fake.events.find((e) => e.reason === 'CNIWaitingForActiveVIFs' && e.involvedObject.name === 'dpdk-b')!;
      expect(ev).toMatchObject({
        type: 'Normal',
        involvedObject: { kind: 'Pod', namespace: NS, uid },
        source: { component: 'kuryr-daemon', host: NODE },
      });

      // KuryrPort deleted first this time: DEL then removes the entry.
      fake.deleteKuryrPort(NS, 'dpdk-b');
      await expect
        .poll(() => {
          const e = daemon.registry.get(`${NS}/dpdk-b`);
          return e?.kind === 'entry' && e.delReceived;
        })
        .toBe(true);
      expect((await makeDaemonRequest(daemon.api.url, 'DEL', cni('dpdk-b', cid, { uid }))).ok).toBe(true);
      expect(listPorts()).not.toEqual(expect.arrayContaining([n0]));
      expect(listPorts()).not.toContain(n1);
      expect(daemon.registry.get(`${NS}/dpdk-b`)).toBeUndefined();
    });

    it('VIFOpenVSwitch and VIFBridge (veth, hybrid) plug real devices in the pod netns', async () => {
      const uid = newPod('veth-pod');
      const ovsVif = vifPrimitive('ovs.json');
      const brVif = vifPrimitive('bridge.json');
      fake.createKuryrPort(
        FakeK8s.kuryrPort(NS, 'veth-pod', NODE, uid, {
          eth0: { default: true, vif: ovsVif },
          eth1: { default: false, vif: brVif },
        }),
      );
      const ns = `vhp-kuryr-${process.pid}`;
      run('ip', ['netns', 'add', ns]);
      netnses.push(ns);
      const cid = randomUUID().replace(/-/g, '');
      const req = cni('veth-pod', cid, { uid, netns: `/run/netns/${ns}`, ifname: 'eth0' });
      const r = await makeDaemonRequest(daemon.api.url, 'ADD', req);
      expect(r.ok, JSON.stringify(r)).toBe(true);
      const links = run('ip', ['-n', ns, '-j', 'link', 'show']);
      const names = (JSON.parse(links) as Array<{ ifname: string; address: string }>).map((l) => l.ifname);
      expect(names).toEqual(expect.arrayContaining(['eth0', 'eth1']));
      const eth0 = (JSON.parse(links) as Array<{ ifname: string; address: string }>).find((l) => l.ifname === 'eth0')!;
      expect(eth0.address).toBe(ovsVif['versioned_object.data'].address);
      expect(listPorts()).toContain(ovsVif['versioned_object.data'].vif_name);
      // Kuryr: eth0 is the default gateway (the VIF's subnet gateway).
      expect(run('ip', ['-n', ns, 'route', 'show', 'default'])).toContain('via 10.10.0.1 dev eth0');

      expect((await makeDaemonRequest(daemon.api.url, 'DEL', req)).ok).toBe(true);
      expect(listPorts()).not.toContain(ovsVif['versioned_object.data'].vif_name);
      const after = (JSON.parse(run('ip', ['-n', ns, '-j', 'link', 'show'])) as Array<{ ifname: string }>).map(
        (l) => l.ifname,
      );
      expect(after).not.toContain('eth0');
      expect(after).not.toContain('eth1');
      fake.deleteKuryrPort(NS, 'veth-pod');
    });

    it('a pod of a pre-KuryrPort controller: VIFs from the legacy openstack.org/kuryr-vif annotation (PodState)', async () => {
      const vif = vifPrimitive('vhu-server.json', { mount });
      const podState = {
        'versioned_object.name': 'PodState',
        'versioned_object.namespace': 'os_vif',
        'versioned_object.version': '1.0',
        'versioned_object.data': { default_vif: vif, additional_vifs: {} },
      };
      const uid = newPod('legacy', { 'openstack.org/kuryr-vif': JSON.stringify(podState) });
      const cid = randomUUID().replace(/-/g, '');
      const r = await makeDaemonRequest(daemon.api.url, 'ADD', cni('legacy', cid, { uid }));
      expect(r.ok, JSON.stringify(r)).toBe(true);
      const name = vif['versioned_object.data'].vif_name as string;
      expect(listPorts()).toContain(name);
      expect((await makeDaemonRequest(daemon.api.url, 'DEL', cni('legacy', cid, { uid }))).ok).toBe(true);
      expect(listPorts()).not.toContain(name);
      fake.deletePod(NS, 'legacy');
      await expect.poll(() => daemon.registry.get(`${NS}/legacy`)).toBeUndefined();
    });

    it('timeouts: no KuryrPort -> 504 code 11 + CNITimeoutKuryrPortRegistry; never active -> 504 + CNITimedOutWaitingForActiveVIFs, port kept for DEL', async () => {
      const uid = newPod('slow');
      const cid = randomUUID().replace(/-/g, '');
      const t0 = Date.now();
      const r = await makeDaemonRequest(daemon.api.url, 'ADD', cni('slow', cid, { uid }));
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
      expect(r).toMatchObject({ ok: false, error: { code: 11 }, raw: { status: 504 } });
      await expect.poll(() => fake.eventReasons(NS, 'slow')).toContain('CNITimeoutKuryrPortRegistry');

      const vif = vifPrimitive('vhu-server.json', { mount, active: false });
      fake.createKuryrPort(FakeK8s.kuryrPort(NS, 'slow', NODE, uid, { eth0: { default: true, vif } }));
      const r2 = await makeDaemonRequest(daemon.api.url, 'ADD', cni('slow', cid, { uid }));
      expect(r2).toMatchObject({ ok: false, error: { code: 11 }, raw: { status: 504 } });
      await expect.poll(() => fake.eventReasons(NS, 'slow')).toContain('CNITimedOutWaitingForActiveVIFs');
      const name = vif['versioned_object.data'].vif_name as string;
      expect(listPorts()).toContain(name); // Kuryr semantics: no rollback; the runtime's DEL cleans up
      expect((await makeDaemonRequest(daemon.api.url, 'DEL', cni('slow', cid, { uid }))).ok).toBe(true);
      expect(listPorts()).not.toContain(name);
      fake.deleteKuryrPort(NS, 'slow');
    });

    it('pod gone: no such pod -> 410 code 3 at once; pod deleted while ADD waits -> 410 before the timeout; DEL on the sentinel -> 204', async () => {
      const r = await makeDaemonRequest(daemon.api.url, 'ADD', cni('never-existed', 'c'.repeat(64)));
      expect(r).toMatchObject({ ok: false, error: { code: 3 }, raw: { status: 410 } });

      const uid = newPod('doomed');
      const cid = randomUUID().replace(/-/g, '');
      const t0 = Date.now();
      const add = makeDaemonRequest(daemon.api.url, 'ADD', cni('doomed', cid, { uid }));
      await new Promise((res) => setTimeout(res, 200));
      fake.deletePod(NS, 'doomed');
      const r2 = await add;
      expect(r2).toMatchObject({ ok: false, error: { code: 3 }, raw: { status: 410 } });
      expect(Date.now() - t0).toBeLessThan(1500);
      expect(daemon.registry.get(`${NS}/doomed`)?.kind).toBe('gone');
      const d = await makeDaemonRequest(daemon.api.url, 'DEL', cni('doomed', cid, { uid }));
      expect(d).toMatchObject({ ok: true, raw: { status: 204 } });
      expect(daemon.registry.get(`${NS}/doomed`)).toBeUndefined();
    });

    it('UID mismatch -> 410 code 3 (static pods exempt); DEL for an unknown ADD -> 204 and nothing touched', async () => {
      const uid = newPod('twin');
      const vif = vifPrimitive('vhu-server.json', { mount });
      fake.createKuryrPort(FakeK8s.kuryrPort(NS, 'twin', NODE, uid, { eth0: { default: true, vif } }));
      const stale = randomUUID();
      const r = await makeDaemonRequest(daemon.api.url, 'ADD', cni('twin', 'a'.repeat(64), { uid: stale }));
      expect(r).toMatchObject({ ok: false, error: { code: 3, msg: 'Pod UID mismatch' }, raw: { status: 410 } });
      expect(listPorts()).not.toContain(vif['versioned_object.data'].vif_name);

      const cid = randomUUID().replace(/-/g, '');
      expect((await makeDaemonRequest(daemon.api.url, 'ADD', cni('twin', cid, { uid }))).ok).toBe(true);
      const name = vif['versioned_object.data'].vif_name as string;
      // A DEL of another sandbox of this pod: ignored, the port stays.
      const d = await makeDaemonRequest(daemon.api.url, 'DEL', cni('twin', 'b'.repeat(64), { uid }));
      expect(d).toMatchObject({ ok: true, raw: { status: 204 } });
      expect(listPorts()).toContain(name);
      expect((await makeDaemonRequest(daemon.api.url, 'DEL', cni('twin', cid, { uid }))).ok).toBe(true);
      expect(listPorts()).not.toContain(name);
      fake.deleteKuryrPort(NS, 'twin');

      // A static pod's mirror has another UID than kubelet's: exempt.
      const mirrorUid = newPod('static-pod', {
        'kubernetes.io/config.source': 'file',
        'kubernetes.io/config.mirror': 'abc',
      });
      const svif = vifPrimitive('vhu-server.json', { mount });
      fake.createKuryrPort(
        FakeK8s.kuryrPort(
          NS,
          'static-pod',
          NODE,
          mirrorUid,
          { eth0: { default: true, vif: svif } },
          { podStatic: true },
        ),
      );
      const scid = randomUUID().replace(/-/g, '');
      const s = await makeDaemonRequest(daemon.api.url, 'ADD', cni('static-pod', scid, { uid: randomUUID() }));
      expect(s.ok, JSON.stringify(s)).toBe(true);
      expect((await makeDaemonRequest(daemon.api.url, 'DEL', cni('static-pod', scid))).ok).toBe(true);
      expect(listPorts()).not.toContain(svif['versioned_object.data'].vif_name);
      fake.deleteKuryrPort(NS, 'static-pod');
    });

    it('the KuryrPort deleted mid-ADD -> 410 at once (not after the active timeout); DEL removes the port; DEL after the KuryrPort is gone cleans up by container id', async () => {
      const uid = newPod('midway');
      const vif = vifPrimitive('vhu-server.json', { mount, active: false });
      fake.createKuryrPort(FakeK8s.kuryrPort(NS, 'midway', NODE, uid, { eth0: { default: true, vif } }));
      const cid = randomUUID().replace(/-/g, '');
      const name = vif['versioned_object.data'].vif_name as string;
      const t0 = Date.now();
      const add = makeDaemonRequest(daemon.api.url, 'ADD', cni('midway', cid, { uid }));
      await expect.poll(() => listPorts(), { timeout: 5000 }).toContain(name);
      fake.deleteKuryrPort(NS, 'midway');
      const r = await add;
      expect(r).toMatchObject({ ok: false, error: { code: 3 }, raw: { status: 410 } });
      expect(Date.now() - t0).toBeLessThan(1900);
      expect(listPorts()).toContain(name);
      expect((await makeDaemonRequest(daemon.api.url, 'DEL', cni('midway', cid, { uid }))).ok).toBe(true);
      expect(listPorts()).not.toContain(name);
      expect(daemon.registry.get(`${NS}/midway`)).toBeUndefined();

      // DEL with the KuryrPort (and entry) already gone: 5 s wait (0.8 s here), then cleanup by container id.
      const uid2 = newPod('orphan');
      const vif2 = vifPrimitive('vhu-server.json', { mount });
      fake.createKuryrPort(FakeK8s.kuryrPort(NS, 'orphan', NODE, uid2, { eth0: { default: true, vif: vif2 } }));
      const cid2 = randomUUID().replace(/-/g, '');
      expect((await makeDaemonRequest(daemon.api.url, 'ADD', cni('orphan', cid2, { uid: uid2 }))).ok).toBe(true);
      const name2 = vif2['versioned_object.data'].vif_name as string;
      daemon.registry.remove(`${NS}/orphan`); // as after a daemon restart with the KuryrPort gone
      fake.deleteKuryrPort(NS, 'orphan');
      const d = await makeDaemonRequest(daemon.api.url, 'DEL', cni('orphan', cid2, { uid: uid2 }));
      expect(d).toMatchObject({ ok: true, raw: { status: 204 } });
      expect(listPorts()).not.toContain(name2);
      expect(fs.existsSync(path.join(mount, `${cid2}-eth0`))).toBe(false);
    });

    it('30 pods through the API, one after another and 10 at once: every port plugged and removed (latencies printed, not asserted)', async () => {
      const pods = Array.from({ length: 30 }, (_, i) => {
        const name = `churn-${i}`;
        const uid = newPod(name);
        const vif = vifPrimitive(i % 2 ? 'vhu-client.json' : 'vhu-server.json', { mount });
        fake.createKuryrPort(FakeK8s.kuryrPort(NS, name, NODE, uid, { eth0: { default: true, vif } }));
        return { name, uid, vif, cid: randomUUID().replace(/-/g, '') };
      });
      await expect.poll(() => pods.every((p) => daemon.registry.get(`${NS}/${p.name}`)?.kind === 'entry')).toBe(true);
      const addMs: number[] = [];
      const delMs: number[] = [];
      const timed = async (arr: number[], f: () => Promise<{ ok: boolean }>) => {
        const t = performance.now();
        const r = await f();
        arr.push(performance.now() - t);
        expect(r.ok).toBe(true);
      };
      for (const p of pods.slice(0, 20))
        await timed(addMs, () => makeDaemonRequest(daemon.api.url, 'ADD', cni(p.name, p.cid, { uid: p.uid })));
      const t10 = performance.now();
      await Promise.all(
        pods
          .slice(20)
          .map((p) => timed(addMs, () => makeDaemonRequest(daemon.api.url, 'ADD', cni(p.name, p.cid, { uid: p.uid })))),
      );
      const parallelMs = performance.now() - t10;
      const names = pods.map((p) => p.vif['versioned_object.data'].vif_name as string);
      expect(listPorts()).toEqual(expect.arrayContaining(names));
      for (const p of pods)
        await timed(delMs, () => makeDaemonRequest(daemon.api.url, 'DEL', cni(p.name, p.cid, { uid: p.uid })));
      const left = listPorts();
      expect(names.filter((n) => left.includes(n))).toEqual([]);
      expect(fs.readdirSync(mount).filter((f) => pods.some((p) => f.startsWith(p.cid)))).toEqual([]);
      for (const p of pods) fake.deleteKuryrPort(NS, p.name);
      const pct = (a: number[], q: number) =>
        [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(q * a.length))]!.toFixed(1);
      // Conditions: private DPDK OVS (netdev, no hugepages), 2 shared cores, vswitchd ack on, HTTP per request (Connection: close).
      console.log(
        JSON.stringify({
          bench: 'kuryr-api',
          pods: pods.length,
          addMs: { p50: pct(addMs.slice(0, 20), 0.5), p90: pct(addMs.slice(0, 20), 0.9) },
          add10ParallelWallMs: parallelMs.toFixed(1),
          delMs: { p50: pct(delMs, 0.5), p90: pct(delMs, 0.9) },
        }),
      );
    });

    itIf(fs.existsSync(CLI) ? undefined : 'dist/ is not built (npm run build)')(
      '`vhostplug daemon --config-file kuryr.conf --kuryr` replacing kuryr-daemon: serves kuryr-cni and the shim from one process, stops cleanly on SIGTERM',
      async () => {
        const [api, healthPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
        const mount2 = path.join(sandbox().dir, 'vhostuser-cli');
        fs.mkdirSync(mount2, { recursive: true });
        const tokenFile = path.join(tmp, 'token');
        const conf = path.join(tmp, 'kuryr-cli.conf');
        fs.writeFileSync(
          conf,
          [
            '[vhostuser]',
            `mount_point = ${mount2}`,
            `ovs_vhu_path = ${sandbox().runDir}`,
            '[os_vif_ovs]',
            `ovsdb_connection = ${sandbox().db}`,
            '[cni_daemon]',
            `bind_address = 127.0.0.1:${api}`,
            'vif_annotation_timeout = 5',
            '[cni_health_server]',
            `port = ${healthPort}`,
            '[vhostplug]',
            `metrics_port = ${metricsPort}`,
            '[kubernetes]',
            `api_root = ${fake.url}`,
            `token_file = ${tokenFile}`,
          ].join('\n'),
        );
        const shimSocket = path.join(tmp, 'shim', 'daemon.sock');
        const child = spawn(
          process.execPath,
          [
            CLI,
            'daemon',
            '--config-file',
            conf,
            '--kuryr',
            '--node-name',
            NODE,
            '--log-level',
            'warn',
            '--socket',
            shimSocket,
            '--state-dir',
            path.join(tmp, 'state-cli'),
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let stderr = '';
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
        try {
          await expect
            .poll(
              () =>
                fetch(`http://127.0.0.1:${healthPort}/ready`).then(
                  (r) => r.status,
                  () => 0,
                ),
              { timeout: 20_000, interval: 200 },
            )
            .toBe(200);
          const uid = newPod('cli-pod');
          const vif = vifPrimitive('vhu-client.json', { mount: mount2 });
          fake.createKuryrPort(FakeK8s.kuryrPort(NS, 'cli-pod', NODE, uid, { eth0: { default: true, vif } }));
          const cid = randomUUID().replace(/-/g, '');
          const url = `http://127.0.0.1:${api}`;
          const r = await makeDaemonRequest(url, 'ADD', cni('cli-pod', cid, { uid }));
          expect(r.ok, `${JSON.stringify(r)}\n${stderr}`).toBe(true);
          const name = vif['versioned_object.data'].vif_name as string;
          expect(fs.lstatSync(path.join(mount2, name)).isSocket()).toBe(true);
          expect((await makeDaemonRequest(url, 'DEL', cni('cli-pod', cid, { uid }))).ok).toBe(true);
          expect(listPorts()).not.toContain(name);
          const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
          expect(metrics).toContain('vhostplug_cni_request_duration_seconds_count{command="ADD",result="success"} 1');
          // The CNI shim socket is served by the same process.
          expect(fs.lstatSync(shimSocket).isSocket()).toBe(true);
          expect(fs.statSync(shimSocket).mode & 0o777).toBe(0o600);
          fake.deleteKuryrPort(NS, 'cli-pod');
        } finally {
          child.kill('SIGTERM');
        }
        expect(await exited).toBe(0);
        // Stopped: nothing listens any more.
        const after = await makeDaemonRequest(`http://127.0.0.1:${api}`, 'ADD', cni('cli-pod', 'x'.repeat(64)));
        expect(after).toMatchObject({ ok: false, error: { code: 11 } });
      },
    );

    it('/metrics has ADD/DEL latency and per-phase histograms; /ready and /alive fail and RECOVER', async () => {
      const m = await fetch(`http://127.0.0.1:${daemon.metricsServer!.port}/metrics`);
      expect(m.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const text = await m.text();
      expect(text).toMatch(
        /^vhostplug_cni_request_duration_seconds_count\{command="ADD",result="success"\} [1-9]\d*$/m,
      );
      expect(text).toMatch(
        /^vhostplug_cni_request_duration_seconds_count\{command="DEL",result="success"\} [1-9]\d*$/m,
      );
      expect(text).toMatch(
        /^vhostplug_cni_request_duration_seconds_count\{command="ADD",result="timeout"\} [1-9]\d*$/m,
      );
      expect(text).toMatch(
        /^vhostplug_cni_request_duration_seconds_count\{command="ADD",result="pod_gone"\} [1-9]\d*$/m,
      );
      for (const phase of ['ovsdb_commit', 'vswitchd_ack', 'socket_wait', 'rename', 'file_write']) {
        expect(text).toMatch(
          new RegExp(
            `^vhostplug_plug_phase_duration_seconds_bucket\\{driver="vhostuser",phase="${phase}",le="\\+Inf"\\} [1-9]\\d*$`,
            'm',
          ),
        );
      }
      expect(text).toMatch(/^vhostplug_kuryr_wait_duration_seconds_count\{stage="active"\} [1-9]\d*$/m);

      const health = (p: string) =>
        fetch(`http://127.0.0.1:${daemon.healthServer!.port}${p}`).then(async (r) => ({
          status: r.status,
          body: await r.text(),
        }));
      await expect.poll(() => health('/ready').then((h) => h.status)).toBe(200);
      expect(await health('/alive')).toEqual({ status: 200, body: 'ok\n' });

      // The API server goes away: not ready; back: ready again.
      fake.setDown(true);
      const down = await health('/ready');
      expect(down.status).toBe(500);
      expect(down.body).toContain('kubernetes');
      fake.setDown(false);
      expect((await health('/ready')).status).toBe(200);

      // The mount dir disappears: not alive; restored: alive (Kuryr's flag would stay false).
      const aside = `${mount}.aside`;
      fs.renameSync(mount, aside);
      try {
        const dead = await health('/alive');
        expect(dead.status).toBe(500);
        expect(dead.body).toContain('mount_point');
      } finally {
        fs.renameSync(aside, mount);
      }
      expect((await health('/alive')).status).toBe(200);

      // cni_failures_count = 2 consecutive counted failures (bad requests); one success resets.
      for (let i = 0; i < 2; i++) {
        const bad = await makeDaemonRequest(daemon.api.url, 'ADD', {
          ifname: 'eth0',
          netns: '/x',
          containerId: 'c1',
          args: 'K8S_POD_NAME=x',
        });
        expect(bad).toMatchObject({ ok: false, error: { code: 4 }, raw: { status: 400 } });
      }
      const sick = await health('/alive');
      expect(sick.status).toBe(500);
      expect(sick.body).toContain('2 consecutive CNI requests failed');
      const uid = newPod('healer');
      fake.createKuryrPort(
        FakeK8s.kuryrPort(NS, 'healer', NODE, uid, {
          eth0: { default: true, vif: vifPrimitive('vhu-server.json', { mount }) },
        }),
      );
      const cid = randomUUID().replace(/-/g, '');
      expect((await makeDaemonRequest(daemon.api.url, 'ADD', cni('healer', cid, { uid }))).ok).toBe(true);
      expect((await health('/alive')).status).toBe(200);
      expect((await makeDaemonRequest(daemon.api.url, 'DEL', cni('healer', cid, { uid }))).ok).toBe(true);
    });

    it('least privilege holds: every request of the tests above was allowed by deploy/kuryr/rbac.yaml, the list, watch and create rules are the ones used', () => {
      expect(fake.forbidden).toEqual([]);
      expect([...fake.authorized].sort()).toEqual(
        expect.arrayContaining([
          'create /events',
          'list /pods',
          'list openstack.org/kuryrports',
          'watch /pods',
          'watch openstack.org/kuryrports',
        ]),
      );
    });
  },
);
