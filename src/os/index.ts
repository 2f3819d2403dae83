/** Filesystem primitives of the vhost-user binding: socket moves, inotify, atomic files, mounts. */
export * from './rename';
export * from './inotify';
export * from './mounts';
export * from './atomic-file';
export * from './ownership';
export * from './unix-listener';
