/*
 * vhostplug-cni: the CNI plugin executable. A thin, Node-free shim in front of the
 * vhostplug node daemon: it forwards the CNI_* environment and stdin over a unix socket
 * and prints the daemon's answer, so a CNI call costs a connect, not a Node start-up.
 *
 * Wire protocol (the TS side is src/cni/shim-protocol.ts; keep the two in step):
 *   frame    = u32 big-endian length, then that many bytes of UTF-8 JSON
 *   request  = {"v":1,"env":{"CNI_...":"..."},"stdin":"..."}   (only CNI_* variables)
 *   response = {"exitCode":N,"stdout":"...","stderr":"..."}
 *
 * Daemon socket: $VHOSTPLUG_DAEMON_SOCKET, else the config's top-level "daemonSocket",
 * else /run/vhostplug/daemon.sock. Overall deadline: $VHOSTPLUG_SHIM_TIMEOUT seconds
 * (default 240, kubelet's sandbox bound), covering stdin, connect, send and receive.
 *
 * Failures answered locally, in the config's cniVersion when it can be read:
 *   - daemon unreachable (ENOENT, ECONNREFUSED, backlog full until the deadline), timeout,
 *     or the daemon closing before a complete answer -> CNI error 11 (try again later);
 *     except VERSION, answered locally with the input's cniVersion and the supported
 *     versions (same list as src/cni/spec.ts SUPPORTED_CNI_VERSIONS;
 *     test/integration/cni-shim.test.ts compares);
 *   - stdin over 1 MiB, or not one JSON object (any command but VERSION) -> error 6,
 *     before any daemon is contacted: a config that cannot be read names no daemon socket
 *     we could trust, and "try again" (11) would never help; CNI_COMMAND missing -> error 4;
 *   - other socket errors or a malformed answer -> error 5.
 *
 * No heap allocation: all buffers are static and bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

#define MAX_STDIN (1024 * 1024)
/* stdin escaped can grow 6x (\u00XX); env and envelope fit in the extra 64 KiB. */
#define MAX_REQUEST (6 * MAX_STDIN + 64 * 1024)
#define MAX_RESPONSE (4 * 1024 * 1024)
#define DEFAULT_SOCKET "/run/vhostplug/daemon.sock"
#define DEFAULT_TIMEOUT_S 240.0
#define CURRENT_VERSION "1.1.0"

static const char* const SUPPORTED_VERSIONS[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};

enum { ERR_ENV = 4, ERR_IO = 5, ERR_DECODE = 6, ERR_CONFIG = 7, ERR_TRY_AGAIN = 11 };

static char stdin_buf[MAX_STDIN + 1];
static size_t stdin_len;
static char request_buf[MAX_REQUEST];
static char response_buf[MAX_RESPONSE + 1];
static char cni_version[24] = CURRENT_VERSION; /* echoed in local errors */
static char conf_socket[sizeof(((struct sockaddr_un*)0)->sun_path) + 1];
static struct timespec deadline;

/* ------------------------------------------------------------------ output buffer */

struct buf {
  char* p;
  size_t len, cap;
  int overflow;
};

static void put(struct buf* b, const char* s, size_t n) {
  if (b->overflow || n > b->cap - b->len) {
    b->overflow = 1;
    return;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void puts_(struct buf* b, const char* s) { put(b, s, strlen(s)); }

/* Length of a valid UTF-8 sequence at s (n bytes left), or 0 if invalid. */
static size_t utf8_seq(const unsigned char* s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned min;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, min = 0x10000;
  else
    return 0;
  if (n < len) return 0;
  unsigned cp = c & (0x3f >> (len - 1));
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

/* Appends s as a JSON string literal; invalid UTF-8 becomes U+FFFD. */
static void put_json_string(struct buf* b, const char* s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char* u = (const unsigned char*)s;
  put(b, "\"", 1);
  size_t i = 0;
  while (i < n && !b->overflow) {
    size_t run = i; /* copy runs of plain characters in one go */
    while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\') run++;
    if (run > i) {
      put(b, s + i, run - i);
      i = run;
      continue;
    }
    unsigned c = u[i];
    if (c == '"')
      put(b, "\\\"", 2), i++;
    else if (c == '\\')
      put(b, "\\\\", 2), i++;
    else if (c == '\n')
      put(b, "\\n", 2), i++;
    else if (c == '\r')
      put(b, "\\r", 2), i++;
    else if (c == '\t')
      put(b, "\\t", 2), i++;
    else if (c < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      put(b, e, 6);
      i++;
    } else {
      size_t len = utf8_seq(u + i, n - i);
      if (len == 0)
        put(b, "\\ufffd", 6), i++;
      else
        put(b, s + i, len), i += len;
    }
  }
  put(b, "\"", 1);
}

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Prints a CNI error JSON on stdout and returns the exit status 1. */
static int cni_error(int code, const char* msg, const char* details) {
  static char out[8192];
  struct buf b = {out, 0, sizeof out - 1, 0};
  char num[16];
  puts_(&b, "{\"cniVersion\":");
  put_json_string(&b, cni_version, strlen(cni_version));
  snprintf(num, sizeof num, "%d", code);
  puts_(&b, ",\"code\":");
  puts_(&b, num);
  puts_(&b, ",\"msg\":");
  put_json_string(&b, msg, strlen(msg));
  if (details && *details) {
    puts_(&b, ",\"details\":");
    put_json_string(&b, details, strlen(details) > 4096 ? 4096 : strlen(details));
  }
  puts_(&b, "}");
  write_all(STDOUT_FILENO, out, b.len);
  return 1;
}

/* "MAJOR.MINOR.PATCH", each a decimal without leading zeros (as src/cni/spec.ts parses). */
static int is_semver(const char* v) {
  for (int part = 0; part < 3; part++) {
    const char* start = v;
    while (*v >= '0' && *v <= '9') v++;
    if (v == start || v - start > 6 || (*start == '0' && v - start > 1)) return 0;
    if (part < 2 && *v++ != '.') return 0;
  }
  return *v == '\0';
}

/* SPEC "Version": cniVersion is the one given on input (the current one if none parses). */
static int version_reply(void) {
  static char out[256];
  struct buf b = {out, 0, sizeof out, 0};
  puts_(&b, "{\"cniVersion\":");
  const char* v = is_semver(cni_version) ? cni_version : CURRENT_VERSION;
  put_json_string(&b, v, strlen(v));
  puts_(&b, ",\"supportedVersions\":[");
  for (size_t i = 0; i < sizeof SUPPORTED_VERSIONS / sizeof *SUPPORTED_VERSIONS; i++) {
    if (i) puts_(&b, ",");
    put_json_string(&b, SUPPORTED_VERSIONS[i], strlen(SUPPORTED_VERSIONS[i]));
  }
  puts_(&b, "]}");
  return write_all(STDOUT_FILENO, out, b.len) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ minimal JSON reader */
/* Enough to read top-level string/integer members and skip everything else. */

struct jr {
  char *p, *end;
};

static void ws(struct jr* j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int read_hex4(struct jr* j, unsigned* out) {
  if (j->end - j->p < 4) return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(j->p[i]);
    if (h < 0) return -1;
    v = (v << 4) | (unsigned)h;
  }
  j->p += 4;
  *out = v;
  return 0;
}

static size_t put_utf8(char* o, unsigned cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/*
 * Reads a string at j->p (which must be '"'), decoding escapes into out (cap bytes,
 * NUL-terminated when room). out may alias the input: the decoded form is never longer.
 * With out == NULL the string is only skipped. Returns the decoded length, -1 on error,
 * -2 if it did not fit.
 */
static long read_string(struct jr* j, char* out, size_t cap) {
  if (j->p >= j->end || *j->p != '"') return -1;
  j->p++;
  size_t n = 0;
  int fits = 1;
  char tmp[4];
  while (j->p < j->end) {
    unsigned char c = (unsigned char)*j->p++;
    const char* src = (const char*)&c;
    size_t len = 1;
    if (c == '"') {
      if (out && n < cap) out[n] = '\0';
      return fits ? (long)n : -2;
    }
    if (c < 0x20) return -1;
    if (c == '\\') {
      if (j->p >= j->end) return -1;
      char e = *j->p++;
      src = tmp;
      switch (e) {
        case '"':
          tmp[0] = '"';
          break;
        case '\\':
          tmp[0] = '\\';
          break;
        case '/':
          tmp[0] = '/';
          break;
        case 'b':
          tmp[0] = '\b';
          break;
        case 'f':
          tmp[0] = '\f';
          break;
        case 'n':
          tmp[0] = '\n';
          break;
        case 'r':
          tmp[0] = '\r';
          break;
        case 't':
          tmp[0] = '\t';
          break;
        case 'u': {
          unsigned cp;
          if (read_hex4(j, &cp) < 0) return -1;
          if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned lo;
            struct jr save = *j;
            if (j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u' && (j->p += 2, read_hex4(j, &lo) == 0) &&
                lo >= 0xdc00 && lo <= 0xdfff) {
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else {
              *j = save;
              cp = 0xfffd; /* lone surrogate */
            }
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            cp = 0xfffd;
          }
          len = put_utf8(tmp, cp);
          break;
        }
        default:
          return -1;
      }
    }
    if (out) {
      if (n + len < cap)
        memmove(out + n, src, len);
      else
        fits = 0;
    }
    n += len;
  }
  return -1;
}

/* Skips one value of any type. */
static int skip_value(struct jr* j) {
  ws(j);
  if (j->p >= j->end) return -1;
  if (*j->p == '"') return read_string(j, NULL, 0) < 0 ? -1 : 0;
  if (*j->p == '{' || *j->p == '[') {
    long depth = 0;
    while (j->p < j->end) {
      char c = *j->p;
      if (c == '"') {
        if (read_string(j, NULL, 0) < 0) return -1;
        continue;
      }
      j->p++;
      if (c == '{' || c == '[')
        depth++;
      else if (c == '}' || c == ']') {
        if (--depth == 0) return 0;
      }
    }
    return -1;
  }
  char* start = j->p;
  while (j->p < j->end && *j->p && strchr("+-.0123456789eEtruefalsn", *j->p)) j->p++;
  return j->p > start ? 0 : -1;
}

typedef int (*member_fn)(const char* key, struct jr* j, void* ctx);

/*
 * Walks a top-level object; for each member calls fn with j->p at the value. fn either
 * consumes the value (returns 1) or leaves it to be skipped (returns 0); < 0 aborts.
 */
static int walk_object(char* p, size_t n, member_fn fn, void* ctx) {
  struct jr j = {p, p + n};
  ws(&j);
  if (j.p >= j.end || *j.p++ != '{') return -1;
  ws(&j);
  if (j.p < j.end && *j.p == '}') return j.p++, ws(&j), j.p == j.end ? 0 : -1;
  for (;;) {
    char key[64];
    ws(&j);
    long klen = read_string(&j, key, sizeof key);
    if (klen == -1) return -1;
    /* A long key, or one with an escaped NUL, is none of ours (no accidental prefix match). */
    if (klen == -2 || strlen(key) != (size_t)klen) key[0] = '\0';
    ws(&j);
    if (j.p >= j.end || *j.p++ != ':') return -1;
    ws(&j);
    int r = fn(key, &j, ctx);
    if (r < 0) return -1;
    if (r == 0 && skip_value(&j) < 0) return -1;
    ws(&j);
    if (j.p >= j.end) return -1;
    char c = *j.p++;
    if (c == '}') return ws(&j), j.p == j.end ? 0 : -1; /* nothing may follow the object */
    if (c != ',') return -1;
  }
}

/* Copies a string member into dst (cap) if it fits, else leaves dst untouched. */
static int take_string(struct jr* j, char* dst, size_t cap) {
  char tmp[256];
  if (j->p >= j->end || *j->p != '"') return 0;
  long n = read_string(j, tmp, sizeof tmp);
  if (n == -1) return -1;
  if (n >= 0 && (size_t)n < cap && strlen(tmp) == (size_t)n) memcpy(dst, tmp, (size_t)n + 1);
  return 1;
}

/* Top-level "cniVersion" and "daemonSocket" of the config (last occurrence wins, as JSON.parse). */
static int peek_conf_member(const char* key, struct jr* j, void* ctx) {
  (void)ctx;
  if (strcmp(key, "cniVersion") == 0) {
    char v[sizeof cni_version] = "";
    int r = take_string(j, v, sizeof v);
    /* Echo it only if it looks like a version: it goes into our own error JSON. */
    if (r == 1 && v[0] && strspn(v, "0123456789.") == strlen(v)) memcpy(cni_version, v, sizeof v);
    return r;
  }
  if (strcmp(key, "daemonSocket") == 0) return take_string(j, conf_socket, sizeof conf_socket);
  return 0;
}

struct response {
  long exit_code;
  char *out, *err;
  size_t out_len, err_len;
  int have_exit, have_out;
};

static int response_member(const char* key, struct jr* j, void* ctx) {
  struct response* r = ctx;
  int is_out = strcmp(key, "stdout") == 0, is_err = strcmp(key, "stderr") == 0;
  if (strcmp(key, "exitCode") == 0) {
    /* JSON integer syntax only (no leading zeros, sign, fraction or exponent), 0..255. */
    char* q = j->p;
    long v = 0;
    if (q < j->end && *q == '0')
      q++;
    else
      while (q < j->end && *q >= '0' && *q <= '9' && v <= 255) v = v * 10 + (*q++ - '0');
    if (q == j->p || v > 255 || (q < j->end && strchr(".eE0123456789", *q) && *q)) return -1;
    j->p = q;
    r->exit_code = v;
    r->have_exit = 1;
    return 1;
  }
  if (is_out || is_err) {
    char* start = j->p + 1; /* decode in place, just after the opening quote */
    long n = read_string(j, start, (size_t)(j->end - start));
    if (n < 0) return -1;
    if (is_out)
      r->out = start, r->out_len = (size_t)n, r->have_out = 1;
    else
      r->err = start, r->err_len = (size_t)n;
    return 1;
  }
  return 0;
}

/* ------------------------------------------------------------------ time and I/O */

static long remaining_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  long ms = (long)(deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1000000;
  return ms < 0 ? 0 : ms;
}

/* Waits for events on fd until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events) {
  for (;;) {
    long ms = remaining_ms();
    if (ms == 0) return 0;
    struct pollfd pfd = {fd, events, 0};
    int r = poll(&pfd, 1, ms > 60000 ? 60000 : (int)ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r > 0) return 1;
  }
}

/* Reads stdin to EOF: 0 ok, -1 read error, -2 too large, -3 timed out. */
static int read_stdin(void) {
  for (;;) {
    int w = wait_fd(STDIN_FILENO, POLLIN);
    if (w == 0) return -3;
    if (w < 0) return errno == EBADF ? 0 : -1;
    ssize_t r = read(STDIN_FILENO, stdin_buf + stdin_len, sizeof stdin_buf - stdin_len);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return errno == EBADF ? 0 : -1;
    }
    if (r == 0) return 0;
    stdin_len += (size_t)r;
    if (stdin_len > MAX_STDIN) return -2;
  }
}

enum conn_result { CONN_OK, CONN_UNREACHABLE, CONN_FAILED };

/*
 * Connects with a blocking connect(2) bounded by SO_SNDTIMEO: when the daemon's listen
 * backlog is full, the kernel queues us until it accepts (or the deadline passes). A
 * non-blocking connect would fail with EAGAIN at once, and hundreds of shims retrying
 * that in a loop (a burst of pod starts) starve the daemon of the CPU it needs to drain
 * the backlog. The socket is non-blocking from then on (every later wait is a poll).
 */
static enum conn_result connect_daemon(const char* path, int* out_fd, int* err) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, strlen(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return *err = errno, CONN_FAILED;
  long ms = remaining_ms();
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  if (ms == 0) tv.tv_usec = 1000; /* 0 would mean "wait forever" */
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
    *err = errno;
    close(fd);
    return CONN_FAILED;
  }
  int r;
  do r = connect(fd, (struct sockaddr*)&sa, sizeof sa);
  while (r < 0 && errno == EINTR && remaining_ms() > 0);
  int e = r < 0 ? errno : 0;
  if (r < 0 && (e == EINPROGRESS || e == EAGAIN)) e = remaining_ms() > 0 ? EAGAIN : ETIMEDOUT;
  if (r == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0) return *out_fd = fd, CONN_OK;
  if (r == 0) e = errno;
  close(fd);
  *err = e;
  return (e == ENOENT || e == ECONNREFUSED || e == EAGAIN || e == ETIMEDOUT) ? CONN_UNREACHABLE : CONN_FAILED;
}

static int send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        int r = wait_fd(fd, POLLOUT);
        if (r == 0) return errno = ETIMEDOUT, -1;
        if (r < 0) return -1;
        continue;
      }
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Receives exactly n bytes: 0 ok, -1 error (errno; ETIMEDOUT, ECONNRESET for early EOF). */
static int recv_exact(int fd, char* p, size_t n) {
  while (n > 0) {
    int r = wait_fd(fd, POLLIN);
    if (r == 0) return errno = ETIMEDOUT, -1;
    if (r < 0) return -1;
    ssize_t got = recv(fd, p, n, 0);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return -1;
    }
    if (got == 0) return errno = ECONNRESET, -1;
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

/* ------------------------------------------------------------------ main */

static int build_request(struct buf* b) {
  put(b, "\0\0\0\0", 4); /* length, patched below */
  puts_(b, "{\"v\":1,\"env\":{");
  int first = 1;
  for (char** e = environ; *e; e++) {
    if (strncmp(*e, "CNI_", 4) != 0) continue;
    const char* eq = strchr(*e, '=');
    if (!eq) continue;
    if (!first) puts_(b, ",");
    first = 0;
    put_json_string(b, *e, (size_t)(eq - *e));
    puts_(b, ":");
    put_json_string(b, eq + 1, strlen(eq + 1));
  }
  puts_(b, "},\"stdin\":");
  put_json_string(b, stdin_buf, stdin_len);
  puts_(b, "}");
  if (b->overflow) return -1;
  uint32_t len = (uint32_t)(b->len - 4);
  b->p[0] = (char)(len >> 24), b->p[1] = (char)(len >> 16), b->p[2] = (char)(len >> 8), b->p[3] = (char)len;
  return 0;
}

static int usage(void) {
  static const char text[] =
      "vhostplug-cni: the vhostplug CNI plugin (a shim in front of the vhostplug daemon).\n"
      "Run by a container runtime with CNI_COMMAND (ADD, DEL, CHECK, GC, STATUS, VERSION), the other\n"
      "CNI_* variables and the network configuration on stdin.\n"
      "  VHOSTPLUG_DAEMON_SOCKET  daemon socket (else the config's \"daemonSocket\", else " DEFAULT_SOCKET
      ")\n"
      "  VHOSTPLUG_SHIM_TIMEOUT   overall timeout in seconds (default 240)\n"
      "CNI protocol versions supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0\n";
  return write_all(STDOUT_FILENO, text, sizeof text - 1) == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--version") == 0)) {
    return usage();
  }

  double timeout_s = DEFAULT_TIMEOUT_S;
  const char* t = getenv("VHOSTPLUG_SHIM_TIMEOUT");
  if (t && *t) {
    char* end;
    timeout_s = strtod(t, &end);
    if (*end || !(timeout_s > 0 && timeout_s <= 86400)) {
      return cni_error(ERR_ENV, "invalid VHOSTPLUG_SHIM_TIMEOUT", "expected a number of seconds in (0, 86400]");
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += (time_t)timeout_s;
  deadline.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
  if (deadline.tv_nsec >= 1000000000L) deadline.tv_sec++, deadline.tv_nsec -= 1000000000L;

  int rs = read_stdin();
  int read_errno = errno;
  /* Best effort, also on a truncated oversize config: members before the cut are seen. */
  int well_formed = walk_object(stdin_buf, stdin_len, peek_conf_member, NULL) == 0;
  if (rs == -2) {
    char d[96];
    snprintf(d, sizeof d, "more than %d bytes on stdin", MAX_STDIN);
    return cni_error(ERR_DECODE, "network configuration too large", d);
  }
  if (rs == -3) return cni_error(ERR_TRY_AGAIN, "timed out reading the network configuration from stdin", NULL);
  if (rs < 0) return cni_error(ERR_IO, "error reading stdin", strerror(read_errno));

  const char* command = getenv("CNI_COMMAND");
  if (!command || !*command) return cni_error(ERR_ENV, "required env variables [CNI_COMMAND] missing", NULL);
  int is_version = strcmp(command, "VERSION") == 0;
  if (!well_formed && !is_version) {
    return cni_error(ERR_DECODE, "error decoding network configuration", "stdin is not a JSON object");
  }

  const char* sock_path = getenv("VHOSTPLUG_DAEMON_SOCKET");
  int from_env = sock_path && *sock_path;
  if (!from_env) sock_path = conf_socket[0] ? conf_socket : DEFAULT_SOCKET;
  if (strlen(sock_path) >= sizeof(((struct sockaddr_un*)0)->sun_path)) {
    return cni_error(from_env ? ERR_ENV : ERR_CONFIG, "daemon socket path too long", sock_path);
  }

  struct buf req = {request_buf, 0, sizeof request_buf, 0};
  if (build_request(&req) < 0) return cni_error(ERR_DECODE, "request too large", NULL);

  char details[512];
  int fd, err = 0;
  enum conn_result cr = connect_daemon(sock_path, &fd, &err);
  if (cr != CONN_OK) {
    if (is_version) return version_reply();
    snprintf(details, sizeof details, "cannot reach the vhostplug daemon at %s: %s", sock_path, strerror(err));
    return cni_error(cr == CONN_UNREACHABLE ? ERR_TRY_AGAIN : ERR_IO, "vhostplug daemon unavailable", details);
  }

  uint8_t hdr[4];
  if (send_all(fd, req.p, req.len) < 0 || recv_exact(fd, (char*)hdr, 4) < 0) {
    int e = errno;
    close(fd);
    if (is_version) return version_reply();
    snprintf(details, sizeof details, "vhostplug daemon at %s: %s", sock_path, strerror(e));
    int transient = e == ETIMEDOUT || e == ECONNRESET || e == EPIPE;
    return cni_error(transient ? ERR_TRY_AGAIN : ERR_IO,
                     transient ? "vhostplug daemon did not answer" : "vhostplug daemon I/O error", details);
  }
  uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
  if (len > MAX_RESPONSE) {
    close(fd);
    snprintf(details, sizeof details, "response of %u bytes exceeds %d", len, MAX_RESPONSE);
    return cni_error(ERR_IO, "malformed answer from the vhostplug daemon", details);
  }
  if (recv_exact(fd, response_buf, len) < 0) {
    int e = errno;
    close(fd);
    snprintf(details, sizeof details, "vhostplug daemon at %s: %s", sock_path, strerror(e));
    return cni_error(ERR_TRY_AGAIN, "vhostplug daemon did not answer", details);
  }
  close(fd);

  struct response r = {0, NULL, NULL, 0, 0, 0, 0};
  if (walk_object(response_buf, len, response_member, &r) < 0 || !r.have_exit || !r.have_out) {
    return cni_error(ERR_IO, "malformed answer from the vhostplug daemon", "expected {exitCode, stdout}");
  }
  if (r.err_len) write_all(STDERR_FILENO, r.err, r.err_len);
  if (write_all(STDOUT_FILENO, r.out, r.out_len) < 0) return 1;
  return (int)r.exit_code;
}
