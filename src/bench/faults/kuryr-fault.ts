/**
 * Fault 4 of issue 13: the kuryr-daemon HTTP API of `vhostplug daemon --kuryr` under
 * oversized bodies, slow headers and bodies (slowloris), invalid JSON and unknown paths,
 * while a real pod is ADDed and DELeted through the same API and the shim churns; and a
 * daemon configured to bind the API on a non-loopback address must refuse to start.
 *
 * The daemon needs a Kubernetes API for its KuryrPort and Pod watches. The real
 * kube-apiserver (with etcd) cannot run on these machines, so a small STAND-IN serves one
 * pod and its KuryrPort (list, then a watch that stays open) and accepts Events. Everything
 * else (daemon, HTTP API, OVS port, socket, config file) is real.
 */
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { encodeVIF } from '../../vif/ovo';
import { makeVHostUserVif } from '../../vif/model';
import { vhostUserPortName } from '../../vif/names';
import { cliMainPath } from '../daemon-client';
import type { Fault, FaultContext, RunOutcome } from './campaign';
import { CNI_BIN_DIR, newPodIdentity, sleep, type PodIdentity } from './node';

const NODE_NAME = 'faults-node';

type Obj = Record<string, unknown>;

/** The Kubernetes API stand-in: fixed objects, lists, idle watches, Events accepted. */
async function startApiStandIn(pods: Obj[], kuryrPorts: Obj[]): Promise<{ url: string; close(): Promise<void> }> {
  const watches = new Set<http.ServerResponse>();
  const json = (res: http.ServerResponse, code: number, body: unknown) => {
    const t = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(t) }).end(t);
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const list =
      url.pathname === '/api/v1/pods'
        ? { kind: 'PodList', apiVersion: 'v1', items: pods }
        : url.pathname === '/apis/openstack.org/v1/kuryrports'
          ? { kind: 'KuryrPortList', apiVersion: 'openstack.org/v1', items: kuryrPorts }
          : undefined;
    if (list && req.method === 'GET') {
      if (url.searchParams.get('watch') === 'true') {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
        res.flushHeaders();
        watches.add(res);
        res.on('close', () => watches.delete(res));
        return;
      }
      return json(res, 200, { ...list, metadata: { resourceVersion: '10' } });
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(url.pathname);
    if (m && req.method === 'GET') {
      const pod = pods.find((p) => (p.metadata as Obj).name === m[2]);
      return pod ? json(res, 200, pod) : json(res, 404, { kind: 'Status', code: 404, reason: 'NotFound' });
    }
    if (/\/events$/.test(url.pathname) && req.method === 'POST') {
      req.resume();
      req.on('end', () => json(res, 201, { kind: 'Event', metadata: { name: 'e' } }));
      return;
    }
    json(res, 404, { kind: 'Status', code: 404, reason: 'NotFound' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const w of watches) w.destroy();
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface HttpAnswer {
  status: number;
  body: string;
}

function request(
  port: number,
  method: string,
  p: string,
  body?: string | Buffer,
  timeoutMs = 10_000,
): Promise<HttpAnswer> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: p,
        agent: false,
        headers:
          body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {},
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', () => resolve({ status: res.statusCode ?? -1, body: '' }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: -1, body: String(e) }));
    req.end(body);
  });
}

/** What kuryr-cni POSTs (its Go struct's fields plus config_kuryr). */
function kuryrBody(command: 'ADD' | 'DEL', pod: PodIdentity): string {
  return JSON.stringify({
    CNI_IFNAME: pod.ifname,
    CNI_NETNS: pod.netns,
    CNI_PATH: CNI_BIN_DIR,
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.containerId,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.podName};K8S_POD_INFRA_CONTAINER_ID=${pod.containerId};K8S_POD_UID=${pod.podUid}`,
    config_kuryr: { cniVersion: '0.3.1', name: 'kuryr', type: 'kuryr-cni', kuryr_conf: '/etc/kuryr/kuryr.conf' },
  });
}

/** A connection that sends its request a byte at a time, forever (slowloris). */
function slowClient(port: number, head: string, drip: string): { sock: net.Socket; cut: Promise<void> } {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => undefined);
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  sock.on('connect', () => {
    sock.write(head);
    timer = setInterval(() => {
      if (!sock.destroyed) sock.write(drip[i++ % drip.length]!);
    }, 400);
  });
  const cut = new Promise<void>((r) =>
    sock.on('close', () => {
      clearInterval(timer);
      r();
    }),
  );
  return { sock, cut };
}

function portsOnBridge(ctx: FaultContext): string[] {
  return ctx.node.sb.vsctl('list-ports', 'br-int').split('\n').filter(Boolean);
}

async function run(ctx: FaultContext): Promise<RunOutcome> {
  const { node, churn } = ctx;
  const problems: string[] = [];
  const notes: string[] = [];
  const ns = await node.addNetns();
  const pod = newPodIdentity('kuryr-probe', ns.path, 'eth0');
  const vif = makeVHostUserVif('server', node.mountPoint, { network: { bridge: 'br-int', mtu: 1500 } });
  const portName = vhostUserPortName(vif.id);
  const podObj: Obj = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: pod.podName, namespace: pod.namespace, uid: pod.podUid, resourceVersion: '5', annotations: {} },
    spec: { nodeName: NODE_NAME, containers: [{ name: 'app', image: 'dpdk-app' }] },
    status: { phase: 'Pending' },
  };
  const kp: Obj = {
    apiVersion: 'openstack.org/v1',
    kind: 'KuryrPort',
    metadata: {
      name: pod.podName,
      namespace: pod.namespace,
      uid: 'kp-1',
      resourceVersion: '6',
      labels: { 'kuryr.openstack.org/nodeName': NODE_NAME },
    },
    spec: { podUid: pod.podUid, podNodeName: NODE_NAME },
    status: { vifs: { eth0: { default: true, vif: encodeVIF(vif) } } },
  };
  const api = await startApiStandIn([podObj], [kp]);
  const port = await freePort();
  const slow: { sock: net.Socket; cut: Promise<void> }[] = [];
  const answers = new Map<string, number>();
  const count = (k: string) => answers.set(k, (answers.get(k) ?? 0) + 1);
  let probeOk = false;
  const first = ctx.ledger.ops.length;
  try {
    node.writeConfig([
      '[cni_daemon]',
      `bind_address = 127.0.0.1:${port}`,
      'vif_annotation_timeout = 5',
      '[kubernetes]',
      `api_root = ${api.url}`,
    ]);
    await node.stopDaemon();
    node.daemonExtraArgs = ['--kuryr', '--node-name', NODE_NAME, '--metrics-port', '0', '--health-port', '0'];
    await node.startDaemon();
    const deadline = Date.now() + 60_000;
    while ((await request(port, 'GET', '/')).status !== 404) {
      if (Date.now() > deadline) throw new Error('the kuryr API did not come up');
      await sleep(100);
    }
    churn.start();
    // Slowloris: headers a byte at a time, and a declared body a byte at a time.
    for (let i = 0; i < 40; i++)
      slow.push(slowClient(port, 'POST /addNetwork HTTP/1.1\r\nHost: x\r\n', 'X-Slow: aaaaaaaa\r\n'));
    for (let i = 0; i < 20; i++)
      slow.push(
        slowClient(
          port,
          'POST /addNetwork HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n',
          '{"a":1,',
        ),
      );
    const garbage: (() => Promise<HttpAnswer>)[] = [
      () => request(port, 'POST', '/addNetwork', Buffer.alloc(2 << 20, 0x20)),
      () => request(port, 'POST', '/addNetwork', '{oops'),
      () => request(port, 'POST', '/delNetwork', '[]'),
      () => request(port, 'POST', '/addNetwork', '{"CNI_CONTAINERID":5}'),
      () =>
        request(
          port,
          'POST',
          '/addNetwork',
          JSON.stringify({
            CNI_CONTAINERID: '../../etc',
            CNI_IFNAME: 'eth0',
            CNI_NETNS: '/x',
            CNI_ARGS: 'K8S_POD_NAMESPACE=a;K8S_POD_NAME=b',
          }),
        ),
      () => request(port, 'GET', '/'),
      () => request(port, 'GET', '/addNetwork'),
      () => request(port, 'POST', '/../../etc/passwd', '{}'),
      () => request(port, 'DELETE', '/delNetworkX'),
    ];
    let sent = 0;
    const until = performance.now() + 3000;
    const flood = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (performance.now() < until) {
          const a = await garbage[sent++ % garbage.length]!();
          count(String(a.status));
        }
      }),
    );
    // A real pod through the same API meanwhile.
    const add = await request(port, 'POST', '/addNetwork', kuryrBody('ADD', pod), 30_000);
    if (add.status !== 202)
      problems.push(`probe ADD through the kuryr API answered ${add.status}: ${add.body.slice(0, 300)}`);
    else if (!portsOnBridge(ctx).includes(portName))
      problems.push(`probe ADD answered 202 but port ${portName} is not on br-int`);
    else probeOk = true;
    await flood;
    const del = await request(port, 'POST', '/delNetwork', kuryrBody('DEL', pod), 30_000);
    if (del.status !== 204) problems.push(`probe DEL answered ${del.status}: ${del.body.slice(0, 300)}`);
    if (portsOnBridge(ctx).includes(portName)) problems.push(`port ${portName} left after the probe's DEL`);
    for (const f of [path.join(node.mountPoint, `${pod.containerId}-${pod.ifname}`)])
      if (fs.existsSync(f)) problems.push(`${f} left after the probe's DEL`);
    const bad = [...answers].filter(([s]) => !/^4\d\d$/.test(s));
    if (bad.length)
      problems.push(`garbage answered with ${bad.map(([s, n]) => `${n}× ${s}`).join(', ')} (want 4xx only)`);
    if (!ctx.quick) {
      // Node cuts slow headers after headersTimeout (10 s) and slow bodies after requestTimeout (30 s), checked every 30 s.
      const all = Promise.all(slow.map((s) => s.cut)).then(() => true);
      const ok = await Promise.race([all, sleep(75_000).then(() => false)]);
      if (!ok) problems.push(`${slow.filter((s) => !s.sock.destroyed).length} slow clients still connected after 75 s`);
    } else
      notes.push('the cut of slow clients (Node: headers 10 s, request 30 s) is waited for in the full campaign only');
    const alive = await request(port, 'GET', '/nothing');
    if (alive.status !== 404) problems.push(`the API stopped answering after the garbage (${alive.status})`);
  } finally {
    for (const s of slow) s.sock.destroy();
    await churn.quiesce();
    await node.stopDaemon();
    node.daemonExtraArgs = [];
    node.writeConfig();
    await node.startDaemon();
    await api.close();
    await node.delNetns(ns.name);
  }
  const shimFailed = ctx.ledger.ops.slice(first).filter((o) => o.op === 'ADD' && o.exit !== 0);
  for (const o of shimFailed) problems.push(`shim ADD failed meanwhile: ${o.code}: ${o.msg}`);
  const refused = await nonLoopbackRefused(ctx);
  problems.push(...refused);
  return {
    hit: probeOk,
    problems,
    notes,
    figures: Object.fromEntries([...answers].map(([s, n]) => [`http${s}`, n])),
  };
}

/** `bind_address = 0.0.0.0:PORT` without `allow_remote_bind`: the daemon must refuse to start, touching nothing. */
async function nonLoopbackRefused(ctx: FaultContext): Promise<string[]> {
  const { node } = ctx;
  const problems: string[] = [];
  const dir = fs.mkdtempSync(path.join(node.root, 'remote-'));
  const port = await freePort();
  const conf = path.join(dir, 'kuryr.conf');
  const sock = path.join(dir, 'd.sock');
  fs.writeFileSync(
    conf,
    [
      '[vhostuser]',
      `mount_point = ${node.mountPoint}`,
      `ovs_vhu_path = ${node.ovsSockDir}`,
      '[os_vif_ovs]',
      `ovsdb_connection = ${node.sb.db}`,
      '[vhostplug]',
      `state_dir = ${path.join(dir, 'state')}`,
      `daemon_socket = ${sock}`,
      '[cni_daemon]',
      `bind_address = 0.0.0.0:${port}`,
      '[kubernetes]',
      'api_root = http://127.0.0.1:1',
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [cliMainPath(), 'daemon', '--kuryr', '--config', conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(null);
    }, 30_000);
    child.on('exit', (c) => {
      clearTimeout(t);
      resolve(c);
    });
  });
  if (code === null) problems.push('a daemon told to bind the kuryr API on 0.0.0.0 was still running after 30 s');
  else if (code === 0) problems.push('a daemon told to bind the kuryr API on 0.0.0.0 exited 0');
  if (!/allow_remote_bind/.test(err))
    problems.push(`the refusal does not name allow_remote_bind: ${err.slice(0, 300)}`);
  if (fs.existsSync(sock) || fs.existsSync(path.join(dir, 'state')))
    problems.push('the refused daemon created its socket or state dir');
  const listening = await new Promise<boolean>((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.on('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
  if (listening) problems.push(`something listens on port ${port} after the refusal`);
  fs.rmSync(dir, { recursive: true, force: true });
  return problems;
}

export const kuryrApiFault: Fault = {
  id: 'kuryr-api-abuse',
  group: 4,
  title: 'kuryr-daemon HTTP API: oversized, slow and invalid requests; non-loopback bind',
  how: 'daemon restarted with --kuryr; for 3 s, 8 clients send 2 MiB bodies, invalid JSON, wrong shapes, unknown paths and methods, and 60 slowloris connections drip headers or a body, while a real pod is ADDed/DELeted through the API and the shim churns; then a daemon with bind_address 0.0.0.0 must refuse to start',
  runs: { quick: 1, full: 2 },
  run,
};
