/**
 * Every object in deploy/ validated offline against the Kubernetes OpenAPI schema of its
 * kind: types, required fields and enums with kubernetes-models (compiled from the
 * Kubernetes OpenAPI spec), and unknown fields (a typo a server would drop with a mere
 * warning) by walking the object along @kubernetes/client-node's models of the same spec,
 * as `kubectl --validate=strict` would. No API server runs here. NetworkAttachmentDefinitions
 * are a CRD: checked against Multus's CRD schema (spec.config, a string) and their config
 * parsed as the conflist a runtime's libcni reads, each plugin by vhostplug's own parser.
 * The Kuryr overlay's JSON patch is applied here as kustomize applies it, then validated.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import * as apps from 'kubernetes-models/apps/v1';
import * as core from 'kubernetes-models/v1';
import * as rbac from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { manifestObjects } from '../helpers/cri/pods';
import { parseNetConf } from '../../src/cni/netconf';
import { parseConfig } from '../../src/agent/config';

const DEPLOY = path.resolve(__dirname, '../../deploy');
type Obj = Record<string, unknown>;

const MODELS: Record<string, new (o: Obj) => { validate(): void }> = {
  'v1/ConfigMap': core.ConfigMap as never,
  'v1/ServiceAccount': core.ServiceAccount as never,
  'v1/Pod': core.Pod as never,
  'apps/v1/DaemonSet': apps.DaemonSet as never,
  'rbac.authorization.k8s.io/v1/ClusterRole': rbac.ClusterRole as never,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': rbac.ClusterRoleBinding as never,
};

interface Attr {
  name: string;
  baseName: string;
  type: string;
}

/** Field paths of `o` that the OpenAPI model `type` (e.g. "V1DaemonSet") does not define. */
export function unknownFields(o: unknown, type: string, at = ''): string[] {
  if (o === null || o === undefined) return [];
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) return Array.isArray(o) ? o.flatMap((x, i) => unknownFields(x, arr[1]!, `${at}[${i}]`)) : [];
  const model = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attr[] }>)[type];
  if (!model?.getAttributeTypeMap || typeof o !== 'object') return []; // scalars, maps, IntOrString
  const attrs = model.getAttributeTypeMap();
  const out: string[] = [];
  for (const [k, v] of Object.entries(o as Obj)) {
    const a = attrs.find((x) => x.baseName === k);
    if (!a) out.push(`${at}.${k}`);
    else out.push(...unknownFields(v, a.type, `${at}.${k}`));
  }
  return out;
}

function modelName(o: Obj): string {
  const [group, version] = String(o.apiVersion).includes('/')
    ? String(o.apiVersion).split('/')
    : ['', String(o.apiVersion)];
  const g = group ? group.split('.')[0]!.replace(/^./, (c) => c.toUpperCase()) : '';
  return `${version!.replace(/^./, (c) => c.toUpperCase())}${g === 'Apps' || g === 'Rbac' ? '' : g}${o.kind}`;
}

/** Validates one object: schema (types, required, enums) and no unknown field. */
function validate(o: Obj, where: string): void {
  const key = `${o.apiVersion}/${o.kind}`;
  const Model = MODELS[key];
  if (!Model) throw new Error(`${where}: no schema for ${key}`);
  new Model(o).validate();
  const unknown = unknownFields(o, modelName(o));
  if (unknown.length) throw new Error(`${where}: fields not in the ${key} schema: ${unknown.join(', ')}`);
}

/** RFC 6902 add/replace, enough for the overlay's patch. */
function applyJsonPatch(doc: Obj, ops: { op: string; path: string; value: unknown }[]): Obj {
  const out = structuredClone(doc);
  for (const op of ops) {
    const keys = op.path.split('/').slice(1);
    const last = keys.pop()!;
    let cur: Record<string, unknown> | unknown[] = out;
    for (const k of keys) cur = (cur as Record<string, unknown>)[k] as Record<string, unknown>;
    if (Array.isArray(cur) && last === '-') cur.push(op.value);
    else if (op.op === 'replace' && !(last in (cur as Obj))) throw new Error(`replace of missing ${op.path}`);
    else (cur as Obj)[last] = op.value;
  }
  return out;
}

/** The Multus CRD's schema for NetworkAttachmentDefinition (k8s.cni.cncf.io/v1). */
function validateNad(o: Obj): void {
  expect(o.apiVersion).toBe('k8s.cni.cncf.io/v1');
  expect(Object.keys(o).sort()).toEqual(['apiVersion', 'kind', 'metadata', 'spec']);
  expect(Object.keys(o.spec as Obj)).toEqual(['config']);
  expect(typeof (o.spec as Obj).config).toBe('string');
  expect(unknownFields(o.metadata, 'V1ObjectMeta')).toEqual([]);
}

describe('deploy/ manifests (offline OpenAPI validation; no API server here)', () => {
  const daemonset = manifestObjects(path.join(DEPLOY, 'daemonset.yaml'));
  const rbacObjs = manifestObjects(path.join(DEPLOY, 'kuryr/rbac.yaml'));
  const nads = manifestObjects(path.join(DEPLOY, 'nad-example.yaml'));

  it('the validator itself refuses a wrong type, a missing required field and an unknown field', () => {
    const ds = structuredClone(daemonset.find((o) => o.kind === 'DaemonSet')!) as {
      spec: { template: { spec: { containers: Obj[] } } };
    } & Obj;
    const bad1 = structuredClone(ds);
    bad1.spec.template.spec.containers[0]!.securityContext = { privileged: 'yes' };
    expect(() => validate(bad1, 'bad1')).toThrow(/privileged must be boolean/);
    const bad2 = structuredClone(ds);
    delete bad2.spec.template.spec.containers[0]!.image;
    delete bad2.spec.template.spec.containers[0]!.name;
    expect(() => validate(bad2, 'bad2')).toThrow(/name/);
    const bad3 = structuredClone(ds);
    (bad3.spec.template.spec.containers[0]!.volumeMounts as Obj[])[0]!.mountPropogation = 'HostToContainer';
    expect(() => validate(bad3, 'bad3')).toThrow(/volumeMounts\[0\]\.mountPropogation/);
  });

  it("daemonset.yaml: ConfigMap, ServiceAccount and DaemonSet are valid; the ConfigMap's kuryr.conf parses without warnings", () => {
    expect(daemonset.map((o) => o.kind)).toEqual(['ConfigMap', 'ServiceAccount', 'DaemonSet']);
    for (const o of daemonset) validate(o, `daemonset.yaml ${o.kind}`);
    const conf = parseConfig((daemonset[0]!.data as Record<string, string>)['kuryr.conf']!);
    expect(conf.warnings).toEqual([]);
    // One volume holds both directories (docs/deploy.md).
    expect(conf.config.vhostuser.mount_point.startsWith(conf.config.vhostuser.ovs_vhu_path + '/')).toBe(true);
  });

  it('standalone mode has no API access: no token mounted, nothing bound to its service account', () => {
    const sa = daemonset.find((o) => o.kind === 'ServiceAccount')!;
    const pod = (daemonset.find((o) => o.kind === 'DaemonSet') as { spec: { template: { spec: Obj } } }).spec.template
      .spec;
    expect(sa.automountServiceAccountToken).toBe(false);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBe((sa.metadata as Obj).name);
    const bound = rbacObjs
      .filter((o) => o.kind === 'ClusterRoleBinding')
      .flatMap((b) => (b.subjects as Obj[]).map((s) => s.name));
    expect(bound).not.toContain((sa.metadata as Obj).name);
  });

  it('kuryr overlay: RBAC valid and least privilege (pods get/list/watch, kuryrports get/list/watch/patch, events create, nodes/status get/patch for the capacity); the patched DaemonSet is valid and runs --kuryr with its own account', () => {
    for (const o of rbacObjs) validate(o, `kuryr/rbac.yaml ${o.kind}`);
    const role = rbacObjs.find((o) => o.kind === 'ClusterRole')!;
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['openstack.org'], resources: ['kuryrports'], verbs: ['get', 'list', 'watch', 'patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: [''], resources: ['nodes/status'], verbs: ['get', 'patch'] },
    ]);
    const kust = manifestObjects(path.join(DEPLOY, 'kuryr/kustomization.yaml'))[0] as {
      resources: string[];
      patches: { path: string; target: Obj }[];
    };
    expect(kust.resources).toEqual(['..', 'rbac.yaml']);
    const ops = manifestObjects(path.join(DEPLOY, 'kuryr', kust.patches[0]!.path))[0] as unknown as {
      op: string;
      path: string;
      value: unknown;
    }[];
    const ds = daemonset.find((o) => o.kind === 'DaemonSet')!;
    const patched = applyJsonPatch(ds, ops) as {
      spec: {
        template: {
          spec: {
            serviceAccountName: string;
            automountServiceAccountToken: boolean;
            containers: { command: string[] }[];
          };
        };
      };
    } & Obj;
    validate(patched, 'kuryr overlay DaemonSet');
    const spec = patched.spec.template.spec;
    expect(spec.serviceAccountName).toBe('vhostplug-kuryr');
    expect(spec.automountServiceAccountToken).toBe(true);
    expect(spec.containers[0]!.command).toContain('--kuryr');
    const binding = rbacObjs.find((o) => o.kind === 'ClusterRoleBinding')!;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'vhostplug-kuryr', namespace: 'kube-system' }]);
  });

  it('capacity overlay: only nodes/status get/patch, bound to its own account; the patched DaemonSet is valid, mounts its token, knows its node', () => {
    const objs = manifestObjects(path.join(DEPLOY, 'capacity/rbac.yaml'));
    for (const o of objs) validate(o, `capacity/rbac.yaml ${o.kind}`);
    expect(objs.find((o) => o.kind === 'ClusterRole')!.rules).toEqual([
      { apiGroups: [''], resources: ['nodes/status'], verbs: ['get', 'patch'] },
    ]);
    const kust = manifestObjects(path.join(DEPLOY, 'capacity/kustomization.yaml'))[0] as {
      resources: string[];
      patches: { path: string }[];
    };
    expect(kust.resources).toEqual(['..', 'rbac.yaml']);
    const ops = manifestObjects(path.join(DEPLOY, 'capacity', kust.patches[0]!.path))[0] as unknown as {
      op: string;
      path: string;
      value: unknown;
    }[];
    const patched = applyJsonPatch(
      daemonset.find((o) => o.kind === 'DaemonSet')!,
      ops,
    ) as {
      spec: {
        template: {
          spec: {
            serviceAccountName: string;
            automountServiceAccountToken: boolean;
            containers: { env: { name: string }[] }[];
          };
        };
      };
    } & Obj;
    validate(patched, 'capacity overlay DaemonSet');
    expect(patched.spec.template.spec.serviceAccountName).toBe('vhostplug-capacity');
    expect(patched.spec.template.spec.automountServiceAccountToken).toBe(true);
    expect(patched.spec.template.spec.containers[0]!.env.map((e) => e.name)).toContain('KUBERNETES_NODE_NAME');
    const binding = objs.find((o) => o.kind === 'ClusterRoleBinding')!;
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'vhostplug-capacity', namespace: 'kube-system' },
    ]);
  });

  it("the example pod mounts only its own directory of the daemon's one vhost-user volume (subPathExpr $(POD_UID) from the downward API), runs as the networks' owner and requests one vhost-user port", () => {
    const conf = parseConfig((daemonset[0]!.data as Record<string, string>)['kuryr.conf']!).config;
    const pod = nads.find((o) => o.kind === 'Pod') as unknown as {
      spec: {
        securityContext: { runAsUser: number; runAsGroup: number; runAsNonRoot: boolean };
        containers: {
          env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
          volumeMounts: { name: string; mountPath: string; subPathExpr?: string }[];
          resources: { requests: Record<string, string> };
        }[];
        volumes: { name: string; hostPath?: { path: string } }[];
      };
    };
    const c = pod.spec.containers[0]!;
    const mount = c.volumeMounts.find((m) => m.name === 'vhostuser')!;
    expect(mount.subPathExpr).toBe('$(POD_UID)');
    expect(c.env.find((e) => e.name === 'POD_UID')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.uid');
    expect(pod.spec.volumes.find((v) => v.name === 'vhostuser')!.hostPath!.path).toBe(conf.vhostuser.mount_point);
    expect(c.resources.requests['vhostplug.io/vhostuser']).toBe('1');
    expect(pod.spec.securityContext.runAsNonRoot).toBe(true);
    for (const o of nads.filter((n) => n.kind === 'NetworkAttachmentDefinition')) {
      const list = JSON.parse((o.spec as { config: string }).config) as { name: string; plugins: Obj[] };
      const nc = parseNetConf({ ...list.plugins[0], cniVersion: '1.0.0', name: list.name });
      if (nc.mode === 'veth') continue;
      expect(nc.socketLayout).toBe('per-pod');
      expect(nc.access).toMatchObject({
        uid: pod.spec.securityContext.runAsUser,
        gid: pod.spec.securityContext.runAsGroup,
      });
      // Paths handed to the pod are where it mounts its directory.
      expect(nc.podMountPath ?? '/var/run/vhostuser').toBe(mount.mountPath);
    }
  });

  it('kustomization.yaml names the image once; every container image is that name', () => {
    const kust = manifestObjects(path.join(DEPLOY, 'kustomization.yaml'))[0] as {
      resources: string[];
      images: { name: string; newName: string; newTag: string }[];
    };
    expect(kust.resources.every((r) => fs.existsSync(path.join(DEPLOY, r)))).toBe(true);
    expect(kust.images).toHaveLength(1);
    const ds = daemonset.find((o) => o.kind === 'DaemonSet') as {
      spec: { template: { spec: { initContainers: { image: string }[]; containers: { image: string }[] } } };
    };
    const all = [...ds.spec.template.spec.initContainers, ...ds.spec.template.spec.containers].map((c) => c.image);
    expect(new Set(all)).toEqual(new Set([kust.images[0]!.name]));
  });

  it('nad-example.yaml: NADs valid against the CRD schema; each config a conflist (cniVersion 1.0.0 + cniVersions) whose plugins vhostplug accepts at both versions; the example pod is valid', () => {
    const kinds = nads.map((o) => o.kind);
    expect(kinds.filter((k) => k === 'NetworkAttachmentDefinition')).toHaveLength(3);
    const modes = new Set<string>();
    for (const o of nads) {
      if (o.kind !== 'NetworkAttachmentDefinition') {
        validate(o, `nad-example.yaml ${o.kind}`);
        continue;
      }
      validateNad(o);
      const list = JSON.parse((o.spec as { config: string }).config) as {
        cniVersion: string;
        cniVersions: string[];
        name: string;
        plugins: Obj[];
      };
      expect(list.name).toBe((o.metadata as Obj).name);
      expect(list.cniVersion).toBe('1.0.0');
      expect(list.cniVersions).toContain('1.1.0');
      for (const v of ['1.0.0', '1.1.0']) {
        const conf = parseNetConf({ ...list.plugins[0], cniVersion: v, name: list.name });
        modes.add(conf.mode);
      }
    }
    expect([...modes].sort()).toEqual(['client', 'server', 'veth']);
  });
});
