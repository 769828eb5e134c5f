// c-ares (libc-ares-dev): DNS resolution driven by the reactor's own watchers and timers.
#include <ares.h>
#include <netdb.h>
#include <arpa/inet.h>
