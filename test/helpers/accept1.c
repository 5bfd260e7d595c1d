/*
 * accept1: accepts one connection on fd 3 (a socket-activation fd) and writes a line to it,
 * as a socket-activated server does (the socket-activation tests put it in an image, static).
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
  int c = accept(3, NULL, NULL);
  if (c < 0) { perror("accept1: accept on fd 3"); return 1; }
  const char *msg = "hello from the pod\n";
  if (write(c, msg, strlen(msg)) < 0) { perror("accept1: write"); return 1; }
  close(c);
  return 0;
}
