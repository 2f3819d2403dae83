/*
 * pause: the infra ("sandbox") container of the test pods. The runtime holds the pod's
 * namespaces open with it; it sleeps until SIGTERM/SIGINT and reaps zombies (in a pod
 * that shares its PID namespace, it is PID 1). Built statically by scripts/build-image.sh
 * and packed as a one-layer OCI image, because no registry is reachable to pull
 * registry.k8s.io/pause.
 */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction term = {0}, child = {0};
  term.sa_handler = on_term;
  child.sa_handler = on_child;
  child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGTERM, &term, NULL);
  sigaction(SIGINT, &term, NULL);
  sigaction(SIGCHLD, &child, NULL);
  for (;;) pause();
}
