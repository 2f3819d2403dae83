/**
 * vhost-user capacity (docs/capacity.md): the daemon keeps its Node's extended resource
 * `vhostplug.io/vhostuser` at limit - (vhost-user ports not made by vhostplug), and refuses
 * an ADD past the limit before touching anything.
 *
 * Real parts: the built `vhostplug daemon` CLI as a child process, a private DPDK OVS,
 * the `vhostplug-cni` shim, host-local IPAM, ovs-vsctl for a foreign port.
 * The Kubernetes API is a STAND-IN (test/helpers/fake-k8s.ts): kube-apiserver (with etcd)
 * cannot run on these machines. It speaks the real Node status subresource (GET, merge
 * patch) and records every patch, which is what the assertions read.
 * The limit is configured small (3) so the test stays cheap and far below DPDK's 1024.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeK8s } from '../helpers/fake-k8s';
import { useSandbox } from '../helpers/sandbox';
import { describeIf, firstReason, needsBinaries, needsOvs, needsRoot } from '../helpers/skip';
import {
  cniEnv,
  fakeNetns,
  HOST_LOCAL,
  leftovers,
  makeDirs,
  netconf,
  runShim,
  SHIM,
  type DaemonDirs,
} from './daemon-harness';
import {
  capacityPatch,
  kubeNodeStatusClient,
  NodeCapacityAdvertiser,
  VHOSTUSER_RESOURCE,
} from '../../src/agent/node-capacity';
import { loadClientNode, loadKubeConfig } from '../../src/kuryr/k8s-source';
import { parseConfig } from '../../src/agent/config';
import {
  countVhostUserPorts,
  parseMaxVhostDevice,
  PortBudget,
  vhostUserLimit,
  VhostUserLimitError,
} from '../../src/binding/capacity';
import { OvsdbClient } from '../../src/ovsdb/client';
import { Vswitch } from '../../src/vswitch/vswitch';
import { VSWITCH_CACHE, VswitchRows } from '../../src/vswitch/rows';
import { VhostUserDriver } from '../../src/binding/vhostuser';
import { BindingError } from '../../src/binding/driver';
import { makeVHostUserVif } from '../../src/vif/model';

const CLI = path.resolve(__dirname, '../../dist/cli/main.js');
const NODE = 'node-cap';
const LIMIT = 3;

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describeIf(
  firstReason(
    needsRoot(),
    needsOvs({ dpdk: true }),
    needsBinaries(SHIM, HOST_LOCAL),
    fs.existsSync(CLI) ? undefined : 'dist/ is not built (npm run build)',
  ),
)('vhost-user capacity: node extended resource and the local limit', () => {
  const sandbox = useSandbox();
  let fake: FakeK8s;
  let d: DaemonDirs;
  let daemon: ChildProcess;
  let log = '';

  const advertised = (): { capacity?: string; allocatable?: string } => {
    const n = fake.getNode(NODE)!;
    return { capacity: n.status.capacity[VHOSTUSER_RESOURCE], allocatable: n.status.allocatable[VHOSTUSER_RESOURCE] };
  };
  const waitAdvertised = (v: number) =>
    until(`the node to advertise ${v}`, () => (advertised().capacity === String(v) ? true : undefined));

  beforeAll(async () => {
    fake = await FakeK8s.start();
    fake.addNode(FakeK8s.node(NODE));
    d = makeDirs(sandbox(), 'cap');
    fs.appendFileSync(
      d.confFile,
      ['[vhostplug]', `vhostuser_port_limit = ${LIMIT}`, '[kubernetes]', `api_root = ${fake.url}`, ''].join('\n'),
    );
    // The [vhostplug] section appears twice now; oslo merges repeated sections, so do we.
    daemon = spawn(
      process.execPath,
      [CLI, 'daemon', '--config', d.confFile, '--node-name', NODE, '--reconcile-interval', '0'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    daemon.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    await until('the daemon to listen', () => (fs.existsSync(d.socket) ? true : undefined), 60_000);
  }, 90_000);

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
    }
    await fake?.stop();
  });

  it('advertises the limit on the Node (capacity and allocatable) at start-up, with a merge patch of its status', async () => {
    await waitAdvertised(LIMIT);
    expect(advertised()).toEqual({ capacity: '3', allocatable: '3' });
    expect(fake.nodePatches[0]).toMatchObject({
      node: NODE,
      contentType: 'application/merge-patch+json',
      body: capacityPatch(LIMIT),
    });
    // Kubelet's own resources are untouched.
    expect(fake.getNode(NODE)!.status.capacity.cpu).toBe('2');
  });

  it('a vhost-user port made by someone else lowers it; its removal raises it again', async () => {
    const nowhere = path.join(sandbox().dir, 'nowhere.sock');
    sandbox().vsctl(
      'add-port',
      'br-int',
      'vhuforeign0',
      '--',
      'set',
      'Interface',
      'vhuforeign0',
      'type=dpdkvhostuserclient',
      `options:vhost-server-path=${nowhere}`,
    );
    await waitAdvertised(LIMIT - 1);
    sandbox().vsctl('del-port', 'br-int', 'vhuforeign0');
    await waitAdvertised(LIMIT);
  });

  it(`ADD number limit+1 is refused (CNI error 103) with nothing changed; a freed slot is usable again`, async () => {
    const nowhere = path.join(sandbox().dir, 'nowhere.sock');
    sandbox().vsctl(
      'add-port',
      'br-int',
      'vhuforeign1',
      '--',
      'set',
      'Interface',
      'vhuforeign1',
      'type=dpdkvhostuserclient',
      `options:vhost-server-path=${nowhere}`,
    );
    await waitAdvertised(LIMIT - 1);
    const conf = JSON.stringify(netconf(d, '1.1.0', 'server'));
    // The scheduler's view: 2 left. Two pods take them (the foreign port holds the third slot).
    for (const cid of ['capA', 'capB']) {
      const r = await runShim(d.socket, cniEnv('ADD', cid, 'net1', fakeNetns(d, cid)), conf);
      expect(r.code, r.stdout).toBe(0);
    }
    // The switch has LIMIT vhost-user ports now; the node still advertises limit - foreign.
    expect(advertised().capacity).toBe(String(LIMIT - 1));
    const before = leftovers(sandbox(), d);
    const vsctlBefore = sandbox().vsctl('show');
    const refused = await runShim(d.socket, cniEnv('ADD', 'capC', 'net1', fakeNetns(d, 'capC')), conf);
    expect(refused.code).toBe(1);
    expect(refused.json).toMatchObject({ code: 103, msg: 'vhost-user port limit reached' });
    expect(String(refused.json!.details)).toMatch(
      /at its vhost-user port limit: 3 ports \(1 not vhostplug's\) of 3 \(config\)/,
    );
    // Nothing changed: ports, sockets, files, state records, IP reservations.
    expect(leftovers(sandbox(), d)).toEqual(before);
    expect(sandbox().vsctl('show')).toBe(vsctlBefore);
    // The driver itself (the Kuryr path has no daemon pre-check) refuses the same way, before OVSDB.
    const c2 = await OvsdbClient.connect(sandbox().db, { cache: VSWITCH_CACHE });
    try {
      const driver = new VhostUserDriver(new Vswitch(c2), {
        mountPoint: d.mount,
        ovsVhuPath: sandbox().runDir,
        fsync: false,
        vhostUserPortLimit: LIMIT,
      });
      const err = await driver
        .connect({ vif: makeVHostUserVif('client', d.mount), containerId: 'capD', ifname: 'net1' })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BindingError);
      expect(err).toMatchObject({ step: 'capacity', code: 'ENOSPC' });
      expect((err as Error).cause).toBeInstanceOf(VhostUserLimitError);
    } finally {
      c2.close();
    }
    expect(leftovers(sandbox(), d)).toEqual(before);
    // A DEL frees a slot; the same ADD then works.
    expect((await runShim(d.socket, cniEnv('DEL', 'capA', 'net1'), conf)).code).toBe(0);
    const again = await runShim(d.socket, cniEnv('ADD', 'capC', 'net1', fakeNetns(d, 'capC')), conf);
    expect(again.code, again.stdout).toBe(0);
    for (const cid of ['capB', 'capC'])
      expect((await runShim(d.socket, cniEnv('DEL', cid, 'net1'), conf)).code).toBe(0);
    sandbox().vsctl('del-port', 'br-int', 'vhuforeign1');
    await waitAdvertised(LIMIT);
  }, 60_000);

  it('the daemon log says what it advertised and from which limit', () => {
    expect(log).toMatch(/capacity: node resource advertised.*"value":3.*"limit":3.*"source":"config"/);
  });

  it('stops cleanly on SIGTERM', async () => {
    daemon.kill('SIGTERM');
    const code = await new Promise((r) => daemon.once('exit', r));
    expect(code).toBe(0);
  });
});

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: false })))(
  'capacity advertiser against the API stand-in (in process)',
  () => {
    const sandbox = useSandbox({ dpdk: false });
    let fake: FakeK8s;
    let client: OvsdbClient;

    beforeAll(async () => {
      fake = await FakeK8s.start();
      client = await OvsdbClient.connect(sandbox().db, { cache: VSWITCH_CACHE });
    });
    afterAll(async () => {
      client?.close();
      await fake?.stop();
    });

    async function advertiser(node: string, opts: { resyncMs?: number; retryMs?: number; limit?: number } = {}) {
      const { kc } = await loadKubeConfig(parseConfig(`[kubernetes]\napi_root = ${fake.url}\n`).config);
      const budget = new PortBudget(new VswitchRows(client.cache), vhostUserLimit(opts.limit ?? 5));
      return new NodeCapacityAdvertiser({
        nodeName: node,
        client: kubeNodeStatusClient(await loadClientNode(), kc),
        budget,
        cache: client.cache,
        resyncMs: opts.resyncMs ?? 0,
        retryMs: opts.retryMs ?? 100,
        debounceMs: 50,
      });
    }

    it('survives an API outage (retries) and puts back what kubelet zeroed (resync)', async () => {
      fake.addNode(FakeK8s.node('n1'));
      fake.setDown(true);
      const a = await advertiser('n1', { resyncMs: 300 });
      await a.start();
      expect(a.status().lastError).toMatch(/503|Service ?Unavailable|down/i);
      fake.setDown(false);
      await until('the patch after the outage', () =>
        fake.getNode('n1')!.status.capacity[VHOSTUSER_RESOURCE] === '5' ? true : undefined,
      );
      fake.zeroExtendedResources('n1');
      expect(fake.getNode('n1')!.status.allocatable[VHOSTUSER_RESOURCE]).toBe('0');
      await until('the resync to restore it', () =>
        fake.getNode('n1')!.status.allocatable[VHOSTUSER_RESOURCE] === '5' ? true : undefined,
      );
      await a.stop();
    });

    it('patches only when the value changes (a burst of foreign ports costs one patch)', async () => {
      fake.addNode(FakeK8s.node('n2'));
      const a = await advertiser('n2');
      await a.start();
      const patches = () => fake.nodePatches.filter((p) => p.node === 'n2').length;
      expect(patches()).toBe(1);
      // Internal ports do not count; three vhost-user ones in one transaction: one patch.
      sandbox().vsctl('add-port', 'br-int', 'int0', '--', 'set', 'Interface', 'int0', 'type=internal');
      await new Promise((r) => setTimeout(r, 300));
      expect(patches()).toBe(1);
      sandbox().vsctl(
        ...['f0', 'f1', 'f2'].flatMap((n) => [
          '--',
          'add-port',
          'br-int',
          n,
          '--',
          'set',
          'Interface',
          n,
          'type=dpdkvhostuserclient',
          `options:vhost-server-path=/nonexistent/${n}`,
        ]),
      );
      await until('2 advertised', () =>
        fake.getNode('n2')!.status.capacity[VHOSTUSER_RESOURCE] === '2' ? true : undefined,
      );
      await new Promise((r) => setTimeout(r, 300));
      expect(patches()).toBe(2);
      expect(countVhostUserPorts(new VswitchRows(client.cache).interfaces())).toEqual({
        total: 3,
        managed: 0,
        foreign: 3,
      });
      sandbox().vsctl(
        '--',
        'del-port',
        'br-int',
        'f0',
        '--',
        'del-port',
        'br-int',
        'f1',
        '--',
        'del-port',
        'br-int',
        'f2',
        '--',
        'del-port',
        'br-int',
        'int0',
      );
      await until('5 advertised', () =>
        fake.getNode('n2')!.status.capacity[VHOSTUSER_RESOURCE] === '5' ? true : undefined,
      );
      await a.stop();
    });

    it('PortBudget: reservations count until released; the error names the numbers', () => {
      const budget = new PortBudget(new VswitchRows(client.cache), { limit: 2, source: 'config' });
      const a = budget.reserve();
      const b = budget.reserve();
      expect(() => budget.reserve()).toThrow(VhostUserLimitError);
      expect(() => budget.reserve()).toThrow(/0 ports \(0 not vhostplug's\) \+ 2 being plugged of 2 \(config\)/);
      a.release();
      a.release(); // idempotent
      budget.reserve().release();
      b.release();
      expect(budget.inFlight).toBe(0);
    });

    it('the limit: configured, else RTE_MAX_VHOST_DEVICE from the DPDK headers, else 1024', () => {
      expect(vhostUserLimit(7)).toEqual({ limit: 7, source: 'config' });
      const dir = fs.mkdtempSync(path.join(sandbox().dir, 'hdr-'));
      const h = path.join(dir, 'rte_vhost.h');
      fs.writeFileSync(h, '#ifndef X\n#define RTE_MAX_VHOST_DEVICE\t2048\n#endif\n');
      expect(vhostUserLimit(0, [path.join(dir, 'missing.h'), h])).toEqual({ limit: 2048, source: `dpdk-header:${h}` });
      expect(vhostUserLimit(undefined, [path.join(dir, 'missing.h')])).toEqual({ limit: 1024, source: 'default' });
      expect(parseMaxVhostDevice('#define RTE_MAX_VHOST_DEVICE (512)')).toBe(512);
      expect(parseMaxVhostDevice('#define RTE_MAX_VHOST_DEVICE_X 5')).toBeUndefined();
      // This machine's dpdk-dev, when installed, says 1024 (DPDK 22.11).
      if (fs.existsSync('/usr/include/dpdk/rte_vhost.h')) expect(vhostUserLimit(0).limit).toBe(1024);
    });
  },
);
