/**
 * Two pods on one node, per-pod directories (docs/pod-side.md), with real parts: the
 * `vhostplug-cni` shim and the daemon on a private DPDK OVS, each pod a real network
 * namespace plus a private mount namespace in which only its own directory is mounted
 * (test/helpers/pod.ts: kubelet's hostPath + `subPathExpr: $(POD_UID)`), each running as its
 * own non-root UID (setpriv --reuid --regid --clear-groups).
 *
 * Shown:
 * - each pod's directory, client-mode socket, config files and interfaces.json belong to
 *   its UID with the modes derived from socketMode; neither pod can open, list or stat
 *   the other's socket or files, inside its mounts (not there) nor on the node as its UID
 *   (permission denied);
 * - a non-root dpdk-testpmd in each pod passes traffic through its own client-mode and
 *   server-mode sockets, and cannot connect to the other pod's;
 * - ovs-vswitchd restarts (also after a daemon restart, from OVSDB's record alone):
 *   client-mode sockets are moved back into the right pod directories with owner and mode
 *   intact, `generation` bumped, and `vhostplug pod-info --wait --after-generation`
 *   running inside the pod returns the new state; traffic resumes;
 * - an ADD without K8S_POD_UID is refused with nothing written; the pod's directory goes
 *   with its last interface.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon';
import { stablePortName } from '../../src/daemon/cni-plugin';
import { parsePodIndex } from '../../src/binding/pod-index';
import { parseConfig } from '../../src/agent/config';
import { openRuntime } from '../../src/agent/runtime';
import { KuryrFlows, parseCniRequest } from '../../src/kuryr/flows';
import { KuryrRegistry } from '../../src/kuryr/registry';
import type { KuryrKube, PodInfo } from '../../src/kuryr/k8s-source';
import { kubeletCniArgs, kuryrDaemonBody } from '../helpers/kuryr-cni-client';
import { makeVHostUserVif } from '../../src/vif/model';
import { vhostUserPortName } from '../../src/vif/names';
import { createPod, probeScript, type FakePod } from '../helpers/pod';
import { useSandbox } from '../helpers/sandbox';
import { startTestpmd, type Testpmd } from '../helpers/testpmd';
import { describeIf, firstReason, needsBinaries, needsOvs, needsRoot, needsTestpmd } from '../helpers/skip';
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
  type DaemonDirs,
} from './daemon-harness';

const REPO = path.resolve(__dirname, '../..');
const CLI = path.join(REPO, 'dist/cli/main.js');

interface PodDef {
  name: 'a' | 'b';
  uid: number;
  podUid: string;
  cid: string;
}
const PODS: PodDef[] = [
  { name: 'a', uid: 23411, podUid: 'aaaaaaaa-1111-4111-8111-111111111111', cid: 'ctra' },
  { name: 'b', uid: 23412, podUid: 'bbbbbbbb-2222-4222-8222-222222222222', cid: 'ctrb' },
];

describeIf(
  firstReason(
    needsRoot(),
    needsOvs({ dpdk: true }),
    needsTestpmd(),
    needsBinaries(SHIM, HOST_LOCAL, 'setpriv', 'unshare', 'ip'),
    fs.existsSync(CLI) ? undefined : 'dist/ is not built (npm run build)',
  ),
)('two pods: per-pod directories, ownership, non-root DPDK apps, ovs-vswitchd restart', () => {
  const sandbox = useSandbox();
  let d: DaemonDirs;
  let daemon: Daemon;
  let podsRoot: string;
  const pods = new Map<string, FakePod>();
  const pmds: Testpmd[] = [];

  const pod = (n: string): FakePod => pods.get(n)!;
  const def = (n: string): PodDef => PODS.find((p) => p.name === n)!;
  const podDir = (n: string): string => path.join(d.mount, def(n).podUid);
  const port = (n: string, ifname: string): string => stablePortName(def(n).cid, ifname, 'vhostuser');
  /** The pod's network: a NAD per pod (the owner is the pod's UID), client or server mode, its socket paths as the pod mounts its directory. */
  const conf = (n: string, mode: 'client' | 'server'): string =>
    JSON.stringify(
      netconf(d, '1.1.0', mode, {
        name: `net-${n}-${mode}`,
        socketLayout: 'per-pod',
        owner: `${def(n).uid}:${def(n).uid}`,
        socketMode: '0660',
        podMountPath: pod(n).view,
      }),
    );
  const args = (n: string): Record<string, string> => ({
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-${n};K8S_POD_UID=${def(n).podUid}`,
  });
  const ifaces: [ifname: string, mode: 'client' | 'server'][] = [
    ['net1', 'client'],
    ['net2', 'server'],
  ];

  beforeAll(async () => {
    d = makeDirs(sandbox(), 'iso');
    // Outside the sandbox dir: every pod hides that (mount_point, OVS's run dir, db.sock).
    podsRoot = fs.mkdtempSync(path.join(path.dirname(sandbox().dir), 'vhp-pods-'));
    fs.chmodSync(podsRoot, 0o755);
    daemon = await startTestDaemon(sandbox(), d);
    for (const p of PODS) {
      pods.set(
        p.name,
        createPod({
          name: p.name,
          uid: p.uid,
          gid: p.uid,
          hostDir: path.join(d.mount, p.podUid),
          hide: [sandbox().dir],
          root: podsRoot,
          binds: [REPO],
        }),
      );
    }
  }, 90_000);

  afterAll(async () => {
    await Promise.all(pmds.splice(0).map((t) => t.stop()));
    await daemon?.stop();
    for (const p of pods.values()) p.destroy();
    if (podsRoot) fs.rmSync(podsRoot, { recursive: true, force: true });
  });

  it('an ADD without K8S_POD_UID is refused (CNI error 4) with nothing written', async () => {
    // pod() is needed for the netconf; the view path does not depend on the UID.
    const r = await runShim(
      d.socket,
      cniEnv('ADD', 'nouid', 'net1', fakeNetns(d, 'nouid'), {
        CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=nouid',
      }),
      conf('a', 'client'),
    );
    expect(r.json).toMatchObject({ code: 4, msg: 'invalid CNI_ARGS' });
    expect(String(r.json!.details)).toMatch(/K8S_POD_UID is required: the per-pod socket layout/);
    expect(leftovers(sandbox(), d)).toEqual(NOTHING);
  });

  it('ADD: each pod gets its own directory, owned by its UID, with its sockets, config files and index', async () => {
    for (const p of PODS) {
      for (const [ifname, mode] of ifaces) {
        const r = await runShim(
          d.socket,
          cniEnv('ADD', p.cid, ifname, fakeNetns(d, p.cid), args(p.name)),
          conf(p.name, mode),
        );
        expect(r.code, r.stdout).toBe(0);
        // The result and the index give the socket as the pod sees it.
        expect((r.json!.interfaces as { socketPath?: string }[])[0]!.socketPath).toBe(
          path.join(pod(p.name).view, port(p.name, ifname)),
        );
      }
    }
    expect(fs.readdirSync(d.mount).sort()).toEqual(PODS.map((p) => p.podUid).sort());
    for (const p of PODS) {
      const dir = podDir(p.name);
      const st = fs.statSync(dir);
      expect([st.uid, st.gid, st.mode & 0o7777], dir).toEqual([p.uid, p.uid, 0o770]);
      // Client mode: OVS's socket, moved in with the pod's owner and mode. Server mode: the app creates it later.
      expect(fs.readdirSync(dir).sort()).toEqual(
        [`${p.cid}-net1`, `${p.cid}-net2`, 'interfaces.json', port(p.name, 'net1')].sort(),
      );
      const sock = fs.lstatSync(path.join(dir, port(p.name, 'net1')));
      expect(sock.isSocket()).toBe(true);
      expect([sock.uid, sock.gid, sock.mode & 0o777]).toEqual([p.uid, p.uid, 0o660]);
      for (const f of [`${p.cid}-net1`, `${p.cid}-net2`, 'interfaces.json']) {
        const fst = fs.statSync(path.join(dir, f));
        expect([fst.uid, fst.gid, fst.mode & 0o777], f).toEqual([p.uid, p.uid, 0o640]);
      }
      const index = parsePodIndex(fs.readFileSync(path.join(dir, 'interfaces.json'), 'utf8'));
      expect(index).toMatchObject({ pod_uid: p.podUid, pod_namespace: 'default', pod_name: `pod-${p.name}` });
      expect(index.interfaces.map((i) => [i.ifname, i.mode, i.socket, i.generation])).toEqual([
        ['net1', 'client', port(p.name, 'net1'), 1],
        ['net2', 'server', port(p.name, 'net2'), 1],
      ]);
    }
    // Multus device-info and CHECK agree with the result and the index: the socket as the pod sees it.
    const devinfo = path.join(d.devinfo, 'pod-a-net3.json');
    const withDevinfo = JSON.parse(conf('a', 'client')) as Record<string, unknown>;
    withDevinfo.runtimeConfig = { CNIDeviceInfoFile: devinfo };
    const add3 = await runShim(
      d.socket,
      cniEnv('ADD', def('a').cid, 'net3', fakeNetns(d, def('a').cid), args('a')),
      JSON.stringify(withDevinfo),
    );
    expect(add3.code, add3.stdout).toBe(0);
    const podPath = path.join(pod('a').view, port('a', 'net3'));
    expect((add3.json!.interfaces as { socketPath?: string }[])[0]!.socketPath).toBe(podPath);
    expect(JSON.parse(fs.readFileSync(devinfo, 'utf8'))).toMatchObject({
      type: 'vhost-user',
      'vhost-user': { mode: 'client', path: podPath },
    });
    expect(
      parsePodIndex(fs.readFileSync(path.join(podDir('a'), 'interfaces.json'), 'utf8')).interfaces.find(
        (i) => i.ifname === 'net3',
      )?.socket_path,
    ).toBe(podPath);
    const check = await runShim(
      d.socket,
      cniEnv('CHECK', def('a').cid, 'net3', fakeNetns(d, def('a').cid), args('a')),
      JSON.stringify({ ...withDevinfo, prevResult: add3.json }),
    );
    expect(check.code, check.stdout).toBe(0);
    expect(
      (await runShim(d.socket, cniEnv('DEL', def('a').cid, 'net3', undefined, args('a')), JSON.stringify(withDevinfo)))
        .code,
    ).toBe(0);
    expect(fs.existsSync(devinfo)).toBe(false);
    expect(fs.existsSync(path.join(podDir('a'), port('a', 'net3')))).toBe(false);

    // The server-mode port waits for the app at the path inside the pod's directory.
    expect(sandbox().vsctl('get', 'Interface', port('a', 'net2'), 'options:vhost-server-path').trim()).toBe(
      `"${path.join(podDir('a'), port('a', 'net2'))}"`,
    );
  }, 60_000);

  it("neither pod can open, list or stat the other's socket or files: not in its mounts, and denied on the node as its UID", () => {
    for (const [me, other] of [
      ['a', 'b'],
      ['b', 'a'],
    ] as const) {
      const mine = pod(me);
      const theirs = podDir(other);
      const theirFiles: [string, 'stat' | 'list' | 'read' | 'connect'][] = [
        [theirs, 'list'],
        [theirs, 'stat'],
        [path.join(theirs, port(other, 'net1')), 'stat'],
        [path.join(theirs, port(other, 'net1')), 'connect'],
        [path.join(theirs, `${def(other).cid}-net1`), 'read'],
        [path.join(theirs, 'interfaces.json'), 'read'],
        [path.join(theirs, 'interfaces.json'), 'stat'],
      ];
      const ops = theirFiles.map(([p, op]) => [op, p] as [typeof op, string]);
      // Inside the pod: only its own directory is mounted; the node's directories are not there.
      const inside = mine.run([
        ...probeScript([
          ...ops,
          ['list', mine.view],
          ['read', path.join(mine.view, 'interfaces.json')],
          ['stat', path.join(mine.view, port(me, 'net1'))],
        ]),
      ]);
      expect(inside.status, inside.stderr).toBe(0);
      const r = JSON.parse(inside.stdout) as Record<string, string>;
      for (const [op, p] of ops) expect(r[`${op} ${p}`], `pod ${me} (inside): ${op} ${p}`).toBe('ENOENT');
      expect(r[`list ${mine.view}`]).toBe('ok');
      expect(r[`read ${path.join(mine.view, 'interfaces.json')}`]).toBe('ok');
      expect(r[`stat ${path.join(mine.view, port(me, 'net1'))}`]).toBe('ok');
      // On the node as the same UID (a pod that somehow saw the whole tree): permission denied.
      fs.chmodSync(sandbox().dir, 0o755); // the sandbox's own 0700 would hide the answer behind EACCES anyway
      const onNode = mine.runAsUserOnNode(probeScript(ops));
      const n = JSON.parse(onNode.stdout) as Record<string, string>;
      for (const [op, p] of ops)
        expect(n[`${op} ${p}`], `UID of pod ${me} on the node: ${op} ${p}`).toBe(
          p === theirs && op === 'stat' ? 'ok' : 'EACCES',
        );
    }
  });

  async function startPodPmd(n: string, sockets: { client: string; server: string }): Promise<Testpmd> {
    const p = pod(n);
    const t = await startTestpmd({
      ports: [
        { path: sockets.client, mac: `02:00:00:00:0${n}:01` },
        { path: sockets.server, server: true, mac: `02:00:00:00:0${n}:02` },
      ],
      wrap: (argv) => p.argv(argv),
      runtimeDir: path.join(p.runtimeDir, 'dpdk'),
      readyTimeoutMs: 30_000,
    });
    pmds.push(t);
    return t;
  }

  async function trafficThrough(n: string): Promise<void> {
    const t = await startPodPmd(n, {
      client: path.join(pod(n).view, port(n, 'net1')),
      server: path.join(pod(n).view, port(n, 'net2')),
    });
    // The app (the pod's UID) created the server-mode socket in its directory; OVS connects to it.
    const srv = fs.lstatSync(path.join(podDir(n), port(n, 'net2')));
    expect([srv.isSocket(), srv.uid]).toEqual([true, def(n).uid]);
    for (const ifname of ['net1', 'net2'])
      sandbox().vsctl('--timeout=30', 'wait-until', 'Interface', port(n, ifname), 'link_state=up');
    await t.startForwarding();
    const stats = await t.waitForTraffic({ minPackets: 100, timeoutMs: 30_000 });
    for (const s of stats) {
      expect(s.rxPackets).toBeGreaterThan(100);
      expect(s.txPackets).toBeGreaterThan(100);
    }
    await t.stop();
    pmds.splice(pmds.indexOf(t), 1);
  }

  it('a non-root testpmd in each pod passes traffic through its own client-mode and server-mode sockets', async () => {
    for (const p of PODS) {
      const who = pod(p.name).run(['id', '-u']);
      expect(who.stdout.trim()).toBe(String(p.uid));
      await trafficThrough(p.name);
    }
  }, 180_000);

  it("a non-root testpmd cannot connect to the other pod's socket", async () => {
    // Pod a's testpmd given pod b's socket, by b's path on the node: not in its mounts.
    const other = path.join(podDir('b'), port('b', 'net1'));
    const r = pod('a').run(
      [
        'dpdk-testpmd',
        '--no-pci',
        '--no-huge',
        '-m',
        '256',
        '--file-prefix',
        `vhp-iso-${process.pid}`,
        `--vdev=net_virtio_user0,path=${other}`,
        '--',
        '--total-num-mbufs=16384',
        '--no-lsc-interrupt',
      ],
      { timeoutMs: 60_000 },
    );
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/virtio_user_dev_init fails|Failed to probe|No probed ethernet devices/);
    expect(out).not.toMatch(/Port 0: [0-9A-F:]{17}/);
    // And as b's neighbour UID on the node (where the path exists): EACCES, by the directory's mode.
    const probe = pod('a').runAsUserOnNode(probeScript([['connect', other]]));
    expect(JSON.parse(probe.stdout)).toEqual({ [`connect ${other}`]: 'EACCES' });
  }, 90_000);

  /** Restarts ovs-vswitchd while pod-info waits inside pod a for generation > `gen`; checks every client-mode socket came back owned. */
  async function restartAndCheck(gen: number): Promise<void> {
    const drv = daemon.runtime.vhostuser;
    const restored = new Set<string>();
    const allBack = new Promise<void>((resolve) =>
      drv.on('socket-restored', ({ attachment }) => {
        restored.add(attachment.vifName);
        if (PODS.every((p) => restored.has(port(p.name, 'net1')))) resolve();
      }),
    );
    const cli = path.join(pod('a').bound(REPO), 'dist/cli/main.js');
    const waiting = pod('a').runAsync(
      [
        process.execPath,
        cli,
        'pod-info',
        '--dir',
        pod('a').view,
        '--ifname',
        'net1',
        '--wait',
        '60',
        '--after-generation',
        String(gen),
        '--json',
      ],
      { timeoutMs: 90_000 },
    );
    await new Promise((r) => setTimeout(r, 500)); // pod-info is watching (it would also answer if late: the generation is above)
    await sandbox().restartVswitchd();
    await allBack;
    drv.removeAllListeners('socket-restored');
    const answer = await waiting;
    expect(answer.code, answer.stderr).toBe(0);
    expect(JSON.parse(answer.stdout)).toMatchObject({
      ifname: 'net1',
      generation: gen + 1,
      socket_path: path.join(pod('a').view, port('a', 'net1')),
    });
    for (const p of PODS) {
      const sock = fs.lstatSync(path.join(podDir(p.name), port(p.name, 'net1')));
      expect([sock.isSocket(), sock.uid, sock.gid, sock.mode & 0o777], `pod ${p.name}`).toEqual([
        true,
        p.uid,
        p.uid,
        0o660,
      ]);
      expect(fs.existsSync(path.join(sandbox().runDir, port(p.name, 'net1')))).toBe(false);
      const index = parsePodIndex(fs.readFileSync(path.join(podDir(p.name), 'interfaces.json'), 'utf8'));
      expect(index.interfaces.map((i) => [i.ifname, i.generation])).toEqual([
        ['net1', gen + 1],
        ['net2', 1],
      ]);
      expect(JSON.parse(fs.readFileSync(path.join(podDir(p.name), `${p.cid}-net1`), 'utf8')).generation).toBe(gen + 1);
      const ist = fs.statSync(path.join(podDir(p.name), 'interfaces.json'));
      expect([ist.uid, ist.mode & 0o777]).toEqual([p.uid, 0o640]);
    }
  }

  it('ovs-vswitchd restart: client-mode sockets back in the right pod directories, owner and mode intact, generation bumped, pod-info --wait sees it', async () => {
    await restartAndCheck(1);
    // The app reconnects to the same path (as its UID) and traffic flows again.
    await trafficThrough('a');
  }, 180_000);

  it('the same after a daemon restart: layout, pod and owner come back from OVSDB alone', async () => {
    await daemon.stop();
    daemon = await startTestDaemon(sandbox(), d);
    expect(
      daemon.runtime.vhostuser
        .attachments()
        .map((a) => [a.ifname, a.socketLayout, a.uid, a.socketMode, a.generation])
        .sort(),
    ).toEqual(
      PODS.flatMap((p) => [
        ['net1', 'per-pod', p.uid, 0o660, 2],
        ['net2', 'per-pod', p.uid, 0o660, 1],
      ]).sort(),
    );
    await restartAndCheck(2);
  }, 180_000);

  it("Kuryr mode ([vhostuser] per_pod_dir, owner, socket_mode): the Pod's securityContext owns its files, else the node default", async () => {
    const config = parseConfig(
      [
        `[vhostuser]`,
        `mount_point = ${d.mount}`,
        `ovs_vhu_path = ${sandbox().runDir}`,
        'per_pod_dir = true',
        'owner = 23499:23499',
        'socket_mode = 0640',
        `[os_vif_ovs]`,
        `ovsdb_connection = ${sandbox().db}`,
        '',
      ].join('\n'),
    ).config;
    const rt = await openRuntime(config);
    try {
      // The Kuryr flows with the runtime's real drivers; the Kubernetes API is a stub (no
      // kube-apiserver can run here): it answers the pod lookups with the Pods' securityContext.
      const pods = new Map<string, PodInfo>();
      const kube: KuryrKube = {
        getPod: async (ns, name) => pods.get(`${ns}/${name}`) ?? null,
        emitEvent: () => undefined,
      };
      const registry = new KuryrRegistry();
      const flows = new KuryrFlows({ registry, kube, drivers: rt.drivers, vifTimeoutMs: 5000, delTimeoutMs: 1000 });
      const mk = (name: string, containerId: string, podUid: string, securityContext?: PodInfo['securityContext']) => {
        const vif = makeVHostUserVif('client', d.mount);
        pods.set(`default/${name}`, {
          namespace: 'default',
          name,
          uid: podUid,
          static: false,
          deleting: false,
          ...(securityContext ? { securityContext } : {}),
        });
        registry.upsert(`default/${name}`, {
          source: 'kuryrport',
          objectUid: `kp-${name}`,
          podUid,
          vifs: [{ ifname: 'eth0', default: true, vif }],
        });
        const req = (command: 'ADD' | 'DEL') =>
          parseCniRequest(
            JSON.parse(
              kuryrDaemonBody(command, {
                ifname: 'eth0',
                netns: '/proc/1/ns/net',
                containerId,
                args: kubeletCniArgs('default', name, containerId, podUid),
              }),
            ),
            command,
          );
        return { vif, podUid, req };
      };
      const withSc = mk('k1', 'kuryrc', 'cccccccc-3333-4333-8333-333333333333', {
        runAsUser: 1000,
        runAsGroup: 2000,
        fsGroup: 3000,
      });
      const noSc = mk('k2', 'kuryrd', 'dddddddd-4444-4444-8444-444444444444');
      await flows.add(withSc.req('ADD'));
      await flows.add(noSc.req('ADD'));
      const owned = (uid: string, f: string) => {
        const st = fs.lstatSync(path.join(d.mount, uid, f));
        return [st.uid, st.gid, st.mode & 0o777];
      };
      const portOf = (v: { vif: { id: string } }) => vhostUserPortName(v.vif.id);
      // runAsUser, and fsGroup over runAsGroup; socket_mode from the node.
      expect(owned(withSc.podUid, '')).toEqual([1000, 3000, 0o750]);
      expect(owned(withSc.podUid, portOf(withSc))).toEqual([1000, 3000, 0o640]);
      expect(owned(withSc.podUid, 'interfaces.json')).toEqual([1000, 3000, 0o640]);
      // No securityContext: [vhostuser] owner.
      expect(owned(noSc.podUid, portOf(noSc))).toEqual([23499, 23499, 0o640]);
      await flows.del(withSc.req('DEL'));
      await flows.del(noSc.req('DEL'));
      expect(fs.existsSync(path.join(d.mount, withSc.podUid))).toBe(false);
      expect(fs.existsSync(path.join(d.mount, noSc.podUid))).toBe(false);
    } finally {
      rt.close();
    }
  }, 60_000);

  it("the reconciler removes pod directories and flat indexes no attachment holds, and strays inside live pods' directories, nothing else", async () => {
    const orphan = path.join(d.mount, 'eeeeeeee-5555-4555-8555-555555555555');
    fs.mkdirSync(orphan);
    fs.writeFileSync(path.join(orphan, 'interfaces.json'), '{}');
    fs.writeFileSync(path.join(orphan, 'app-notes'), 'x');
    const flatIndex = path.join(d.mount, 'interfaces-ffffffff-6666-4666-8666-666666666666.json');
    fs.writeFileSync(flatIndex, '{}');
    const operatorDir = path.join(d.mount, 'not-a-pod');
    fs.mkdirSync(operatorDir);
    const straySock = path.join(podDir('a'), 'vhu12345678-9a');
    // A socket file left by a dead process (bound, never unlinked).
    execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', straySock]);
    expect(fs.lstatSync(straySock).isSocket()).toBe(true);
    const before = fs
      .readdirSync(podDir('a'))
      .filter((f) => f !== 'vhu12345678-9a')
      .sort();
    const report = await daemon.reconciler.runOnce(true);
    expect(report.strayFiles.sort()).toEqual([flatIndex, orphan, straySock].sort());
    expect(fs.existsSync(orphan)).toBe(false);
    expect(fs.existsSync(operatorDir)).toBe(true);
    expect(fs.readdirSync(podDir('a')).sort()).toEqual(before);
    expect(report.dead).toEqual([]);
    fs.rmdirSync(operatorDir);
  });

  it('DEL: the pod directory goes with its last interface; nothing is left', async () => {
    for (const p of PODS) {
      expect(
        (await runShim(d.socket, cniEnv('DEL', p.cid, 'net1', undefined, args(p.name)), conf(p.name, 'client'))).code,
      ).toBe(0);
      // (The server-mode socket is the app's: testpmd removed it when it quit.)
      expect(
        fs
          .readdirSync(podDir(p.name))
          .filter((f) => f !== port(p.name, 'net2'))
          .sort(),
        `pod ${p.name} after net1`,
      ).toEqual([`${p.cid}-net2`, 'interfaces.json'].sort());
      expect(
        parsePodIndex(fs.readFileSync(path.join(podDir(p.name), 'interfaces.json'), 'utf8')).interfaces.map(
          (i) => i.ifname,
        ),
      ).toEqual(['net2']);
      expect(
        (await runShim(d.socket, cniEnv('DEL', p.cid, 'net2', undefined, args(p.name)), conf(p.name, 'server'))).code,
      ).toBe(0);
      expect(fs.existsSync(podDir(p.name))).toBe(false);
    }
    expect(leftovers(sandbox(), d)).toEqual(NOTHING);
  }, 60_000);
});
