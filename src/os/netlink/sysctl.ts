/** Per-netns sysctls (`net.*`), written from inside the netns they belong to. */
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { native } from '../../native';
import type { NetlinkHandle } from './socket';
import { invalidArg, NetlinkError } from './wire';

const { EBADF } = osConstants.errno;

/**
 * `sysctl -w net.<name>=<value>` in the handle's netns, e.g. setSysctl(pod, 'ipv6/conf/all/disable_ipv6',
 * '0') before adding IPv6 addresses to a pod whose runtime disabled IPv6 (Kuryr
 * does this). /proc/sys/net shows the netns of the thread that opens it, so for another
 * netns the write runs on a dedicated thread inside it; for our own netns it is a plain
 * write (our fs threads never leave the host netns).
 */
export async function setSysctl(h: NetlinkHandle, name: string, value: string): Promise<void> {
  // Dotted (ipv6.conf.all.disable_ipv6) or slashed names; interface names may contain dots
  // only in the slashed form.
  const rel = typeof name !== 'string' ? '' : name.includes('/') ? name : name.replace(/\./g, '/');
  if (!/^[A-Za-z0-9_./-]+$/.test(rel) || rel.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw invalidArg('name', name, "must be a sysctl under net., e.g. 'ipv6/conf/all/disable_ipv6'");
  }
  if (h.netnsFd < 0) {
    await fs.promises.writeFile(`/proc/sys/net/${rel}`, value);
    return;
  }
  if (h.isClosed) throw new NetlinkError(EBADF, 'sysctl', { netns: h.netns });
  await native().netnsWriteSysctl(h.netnsFd, h.netns ?? '', rel, value);
}
