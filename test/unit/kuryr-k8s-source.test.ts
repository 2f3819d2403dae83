/**
 * The KuryrPort/Pod list+watch source with @kubernetes/client-node, against the Kubernetes
 * API STAND-IN of test/helpers/fake-k8s.ts: the real kube-apiserver cannot run on these
 * machines. Shown: configuration sources (api_root + token_file, KUBECONFIG), the node
 * name, list then watch from the list's resourceVersion, re-watch after a dropped
 * connection WITHOUT a re-list, re-list on 410 Gone with deletions diffed, the legacy
 * annotation, an unreadable KuryrPort that does not kill the watch, pod lookups, Events.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig, ConfigError } from '../../src/agent/config';
import { KuryrK8sSource, loadKubeConfig, nodeName, podInfo } from '../../src/kuryr/k8s-source';
import { KuryrRegistry } from '../../src/kuryr/registry';
import { encodePodState, decodeKuryrPortVifs } from '../../src/vif/ovo';
import { FakeK8s } from '../helpers/fake-k8s';

const KP = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/vif/kuryrport.json'), 'utf8'));
const NODE = 'node-1';

describe('Kubernetes configuration and node name', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vhp-k8scfg-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('node name: KUBERNETES_NODE_NAME, else the lower-cased hostname', () => {
    expect(nodeName({ KUBERNETES_NODE_NAME: 'worker-7' }, () => 'IGNORED')).toBe('worker-7');
    expect(nodeName({}, () => 'Worker-7.Example')).toBe('worker-7.example');
  });

  it('[kubernetes] api_root with token_file; KUBECONFIG; clear errors for missing files', async () => {
    const token = path.join(tmp, 'token');
    fs.writeFileSync(token, 't0k3n');
    const cfg = defaultConfig();
    cfg.kubernetes.api_root = 'https://10.0.0.1:6443';
    cfg.kubernetes.token_file = token;
    const a = await loadKubeConfig(cfg, {});
    expect(a).toMatchObject({ source: 'api_root', server: 'https://10.0.0.1:6443' });
    expect(a.kc.getCurrentCluster()?.skipTLSVerify).toBe(true);

    cfg.kubernetes.token_file = path.join(tmp, 'missing');
    const err = await loadKubeConfig(cfg, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).option).toBe('token_file');

    const kubeconfig = path.join(tmp, 'kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]',
        'users: [{name: u, user: {token: abc}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
      ].join('\n'),
    );
    const b = await loadKubeConfig(defaultConfig(), { KUBECONFIG: kubeconfig });
    expect(b).toMatchObject({ source: 'kubeconfig', server: 'http://127.0.0.1:1' });
    await expect(loadKubeConfig(defaultConfig(), { KUBECONFIG: path.join(tmp, 'nope') })).rejects.toThrow(/KUBECONFIG/);
  });
});

describe('KuryrK8sSource against the Kubernetes API stand-in (the real kube-apiserver cannot run on these machines)', () => {
  let fake: FakeK8s;
  let source: KuryrK8sSource | undefined;
  let registry: KuryrRegistry;

  beforeAll(async () => {
    fake = await FakeK8s.start({ token: 'secret' });
  });
  afterAll(async () => {
    await fake?.stop();
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
  });

  async function start(): Promise<KuryrK8sSource> {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vhp-k8s-'));
    const tokenFile = path.join(tmp, 'token');
    fs.writeFileSync(tokenFile, 'secret');
    const cfg = defaultConfig();
    cfg.kubernetes.api_root = fake.url;
    cfg.kubernetes.token_file = tokenFile;
    const { kc } = await loadKubeConfig(cfg, {});
    registry = new KuryrRegistry();
    source = await KuryrK8sSource.create({ kc, nodeName: NODE, registry, requestTimeoutMs: 2000 });
    source.start();
    expect(await source.waitSynced(5000)).toBe(true);
    fs.rmSync(tmp, { recursive: true, force: true });
    return source;
  }

  const kpVifs = () => KP.status.vifs;

  it('lists then watches; only objects of this node; a dropped watch resumes from its resourceVersion without a re-list', async () => {
    const pod = fake.addPod(FakeK8s.pod('ns1', 'before', NODE));
    fake.createKuryrPort(FakeK8s.kuryrPort('ns1', 'before', NODE, pod.metadata.uid, kpVifs()));
    fake.createKuryrPort(FakeK8s.kuryrPort('ns1', 'elsewhere', 'node-2', 'x', kpVifs()));
    const s = await start();
    expect(registry.keys().sort()).toEqual(['ns1/before']);
    expect(await s.getPod('ns1', 'before')).toMatchObject({ uid: pod.metadata.uid, static: false, deleting: false });

    const listsBefore = fake.counts.kpLists;
    await expect.poll(() => fake.openWatches).toBe(2);
    fake.dropWatches();
    const pod2 = fake.addPod(FakeK8s.pod('ns1', 'during', NODE));
    fake.createKuryrPort(FakeK8s.kuryrPort('ns1', 'during', NODE, pod2.metadata.uid, kpVifs()));
    await expect.poll(() => registry.get('ns1/during')?.kind, { timeout: 5000 }).toBe('entry');
    expect(fake.counts.kpLists).toBe(listsBefore); // resumed, not re-listed
    fake.activateKuryrPort('ns1', 'during');
    await expect
      .poll(() => {
        const e = registry.get('ns1/during');
        return e?.kind === 'entry' && e.vifs.every((v) => v.vif.active === true);
      })
      .toBe(true);
    fake.deleteKuryrPort('ns1', 'during');
    await expect
      .poll(() => {
        const e = registry.get('ns1/during');
        return e?.kind === 'entry' && e.delReceived;
      })
      .toBe(true);
  });

  it('410 Gone -> re-list, and what was deleted meanwhile is marked deleted', async () => {
    const pod = fake.addPod(FakeK8s.pod('ns2', 'p', NODE));
    fake.createKuryrPort(FakeK8s.kuryrPort('ns2', 'p', NODE, pod.metadata.uid, kpVifs()));
    const s = await start();
    expect(registry.get('ns2/p')?.kind).toBe('entry');
    const lists = s.kuryrPorts.stats.lists;
    await expect.poll(() => fake.openWatches).toBe(2);
    fake.dropWatches();
    fake.deleteKuryrPort('ns2', 'p');
    fake.compact(); // the version the watch resumes from is now too old
    await expect.poll(() => s.kuryrPorts.stats.lists, { timeout: 5000 }).toBeGreaterThan(lists);
    await expect
      .poll(() => {
        const e = registry.get('ns2/p');
        return e?.kind === 'entry' && e.delReceived;
      })
      .toBe(true);
  });

  it('pods: deletion puts the sentinel; the legacy openstack.org/kuryr-vif annotation is read; a bad KuryrPort is reported, the watch lives on', async () => {
    const s = await start();
    const doomed = fake.addPod(FakeK8s.pod('ns3', 'doomed', NODE));
    await expect.poll(() => s.getPod('ns3', 'doomed').then((p) => p?.uid)).toBe(doomed.metadata.uid);
    fake.deletePod('ns3', 'doomed');
    await expect.poll(() => registry.get('ns3/doomed')).toMatchObject({ kind: 'gone', podUid: doomed.metadata.uid });
    expect(await s.getPod('ns3', 'doomed')).toBe(null); // 404 from the API

    const legacy = fake.addPod(
      FakeK8s.pod('ns3', 'legacy', NODE, {
        annotations: { 'openstack.org/kuryr-vif': JSON.stringify(encodePodState(decodeKuryrPortVifs(KP))) },
      }),
    );
    await expect
      .poll(() => registry.get('ns3/legacy'))
      .toMatchObject({ kind: 'entry', source: 'annotation', podUid: legacy.metadata.uid });

    const bad = FakeK8s.kuryrPort('ns3', 'bad', NODE, 'u', {
      eth0: { default: true, vif: { 'versioned_object.name': 'VIFNope' } },
    });
    fake.createKuryrPort(bad);
    await expect.poll(() => s.decodeErrors.get('ns3/bad')).toMatch(/VIFNope/);
    expect(registry.get('ns3/bad')).toBeUndefined();
    fake.createKuryrPort(FakeK8s.kuryrPort('ns3', 'after', NODE, 'u2', kpVifs()));
    await expect.poll(() => registry.get('ns3/after')?.kind).toBe('entry');
    expect(s.watchProblem()).toBeUndefined();
  });

  it('Events are posted in core/v1 shape; API health follows an outage', async () => {
    const s = await start();
    const n = fake.events.length;
    s.emitEvent({
      namespace: 'ns4',
      podName: 'p',
      podUid: 'uid-1',
      reason: 'CNIWaitingForActiveVIFs',
      message: 'waiting',
      type: 'Normal',
    });
    await expect.poll(() => fake.events.length).toBe(n + 1);
    const ev = fake.events[n]!;
    expect(ev).toMatchObject({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { namespace: 'ns4', generateName: 'p.' },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: 'p', namespace: 'ns4', uid: 'uid-1' },
      reason: 'CNIWaitingForActiveVIFs',
      type: 'Normal',
      source: { component: 'kuryr-daemon', host: NODE },
      count: 1,
    });
    expect(typeof ev.firstTimestamp).toBe('string');
    expect(await s.apiHealthy()).toBeUndefined();
    fake.setDown(true);
    try {
      expect(await s.apiHealthy()).toMatch(/not ready|cannot be reached/);
    } finally {
      fake.setDown(false);
    }
    expect(await s.apiHealthy()).toBeUndefined();
  });
});

describe("podInfo: the securityContext that decides who owns the pod's vhost-user files", () => {
  const meta = { name: 'p', namespace: 'ns', uid: 'c0ffee00-1111-4222-8333-444455556666' };
  it('pod level first; a container-level user/group when every container agrees', () => {
    expect(
      podInfo({ metadata: meta, spec: { securityContext: { runAsUser: 1000, runAsGroup: 2000, fsGroup: 3000 } } })
        ?.securityContext,
    ).toEqual({ runAsUser: 1000, runAsGroup: 2000, fsGroup: 3000 });
    expect(
      podInfo({
        metadata: meta,
        spec: { containers: [{ securityContext: { runAsUser: 7 } }, { securityContext: { runAsUser: 7 } }] },
      })?.securityContext,
    ).toEqual({ runAsUser: 7 });
    expect(
      podInfo({
        metadata: meta,
        spec: { containers: [{ securityContext: { runAsUser: 7 } }, { securityContext: { runAsUser: 8 } }] },
      })?.securityContext,
    ).toBeUndefined();
    expect(
      podInfo({ metadata: meta, spec: { securityContext: { runAsUser: -1, fsGroup: 'x' } } })?.securityContext,
    ).toBeUndefined();
    expect(podInfo({ metadata: meta })).not.toHaveProperty('securityContext');
  });
});
