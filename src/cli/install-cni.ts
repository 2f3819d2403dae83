/**
 * `vhostplug install-cni`: what a DaemonSet init container does on each node: copy the
 * `vhostplug-cni` shim into the runtime's CNI bin dir and write a conflist into its conf
 * dir. Both are replaced atomically (temp file in the same directory, fsync, rename), so a
 * runtime exec'ing the plugin or reading the directory mid-install sees the old file or
 * the new one, never a torn one (cp over a running binary can fail with ETXTBSY or tear).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { cniShimPath } from '../native';
import { writeFileAtomic } from '../os/atomic-file';
import { NETCONF_MODES } from '../cni/netconf';
import { SUPPORTED_CNI_VERSIONS } from '../cni/spec';

/** The conflist's cniVersion for runtimes whose libcni predates cniVersions (< 1.2). */
export const CONFLIST_CNI_VERSION = '1.0.0';
import { UsageError, type Command } from './command';

const OPTIONS = {
  'bin-dir': { type: 'string' },
  'conf-dir': { type: 'string' },
  name: { type: 'string' },
  mode: { type: 'string' },
  bridge: { type: 'string' },
  mtu: { type: 'string' },
  subnet: { type: 'string' },
  'daemon-socket': { type: 'string' },
  'conf-file': { type: 'string' },
  shim: { type: 'string' },
  'no-conflist': { type: 'boolean' },
} as const;

/** The conflist install-cni writes (one vhostplug plugin, host-local IPAM when a subnet is given). */
export function buildConflist(o: {
  name: string;
  mode: string;
  bridge: string;
  mtu?: number;
  subnet?: string;
  daemonSocket?: string;
}): Record<string, unknown> {
  const plugin: Record<string, unknown> = { type: 'vhostplug', mode: o.mode, bridge: o.bridge };
  if (o.mtu !== undefined) plugin.mtu = o.mtu;
  if (o.daemonSocket) plugin.daemonSocket = o.daemonSocket;
  if (o.mode !== 'veth') plugin.capabilities = { CNIDeviceInfoFile: true };
  if (o.subnet) plugin.ipam = { type: 'host-local', ranges: [[{ subnet: o.subnet }]], routes: [] };
  // libcni >= 1.2 picks the highest of cniVersions (1.1.0); older ones (containerd 1.6's)
  // ignore cniVersions and would refuse a 1.1.0 result, so cniVersion stays 1.0.0.
  return {
    cniVersion: CONFLIST_CNI_VERSION,
    cniVersions: [...SUPPORTED_CNI_VERSIONS],
    name: o.name,
    plugins: [plugin],
  };
}

export const installCniCommand: Command = {
  name: 'install-cni',
  summary: 'install the vhostplug-cni shim and a conflist on this node (DaemonSet init container)',
  usage: `
usage: vhostplug install-cni --bin-dir DIR --conf-dir DIR [--name NAME] [--mode client|server|veth]
                             [--bridge BR] [--mtu N] [--subnet CIDR] [--daemon-socket PATH]
                             [--conf-file NAME] [--shim PATH] [--no-conflist]

Copies the vhostplug-cni shim (default: build/Release/vhostplug-cni of this package) to
DIR/vhostplug (the name the CNI "type" selects) and writes DIR/<conf-file> (default
10-<name>.conflist) with one vhostplug plugin; --subnet adds host-local IPAM. Both are
replaced atomically. --no-conflist installs the binary only (under Multus the networks
come from NetworkAttachmentDefinitions instead). Defaults: --name vhostplug,
--mode client, --bridge br-int.
`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const binDir = values['bin-dir'];
    const confDir = values['conf-dir'];
    if (!binDir) throw new UsageError('--bin-dir is required');
    if (!confDir && !values['no-conflist']) throw new UsageError('--conf-dir is required (or --no-conflist)');
    const name = values.name ?? 'vhostplug';
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name))
      throw new UsageError(`--name "${name}" is not a valid network name`);
    const mode = values.mode ?? 'client';
    if (!(NETCONF_MODES as readonly string[]).includes(mode))
      throw new UsageError(`--mode must be one of ${NETCONF_MODES.join(', ')}`);
    let mtu: number | undefined;
    if (values.mtu !== undefined) {
      mtu = Number(values.mtu);
      if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)
        throw new UsageError('--mtu must be an integer in [68, 65535]');
    }
    const confFile = values['conf-file'] ?? `10-${name}.conflist`;
    if (confFile.includes('/') || confFile.startsWith('.'))
      throw new UsageError('--conf-file must be a plain file name');

    const shim = values.shim ?? cniShimPath();
    const bin = await fs.promises.readFile(shim).catch((e: Error) => {
      throw new UsageError(`cannot read the shim ${shim}: ${e.message} (build it with npm run build:native)`, 1);
    });
    await fs.promises.mkdir(binDir, { recursive: true, mode: 0o755 });
    const binTarget = path.join(binDir, 'vhostplug');
    await writeFileAtomic(binTarget, bin, { mode: 0o755 });
    const out: Record<string, string> = { binary: binTarget };
    if (!values['no-conflist']) {
      await fs.promises.mkdir(confDir!, { recursive: true, mode: 0o755 });
      const conflist = buildConflist({
        name,
        mode,
        bridge: values.bridge ?? 'br-int',
        mtu,
        subnet: values.subnet,
        daemonSocket: values['daemon-socket'],
      });
      const confTarget = path.join(confDir!, confFile);
      await writeFileAtomic(confTarget, JSON.stringify(conflist, null, 2) + '\n', { mode: 0o644 });
      out.conflist = confTarget;
    }
    process.stdout.write(JSON.stringify(out) + '\n');
    return 0;
  },
};
