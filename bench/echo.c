/* bench/echo.c - the ceiling: a UDP responder that does nothing but I/O.
 *
 * The benchmark harness (bench/run) runs this beside the real servers to
 * show what one CPU can answer when a "server" spends no time at all on a
 * query: receive a batch with recvmmsg, turn every query into a reply by
 * setting QR (and RA) in its header in place, send the batch back with
 * sendmmsg.  No parsing, no cache, no allocation after start-up.  Any
 * real server's answers per CPU-second are measured against this one's.
 *
 * Usage: echo ADDRESS PORT      (IPv4 only; runs until SIGTERM or SIGINT)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ECHO_BATCH 64 /* datagrams per recvmmsg/sendmmsg call */
/* A larger query is truncated to this and sent back short. */
#define ECHO_BUFSZ 2048
#define ECHO_HDRSZ 12 /* a DNS header */

/* Set by the signal handler, read by the loop: the only global. */
static volatile sig_atomic_t echo_stop;

static void
echo_on_signal(int sig)
{
    (void)sig;
    echo_stop = 1;
}

static int
echo_open(const char *addr, const char *port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(port));
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "echo: %s is not an IPv4 address\n", addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("echo: socket");
        return -1;
    }
    /* Socket buffers stay at the system's defaults, as the servers
     * measured beside this one have them. */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "echo: bind %s:%s: %s\n", addr, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: echo ADDRESS PORT\n");
        return 2;
    }
    int fd = echo_open(argv[1], argv[2]);
    if (fd < 0)
        return 1;

    /* No SA_RESTART: a signal interrupts recvmmsg and the loop ends. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = echo_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    static unsigned char bufs[ECHO_BATCH][ECHO_BUFSZ];
    static struct sockaddr_in peers[ECHO_BATCH];
    static struct iovec iov[ECHO_BATCH];
    static struct mmsghdr msgs[ECHO_BATCH];
    unsigned long long answered = 0;

    while (!echo_stop) {
        for (int i = 0; i < ECHO_BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = ECHO_BUFSZ;
            memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
            msgs[i].msg_hdr.msg_name = &peers[i];
            msgs[i].msg_hdr.msg_namelen = sizeof(peers[i]);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        /* Block for the first datagram, then take what is queued. */
        int n = recvmmsg(fd, msgs, ECHO_BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("echo: recvmmsg");
            break;
        }
        int out = 0;
        for (int i = 0; i < n; i++) {
            unsigned len = msgs[i].msg_len;
            if (len < ECHO_HDRSZ || (bufs[i][2] & 0x80))
                continue;       /* not a query: drop it */
            bufs[i][2] |= 0x80; /* QR: this is a response */
            bufs[i][3] |= 0x80; /* RA */
            iov[out].iov_base = bufs[i];
            iov[out].iov_len = len;
            msgs[out].msg_hdr.msg_name = &peers[i];
            msgs[out].msg_hdr.msg_namelen = msgs[i].msg_hdr.msg_namelen;
            msgs[out].msg_hdr.msg_iov = &iov[out];
            msgs[out].msg_hdr.msg_iovlen = 1;
            out++;
        }
        for (int sent = 0; sent < out;) {
            int k = sendmmsg(fd, msgs + sent, (unsigned)(out - sent), 0);
            if (k < 0) {
                if (errno == EINTR) {
                    if (echo_stop)
                        break;
                    continue;
                }
                sent++; /* this one failed (the client went away): skip it */
                continue;
            }
            sent += k;
            answered += (unsigned long long)k;
        }
    }
    fprintf(stderr, "echo: answered %llu\n", answered);
    close(fd);
    return 0;
}
