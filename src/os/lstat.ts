/** lstat(2) without following a final symlink: the only way vhostplug looks at a path it may not trust. */
import * as fs from 'node:fs';
import { hasCode } from '../core/errors';

/** The entry's stats, or undefined when it does not exist (ENOENT); other errors are thrown. */
export function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** True when a unix socket is at `p` (not followed); any error (missing, unreadable) is false. */
export function isSocketAt(p: string): boolean {
  try {
    return fs.lstatSync(p).isSocket();
  } catch {
    return false;
  }
}

/** True when something (anything, a dangling symlink too) is at `p`; an unreadable parent counts as "something". */
export function existsNoFollow(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch (e) {
    return !hasCode(e, 'ENOENT');
  }
}
