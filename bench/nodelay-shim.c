/* An experiment for bench/run.sh (BENCH_SLIPWAY_NODELAY_SHIM=1), not part of
 * Slipway: an LD_PRELOAD shim that sets TCP_NODELAY on every socket the server
 * accepts, to measure what Nagle's algorithm costs responses that leave in two
 * writes (headers, then a streamed body). The real fix belongs in the server:
 * axum::serve::ListenerExt::tap_io(|tcp| tcp.set_nodelay(true)).
 *
 *   cc -shared -fPIC -O2 -o nodelay-shim.so nodelay-shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void nodelay(int fd) {
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real)
        real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int s = real(fd, addr, len, flags);
    nodelay(s);
    return s;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real)
        real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    int s = real(fd, addr, len);
    nodelay(s);
    return s;
}
