/**
 * A path-traversal corpus for every name that reaches the filesystem or OVSDB: pod UID
 * (it names the pod's directory), namespace, pod name, ifname and container id (they
 * name the config file and the port's external_ids). Each value is refused at the edge
 * (the CNI environment, the Kuryr API, the driver's own validation), with a clear error,
 * and nothing is written anywhere: not in mount_point, not next to it, not where the value
 * points. Harmless look-alikes (a Unicode division slash in an ifname) are accepted and
 * stay single file names inside mount_point.
 *
 * Real parts: the `vhostplug-cni` shim and the daemon on a private DPDK OVS; the driver on
 * the same OVS. Values with a NUL byte cannot travel in an environment (execve refuses
 * them), so those go to the daemon's request handler directly, which is what the shim's
 * socket feeds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon';
import { parseCniRequest, KuryrCniError } from '../../src/kuryr/flows';
import { VhostUserDriver } from '../../src/binding/vhostuser';
import { BindingError } from '../../src/binding/driver';
import { Vswitch } from '../../src/vswitch/vswitch';
import { VSWITCH_CACHE } from '../../src/vswitch/rows';
import { OvsdbClient } from '../../src/ovsdb/client';
import { makeVHostUserVif } from '../../src/vif/model';
import { useSandbox } from '../helpers/sandbox';
import { describeIf, firstReason, needsBinaries, needsOvs, needsRoot } from '../helpers/skip';
import {
  cniEnv,
  fakeNetns,
  HOST_LOCAL,
  leftovers,
  makeDirs,
  netconf,
  NOTHING,
  runShim,
  SHIM,
  startTestDaemon,
  tree,
  type DaemonDirs,
} from './daemon-harness';

const GOOD_UID = 'c0ffee00-1111-4222-8333-444455556666';

/** Attempts to climb out, to name something absolute, or to smuggle a separator: refused in every field. */
const TRAVERSAL = [
  '..',
  '.',
  '../x',
  '../../../../etc/cron.d/vhostplug',
  '/etc/passwd',
  'a/b',
  'a/../../b',
  './x',
  '/',
  'a b',
  ' ',
  'a\nb',
  'a\tb',
  '',
];
/**
 * Encodings and shell-looking values: refused by the strict rules of pod UIDs, Kubernetes
 * names and CNI container ids. A Linux interface name may legally contain them; as an
 * ifname each stays one harmless file name (`<container-id>-<ifname>`), shown below.
 */
const ENCODED = ['.hidden', '..\\..\\x', '%2e%2e%2fx', '..%2f..%2fx', '-rf', '~root', '$(id)', '`id`', 'a;b'];
const WITH_NUL = ['a\0b', '..\0', `${GOOD_UID}\0/../x`];

/** Per field: the values it must refuse. */
const CORPUS: Record<'podUid' | 'namespace' | 'name' | 'ifname' | 'containerId', string[]> = {
  podUid: [
    ...TRAVERSAL,
    ...ENCODED,
    `${GOOD_UID}/..`,
    `../${GOOD_UID}`,
    `${GOOD_UID}/x`,
    `${GOOD_UID.slice(0, -1)}g`,
    'not-a-uuid',
    'x'.repeat(36),
    '0a0b',
    GOOD_UID.replace(/-/g, '/'),
  ],
  namespace: [...TRAVERSAL, ...ENCODED, 'A', 'a_b', 'a.b', '-a', 'a-', 'x'.repeat(64)].filter((v) => v !== ''),
  name: [...TRAVERSAL, ...ENCODED, 'A', 'a_b', '-a', 'x'.repeat(254)].filter((v) => v !== ''),
  ifname: [...TRAVERSAL, 'a:b', 'eth0123456789abc', '\u00a0', 'a\u0001'],
  containerId: [...TRAVERSAL, ...ENCODED, 'x'.repeat(300), '_a'],
};

/** Where a value would land if it were joined to the mount point, the way a careless plugin would. */
function naiveTargets(mount: string, v: string): string[] {
  if (v === '' || v.includes('\0')) return [];
  return [path.resolve(mount, v), path.resolve(mount, `${v}-net1`), path.resolve(mount, 'ctr', v)];
}

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: true }), needsBinaries(SHIM, HOST_LOCAL)))(
  'path-traversal corpus: pod UID, namespace, name, ifname, container id',
  () => {
    const sandbox = useSandbox();
    let d: DaemonDirs;
    let daemon: Daemon;
    let ns: string;
    let before: string[];
    const outside = new Map<string, boolean>();

    beforeAll(async () => {
      d = makeDirs(sandbox(), 'trav');
      ns = fakeNetns(d, 'pod');
      daemon = await startTestDaemon(sandbox(), d);
      before = tree(sandbox().dir);
      for (const values of Object.values(CORPUS))
        for (const v of values) for (const t of naiveTargets(d.mount, v)) outside.set(t, fs.existsSync(t));
    }, 60_000);
    afterAll(async () => {
      await daemon?.stop();
    });

    /** The CNI environment of an ADD with one field replaced by `v`. */
    function envWith(field: keyof typeof CORPUS, v: string): Record<string, string> {
      const args = { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'dpdk-app', K8S_POD_UID: GOOD_UID };
      if (field === 'podUid') args.K8S_POD_UID = v;
      if (field === 'namespace') args.K8S_POD_NAMESPACE = v;
      if (field === 'name') args.K8S_POD_NAME = v;
      const cniArgs = `IgnoreUnknown=1;${Object.entries(args)
        .map(([k, x]) => `${k}=${x}`)
        .join(';')}`;
      return cniEnv('ADD', field === 'containerId' ? v : 'ctr', field === 'ifname' ? v : 'net1', ns, {
        CNI_ARGS: cniArgs,
      });
    }

    for (const [field, values] of Object.entries(CORPUS) as [keyof typeof CORPUS, string[]][]) {
      it(`${field}: ${values.length} values through the real shim, each refused with code 4, nothing written`, async () => {
        // The pod UID names the pod's directory in the per-pod layout (the default): there a
        // missing one (empty) is refused too. An empty CNI_CONTAINERID / CNI_IFNAME is "missing" (4 as well).
        const conf = JSON.stringify(
          netconf(d, '1.1.0', 'client', field === 'podUid' ? { socketLayout: 'per-pod' } : {}),
        );
        for (const v of values) {
          const env = envWith(field, v);
          const r = await runShim(d.socket, env, conf);
          expect([r.code, r.json?.code], `${field} ${JSON.stringify(v)}: ${r.stdout}`).toEqual([1, 4]);
          expect(String(r.json?.msg), JSON.stringify(v)).toMatch(
            /^(invalid CNI_(ARGS|CONTAINERID|IFNAME)|required env variables)/,
          );
        }
        expect(leftovers(sandbox(), d)).toEqual({ ...NOTHING, mount: [] });
      }, 120_000);

      it(`${field}: values with a NUL byte, to the daemon's handler, refused`, async () => {
        const conf = JSON.stringify(netconf(d, '1.1.0', 'client'));
        for (const v of WITH_NUL) {
          const res = await daemon.handle({ env: envWith(field, v), stdin: conf });
          expect(res.exitCode, JSON.stringify(v)).toBe(1);
          expect((JSON.parse(res.stdout) as { code: number }).code, JSON.stringify(v)).toBe(4);
        }
      });

      it(`${field}: the Kuryr API refuses the same values (400, nothing done)`, () => {
        for (const v of [...values, ...WITH_NUL]) {
          if (v === '' && field === 'podUid') continue; // Kuryr: no K8S_POD_UID means "ask the API"
          const args = { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'dpdk-app', K8S_POD_UID: GOOD_UID };
          if (field === 'podUid') args.K8S_POD_UID = v;
          if (field === 'namespace') args.K8S_POD_NAMESPACE = v;
          if (field === 'name') args.K8S_POD_NAME = v;
          const body = {
            CNI_COMMAND: 'ADD',
            CNI_CONTAINERID: field === 'containerId' ? v : 'ctr',
            CNI_IFNAME: field === 'ifname' ? v : 'eth0',
            CNI_NETNS: '/var/run/netns/x',
            CNI_ARGS: Object.entries(args)
              .map(([k, x]) => `${k}=${x}`)
              .join(';'),
            config_kuryr: {},
          };
          let err: unknown;
          try {
            parseCniRequest(body, 'ADD');
          } catch (e) {
            err = e;
          }
          expect(err, `${field} ${JSON.stringify(v)}`).toBeInstanceOf(KuryrCniError);
          expect((err as KuryrCniError).status).toBe(400);
        }
      });
    }

    it('the driver (library users) validates the same names itself', async () => {
      const client = await OvsdbClient.connect(sandbox().db, { cache: VSWITCH_CACHE });
      try {
        const driver = new VhostUserDriver(new Vswitch(client), {
          mountPoint: d.mount,
          ovsVhuPath: sandbox().runDir,
          fsync: false,
        });
        const vif = makeVHostUserVif('client', d.mount);
        const cases: [string, Record<string, string>][] = [
          ...CORPUS.containerId.map((v): [string, Record<string, string>] => [
            `containerId ${JSON.stringify(v)}`,
            { containerId: v },
          ]),
          ...CORPUS.ifname.map((v): [string, Record<string, string>] => [`ifname ${JSON.stringify(v)}`, { ifname: v }]),
          ...CORPUS.podUid
            .filter((v) => v !== '')
            .map((v): [string, Record<string, string>] => [`podUid ${JSON.stringify(v)}`, { podUid: v }]),
        ];
        for (const [what, over] of cases) {
          const err = await driver
            .connect({ vif, containerId: 'ctr', ifname: 'net1', podUid: GOOD_UID, ...over })
            .catch((e: unknown) => e);
          expect(err, what).toBeInstanceOf(BindingError);
          expect((err as BindingError).step, what).toBe('validate');
        }
      } finally {
        client.close();
      }
      expect(leftovers(sandbox(), d)).toEqual({ ...NOTHING, mount: [] });
    });

    it("nothing was written anywhere: the sandbox tree is unchanged and no value's naive target exists", () => {
      // The fake netns file and the daemon's own files were there before the corpus ran.
      expect(tree(sandbox().dir)).toEqual(before);
      for (const [t, existed] of outside) expect(fs.existsSync(t), t).toBe(existed);
      expect(fs.readdirSync(d.mount)).toEqual([]);
    });

    it('harmless look-alikes and encodings in an ifname are one file name inside mount_point, removed by DEL', async () => {
      const conf = JSON.stringify(netconf(d, '1.1.0', 'server'));
      for (const ifname of ['a\u2215b', '\uff0e\uff0e', '.hidden', '..\\x', '%2e%2e%2fx', '$(id)']) {
        const env = envWith('ifname', ifname);
        const add = await runShim(d.socket, env, conf);
        expect(add.code, `${JSON.stringify(ifname)}: ${add.stdout}`).toBe(0);
        // The config file, and the flat layout's index of the pod (the request carries its UID).
        expect(fs.readdirSync(d.mount).sort()).toEqual([`ctr-${ifname}`, `interfaces-${GOOD_UID}.json`].sort());
        expect((await runShim(d.socket, { ...env, CNI_COMMAND: 'DEL' }, conf)).code).toBe(0);
        expect(leftovers(sandbox(), d)).toEqual({ ...NOTHING, mount: [] });
      }
      // Only host-local's own bookkeeping (its data dir: last reserved IP, lock) is new.
      const ipam = path.relative(sandbox().dir, d.ipamData);
      expect(tree(sandbox().dir).filter((p) => !p.startsWith(`${ipam}/`))).toEqual(
        before.filter((p) => !p.startsWith(`${ipam}/`)),
      );
    }, 60_000);
  },
);
