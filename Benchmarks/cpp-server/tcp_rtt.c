// The floor of the channel benchmark (Benchmarks/README.md): a 32-byte ping-pong over
// 127.0.0.1 TCP with TCP_NODELAY between two processes, the echoing one pinned like the gRPC
// server and the pinging one like the clients. Prints one JSON line:
//   {"client":"tcp-rtt","round_trips":N,"p50_us":..,"p99_us":..,"mean_us":..}
// Usage: tcp_rtt [--round-trips N] [--warmup W] [--client-cpu C] [--server-cpu S]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMessageBytes = 32 };

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void pin_to_cpu(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

static void set_nodelay(int fd) {
  int on = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0) die("TCP_NODELAY");
}

// Reads exactly kMessageBytes; returns 0 at end of stream.
static int read_message(int fd, char* buffer) {
  size_t got = 0;
  while (got < kMessageBytes) {
    ssize_t n = read(fd, buffer + got, kMessageBytes - got);
    if (n == 0) return 0;
    if (n < 0) die("read");
    got += (size_t)n;
  }
  return 1;
}

static void write_message(int fd, const char* buffer) {
  size_t sent = 0;
  while (sent < kMessageBytes) {
    ssize_t n = write(fd, buffer + sent, kMessageBytes - sent);
    if (n < 0) die("write");
    sent += (size_t)n;
  }
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int compare_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return (x > y) - (x < y);
}

// Nearest rank, as the Swift clients and the runner compute it.
static double percentile_us(const uint64_t* sorted, long count, double fraction) {
  long rank = (long)ceil(fraction * (double)count);
  if (rank < 1) rank = 1;
  return (double)sorted[rank - 1] / 1e3;
}

int main(int argc, char** argv) {
  long round_trips = 20000, warmup = 2000;
  int client_cpu = -1, server_cpu = -1;
  static const struct option options[] = {
      {"round-trips", required_argument, 0, 'n'}, {"warmup", required_argument, 0, 'w'},
      {"client-cpu", required_argument, 0, 'c'},  {"server-cpu", required_argument, 0, 's'},
      {0, 0, 0, 0}};
  for (int opt; (opt = getopt_long(argc, argv, "", options, NULL)) != -1;) {
    switch (opt) {
      case 'n': round_trips = atol(optarg); break;
      case 'w': warmup = atol(optarg); break;
      case 'c': client_cpu = atoi(optarg); break;
      case 's': server_cpu = atoi(optarg); break;
      default:
        fprintf(stderr, "usage: %s [--round-trips N] [--warmup W] [--client-cpu C] [--server-cpu S]\n",
                argv[0]);
        return 2;
    }
  }
  if (round_trips < 1 || warmup < 0) {
    fprintf(stderr, "tcp_rtt: --round-trips must be >= 1 and --warmup >= 0\n");
    return 2;
  }

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) die("socket");
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0) die("bind");
  if (listen(listener, 1) != 0) die("listen");
  socklen_t length = sizeof address;
  if (getsockname(listener, (struct sockaddr*)&address, &length) != 0) die("getsockname");

  pid_t echoer = fork();
  if (echoer < 0) die("fork");
  if (echoer == 0) {  // The echoing side: answers until the pinger closes.
    pin_to_cpu(server_cpu);
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) die("accept");
    set_nodelay(fd);
    char buffer[kMessageBytes];
    while (read_message(fd, buffer)) write_message(fd, buffer);
    _exit(0);
  }
  close(listener);
  pin_to_cpu(client_cpu);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr*)&address, sizeof address) != 0) die("connect");
  set_nodelay(fd);

  char ping[kMessageBytes], pong[kMessageBytes];
  memset(ping, 0x5A, sizeof ping);
  uint64_t* latencies = malloc(sizeof(uint64_t) * (size_t)round_trips);
  if (!latencies) die("malloc");
  for (long i = 0; i < warmup + round_trips; i++) {
    uint64_t started = now_ns();
    write_message(fd, ping);
    if (!read_message(fd, pong)) {
      fprintf(stderr, "tcp_rtt: the echoing process closed early\n");
      return 1;
    }
    if (i >= warmup) latencies[i - warmup] = now_ns() - started;
  }
  close(fd);
  waitpid(echoer, NULL, 0);

  double total_ns = 0;
  for (long i = 0; i < round_trips; i++) total_ns += (double)latencies[i];
  qsort(latencies, (size_t)round_trips, sizeof latencies[0], compare_u64);
  printf("{\"client\":\"tcp-rtt\",\"round_trips\":%ld,\"p50_us\":%.2f,\"p99_us\":%.2f,"
         "\"mean_us\":%.2f}\n",
         round_trips, percentile_us(latencies, round_trips, 0.50),
         percentile_us(latencies, round_trips, 0.99), total_ns / (double)round_trips / 1e3);
  free(latencies);
  return 0;
}
