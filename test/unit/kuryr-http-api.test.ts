/**
 * The kuryr-daemon HTTP protocol on its own: request parsing (CNIParameters), status codes,
 * the `{code, msg, details}` error bodies with a real Content-Type, the loopback rule,
 * limits and timeouts. The flows behind it are stubs here (the integration test
 * kuryr-daemon.test.ts runs the real ones); no Kubernetes API is involved.
 */
import * as http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startKuryrApi, isLoopbackHost, RemoteBindError, type KuryrApi } from '../../src/kuryr/http-api';
import {
  badParams,
  parseCniArgs,
  parseCniRequest,
  podGone,
  timedOut,
  uidMismatch,
  type CniParams,
} from '../../src/kuryr/flows';
import { CniMetrics } from '../../src/agent/metrics';
import { HealthState } from '../../src/agent/health';
import { decodeVIF, encodeVIF } from '../../src/vif/ovo';
import type { VIF } from '../../src/vif/model';
import {
  kubeletCniArgs,
  kuryrDaemonBody,
  makeDaemonRequest,
  postAsGo,
  toCni031Result,
} from '../helpers/kuryr-cni-client';
import * as fs from 'node:fs';
import * as path from 'node:path';

const VIF_FIXTURE = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/vif/vhu-client.json'), 'utf8'));
const CID = 'f'.repeat(64);
const ARGS = {
  ifname: 'eth0',
  netns: '/var/run/netns/cni-1',
  containerId: CID,
  args: kubeletCniArgs('ns1', 'pod1', CID, 'c0ffee00-1111-4222-8333-444455556666'),
};

describe('CNI_ARGS and request parsing (Kuryr CNIParameters)', () => {
  it('splits on ";" and the FIRST "=", drops "_" keys, skips empty items', () => {
    expect(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=a=b;_secret=x;;K8S_POD_UID=u')).toEqual({
      IgnoreUnknown: '1',
      K8S_POD_NAMESPACE: 'ns',
      K8S_POD_NAME: 'a=b',
      K8S_POD_UID: 'u',
    });
    expect(parseCniArgs('')).toEqual({});
    expect(() => parseCniArgs('K8S_POD_NAME')).toThrow(/has no "="/);
    // No prototype games through a key.
    expect(Object.getPrototypeOf(parseCniArgs('__proto__=x'))).toBe(null);
  });

  it('takes what kuryr-cni sends; refuses missing or malformed fields with 400 code 4', () => {
    const p = parseCniRequest(JSON.parse(kuryrDaemonBody('ADD', ARGS)), 'ADD');
    expect(p).toMatchObject({
      command: 'ADD',
      containerId: CID,
      ifname: 'eth0',
      netns: '/var/run/netns/cni-1',
      path: '/opt/cni/bin',
    });
    expect(p.args).toMatchObject({ K8S_POD_NAMESPACE: 'ns1', K8S_POD_NAME: 'pod1' });
    expect(p.config).toMatchObject({ type: 'kuryr-cni', name: 'kuryr' });
    // Go's encoder: struct fields in order, map keys sorted, <>& escaped; we read it back the same.
    const goBody = kuryrDaemonBody('ADD', {
      ...ARGS,
      config: { type: 'kuryr-cni', name: 'a<b&c', cniVersion: '0.3.1' },
    });
    expect(goBody).toMatch(
      /^\{"CNI_IFNAME":"eth0","CNI_NETNS":.*"config_kuryr":\{"cniVersion":"0.3.1","name":"a\\u003cb\\u0026c","type":"kuryr-cni"\}\}$/,
    );
    expect(parseCniRequest(JSON.parse(goBody), 'ADD').config.name).toBe('a<b&c');
    // DEL may come without a netns (the sandbox is gone).
    expect(
      parseCniRequest({ CNI_CONTAINERID: CID, CNI_IFNAME: 'eth0', CNI_NETNS: '', CNI_ARGS: ARGS.args }, 'DEL').netns,
    ).toBe('');
    const bad: Array<[unknown, RegExp]> = [
      [[], /JSON object/],
      [{ CNI_IFNAME: 'eth0', CNI_NETNS: '/n', CNI_ARGS: ARGS.args }, /missing CNI_CONTAINERID/],
      [
        { CNI_CONTAINERID: CID, CNI_IFNAME: 'eth0', CNI_NETNS: '/n', CNI_ARGS: 'K8S_POD_NAME=p' },
        /no K8S_POD_NAMESPACE/,
      ],
      [{ CNI_CONTAINERID: CID, CNI_IFNAME: 'eth0/../x', CNI_NETNS: '/n', CNI_ARGS: ARGS.args }, /CNI_IFNAME/],
      [
        { CNI_CONTAINERID: 5, CNI_IFNAME: 'eth0', CNI_NETNS: '/n', CNI_ARGS: ARGS.args },
        /CNI_CONTAINERID must be a string/,
      ],
      [
        { CNI_CONTAINERID: CID, CNI_IFNAME: 'eth0', CNI_NETNS: '/n', CNI_ARGS: ARGS.args, CNI_COMMAND: 'DEL' },
        /CNI_COMMAND/,
      ],
      [
        { CNI_CONTAINERID: CID, CNI_IFNAME: 'eth0', CNI_NETNS: '/n', CNI_ARGS: ARGS.args, config_kuryr: 'x' },
        /config_kuryr/,
      ],
    ];
    for (const [body, re] of bad) {
      let err: unknown;
      try {
        parseCniRequest(body, 'ADD');
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(body)).toMatchObject({ status: 400, cniCode: 4, msg: 'Required CNI params missing.' });
      expect((err as Error).message).toMatch(re);
    }
  });

  it('loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.3.2.1', 'localhost', '::1']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '10.0.0.1', '::', 'example.com']) expect(isLoopbackHost(h)).toBe(false);
  });
});

describe("the 202 body through kuryr-cni's result conversion (test helper mirroring main.go/ovo.go)", () => {
  const fixture = (f: string) => JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/vif', f), 'utf8'));

  it('IPv4: first IP per subnet with the subnet prefix, gateway, routes, DNS; sandbox is the container id', () => {
    // Our 202 body is encodeVIF of the decoded VIF: convert that, not the fixture itself.
    const body = JSON.parse(JSON.stringify(encodeVIF(decodeVIF(fixture('vhu-client.json')))));
    expect(toCni031Result(body, 'eth0', CID)).toEqual({
      cniVersion: '0.3.1',
      interfaces: [{ name: 'eth0', mac: 'fa:16:3e:9c:9c:c8', sandbox: CID }],
      ips: [{ version: '4', interface: 0, address: '10.10.0.5/24', gateway: '10.10.0.1' }],
      routes: [{ dst: '192.168.100.0/24', gw: '10.10.0.254' }],
      dns: { nameservers: ['10.10.0.2', '8.8.8.8'] },
    });
  });

  it('IPv6 subnet with a route; a network without subnets gives no IPs and empty DNS', () => {
    const body = JSON.parse(JSON.stringify(encodeVIF(decodeVIF(fixture('vhu-full.json')))));
    expect(toCni031Result(body, 'net1', CID)).toEqual({
      cniVersion: '0.3.1',
      interfaces: [{ name: 'net1', mac: 'fa:16:3e:00:00:01', sandbox: CID }],
      ips: [{ version: '6', interface: 0, address: '2001:db8::1:0:0:5/80', gateway: '2001:db8::1:0:0:1' }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }],
      dns: { nameservers: ['2001:4860:4860::8888'] },
    });
    const bare = decodeVIF(fixture('vhu-client.json'));
    bare.network = { ...bare.network!, subnets: [] };
    expect(toCni031Result(JSON.parse(JSON.stringify(encodeVIF(bare))), 'eth0', CID)).toEqual({
      cniVersion: '0.3.1',
      interfaces: [{ name: 'eth0', mac: 'fa:16:3e:9c:9c:c8', sandbox: CID }],
      dns: {},
    });
  });
});

describe('kuryr-daemon HTTP API', () => {
  let api: KuryrApi | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  const vif = (): VIF => decodeVIF(VIF_FIXTURE);

  it('202 with the o.vo primitive, 204 for DEL, application/json, and Go-client headers accepted', async () => {
    const seen: CniParams[] = [];
    const metrics = new CniMetrics();
    api = await startKuryrApi({
      port: 0,
      metrics,
      flows: {
        add: async (p) => (seen.push(p), vif()),
        del: async (p) => {
          seen.push(p);
          return 'disconnected';
        },
      },
    });
    const add = await makeDaemonRequest(api.url, 'ADD', ARGS);
    expect(add.ok).toBe(true);
    if (!add.ok) return;
    expect(add.raw.status).toBe(202);
    expect(add.raw.headers['content-type']).toBe('application/json');
    expect(add.raw.headers.connection).toBe('close');
    expect(JSON.parse(add.raw.body)).toEqual(encodeVIF(vif()));
    const del = await makeDaemonRequest(api.url, 'DEL', ARGS);
    expect(del).toMatchObject({ ok: true, raw: { status: 204, body: '' } });
    expect(del.raw?.headers['content-type']).toBeUndefined();
    expect(seen.map((p) => p.command)).toEqual(['ADD', 'DEL']);
    expect(metrics.requests.count({ command: 'ADD', result: 'success' })).toBe(1);
    expect(metrics.requests.count({ command: 'DEL', result: 'success' })).toBe(1);
  });

  it('maps errors as Kuryr does: 400/4, 410/3, 504/11, 500/999 with {code,msg,details}', async () => {
    const errors = [
      podGone('pod ns1/pod1 was deleted'),
      uidMismatch('uid x'),
      timedOut('Timed out.', 'no VIFs'),
      new Error('boom: EXDEV'),
      badParams('x'),
    ];
    let calls = 0;
    const metrics = new CniMetrics();
    api = await startKuryrApi({
      port: 0,
      metrics,
      flows: {
        add: async () => {
          throw errors[Math.floor(calls++ / 2)]; // each error twice: raw request, then kuryr-cni's
        },
        del: async () => 'disconnected',
      },
    });
    const want = [
      [410, { code: 3, msg: 'Pod was deleted while processing request', details: 'pod ns1/pod1 was deleted' }],
      [410, { code: 3, msg: 'Pod UID mismatch', details: 'uid x' }],
      [504, { code: 11, msg: 'Timed out. Try Again Later.', details: 'no VIFs' }],
      [500, { code: 999, msg: 'Error processing request', details: 'boom: EXDEV' }],
      [400, { code: 4, msg: 'Required CNI params missing.', details: 'x' }],
    ] as const;
    for (const [status, body] of want) {
      const raw = await postAsGo(api.url, '/addNetwork', kuryrDaemonBody('ADD', ARGS));
      expect(raw.status).toBe(status);
      expect(raw.headers['content-type']).toBe('application/json');
      expect(JSON.parse(raw.body)).toEqual(body);
      // kuryr-cni hands the body on as the CNI error.
      const r = await makeDaemonRequest(api.url, 'ADD', ARGS);
      expect(r).toMatchObject({ ok: false, error: { code: body.code, msg: body.msg } });
    }
    expect(metrics.requests.count({ command: 'ADD', result: 'pod_gone' })).toBe(4);
    expect(metrics.requests.count({ command: 'ADD', result: 'timeout' })).toBe(2);
  });

  it('malformed bodies -> 400 code 4; wrong path 404, wrong method 405, all JSON; oversize body refused', async () => {
    api = await startKuryrApi({
      port: 0,
      maxBodyBytes: 4096,
      flows: { add: async () => vif(), del: async () => 'disconnected' },
    });
    const notJson = await postAsGo(api.url, '/addNetwork', '{"CNI_IFNAME":');
    expect(notJson.status).toBe(400);
    expect(JSON.parse(notJson.body)).toMatchObject({ code: 4, msg: 'Required CNI params missing.' });
    expect((await postAsGo(api.url, '/addNetwork', JSON.stringify({ CNI_IFNAME: 'eth0' }))).status).toBe(400);
    const big = await postAsGo(api.url, '/addNetwork', JSON.stringify({ pad: 'x'.repeat(100_000) }));
    expect(big.status).toBe(400);
    expect(JSON.parse(big.body).details).toMatch(/larger than 4096 bytes/);
    const nf = await postAsGo(api.url, '/nope', '{}');
    expect(nf.status).toBe(404);
    expect(nf.headers['content-type']).toBe('application/json');
    const get = await fetch(`${api.url}/addNetwork`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect(await get.json()).toMatchObject({ code: 999 });
  });

  it('refuses a non-loopback bind_address unless allowed', async () => {
    await expect(
      startKuryrApi({ host: '0.0.0.0', port: 0, flows: { add: async () => vif(), del: async () => 'disconnected' } }),
    ).rejects.toBeInstanceOf(RemoteBindError);
    api = await startKuryrApi({
      host: '0.0.0.0',
      port: 0,
      allowRemoteBind: true,
      flows: { add: async () => vif(), del: async () => 'disconnected' },
    });
    expect(api.port).toBeGreaterThan(0);
  });

  it('a long ADD is not cut by the request timeout (it covers receiving the request only); worker_num bounds concurrency', async () => {
    let running = 0;
    let peak = 0;
    api = await startKuryrApi({
      port: 0,
      requestTimeoutMs: 300,
      workerNum: 2,
      flows: {
        add: async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 500));
          running--;
          return vif();
        },
        del: async () => 'disconnected',
      },
    });
    const rs = await Promise.all([1, 2, 3, 4].map(() => makeDaemonRequest(api!.url, 'ADD', ARGS)));
    expect(rs.every((r) => r.ok)).toBe(true);
    expect(peak).toBe(2);
  });

  it('a client that hangs up aborts the waits of its request', async () => {
    let aborted: Promise<boolean> | undefined;
    api = await startKuryrApi({
      port: 0,
      flows: {
        add: (_p, signal) => {
          aborted = new Promise((r) => signal!.addEventListener('abort', () => r(true)));
          return new Promise<VIF>(() => undefined);
        },
        del: async () => 'disconnected',
      },
    });
    const u = new URL(api.url);
    const req = http.request({
      host: u.hostname,
      port: u.port,
      method: 'POST',
      path: '/addNetwork',
      headers: { 'Content-Type': 'application/json' },
    });
    req.on('error', () => undefined);
    req.end(kuryrDaemonBody('ADD', ARGS));
    await expect.poll(() => aborted !== undefined).toBe(true);
    req.destroy();
    await expect(aborted).resolves.toBe(true);
  });

  it('counted failures make /alive fail; the ADD message says so, as Kuryr does; a success resets the count', async () => {
    const health = new HealthState({ failuresAllowed: 2 });
    let fail = true;
    api = await startKuryrApi({
      port: 0,
      health,
      flows: {
        add: async () => {
          if (fail) throw new Error('plug failed');
          return vif();
        },
        del: async () => 'disconnected',
      },
    });
    await makeDaemonRequest(api.url, 'ADD', ARGS);
    expect((await health.probe('alive')).ok).toBe(true);
    const second = await makeDaemonRequest(api.url, 'ADD', ARGS);
    expect(second).toMatchObject({ ok: false, error: { code: 999, msg: 'Maximum CNI ADD Failures Reached.' } });
    expect((await health.probe('alive')).ok).toBe(false);
    fail = false;
    expect((await makeDaemonRequest(api.url, 'ADD', ARGS)).ok).toBe(true);
    expect(await health.probe('alive')).toEqual({ ok: true, problems: [] });
  });
});
