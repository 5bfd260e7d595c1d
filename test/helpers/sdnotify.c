/*
 * sdnotify MESSAGE...: sends each MESSAGE as one datagram to $NOTIFY_SOCKET, as an app
 * that speaks sd_notify does (the pod-notify tests put it in an image, built static).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) { fprintf(stderr, "sdnotify: no NOTIFY_SOCKET\n"); return 2; }
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  for (int i = 1; i < argc; i++) {
    if (sendto(fd, argv[i], strlen(argv[i]), 0, (struct sockaddr *)&a, sizeof(a)) < 0) { perror("sdnotify"); return 1; }
  }
  return 0;
}
