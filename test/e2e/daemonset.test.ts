/**
 * The vhostplug DaemonSet's pod run by containerd 1.6 exactly as deploy/daemonset.yaml
 * writes it: the manifest is parsed here (not restated), and its volumes, volumeMounts,
 * securityContext, command, hostNetwork/hostPID and the ConfigMap's kuryr.conf become the
 * CRI calls kubelet would make (test/helpers/cri/k8s-pod.ts; an unknown field fails).
 * The image is the one scripts/build-image.sh builds, under the name deploy/kustomization.yaml
 * gives it. Pods on the NetworkAttachmentDefinitions of deploy/nad-example.yaml (their
 * conflists, as Multus would pass them) are then plugged through the daemon container.
 *
 * hostPath volumes are used verbatim: the node's /run, /var/lib and /opt are private tmpfs
 * trees of the test (test/helpers/cri/node.ts), so "/var/run/openvswitch" is the test node's
 * OVS run dir and nothing of the machine is touched. No API server runs: kubelet's part
 * (volumes, probes' endpoints) is done by the test.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeIf } from '../helpers/skip';
import { waitFor } from '../helpers/proc';
import { TestNode, needsContainerdNode } from '../helpers/cri/node';
import { importImages } from '../helpers/cri/images';
import { DAEMONSET_YAML, manifestObjects, podConfig, REPO } from '../helpers/cri/pods';
import { containerLog, removePod, runPod, type K8sPodSpec, type RunningPod } from '../helpers/cri/k8s-pod';
import { CriError } from '../helpers/cri/client';
import { stablePortName } from '../../src/daemon/cni-plugin';

const NAD_YAML = path.join(REPO, 'deploy/nad-example.yaml');
const KUSTOMIZATION = path.join(REPO, 'deploy/kustomization.yaml');

/** The image reference kustomize gives the manifests' `image: vhostplug`. */
function kustomizedImage(): { name: string; ref: string } {
  const k = manifestObjects(KUSTOMIZATION)[0] as { images: { name: string; newName: string; newTag: string }[] };
  const img = k.images.find((i) => i.name === 'vhostplug')!;
  return { name: img.name, ref: `${img.newName}:${img.newTag}` };
}

/** The NADs' conflists, by network name (what Multus hands to the runtime's libcni). */
function nadConflists(): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const o of manifestObjects(NAD_YAML).filter((x) => x.kind === 'NetworkAttachmentDefinition')) {
    const conf = JSON.parse((o.spec as { config: string }).config) as Record<string, unknown>;
    out[conf.name as string] = conf;
  }
  return out;
}

const NETWORKS = { 'dpdk-client': 'client', 'dpdk-server': 'server', 'kernel-net': 'veth' } as const;

describeIf(needsContainerdNode())('deploy/daemonset.yaml as containers under containerd', () => {
  let node: TestNode;
  let images: Record<string, string>;
  let ds: { spec: { template: { spec: K8sPodSpec } } };
  let configMap: { metadata: { name: string }; data: Record<string, string> };
  let daemonPod: RunningPod | undefined;

  beforeAll(async () => {
    node = await TestNode.start({ handlers: Object.keys(NETWORKS) });
    try {
      const refs = importImages(node, ['vhostplug']);
      const { name, ref } = kustomizedImage();
      node.tagImage(refs.vhostplug, ref);
      images = { [name]: ref };
      const objs = manifestObjects(DAEMONSET_YAML);
      ds = objs.find((o) => o.kind === 'DaemonSet') as typeof ds;
      configMap = objs.find((o) => o.kind === 'ConfigMap') as typeof configMap;
      for (const [net, conf] of Object.entries(nadConflists())) node.installConflist(net, `10-${net}.conflist`, conf);
      await new Promise((r) => setTimeout(r, 500));
    } catch (e) {
      await node.stop({ keepDir: true });
      throw e;
    }
  }, 30 * 60_000);

  afterEach(async () => {
    for (const p of await node.cri.listPodSandbox()) {
      if (p.id === daemonPod?.id) continue;
      await node.cri.stopPodSandbox(p.id);
      await node.cri.removePodSandbox(p.id);
    }
    if (daemonPod) await removePod(node, daemonPod);
    daemonPod = undefined;
  });

  afterAll(async () => {
    await node?.stop();
  });

  /** Starts the DaemonSet's pod from a spec and waits until the daemon serves the shim. */
  async function startDaemonPod(spec: K8sPodSpec, data: Record<string, string>): Promise<RunningPod> {
    const pod = await runPod(node, 'vhostplug-node1', spec, {
      images,
      configMaps: { [configMap.metadata.name]: data },
    });
    daemonPod = pod;
    await waitFor(
      async () => {
        const st = await node.cri.containerStatus(pod.containers.daemon!);
        if (st.state === 'CONTAINER_EXITED')
          throw new Error(`daemon container exited ${st.exit_code}:\n${containerLog(pod, 'daemon')}`);
        return containerLog(pod, 'daemon').includes('"daemon: listening"');
      },
      'the daemon container to listen',
      60_000,
      100,
    );
    return pod;
  }

  /** GET on the daemon's health port in the node's host network (what the probes hit). */
  function probe(p: string): { status: number; body: string } {
    const out = node.exec([
      process.execPath,
      '-e',
      `fetch('http://127.0.0.1:8090${p}').then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })))`,
    ]);
    return JSON.parse(out) as { status: number; body: string };
  }

  it('as written: the init container installs the shim, the daemon comes up ready, and client, server and veth pods on the NADs plug through it and leave nothing', async () => {
    const pod = await startDaemonPod(ds.spec.template.spec, configMap.data);
    // The init container: the shim, atomically, in the node's CNI bin dir (same bytes as built).
    const installed = node.path('/opt/cni/bin/vhostplug');
    expect(fs.readFileSync(installed)).toEqual(fs.readFileSync(path.join(REPO, 'build/Release/vhostplug-cni')));
    expect(fs.statSync(installed).mode & 0o777).toBe(0o755);
    expect(containerLog(pod, 'daemon')).not.toContain('vhost-user set-up problem');
    // The probes' endpoints (kubelet's job; no API server here).
    await waitFor(() => probe('/ready').status === 200, 'the readiness endpoint', 20_000, 200);
    expect(probe('/alive').status).toBe(200);

    for (const [net, mode] of Object.entries(NETWORKS)) {
      const cfg = podConfig(node, `app-${mode}`);
      const id = await node.cri.runPodSandbox(cfg, net);
      // The NADs' default layout: the pod's own directory <mount_point>/<pod-uid>/ (K8S_POD_UID from containerd).
      const dir = `/run/openvswitch/vhostuser/${cfg.metadata.uid}`;
      const ip = (await node.cri.podSandboxStatus(id)).status.network!.ip;
      // host-local ran in the daemon container and wrote to the node's /var/lib/cni (the cni-ipam-data mount).
      expect(fs.readFileSync(node.path(`/var/lib/cni/networks/${net}/${ip}`), 'utf8')).toContain(id);
      const port = stablePortName(id, 'eth0', mode === 'veth' ? 'veth' : 'vhostuser');
      expect(node.ports()).toContain(port);
      if (mode === 'client') {
        // OVS created it in /var/run/openvswitch; the daemon renamed it into the pods' dir: one volume.
        expect(fs.lstatSync(node.path(`${dir}/${port}`)).isSocket()).toBe(true);
        expect(fs.existsSync(node.path(`/run/openvswitch/${port}`))).toBe(false);
      }
      if (mode !== 'veth')
        expect(JSON.parse(fs.readFileSync(node.path(`${dir}/${id}-eth0`), 'utf8'))).toMatchObject({
          vhostname: port,
          mode,
        });
      // State in the node's /var/lib/vhostplug (the state mount survives the container).
      expect(fs.readdirSync(node.path('/var/lib/vhostplug'))).toContain(`${id}:eth0.json`);
      await node.cri.stopPodSandbox(id);
      await node.cri.removePodSandbox(id);
      expect(node.ports(), net).toEqual([]);
      expect(fs.readdirSync(node.path('/run/openvswitch/vhostuser')), net).toEqual([]);
      expect(
        fs.readdirSync(node.path(`/var/lib/cni/networks/${net}`)).filter((f) => /^\d/.test(f)),
        net,
      ).toEqual([]);
    }
    expect(fs.readdirSync(node.path('/var/lib/vhostplug')).filter((f) => f.endsWith('.json'))).toEqual([]);
  }, 300_000);

  it('the old two-volume layout (/var/run/openvswitch and /var/run/vhostuser as two hostPath volumes): the daemon reports the cross-mount set-up at start and on /alive, and a client-mode plug fails with EXDEV naming both mounts and the manifest fix, leaving nothing', async () => {
    // The manifest as it was before the fix: the pods' dir on a volume of its own.
    const spec = structuredClone(ds.spec.template.spec);
    spec.volumes!.push({ name: 'vhostuser', hostPath: { path: '/var/run/vhostuser', type: 'DirectoryOrCreate' } });
    spec.containers[0]!.volumeMounts!.push({ name: 'vhostuser', mountPath: '/var/run/vhostuser' });
    const data = {
      'kuryr.conf': configMap.data['kuryr.conf']!.replace(/^mount_point = .*$/m, 'mount_point = /var/run/vhostuser'),
    };
    expect(data['kuryr.conf']).toContain('mount_point = /var/run/vhostuser');
    const pod = await startDaemonPod(spec, data);

    const startLog = containerLog(pod, 'daemon');
    expect(startLog).toContain('vhost-user set-up problem');
    // Both dirs are on the node's one /run tmpfs: only the two volume mounts differ.
    expect(startLog).toMatch(
      /cross-mount setup detected: \[vhostuser\] ovs_vhu_path \(\/var\/run\/openvswitch\) is on tmpfs 'node-run' mounted at \/run\/openvswitch \(mount \d+, a bind mount of \/openvswitch\) but \[vhostuser\] mount_point \(\/var\/run\/vhostuser\) is on tmpfs 'node-run' mounted at \/run\/vhostuser \(mount \d+, a bind mount of \/vhostuser\)/,
    );
    expect(startLog).toContain('mount ONE hostPath volume that holds both directories');
    const alive = probe('/alive');
    expect(alive.status).not.toBe(200); // the liveness probe fails (kubelet restarts the container and the event says why)
    expect(alive.body).toContain('cross-mount setup detected');

    const err = await node.cri.runPodSandbox(podConfig(node, 'app-client-old'), 'dpdk-client').then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(CriError);
    expect(err!.message).toContain('EXDEV');
    // The target is the pod's own directory (the NADs' per-pod layout), on the second mount.
    expect(err!.message).toMatch(
      /'\/var\/run\/openvswitch' is on tmpfs 'node-run' mounted at \/run\/openvswitch .*'\/var\/run\/vhostuser\/[0-9a-f-]{36}' is on tmpfs 'node-run' mounted at \/run\/vhostuser/,
    );
    expect(err!.message).toContain('deploy/daemonset.yaml mounts /var/run/openvswitch once');
    // Rolled back: no port, no socket left in OVS's dir, no IP held; containerd dropped the sandbox.
    expect((await node.cri.listPodSandbox()).map((p) => p.id)).toEqual([pod.id]);
    expect(node.ports()).toEqual([]);
    expect(fs.readdirSync(node.path('/run/openvswitch')).filter((f) => f.startsWith('vhu'))).toEqual([]);
    expect(fs.readdirSync(node.path('/var/lib/cni/networks/dpdk-client')).filter((f) => /^\d/.test(f))).toEqual([]);
  }, 300_000);
});
