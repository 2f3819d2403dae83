/**
 * `vhostplug plug` / `vhostplug unplug`: drive the binding directly from an os-vif VIF
 * primitive, as Kuryr stores it, without Kubernetes or the daemon (operators, the demo,
 * the benchmark).
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig, formatConfigWarning, parseConfig } from '../agent/config';
import { openRuntime } from '../agent/runtime';
import { decodeVIF } from '../vif/ovo';
import { jsonLogger } from '../core/log';
import { UsageError, type Command } from './command';

const OPTIONS = {
  config: { type: 'string' },
  vif: { type: 'string' },
  'container-id': { type: 'string' },
  ifname: { type: 'string' },
  'pod-uid': { type: 'string' },
  'pod-namespace': { type: 'string' },
  'pod-name': { type: 'string' },
  transport: { type: 'string' },
} as const;

function parse(argv: string[], needVif: boolean) {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  for (const k of ['container-id', 'ifname'] as const) if (!values[k]) throw new UsageError(`--${k} is required`);
  if (needVif && !values.vif)
    throw new UsageError('--vif is required (a file holding an os-vif VIF primitive, or - for stdin)');
  const loaded = values.config ? loadConfig(values.config) : parseConfig('');
  for (const w of loaded.warnings) process.stderr.write(`vhostplug: warning: ${formatConfigWarning(w, loaded.file)}\n`);
  let vif;
  if (values.vif) {
    const text = values.vif === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(values.vif, 'utf8');
    let primitive: unknown;
    try {
      primitive = JSON.parse(text);
    } catch (err) {
      throw new UsageError(`--vif ${values.vif}: not JSON: ${(err as Error).message}`, 1);
    }
    vif = decodeVIF(primitive, 'vif');
  }
  const transport = values.transport === 'net' ? 'net' : 'native';
  return { values, config: loaded.config, vif, transport } as const;
}

export const plugCommand: Command = {
  name: 'plug',
  summary: 'plug an os-vif VIF (vhost-user) into OVS and hand its socket to a pod',
  usage: `
usage: vhostplug plug --config kuryr.conf --vif VIF.json --container-id ID --ifname IF
                      [--pod-uid UID] [--pod-namespace NS] [--pod-name NAME]

Plugs the VIF (an os-vif o.vo primitive, as in a KuryrPort's status.vifs[IF].vif; "-"
reads stdin) as the vhost-user driver does for a CNI ADD: the OVS port in one OVSDB
transaction acknowledged by ovs-vswitchd, the client-mode socket moved into
[vhostuser] mount_point, and <mount_point>/<ID>-<IF> written for the DPDK app.
Prints the attachment and per-phase timings as JSON. Repeating it is harmless.
`,
  async run(argv) {
    const { values, config, vif, transport } = parse(argv, true);
    if (!vif || vif.kind !== 'VIFVHostUser') {
      throw new UsageError(
        `--vif holds a ${vif?.kind}; vhostplug plug handles VIFVHostUser (veth VIFs go through the CNI daemon)`,
        1,
      );
    }
    const rt = await openRuntime(config, { transport, log: jsonLogger('warn') });
    try {
      const res = await rt.vhostuser.connect({
        vif,
        containerId: values['container-id']!,
        ifname: values.ifname!,
        podUid: values['pod-uid'],
        podNamespace: values['pod-namespace'],
        podName: values['pod-name'],
      });
      process.stdout.write(JSON.stringify(res, null, 2) + '\n');
      return 0;
    } finally {
      rt.close();
    }
  },
};

export const unplugCommand: Command = {
  name: 'unplug',
  summary: 'remove what plug created (port, socket, config file); idempotent',
  usage: `
usage: vhostplug unplug --config kuryr.conf --container-id ID --ifname IF [--vif VIF.json]

Removes the attachment's socket and config file from [vhostuser] mount_point and its OVS
port. Names come from OVSDB (vhostplug's ownership external_ids), never from the
pod-writable mount dir; --vif lets it clean up an attachment OVSDB no longer knows.
Anything already gone counts as removed; prints what was removed as JSON.
`,
  async run(argv) {
    const { values, config, vif, transport } = parse(argv, false);
    const rt = await openRuntime(config, { transport, log: jsonLogger('warn') });
    try {
      const res = await rt.vhostuser.disconnect({
        containerId: values['container-id']!,
        ifname: values.ifname!,
        vif: vif && vif.kind === 'VIFVHostUser' ? vif : undefined,
      });
      process.stdout.write(JSON.stringify(res, null, 2) + '\n');
      return 0;
    } finally {
      rt.close();
    }
  },
};
