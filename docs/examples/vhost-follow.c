/*
 * vhost-follow: how a C/DPDK application finds its vhost-user socket from inside the pod
 * and learns that it must reconnect (docs/pod-side.md).
 *
 *   vhost-follow DIR IFNAME
 *
 * Reads DIR/interfaces.json (the pod's vhostplug directory, e.g. /var/run/vhostuser),
 * prints "<generation> <socket path>" for IFNAME as soon as it is listed, then watches DIR
 * with inotify and prints the line again each time the interface's generation changes
 * (client mode: ovs-vswitchd restarted and re-created the socket; reconnect to the path).
 * An application does the same inside its own event loop instead of printing.
 *
 * Build: cc -O2 -Wall -o vhost-follow vhost-follow.c -ljansson   (Debian: libjansson-dev)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_FILE "interfaces.json"
#define MAX_INDEX_BYTES (256 * 1024)

/* Reads the index; on success fills *generation and path (DIR/socket) and returns 1.
 * Returns 0 when the file or the interface is not there (yet), -1 on a malformed file. */
static int read_interface(const char *dir, const char *ifname, long long *generation, char *path, size_t path_len) {
  char file[PATH_MAX];
  snprintf(file, sizeof file, "%s/%s", dir, INDEX_FILE);
  /* O_NOFOLLOW: the directory is the pod's; never follow a symlink planted there. */
  int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  static char buf[MAX_INDEX_BYTES];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n < 0 || n == (ssize_t)sizeof buf) return -1;

  json_error_t err;
  json_t *root = json_loadb(buf, (size_t)n, 0, &err);
  if (!root) return -1;
  int found = 0;
  json_t *ifaces = json_object_get(root, "interfaces");
  if (json_integer_value(json_object_get(root, "version")) != 1 || !json_is_array(ifaces)) found = -1;
  size_t i;
  json_t *e;
  json_array_foreach(ifaces, i, e) {
    if (found != 0) break;
    const char *name = json_string_value(json_object_get(e, "ifname"));
    const char *sock = json_string_value(json_object_get(e, "socket"));
    json_t *gen = json_object_get(e, "generation");
    if (!name || strcmp(name, ifname) != 0) continue;
    /* "socket" is a file name in DIR: refuse anything that is not one. */
    if (!sock || !json_is_integer(gen) || strchr(sock, '/') || !strcmp(sock, ".") || !strcmp(sock, "..")) {
      found = -1;
      break;
    }
    *generation = json_integer_value(gen);
    snprintf(path, path_len, "%s/%s", dir, sock);
    found = 1;
  }
  json_decref(root);
  return found;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s DIR IFNAME\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1], *ifname = argv[2];
  /* Watch first, then read: a change between the two is never missed. The daemon replaces
   * the file with rename(2), so IN_MOVED_TO is the event that matters. */
  int in = inotify_init1(IN_CLOEXEC);
  if (in < 0 || inotify_add_watch(in, dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_ONLYDIR) < 0) {
    perror(dir);
    return 1;
  }
  long long last = -1;
  for (;;) {
    long long generation = -1;
    char path[PATH_MAX];
    int r = read_interface(dir, ifname, &generation, path, sizeof path);
    if (r < 0) fprintf(stderr, "%s/%s: malformed; waiting for the next version\n", dir, INDEX_FILE);
    if (r == 1 && generation != last) {
      /* A real app (re)connects its virtio-user port to `path` here. */
      printf("%lld %s\n", generation, path);
      fflush(stdout);
      last = generation;
    }
    char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    if (read(in, events, sizeof events) < 0 && errno != EINTR) {
      perror("inotify");
      return 1;
    }
  }
}
