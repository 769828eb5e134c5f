// LD_PRELOAD shim for the echo server (make bench-many): appends the CLOCK_MONOTONIC time, in
// nanoseconds (8 bytes, native order), of every connection the process accepts to the file
// named by ACCEPT_LOG. So the benchmark sees connection attempts as the server does, with no
// proxy in the path (a proxy would need two descriptors per connection and, in Python, cannot
// accept a burst of 10,000 connections without queueing them).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -2;

static void record(int accepted) {
  if (accepted < 0) return;
  if (log_fd == -2) {
    const char *path = getenv("ACCEPT_LOG");
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    // Two threads may both open it the first time: keep one, close the other.
    if (!__sync_bool_compare_and_swap(&log_fd, -2, fd) && fd >= 0) close(fd);
  }
  if (log_fd < 0) return;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
  // O_APPEND: each 8-byte write lands whole, whichever thread accepted.
  (void)!write(log_fd, &ns, sizeof ns);
}

int accept(int fd, struct sockaddr *address, socklen_t *length) {
  static int (*real)(int, struct sockaddr *, socklen_t *);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
  int accepted = real(fd, address, length);
  record(accepted);
  return accepted;
}

int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
  static int (*real)(int, struct sockaddr *, socklen_t *, int);
  if (!real) {
    real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
  }
  int accepted = real(fd, address, length, flags);
  record(accepted);
  return accepted;
}
