/* flymigrate's RunPod health adapter, static C build: for images with no python3 (ollama, llama.cpp, ...).
 *
 * Same contract as runpod_health_adapter.py (read that file's docstring): start the app's command as a child,
 * answer GET /ping on PORT_HEALTH with 200 once the app is ready (its check path answers 2xx, or its port accepts
 * connections), 204 before that, 503 when it stops being ready; exit with the app's exit code; pass SIGTERM /
 * SIGINT / SIGHUP on. As PID 1 it also reaps orphaned children. Built in a throwaway Alpine stage of the rewritten
 * Dockerfile (`gcc -static -Os`), so the final image gets one self-contained binary and no new packages.
 *
 * usage: runpod-health --app-port N [--check-path /p] [--health-port N] -- COMMAND...
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t pending_signal = 0;
static pid_t child = -1;

static void on_signal(int sig) { pending_signal = sig; }

static void usage(const char *msg) {
    fprintf(stderr, "runpod-health: %s\nusage: runpod-health --app-port N [--check-path /p] [--health-port N] "
                    "-- COMMAND...\n", msg);
    exit(2);
}

/* connect to 127.0.0.1:port within timeout_ms; the fd or -1 */
static int connect_local(int port, int timeout_ms) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fl = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (errno != EINPROGRESS) { close(fd); return -1; }
        struct pollfd p = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            close(fd);
            return -1;
        }
    }
    fcntl(fd, F_SETFL, fl);
    return fd;
}

static int app_ready(int app_port, const char *path) {
    int fd = connect_local(app_port, 5000);
    if (fd < 0) return 0;
    if (!path) { close(fd); return 1; }
    char req[1200];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path,
                     app_port);
    if (n <= 0 || n >= (int)sizeof req || write(fd, req, (size_t)n) != n) { close(fd); return 0; }
    char buf[64];
    size_t got = 0;
    struct pollfd p = {fd, POLLIN, 0};
    while (got < sizeof buf - 1 && poll(&p, 1, 5000) == 1) {
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        if (memchr(buf, '\n', got)) break;
    }
    close(fd);
    buf[got] = 0;
    /* "HTTP/1.x NNN ..." */
    char *sp = strchr(buf, ' ');
    if (strncmp(buf, "HTTP/", 5) != 0 || !sp) return 0;
    int code = atoi(sp + 1);
    return code >= 200 && code < 300;
}

static void answer(int fd, int code, const char *body) {
    const char *reason = code == 200 ? "OK" : code == 204 ? "No Content" : code == 404 ? "Not Found"
                                                                                        : "Service Unavailable";
    char out[512];
    size_t blen = code == 204 ? 0 : strlen(body);
    int n = snprintf(out, sizeof out, "HTTP/1.1 %d %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     code, reason, blen ? "Content-Type: application/json\r\n" : "", blen, blen ? body : "");
    if (n > 0) { ssize_t w = write(fd, out, (size_t)n); (void)w; }
}

static void serve_one(int lfd, int app_port, const char *path, int *ready) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) return;
    char req[2048];
    size_t got = 0;
    struct pollfd p = {fd, POLLIN, 0};
    while (got < sizeof req - 1 && poll(&p, 1, 3000) == 1) {
        ssize_t r = read(fd, req + got, sizeof req - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
    }
    req[got] = 0;
    int is_ping = (!strncmp(req, "GET /ping", 9) || !strncmp(req, "HEAD /ping", 10));
    if (is_ping) {
        char next = req[req[0] == 'G' ? 9 : 10];
        is_ping = next == ' ' || next == '?';
    }
    if (!is_ping) {
        answer(fd, 404, "{\"error\": \"only /ping is served on the health port\"}");
    } else if (app_ready(app_port, path)) {
        *ready = 1;
        answer(fd, 200, "{\"status\": \"healthy\"}");
    } else if (!*ready) {
        answer(fd, 204, "");
    } else {
        answer(fd, 503, "{\"status\": \"unhealthy\"}");
    }
    close(fd);
}

int main(int argc, char **argv) {
    int app_port = 0, health_port = 0, i = 1;
    const char *path = NULL;
    for (; i < argc && strcmp(argv[i], "--"); i += 2) {
        if (i + 1 >= argc) usage("incomplete option");
        if (!strcmp(argv[i], "--app-port")) app_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--check-path")) path = argv[i + 1];
        else if (!strcmp(argv[i], "--health-port")) health_port = atoi(argv[i + 1]);
        else usage("unknown option");
    }
    if (i >= argc - 1) usage("no command after --");
    const char *env_port = getenv("PORT"), *env_health = getenv("PORT_HEALTH");
    if (!app_port && env_port) app_port = atoi(env_port);
    if (env_health && *env_health) health_port = atoi(env_health);
    if (app_port <= 0 || health_port <= 0 || health_port == app_port)
        usage("PORT_HEALTH must be set and differ from the app's port");
    if (path && path[0] != '/') usage("--check-path must start with /");

    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)health_port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 64) < 0) {
        perror("runpod-health: health port");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    child = fork();
    if (child < 0) { perror("runpod-health: fork"); return 1; }
    if (child == 0) {
        close(lfd);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[i + 1], argv + i + 1);
        fprintf(stderr, "runpod-health: cannot start %s: %s\n", argv[i + 1], strerror(errno));
        _exit(127);
    }
    int ready = 0;
    for (;;) {
        if (pending_signal) {
            kill(child, pending_signal);
            pending_signal = 0;
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {  /* PID 1: reap orphans too */
            if (pid == child) {
                close(lfd);
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
        }
        struct pollfd p = {lfd, POLLIN, 0};
        if (poll(&p, 1, 200) == 1) serve_one(lfd, app_port, path, &ready);
    }
}
