#!/usr/bin/env node
// Prints the published tables (README.md "Numbers", docs/benchmarks.md) as markdown from the
// JSON reports bench/run.sh writes, so the documents quote the reports and nothing else:
//   node bench/tables.mjs [DIR]        (default bench/results)
// A report that is missing is said so in place of its rows.
import * as fs from 'node:fs';
import * as path from 'node:path';

const dir = process.argv[2] ?? path.join(import.meta.dirname, 'results');
const cache = new Map();
function report(file) {
  if (!cache.has(file)) {
    const p = path.join(dir, file);
    cache.set(file, fs.existsSync(p) ? JSON.parse(fs.readFileSync(p, 'utf8')) : undefined);
  }
  return cache.get(file);
}

/** The series of `file` whose system/op/labels match (labels: a subset). */
function series(file, system, op, labels = {}) {
  const r = report(file);
  return r?.series?.find(
    (s) => s.system === system && s.op === op && Object.entries(labels).every(([k, v]) => s.labels?.[k] === v),
  );
}

const f2 = (x) => (x === undefined ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const pp = (s) => (s ? `${f2(s.summary.p50)} / ${f2(s.summary.p99)}` : '—');
const ratio = (a, b) => (a && b ? `${(b.summary.p50 / a.summary.p50).toFixed(2)}x` : '—');
const tput = (s) => (s ? `${f2(s.throughputPerS)}` : '—');

function conditions(file) {
  const r = report(file);
  if (!r) return `${file}: missing`;
  const c = r.conditions;
  const o = c.ovs ?? {};
  return `${file}: ${c.date}, load ${c.machine.loadavg.join(' ')}, ${o.pmd ?? '?'} PMD${o.pmdCpus ? ` on CPU ${o.pmdCpus.join(',')}` : ''}, ${o.pmdAnchor?.startsWith('none') ? 'no anchor' : 'anchor'}, mount on ${o.mountFs ?? '?'}`;
}

const out = [];
const row = (...cells) => out.push(`| ${cells.join(' | ')} |`);

out.push('## Headline (p50 / p99 ms unless said; ratios = baseline p50 / vhostplug p50, same run)', '');
row('', 'vhostplug', 'floor (bare txn of the same rows)', 'os-vif', 'ovs-vsctl', 'os-vif / vhostplug');
row('---', '---', '---', '---', '---', '---');
for (const mode of ['server', 'client']) {
  for (const op of ['plug', 'unplug']) {
    const L = { mode, ack: true };
    const v = series('sequential-10.json', 'vhostplug', op, L);
    const o = series('sequential-10.json', 'os-vif', op, L);
    row(
      `${op} ${mode} mode, 10 ports, acked`,
      pp(v),
      pp(series('sequential-10.json', 'floor', op, L)),
      pp(o),
      pp(series('sequential-10.json', 'ovs-vsctl', op, L)),
      ratio(v, o),
    );
  }
}
{
  const L = { mode: 'client', ack: true };
  const v = series('sequential-10.json', 'vhostplug-pool', 'plug', L);
  const o = series('sequential-10.json', 'os-vif', 'plug', L);
  row(
    'plug client mode from the warm pool, acked',
    pp(v),
    pp(series('sequential-10.json', 'floor', 'plug', L)),
    pp(o),
    '',
    ratio(v, o),
  );
  const L2 = { mode: 'server', ack: false };
  row(
    'plug server mode without the vswitchd wait',
    pp(series('sequential-10.json', 'vhostplug', 'plug', L2)),
    pp(series('sequential-10.json', 'floor', 'plug', L2)),
    'always waits',
    `${pp(series('sequential-10.json', 'ovs-vsctl', 'plug', L2))} (--no-wait)`,
    '',
  );
  const v3 = series('sequential-10.json', 'vhostplug', 'plug', { mode: 'veth', ack: true });
  row('plug a veth (pod netns, one IPv4 address), acked', pp(v3), '', '', '', '');
}
for (const [file, n] of [['plug-server-1000.json', 1000]]) {
  const L = { mode: 'server', ack: true };
  const v = series(file, 'vhostplug', 'plug', L);
  const o = series(file, 'os-vif', 'plug', L);
  row(
    `plug server mode, ${n} ports, acked`,
    pp(v),
    pp(series(file, 'floor', 'plug', L)),
    pp(o),
    pp(series(file, 'ovs-vsctl', 'plug', L)),
    ratio(v, o),
  );
}
{
  const L = { ports: 5000, ack: true };
  const v = series('scale.json', 'vhostplug', 'plug', L);
  const o = series('scale.json', 'os-vif', 'plug', L);
  row(
    'plug server mode, 5000 ports, acked',
    pp(v),
    '',
    pp(o),
    pp(series('scale.json', 'ovs-vsctl', 'plug', L)),
    ratio(v, o),
  );
}
{
  const c = (via) => series('churn-1000.json', via, 'cycle');
  row(
    'churn: 32 pods plug+unplug at 1000 ports, acked, cycles/s',
    `${tput(c('driver'))} (daemon ${tput(c('daemon'))})`,
    tput(c('floor')),
    tput(c('os-vif')),
    tput(c('ovs-vsctl')),
    c('driver') && c('os-vif') ? `${(c('driver').throughputPerS / c('os-vif').throughputPerS).toFixed(1)}x more` : '—',
  );
}
{
  const r = report('ovsdb-10.json');
  const s = (sys) => r?.series?.find((x) => x.system === sys && x.op === 'add' && x.labels?.ack === false);
  row(
    'OVSDB add-port transaction, 10 ports, no ack (native transport)',
    `${pp(s('native'))} (node:net ${pp(s('net'))})`,
    pp(s('floor')),
    '',
    `${pp(s('ovs-vsctl'))} (--no-wait)`,
    '',
  );
}
row(
  'a CNI ADD through the vhostplug-cni shim and the daemon, 10 ports',
  pp(series('churn-c1.json', 'shim', 'plug')),
  '',
  '',
  '',
  '',
);
{
  const r = report('restart.json');
  const m = r?.series?.find((s) => s.op === 'move');
  row(
    'client-mode socket back in the pod after an ovs-vswitchd restart (after vswitchd re-creates it)',
    pp(m),
    '',
    '"recreate the pod"',
    '',
    '',
  );
}
out.push('', 'Conditions:', '');
for (const f of [
  'sequential-10.json',
  'plug-server-1000.json',
  'scale.json',
  'churn-1000.json',
  'ovsdb-10.json',
  'churn-c1.json',
  'restart.json',
])
  out.push(`- ${conditions(f)}`);

out.push('', '## Busy against sleeping PMD (p50 ms, 10 ports, acked)', '');
row('', 'busy PMD + anchor (default)', 'busy PMD, no PMD port', 'sleeping PMD');
row('---', '---', '---', '---');
for (const [sys, op] of [
  ['floor', 'plug'],
  ['floor', 'unplug'],
  ['vhostplug', 'plug'],
  ['vhostplug', 'unplug'],
  ['os-vif', 'plug'],
  ['os-vif', 'unplug'],
]) {
  const L = { mode: 'server', ack: true };
  const g = (f) => f2(series(f, sys, op, L)?.summary.p50);
  const cpu = (f) => {
    const c = series(f, sys, op, L)?.cpuMs?.['ovs-vswitchd']?.p50;
    return c === undefined ? '' : ` (vswitchd CPU ${f2(c)})`;
  };
  row(
    `${sys} ${op}, server mode`,
    g('sequential-10.json') + cpu('sequential-10.json'),
    g('sequential-10-noanchor.json') + cpu('sequential-10-noanchor.json'),
    g('sequential-10-sleep.json') + cpu('sequential-10-sleep.json'),
  );
}
{
  const c = (f, via) => tput(series(f, via, 'cycle'));
  for (const via of ['floor', 'driver', 'daemon'])
    row(
      `churn at 1000 ports, 32 pods, ${via}, cycles/s`,
      c('churn-1000.json', via),
      '',
      c('churn-1000-sleep.json', via),
    );
}
out.push(
  '',
  ...['sequential-10-noanchor.json', 'sequential-10-sleep.json', 'churn-1000-sleep.json'].map(
    (f) => `- ${conditions(f)}`,
  ),
);

out.push('', '## The warm pool (client mode, acked, 10 ports; p50 / p99 ms)', '');
row('', 'pooled plug', 'plug', 'floor plug', 'os-vif plug', 'plug / pooled');
row('---', '---', '---', '---', '---', '---');
for (const [name, file] of [
  ['busy PMD', 'sequential-10.json'],
  ['sleeping PMD', 'pool-sleep.json'],
]) {
  const L = { mode: 'client', ack: true };
  const p = series(file, 'vhostplug-pool', 'plug', L);
  const v = series(file, 'vhostplug', 'plug', L);
  row(name, pp(p), pp(v), pp(series(file, 'floor', 'plug', L)), pp(series(file, 'os-vif', 'plug', L)), ratio(p, v));
}
out.push('', `- ${conditions('pool-sleep.json')}`);

out.push('', '## ovs-vswitchd per port against the batch size (p50)', '');
row(
  'batch B',
  '1000 ports: add / delete per port, ms',
  'vswitchd CPU per port add / delete, ms',
  'cycles/s bound (wall)',
  '10 ports: add / delete per port, ms',
);
row('---', '---', '---', '---', '---');
{
  const c1000 = report('batch-1000.json')?.extra?.['curve (p50)'] ?? [];
  const c10 = report('batch-10.json')?.extra?.['curve (p50)'] ?? [];
  for (const p of c1000) {
    const q = c10.find((x) => x.batch === p.batch);
    row(
      p.batch,
      `${f2(p.addPerPortMs)} / ${f2(p.delPerPortMs)}`,
      `${f2(p.vswitchdCpuPerPortMs?.add)} / ${f2(p.vswitchdCpuPerPortMs?.del)}`,
      f2(p.cyclesPerSBound),
      q ? `${f2(q.addPerPortMs)} / ${f2(q.delPerPortMs)}` : '—',
    );
  }
}
out.push('', ...['batch-1000.json', 'batch-10.json'].map((f) => `- ${conditions(f)}`));

out.push('', '## Churn', '');
row('report', 'via', 'cycles/s', 'cycle p50 / p99 ms', 'plugging process RSS start → peak MiB', 'its CPU % of a core');
row('---', '---', '---', '---', '---', '---');
for (const f of [
  'churn-c1.json',
  'churn-1000.json',
  'churn-1000-sleep.json',
  'churn-1000-c128.json',
  'churn-1000-noack.json',
  'churn-daemon-5000.json',
  'churn-driver-50k-noack.json',
  'churn-daemon-long.json',
]) {
  const r = report(f);
  if (!r) {
    row(f, 'missing', '', '', '', '');
    continue;
  }
  for (const s of r.series.filter((x) => x.op === 'cycle')) {
    const via = s.system;
    const proc = r.process?.find((p) =>
      via === 'driver' || via === 'floor'
        ? p.role.startsWith('bench process')
        : p.role.includes(via === 'shim' ? 'through the shim' : 'on its socket'),
    );
    row(
      f,
      via,
      tput(s),
      pp(s),
      proc && (via === 'driver' || via === 'daemon' || via === 'shim')
        ? `${proc.rssMiBStart} → ${proc.rssMiBPeak}`
        : '',
      proc && (via === 'driver' || via === 'daemon' || via === 'shim') ? String(proc.cpuPercent) : '',
    );
  }
}

{
  const r = report('cri-sandbox.json');
  out.push('', '## RunPodSandbox through containerd (p50 ms)', '');
  if (!r) out.push('cri-sandbox.json: missing');
  else {
    const cells = ['server', 'client', 'veth', 'ptp', 'none'];
    row('', 'vhostplug server', 'vhostplug client', 'vhostplug veth', 'ptp', 'no network');
    row('---', '---', '---', '---', '---', '---');
    row('RunPodSandbox p50 / p99', ...cells.map((c) => `${f2(r.p50[c])} / ${f2(r.p99[c])}`));
    row('ratio to ptp', ...cells.map((c) => String(r.ratioToPtp[c])));
    row('before CNI', ...cells.map((c) => f2(r.phasesP50[c]?.preCni ?? undefined)));
    row('CNI window', ...cells.map((c) => f2(r.phasesP50[c]?.cniWindow ?? undefined)));
    row("of which the daemon's ADD", ...cells.map((c) => f2(r.daemonAddP50?.[c])));
    row('after CNI (pause task start)', ...cells.map((c) => f2(r.phasesP50[c]?.afterCni ?? undefined)));
    out.push(
      '',
      `- cri-sandbox.json: ${r.conditions.date}, load ${r.conditions.loadavg.join(' ')}, ${r.conditions.samplesPerCell} samples per cell, ${r.conditions.ovs}`,
    );
  }
}

out.push('', '## Targets, as each report judges them (reported, never asserted)', '');
for (const f of fs
  .readdirSync(dir)
  .filter((x) => x.endsWith('.json'))
  .sort()) {
  for (const t of report(f)?.targets ?? [])
    out.push(`- ${f}: [${t.met ? 'met' : 'MISSED'}] ${t.target}: ${t.measured}`);
}
process.stdout.write(out.join('\n') + '\n');
