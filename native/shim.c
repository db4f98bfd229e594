// mesos-logrotate-logger: the drop-in the agent starts for each stream. It leads its own session, as the original
// does, then either hands the stream to the per-agent daemon and holds the pipe until the daemon says the stream
// ended, or execs the standalone Node helper. It never reads fd 0: while the daemon is down or restarting, its open
// read end is what keeps the task's writes from failing with EPIPE. Protocol and failure modes: docs/daemon.md.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROTOCOL_VERSION 2
#define FRAME_HELLO 1
#define FRAME_ACCEPTED 2
#define FRAME_EXIT 3
#define FRAME_COMMIT 6
#define HELLO_RESUMED 1
// The daemon's replies are tiny, except an exit's usage or error text; anything longer is not our daemon.
#define MAX_REPLY (1u << 20)
#define AUTO_DEADLINE_MS 500
#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 1000
#define BACKLOG_RETRY_MS 5

static const char *socket_path;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// As setsid(1) -w: a process-group leader cannot call setsid, so the session goes to a child and this process
// waits for it and exits with its status.
static void become_session_leader(void) {
  if (setsid() >= 0) return;
  if (errno != EPERM) {
    perror("mesos-logrotate-logger: setsid");
    exit(1);
  }
  pid_t child = fork();
  if (child < 0) {
    perror("mesos-logrotate-logger: fork");
    exit(1);
  }
  if (child == 0) {
    if (setsid() < 0) {
      perror("mesos-logrotate-logger: setsid");
      _exit(1);
    }
    return;
  }
  int status;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) exit(1);
  }
  exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

// The standalone helper: node with the bundle beside this binary (or $LOG_SPLITTER_BUNDLE, as a source checkout sets).
static void exec_standalone(char **argv, int argc, const char *reason) {
  const char *bundle = getenv("LOG_SPLITTER_BUNDLE");
  char beside[PATH_MAX + 32];
  if (bundle == NULL || *bundle == '\0') {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
      perror("mesos-logrotate-logger: /proc/self/exe");
      exit(1);
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    snprintf(beside, sizeof beside, "%s/mesos-log-splitter.mjs", self);
    bundle = beside;
  }
  setenv("LOG_SPLITTER_FALLBACK_REASON", reason, 1);
  const char *node = getenv("LOG_SPLITTER_NODE");
  if (node == NULL || *node == '\0') node = "node";
  char **args = calloc((size_t)argc + 8, sizeof *args);
  if (args == NULL) exit(1);
  int at = 0;
  args[at++] = (char *)node;
  // A SIGUSR1 while Node starts, before src/cli/sigusr1.ts runs, must not open an inspector on a local address.
  args[at++] = "--inspect-port=192.0.2.1:9229";
  // Peak RSS: one V8 worker thread instead of four, a 2 MB semi-space, no Sparkplug (docs/performance.md, Memory).
  args[at++] = "--max-semi-space-size=2";
  args[at++] = "--v8-pool-size=1";
  args[at++] = "--no-sparkplug";
  args[at++] = (char *)bundle;
  args[at++] = "mesos-logrotate-logger";
  for (int i = 1; i < argc; i++) args[at++] = argv[i];
  args[at] = NULL;
  execvp(node, args);
  fprintf(stderr, "mesos-logrotate-logger: cannot run %s: %s\n", node, strerror(errno));
  exit(1);
}

static void put_u32(uint8_t *at, uint32_t value) {
  at[0] = value & 0xff;
  at[1] = (value >> 8) & 0xff;
  at[2] = (value >> 16) & 0xff;
  at[3] = value >> 24;
}

static uint32_t get_u32(const uint8_t *at) {
  return (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
}

// Frame: u32 length of what follows, u8 type, payload (little-endian). Hello payload: u16 version, u8 flags,
// u32 pid, u32 argc, then argc times (u32 length, bytes): argv as raw bytes, never transcoded.
static uint8_t *hello;
static size_t hello_length;

static void build_hello(int argc, char **argv) {
  size_t length = 4 + 1 + 2 + 1 + 4 + 4;
  for (int i = 1; i < argc; i++) length += 4 + strlen(argv[i]);
  if (length > UINT32_MAX) exit(1);
  hello = malloc(length);
  if (hello == NULL) exit(1);
  put_u32(hello, (uint32_t)(length - 4));
  hello[4] = FRAME_HELLO;
  hello[5] = PROTOCOL_VERSION & 0xff;
  hello[6] = PROTOCOL_VERSION >> 8;
  hello[7] = 0;
  put_u32(hello + 8, (uint32_t)getpid());
  put_u32(hello + 12, (uint32_t)(argc - 1));
  size_t at = 16;
  for (int i = 1; i < argc; i++) {
    size_t n = strlen(argv[i]);
    put_u32(hello + at, (uint32_t)n);
    memcpy(hello + at + 4, argv[i], n);
    at += 4 + n;
  }
  hello_length = length;
}

// Waits until fd is ready for `events`, up to the deadline (-1: none). 1 ready, 0 timed out, -1 error.
static int wait_fd(int fd, short events, long long deadline) {
  for (;;) {
    int timeout = -1;
    if (deadline >= 0) {
      long long left = deadline - now_ms();
      if (left <= 0) return 0;
      timeout = (int)left;
    }
    struct pollfd p = {fd, events, 0};
    int n = poll(&p, 1, timeout);
    if (n > 0) return 1;
    if (n == 0) return 0;
    if (errno != EINTR) return -1;
  }
}

static int write_all(int fd, const uint8_t *data, size_t length, long long deadline) {
  while (length > 0) {
    ssize_t n = send(fd, data, length, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      length -= (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      if (wait_fd(fd, POLLOUT, deadline) != 1) return -1;
    } else {
      return -1;
    }
  }
  return 0;
}

// Reads exactly `length` bytes. 0 done, -1 error or end of stream, -2 timed out.
static int read_all(int fd, uint8_t *into, size_t length, long long deadline) {
  while (length > 0) {
    ssize_t n = recv(fd, into, length, 0);
    if (n > 0) {
      into += n;
      length -= (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      int ready = wait_fd(fd, POLLIN, deadline);
      if (ready == 0) return -2;
      if (ready < 0) return -1;
    } else {
      return -1;
    }
  }
  return 0;
}

// Connects and sends the hello, by the deadline (-1: none). Returns the socket, or -1 with `why` set.
static int hand_over(int resumed, long long deadline, char *why, size_t why_size) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    snprintf(why, why_size, "socket: %s", strerror(errno));
    return -1;
  }
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof address.sun_path) {
    snprintf(why, why_size, "socket path too long: %s", socket_path);
    close(fd);
    return -1;
  }
  strcpy(address.sun_path, socket_path);
  // A unix socket connects at once or fails; EAGAIN means the daemon's backlog is full (a burst of new streams).
  while (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) {
    if (errno == EINTR) continue;
    if (errno == EAGAIN && (deadline < 0 || now_ms() + BACKLOG_RETRY_MS < deadline)) {
      sleep_ms(BACKLOG_RETRY_MS);
      continue;
    }
    snprintf(why, why_size, "no daemon at %s: %s", socket_path, strerror(errno));
    close(fd);
    return -1;
  }
  hello[7] = resumed ? HELLO_RESUMED : 0;
  if (write_all(fd, hello, hello_length, deadline) < 0) {
    snprintf(why, why_size, "the daemon at %s did not take the hello", socket_path);
    close(fd);
    return -1;
  }
  return fd;
}

// Copies `length` bytes of an exit reply's text from the socket to `out` (stdout or stderr) in small pieces.
static int relay_text(int fd, uint32_t length, int out, long long deadline) {
  uint8_t piece[4096];
  while (length > 0) {
    uint32_t n = length < sizeof piece ? length : sizeof piece;
    if (read_all(fd, piece, n, deadline) != 0) return -1;
    for (uint32_t at = 0; at < n;) {
      ssize_t written = write(out, piece + at, n - at);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) break;  // the agent's stderr gone: the exit status still matters
      at += (uint32_t)written;
    }
    length -= n;
  }
  return 0;
}

enum reply { REPLY_ACCEPTED, REPLY_LOST, REPLY_TIMEOUT, REPLY_INVALID };

// Reads one reply. An exit reply is relayed and the process exits with its status. Lengths are checked before use.
static enum reply read_reply(int fd, long long deadline) {
  uint8_t head[5];
  int got = read_all(fd, head, sizeof head, deadline);
  if (got == -2) return REPLY_TIMEOUT;
  if (got < 0) return REPLY_LOST;
  uint32_t length = get_u32(head);
  if (length < 1 || length > MAX_REPLY) return REPLY_INVALID;
  if (head[4] == FRAME_ACCEPTED) return length == 1 ? REPLY_ACCEPTED : REPLY_INVALID;
  if (head[4] != FRAME_EXIT || length < 1 + 4 + 4 + 4) return REPLY_INVALID;
  uint8_t fields[8];
  if (read_all(fd, fields, sizeof fields, deadline) != 0) return REPLY_LOST;
  int32_t code = (int32_t)get_u32(fields);
  uint32_t out_length = get_u32(fields + 4);
  if (out_length > length - 13) return REPLY_INVALID;
  if (relay_text(fd, out_length, STDOUT_FILENO, deadline) != 0) return REPLY_LOST;
  uint8_t err_field[4];
  if (read_all(fd, err_field, 4, deadline) != 0) return REPLY_LOST;
  uint32_t err_length = get_u32(err_field);
  if (err_length != length - 13 - out_length) return REPLY_INVALID;
  if (relay_text(fd, err_length, STDERR_FILENO, deadline) != 0) return REPLY_LOST;
  exit(code < 0 || code > 255 ? 1 : code);
}

static const char *reply_problem(enum reply reply) {
  switch (reply) {
    case REPLY_TIMEOUT: return "did not answer within 500 ms";
    case REPLY_INVALID: return "sent an invalid reply";
    default: return "closed the connection before answering";
  }
}

static long next_backoff(long backoff) {
  return backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
}

// Tells the daemon it may take the pipe. From here on this shim never falls back: the daemon may be reading the pipe.
static int commit(int fd) {
  static const uint8_t frame[5] = {1, 0, 0, 0, FRAME_COMMIT};
  return write_all(fd, frame, sizeof frame, -1);
}

// Committed: wait for the exit reply. A lost daemon is reconnected to with backoff, handed the stream again and, once
// it accepts, committed to at once.
static void serve(int fd) {
  long backoff = BACKOFF_FIRST_MS;
  for (;;) {
    read_reply(fd, -1);  // returns only when the connection is lost or the reply is not an exit
    close(fd);
    char why[512];
    for (;;) {
      sleep_ms(backoff);
      backoff = next_backoff(backoff);
      fd = hand_over(1, -1, why, sizeof why);
      if (fd < 0) continue;
      if (read_reply(fd, -1) == REPLY_ACCEPTED && commit(fd) == 0) break;
      close(fd);
    }
    backoff = BACKOFF_FIRST_MS;
  }
}

int main(int argc, char **argv) {
  // The task's pipe outlives everything here; a daemon that goes away must not take the shim with it. SIGHUP is the
  // helpers' reload signal, and SIGUSR1 would kill the shim (it has no inspector to open; see docs/operations.md,
  // Security).
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGUSR1, SIG_IGN);
  become_session_leader();

  const char *mode = getenv("LOG_SPLITTER_MODE");
  if (mode == NULL || *mode == '\0') mode = "auto";
  int never_fall_back = strcmp(mode, "daemon") == 0;
  if (strcmp(mode, "standalone") == 0) exec_standalone(argv, argc, "LOG_SPLITTER_MODE=standalone");
  if (!never_fall_back && strcmp(mode, "auto") != 0) {
    char why[128];
    snprintf(why, sizeof why, "unknown LOG_SPLITTER_MODE '%.64s' (auto, daemon or standalone)", mode);
    exec_standalone(argv, argc, why);
  }
  socket_path = getenv("LOG_SPLITTER_DAEMON_SOCKET");
  if (socket_path == NULL || *socket_path == '\0') socket_path = "/run/mesos-log-splitter/daemon.sock";
  build_hello(argc, argv);

  long backoff = BACKOFF_FIRST_MS;
  // In daemon mode the agent's log says when this shim starts waiting for an absent daemon, and when it got through.
  enum { NOT_WAITED, WAITING, GOT_THROUGH } waited = NOT_WAITED;
  for (;;) {
    long long deadline = never_fall_back ? -1 : now_ms() + AUTO_DEADLINE_MS;
    char why[512];
    int fd = hand_over(0, deadline, why, sizeof why);
    if (fd >= 0) {
      if (waited == WAITING) {
        fprintf(stderr, "mesos-logrotate-logger: connected to the daemon at %s after waiting\n", socket_path);
        waited = GOT_THROUGH;
      }
      // Accepted within the deadline: commit. Too late: close first, so a daemon that accepts now finds no one to
      // commit and leaves the pipe to the standalone helper.
      enum reply reply = read_reply(fd, deadline);
      if (reply == REPLY_ACCEPTED) {
        commit(fd);
        serve(fd);
      }
      close(fd);
      snprintf(why, sizeof why, "the daemon at %s %s", socket_path, reply_problem(reply));
    }
    if (!never_fall_back) exec_standalone(argv, argc, why);
    if (waited == NOT_WAITED) {
      fprintf(stderr, "mesos-logrotate-logger: waiting for the daemon (LOG_SPLITTER_MODE=daemon): %s\n", why);
      waited = WAITING;
    }
    sleep_ms(backoff);
    backoff = next_backoff(backoff);
  }
}
