/**
 * What kubelet does with a pod spec, for the fields our manifests use: the sandbox
 * (hostNetwork, hostPID, privileged when a container is), volumes (hostPath with its `type`
 * checks and DirectoryOrCreate, configMap as files), init containers run to completion in
 * order, then the containers with their command, env (value, fieldRef spec.nodeName),
 * volumeMounts (readOnly, mountPropagation) and securityContext (privileged,
 * readOnlyRootFilesystem, capabilities), memory limit. A field it does not know makes it
 * throw: a manifest must not silently lose a setting here.
 *
 * hostPath volumes are used verbatim: on a {@link TestNode} /run, /var/lib and /opt are
 * private tmpfs trees, so the manifest's host paths exist only for the test, with no rewriting.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { waitFor } from '../proc';
import type { ContainerConfig, CriMount, PodSandboxConfig } from './client';
import type { TestNode } from './node';
import { podConfig } from './pods';

type Obj = Record<string, unknown>;

export interface K8sVolume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string; items?: unknown };
  emptyDir?: Obj;
}

export interface K8sContainer {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string; subPath?: string }[];
  securityContext?: {
    privileged?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  resources?: { limits?: { memory?: string; cpu?: string }; requests?: Obj };
  ports?: unknown;
  startupProbe?: unknown;
  readinessProbe?: unknown;
  livenessProbe?: unknown;
}

export interface K8sPodSpec {
  hostNetwork?: boolean;
  hostPID?: boolean;
  volumes?: K8sVolume[];
  initContainers?: K8sContainer[];
  containers: K8sContainer[];
  [k: string]: unknown;
}

export interface RunningPod {
  id: string;
  sandbox: PodSandboxConfig;
  containers: Record<string, string>;
  logDir: string;
}

const POD_FIELDS = new Set([
  'hostNetwork',
  'hostPID',
  'volumes',
  'initContainers',
  'containers',
  // Scheduling and API-side fields: no effect on what runs on the node.
  'serviceAccountName',
  'automountServiceAccountToken',
  'dnsPolicy',
  'priorityClassName',
  'tolerations',
  'nodeSelector',
  'terminationGracePeriodSeconds',
]);
const CONTAINER_FIELDS = new Set([
  'name',
  'image',
  'command',
  'args',
  'env',
  'volumeMounts',
  'securityContext',
  'resources',
  'ports',
  'startupProbe',
  'readinessProbe',
  'livenessProbe',
]);

function unknownKeys(o: object, known: Set<string>, where: string): void {
  const bad = Object.keys(o).filter((k) => !known.has(k));
  if (bad.length) throw new Error(`${where}: the test kubelet does not implement ${bad.join(', ')}`);
}

function memoryBytes(q: string | undefined): number | undefined {
  if (q === undefined) return undefined;
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(q);
  if (!m) throw new Error(`memory quantity ${q} not understood`);
  return Number(m[1]) * { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[2] ?? '']!;
}

const PROPAGATION: Record<string, CriMount['propagation']> = {
  None: 'PROPAGATION_PRIVATE',
  HostToContainer: 'PROPAGATION_HOST_TO_CONTAINER',
  Bidirectional: 'PROPAGATION_BIDIRECTIONAL',
};

/**
 * Prepares the volumes on the node as kubelet does: hostPath `type` checked (Directory must
 * exist, DirectoryOrCreate is created 0755), configMap keys written as files. Returns each
 * volume's node path.
 */
export function prepareVolumes(
  node: TestNode,
  podName: string,
  volumes: K8sVolume[],
  configMaps: Record<string, Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of volumes) {
    if (v.hostPath) {
      const p = v.hostPath.path;
      const type = v.hostPath.type ?? '';
      const st = fs.statSync(node.path(p), { throwIfNoEntry: false });
      if (type === 'DirectoryOrCreate' && !st) fs.mkdirSync(node.path(p), { recursive: true, mode: 0o755 });
      else if (type === 'Directory' && !st?.isDirectory())
        throw new Error(`hostPath ${p} (volume ${v.name}): type Directory, but it is not a directory on the node`);
      else if (type !== '' && type !== 'Directory' && type !== 'DirectoryOrCreate')
        throw new Error(`hostPath type ${type} not implemented`);
      out[v.name] = p;
    } else if (v.configMap) {
      const data = configMaps[v.configMap.name];
      if (!data) throw new Error(`configMap ${v.configMap.name} (volume ${v.name}) not found`);
      if (v.configMap.items) throw new Error('configMap items not implemented');
      const dir = path.join(node.dir, 'volumes', podName, v.name);
      fs.mkdirSync(dir, { recursive: true });
      for (const [k, text] of Object.entries(data)) fs.writeFileSync(path.join(dir, k), text);
      out[v.name] = dir;
    } else if (v.emptyDir) {
      const dir = path.join(node.dir, 'volumes', podName, v.name);
      fs.mkdirSync(dir, { recursive: true });
      out[v.name] = dir;
    } else throw new Error(`volume ${v.name}: only hostPath, configMap and emptyDir are implemented`);
  }
  return out;
}

/** The CRI ContainerConfig kubelet would build for a container of the pod. */
export function containerConfig(
  c: K8sContainer,
  image: string,
  volumes: Record<string, string>,
  logDir: string,
  nodeName: string,
): ContainerConfig {
  unknownKeys(c, CONTAINER_FIELDS, `container ${c.name}`);
  const envs = (c.env ?? []).map((e) => {
    if (e.value !== undefined) return { key: e.name, value: e.value };
    if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') return { key: e.name, value: nodeName };
    throw new Error(`env ${e.name}: only value and fieldRef spec.nodeName are implemented`);
  });
  const mounts: CriMount[] = (c.volumeMounts ?? []).map((m) => {
    if (m.subPath) throw new Error('subPath not implemented');
    const host = volumes[m.name];
    if (host === undefined) throw new Error(`volumeMount ${m.name} of container ${c.name} names no volume`);
    return {
      container_path: m.mountPath,
      host_path: host,
      readonly: m.readOnly ?? false,
      propagation: PROPAGATION[m.mountPropagation ?? 'None'],
    };
  });
  const sc = c.securityContext ?? {};
  const caps = sc.capabilities
    ? { add_capabilities: sc.capabilities.add ?? [], drop_capabilities: sc.capabilities.drop ?? [] }
    : undefined;
  return {
    metadata: { name: c.name, attempt: 0 },
    image: { image },
    command: c.command ?? [],
    args: c.args ?? [],
    envs,
    mounts,
    log_path: `${c.name}/0.log`,
    linux: {
      resources: { memory_limit_in_bytes: memoryBytes(c.resources?.limits?.memory) ?? 0 },
      security_context: {
        privileged: sc.privileged ?? false,
        readonly_rootfs: sc.readOnlyRootFilesystem ?? false,
        ...(caps ? { capabilities: caps } : {}),
      },
    },
  };
}

/**
 * Runs a pod from its spec on the node: sandbox, init containers (each must exit 0), then
 * the containers. `images` maps the spec's image names to imported references.
 */
export async function runPod(
  node: TestNode,
  name: string,
  spec: K8sPodSpec,
  opts: {
    images: Record<string, string>;
    configMaps?: Record<string, Record<string, string>>;
    handler?: string;
    nodeName?: string;
  },
): Promise<RunningPod> {
  unknownKeys(spec, POD_FIELDS, 'pod spec');
  const privileged = [...(spec.initContainers ?? []), ...spec.containers].some((c) => c.securityContext?.privileged);
  const sandbox = podConfig(node, name, { hostNetwork: spec.hostNetwork, hostPid: spec.hostPID, privileged });
  const volumes = prepareVolumes(node, name, spec.volumes ?? [], opts.configMaps ?? {});
  const id = await node.cri.runPodSandbox(sandbox, opts.handler ?? '');
  const pod: RunningPod = { id, sandbox, containers: {}, logDir: sandbox.log_directory! };
  const image = (c: K8sContainer) => {
    const ref = opts.images[c.image];
    if (!ref) throw new Error(`image ${c.image} of container ${c.name} was not imported`);
    return ref;
  };
  for (const c of [...(spec.initContainers ?? []), ...spec.containers])
    fs.mkdirSync(path.join(pod.logDir, c.name), { recursive: true });
  for (const c of spec.initContainers ?? []) {
    const cid = await node.cri.createContainer(
      id,
      containerConfig(c, image(c), volumes, pod.logDir, opts.nodeName ?? 'test-node'),
      sandbox,
    );
    pod.containers[c.name] = cid;
    await node.cri.startContainer(cid);
    const st = await waitFor(
      async () => {
        const s = await node.cri.containerStatus(cid);
        return s.state === 'CONTAINER_EXITED' ? s : undefined;
      },
      `init container ${c.name}`,
      60_000,
      100,
    );
    if (st.exit_code !== 0)
      throw new Error(`init container ${c.name} exited ${st.exit_code}: ${containerLog(pod, c.name)}`);
  }
  for (const c of spec.containers) {
    const cid = await node.cri.createContainer(
      id,
      containerConfig(c, image(c), volumes, pod.logDir, opts.nodeName ?? 'test-node'),
      sandbox,
    );
    pod.containers[c.name] = cid;
    await node.cri.startContainer(cid);
  }
  return pod;
}

/** A container's log (CRI log format: "<time> <stream> <tag> <line>"), message part only. */
export function containerLog(pod: RunningPod, container: string): string {
  try {
    return fs
      .readFileSync(path.join(pod.logDir, container, '0.log'), 'utf8')
      .split('\n')
      .map((l) => l.split(' ').slice(3).join(' '))
      .join('\n');
  } catch {
    return '';
  }
}

/** Stops and removes the pod (containers first, as kubelet does). */
export async function removePod(node: TestNode, pod: RunningPod): Promise<void> {
  for (const cid of Object.values(pod.containers).reverse()) {
    await node.cri.stopContainer(cid, 30).catch(() => undefined);
    await node.cri.removeContainer(cid).catch(() => undefined);
  }
  await node.cri.stopPodSandbox(pod.id);
  await node.cri.removePodSandbox(pod.id);
}
