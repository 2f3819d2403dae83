/**
 * The test images, built by scripts/build-image.sh (no registry: a Debian rootfs from the
 * archive + umoci; cached in .cache/images by their inputs) and imported into a node's
 * containerd with `ctr images import`.
 */
import * as path from 'node:path';
import { run } from '../proc';
import { PAUSE_IMAGE, type TestNode } from './node';

export type ImageName = 'vhostplug' | 'pause' | 'testpmd';

export interface BuiltImage {
  image: ImageName;
  /** OCI layout tar. */
  archive: string;
  /** The archive's tag (a hash of its inputs). */
  tag: string;
  /** Build time in this run (0.x when cached). */
  seconds: number;
}

export const BUILD_IMAGE_SCRIPT = path.resolve(__dirname, '../../../scripts/build-image.sh');
/** Where the test images are imported (the archive's tag is appended). */
export const IMAGE_BASE = 'localhost/vhostplug-test';

const built = new Map<ImageName, BuiltImage>();

/** Builds (or finds in the cache) the images; minutes the first time on a fresh machine. */
export function buildImages(names: ImageName[]): BuiltImage[] {
  const missing = names.filter((n) => !built.has(n));
  if (missing.length) {
    const out = run('bash', [BUILD_IMAGE_SCRIPT, '--json', ...missing], { timeout: 30 * 60_000 });
    for (const line of out.split('\n').filter((l) => l.startsWith('{'))) {
      const b = JSON.parse(line) as BuiltImage;
      built.set(b.image, b);
    }
  }
  return names.map((n) => {
    const b = built.get(n);
    if (!b) throw new Error(`build-image.sh did not report image ${n}`);
    return b;
  });
}

/**
 * Imports images into the node's containerd; returns their references. The pause image is
 * always imported and tagged as the node's sandbox image.
 */
export function importImages(node: TestNode, names: ImageName[]): Record<ImageName, string> {
  const all = [...new Set<ImageName>(['pause', ...names])];
  const refs = {} as Record<ImageName, string>;
  for (const b of buildImages(all)) {
    refs[b.image] = node.importImage(b.archive, `${IMAGE_BASE}/${b.image}`, b.tag);
  }
  node.tagImage(refs.pause, PAUSE_IMAGE);
  return refs;
}
