// C shims over libev for Swift.
//
// libev's `ev_*_init`, `ev_*_set` and `ev_is_active` are macros, which Swift cannot call.
// Each gets a `static inline` wrapper here with the same meaning. Nothing else lives in
// this target: every libev call of the library is made from `Sources/MilvexReactor/EventLoop`.
//
// The module is also the package's `CLibEV` product: a host that owns its libev loop imports it
// for libev's API and these shims (its own watchers, `ev_run`), and hands its `struct ev_loop *`
// to `EventLoop(embeddingIn:)` (Examples/SearchService does, as an application would).
#ifndef CLIBEV_H
#define CLIBEV_H

// The ev_loop() compatibility function of libev 3 would clash with `struct ev_loop`.
#define EV_COMPAT3 0
// Debian, Ubuntu and Homebrew install <ev.h>; Fedora and others <libev/ev.h>.
#if __has_include(<ev.h>)
#include <ev.h>
#elif __has_include(<libev/ev.h>)
#include <libev/ev.h>
#else
#error "MilvexReactor needs libev's headers: apt-get install libev-dev (Debian, Ubuntu), dnf install libev-devel (Fedora), brew install libev (macOS)"
#endif

typedef void (*clibev_io_cb)(struct ev_loop *loop, ev_io *w, int revents);
typedef void (*clibev_timer_cb)(struct ev_loop *loop, ev_timer *w, int revents);
typedef void (*clibev_async_cb)(struct ev_loop *loop, ev_async *w, int revents);
typedef void (*clibev_prepare_cb)(struct ev_loop *loop, ev_prepare *w, int revents);
typedef void (*clibev_signal_cb)(struct ev_loop *loop, ev_signal *w, int revents);

static inline void clibev_io_init(ev_io *w, clibev_io_cb cb, int fd, int events) {
  ev_io_init(w, cb, fd, events);
}

/// Changes the interest set of a stopped io watcher (libev forbids it while active).
static inline void clibev_io_set_events(ev_io *w, int events) {
  ev_io_modify(w, events);
}

static inline void clibev_timer_init(ev_timer *w, clibev_timer_cb cb, double after, double repeat) {
  ev_timer_init(w, cb, after, repeat);
}

static inline void clibev_timer_set(ev_timer *w, double after, double repeat) {
  ev_timer_set(w, after, repeat);
}

static inline void clibev_async_init(ev_async *w, clibev_async_cb cb) {
  ev_async_init(w, cb);
}

static inline void clibev_prepare_init(ev_prepare *w, clibev_prepare_cb cb) {
  ev_prepare_init(w, cb);
}

/// For hosts that own their loop (Examples/SearchService): the library watches no signals.
static inline void clibev_signal_init(ev_signal *w, clibev_signal_cb cb, int signum) {
  ev_signal_init(w, cb, signum);
}

static inline int clibev_is_active(const void *w) {
  return ev_is_active(w);
}

#endif
