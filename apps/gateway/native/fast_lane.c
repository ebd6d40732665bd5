/*
 * Portcullis gateway: the fast lane, the native half of a Postgres session's relay.
 *
 * Once a plaintext session has been authenticated, the gateway can hand both sockets to a lane.
 * The lane reads each side from the gateway's own event loop (uv_poll on duplicates of the two
 * descriptors; Node's sockets are stopped meanwhile), frames messages, and forwards by itself the
 * ones the JavaScript relay would forward untouched. It never decides anything:
 *
 *  - every message whose class (a table the JavaScript side passes in, one per direction) is
 *    CL_JS — Query, Parse, errors, anything unusual — is handed whole to the JavaScript relay
 *    (on_message), and that side's reading stops until it calls resume(): policy runs exactly
 *    where it runs without the lane, in order;
 *  - messages the relay only counts (Execute, Sync, DataRow, CommandComplete, ReadyForQuery...)
 *    pass at once and leave a record in a log the relay replays (on_log, and before every handed
 *    message), so its bookkeeping and session events are those it would have made itself;
 *  - every length is checked against the same caps as the JavaScript framer; a bad one stops the
 *    lane with on_close(side, -1, type, length).
 *
 * Backpressure: a side is read only while the other side has nothing queued; what a peer does
 * not take at once waits in that side's queue (at most one read plus what the relay wrote).
 *
 * No thread of its own: everything runs on the loop's thread, so the JavaScript side never races
 * the lane. Built by scripts/build-native.mjs (node-gyp); the gateway runs without it if absent.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define READ_BUF 65536
#define LOG_CAP 16384
#define HOLD_CAP (1024 * 1024) /* input read ahead while JavaScript holds a side (so a disconnect is seen) */
#define MAX_IOV 8 /* contiguous output merges into one entry: a read rarely needs more */
#define DRAIN_MS 5
#define LOG_HEAD 14            /* kind u8, side u8, payload length u32 LE, time f64 LE (ms) */
#define MAX_LOGGED_PAYLOAD 4096 /* a longer "logged" message goes to JavaScript instead */

enum { CL_JS = 0, CL_PASS = 1, CL_PASS_LOG = 2, CL_PASS_LOG_PAYLOAD = 3, CL_PASS_ROW = 4 };

typedef struct lane lane_t;

typedef struct side {
  lane_t *lane;
  int idx;
  int fd;
  uv_poll_t poll;
  int inited;
  int mask;
  /* the message tables, shared by every lane given the same ones (see shared_tables) */
  const uint8_t *cls;
  const uint32_t *caps;
  /* framing */
  uint8_t hdr[5];
  int hdr_len;
  uint8_t hdr_out[5];
  uint32_t pass_left;
  uint8_t *acc;
  uint32_t acc_len, acc_total, acc_cap;
  /* input held while a message is with JavaScript */
  uint8_t *pend;
  size_t pend_len, pend_off;
  int js_wait;
  int eof;
  /* output waiting to be written to this side */
  uint8_t *outq;
  size_t outq_len, outq_off, outq_cap;
  struct iovec iov[MAX_IOV];
  int niov;
  double bytes_read;
} side_t;

struct lane {
  napi_env env;
  napi_ref on_message, on_log, on_close, log_ref, resource;
  napi_async_context actx;
  uv_timer_t timer;
  int timer_on;
  side_t s[2];
  uint8_t *rbuf; /* the module instance's read buffer, shared by its lanes (one thread) */
  void *inst;
  uint8_t *log;
  size_t log_len;
  uint32_t rows_pending;
  int in_cb;
  int deferred;
  int failed;
  int closed;
  int handles_open;
  int finalized;
};

/* Per module instance: the read buffer all its lanes share (they run on one thread) and the message
 * tables they were opened with (one set in practice: an idle session costs no table copy). */
#define MAX_TABLE_SETS 8
typedef struct {
  uint8_t cls[2][256];
  uint32_t caps[2][256];
} tables_t;
typedef struct {
  uint8_t rbuf[READ_BUF];
  tables_t *tables[MAX_TABLE_SETS];
  int ntables;
  /* a JavaScript Buffer handed messages are copied into (the relay copies them out into pooled
   * memory): no malloc'd Buffer per Query, which fragmented the heap (~10 MiB of RSS) */
  napi_ref handoff_ref;
  uint8_t *handoff;
  /* the lane class: its methods live once on the prototype, not on every lane */
  napi_ref class_ref;
} instance_t;
#define HANDOFF_CAP 16384

static void free_instance(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  instance_t *in = data;
  for (int i = 0; i < in->ntables; i++) free(in->tables[i]);
  free(in);
}

static const tables_t *shared_tables(instance_t *in, const tables_t *t) {
  for (int i = 0; i < in->ntables; i++) if (memcmp(in->tables[i], t, sizeof *t) == 0) return in->tables[i];
  if (in->ntables == MAX_TABLE_SETS) return NULL;
  tables_t *c = malloc(sizeof *c);
  if (!c) return NULL;
  memcpy(c, t, sizeof *c);
  in->tables[in->ntables++] = c;
  return c;
}

static void update_polls(lane_t *l);
static void on_poll(uv_poll_t *h, int status, int events);

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)(ts.tv_nsec / 1000000);
}

static int outq_empty(const side_t *s) { return s->outq_len == s->outq_off; }

static int outq_append(side_t *s, const uint8_t *p, size_t n) {
  if (s->outq_off > 0 && s->outq_off == s->outq_len) s->outq_off = s->outq_len = 0;
  if (s->outq_len + n > s->outq_cap) {
    if (s->outq_off > 0) {
      memmove(s->outq, s->outq + s->outq_off, s->outq_len - s->outq_off);
      s->outq_len -= s->outq_off;
      s->outq_off = 0;
    }
    if (s->outq_len + n > s->outq_cap) {
      size_t cap = s->outq_cap ? s->outq_cap : 16384;
      while (cap < s->outq_len + n) cap *= 2;
      uint8_t *q = realloc(s->outq, cap);
      if (!q) return -1;
      s->outq = q;
      s->outq_cap = cap;
    }
  }
  memcpy(s->outq + s->outq_len, p, n);
  s->outq_len += n;
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Calls into JavaScript */

/* Calls a handler; returns 1 when it returned true. */
static int call_js(lane_t *l, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = l->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, recv, result;
  napi_get_reference_value(env, fn_ref, &fn);
  napi_get_reference_value(env, l->resource, &recv);
  l->in_cb++;
  napi_status st = napi_make_callback(env, l->actx, recv, fn, argc, argv, &result);
  l->in_cb--;
  bool yes = false;
  if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  } else if (st == napi_ok) {
    napi_get_value_bool(env, result, &yes);
  }
  napi_close_handle_scope(env, scope);
  return yes ? 1 : 0;
}

static void fail(lane_t *l, int side, int err, int type, int64_t len) {
  if (l->failed || l->closed) return;
  l->failed = 1;
  update_polls(l);
  napi_env env = l->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[4];
  napi_create_int32(env, side, &argv[0]);
  napi_create_int32(env, err, &argv[1]);
  napi_create_int32(env, type, &argv[2]);
  napi_create_int64(env, len, &argv[3]);
  call_js(l, l->on_close, 4, argv);
  napi_close_handle_scope(env, scope);
}

static void flush_rows(lane_t *l);

/* Hands the log to JavaScript (which replays it at once) and empties it. */
static void drain_log(lane_t *l) {
  flush_rows(l);
  if (l->log_len == 0 || l->closed) return;
  napi_env env = l->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[1];
  napi_create_uint32(env, (uint32_t)l->log_len, &argv[0]);
  l->log_len = 0;
  call_js(l, l->on_log, 1, argv);
  napi_close_handle_scope(env, scope);
}

static void on_timer(uv_timer_t *t) {
  lane_t *l = t->data;
  l->timer_on = 0;
  drain_log(l);
}

/* The log is a JavaScript Buffer (the relay reads it in place), made at the first record: an idle
 * session never has one. */
static int ensure_log(lane_t *l) {
  if (l->log) return 0;
  napi_env env = l->env;
  napi_handle_scope scope;
  napi_value buf;
  void *data;
  int ok = 0;
  napi_open_handle_scope(env, &scope);
  if (napi_create_buffer(env, LOG_CAP, &data, &buf) == napi_ok && napi_create_reference(env, buf, 1, &l->log_ref) == napi_ok) {
    l->log = data;
    ok = 1;
  }
  napi_close_handle_scope(env, scope);
  return ok ? 0 : -1;
}

static void log_record(lane_t *l, uint8_t kind, int side, const uint8_t *payload, uint32_t n, double t) {
  if (l->log_len + LOG_HEAD + n > LOG_CAP) drain_log(l);
  if (l->closed) return;
  if (ensure_log(l) < 0) { fail(l, side, ENOMEM, 0, 0); return; }
  uint8_t *r = l->log + l->log_len;
  r[0] = kind;
  r[1] = (uint8_t)side;
  r[2] = n & 0xff; r[3] = (n >> 8) & 0xff; r[4] = (n >> 16) & 0xff; r[5] = (n >> 24) & 0xff;
  memcpy(r + 6, &t, 8);
  if (n) memcpy(r + LOG_HEAD, payload, n);
  l->log_len += LOG_HEAD + n;
  if (!l->timer_on) {
    l->timer_on = 1;
    uv_timer_start(&l->timer, on_timer, DRAIN_MS, 0);
  }
}

static void flush_rows(lane_t *l) {
  if (l->rows_pending == 0) return;
  uint8_t c[4];
  uint32_t n = l->rows_pending;
  l->rows_pending = 0;
  c[0] = n & 0xff; c[1] = (n >> 8) & 0xff; c[2] = (n >> 16) & 0xff; c[3] = (n >> 24) & 0xff;
  log_record(l, 'D', 1, c, 4, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Output */

/* Writes the gathered output for side `d` (or queues it behind what is already waiting). */
static void flush_out(side_t *d) {
  lane_t *l = d->lane;
  int n = d->niov;
  d->niov = 0;
  if (n == 0 || l->closed) return;
  int i = 0;
  size_t skip = 0;
  if (outq_empty(d)) {
    for (;;) {
      ssize_t w = writev(d->fd, d->iov + i, n - i);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        fail(l, d->idx, errno, 0, 0);
        return;
      }
      size_t left = (size_t)w;
      while (i < n && left >= d->iov[i].iov_len) left -= d->iov[i++].iov_len;
      if (i == n) return;
      skip = left;
      d->iov[i].iov_base = (uint8_t *)d->iov[i].iov_base + skip;
      d->iov[i].iov_len -= skip;
      skip = 0;
    }
  }
  for (; i < n; i++) {
    if (outq_append(d, d->iov[i].iov_base, d->iov[i].iov_len) < 0) {
      fail(l, d->idx, ENOMEM, 0, 0);
      return;
    }
  }
}

static void emit(side_t *d, const uint8_t *p, size_t n) {
  if (n == 0) return;
  if (d->niov > 0) {
    struct iovec *last = &d->iov[d->niov - 1];
    if ((uint8_t *)last->iov_base + last->iov_len == p) {
      last->iov_len += n;
      return;
    }
  }
  if (d->niov == MAX_IOV) flush_out(d);
  d->iov[d->niov].iov_base = (void *)p;
  d->iov[d->niov].iov_len = n;
  d->niov++;
}

/* Writes what is queued for side `d`; 0 when its queue is empty afterwards. */
static int write_queue(side_t *d) {
  while (!outq_empty(d)) {
    ssize_t w = write(d->fd, d->outq + d->outq_off, d->outq_len - d->outq_off);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
      fail(d->lane, d->idx, errno, 0, 0);
      return 1;
    }
    d->outq_off += (size_t)w;
  }
  d->outq_off = d->outq_len = 0;
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Framing */

static uint32_t be32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }

/* A whole message of class CL_JS or CL_PASS_LOG_PAYLOAD, at `msg` (in the read buffer or the accumulator). */
static void whole_message(side_t *s, int cls, const uint8_t *msg, uint32_t total, int in_acc) {
  lane_t *l = s->lane;
  side_t *d = &l->s[1 - s->idx];
  if (cls == CL_PASS_LOG_PAYLOAD) {
    flush_rows(l);
    log_record(l, msg[0], s->idx, msg + 5, total - 5, now_ms());
    emit(d, msg, total);
    if (in_acc) flush_out(d);
    return;
  }
  /* to JavaScript: what went before in this direction is written first, the log replayed first */
  flush_out(d);
  flush_rows(l);
  if (l->closed || l->failed) return;
  napi_env env = l->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[4];
  void *data;
  instance_t *in = l->inst;
  napi_create_int32(env, s->idx, &argv[0]);
  if (total <= HANDOFF_CAP && in->handoff) {
    /* the relay copies [0, total) out of the shared handoff buffer before anything else runs */
    memcpy(in->handoff, msg, total);
    napi_get_reference_value(env, in->handoff_ref, &argv[1]);
    napi_create_int32(env, (int32_t)total, &argv[3]);
  } else {
    napi_create_buffer_copy(env, total, msg, &data, &argv[1]);
    napi_create_int32(env, -1, &argv[3]);
  }
  napi_create_uint32(env, (uint32_t)l->log_len, &argv[2]);
  l->log_len = 0;
  s->js_wait = 1;
  /* true: dealt with already (the usual case, no resume() call needed) */
  if (call_js(l, l->on_message, 4, argv)) s->js_wait = 0;
  napi_close_handle_scope(env, scope);
}

static int acc_reserve(side_t *s, uint32_t need) {
  if (need <= s->acc_cap) return 0;
  uint32_t cap = s->acc_cap ? s->acc_cap : 256;
  while (cap < need) cap = cap > 0x40000000u ? need : cap * 2;
  uint8_t *a = realloc(s->acc, cap);
  if (!a) return -1;
  s->acc = a;
  s->acc_cap = cap;
  return 0;
}

/* Frames and forwards `n` bytes read from side `s`; returns how many were consumed (fewer when a
 * message went to JavaScript and it has not resumed this side yet). */
static size_t process(side_t *s, const uint8_t *p, size_t n) {
  lane_t *l = s->lane;
  side_t *d = &l->s[1 - s->idx];
  size_t i = 0;
  while (i < n) {
    if (l->closed || l->failed) return n;
    if (s->js_wait) return i;
    if (s->acc_total) {
      uint32_t want = s->acc_total - s->acc_len;
      uint32_t take = (n - i) < want ? (uint32_t)(n - i) : want;
      if (acc_reserve(s, s->acc_len + take) < 0) { fail(l, s->idx, ENOMEM, 0, 0); return n; }
      memcpy(s->acc + s->acc_len, p + i, take);
      s->acc_len += take;
      i += take;
      if (s->acc_len == s->acc_total) {
        uint32_t total = s->acc_total;
        s->acc_total = 0;
        s->acc_len = 0;
        whole_message(s, s->cls[s->acc[0]] == CL_PASS_LOG_PAYLOAD && total <= MAX_LOGGED_PAYLOAD ? CL_PASS_LOG_PAYLOAD : CL_JS, s->acc, total, 1);
        if (s->acc_cap > READ_BUF) { free(s->acc); s->acc = NULL; s->acc_cap = 0; }
      }
      continue;
    }
    if (s->pass_left) {
      uint32_t take = (n - i) < s->pass_left ? (uint32_t)(n - i) : s->pass_left;
      emit(d, p + i, take);
      s->pass_left -= take;
      i += take;
      continue;
    }
    const uint8_t *h;
    int carried = 0;
    if (s->hdr_len || n - i < 5) {
      while (s->hdr_len < 5 && i < n) s->hdr[s->hdr_len++] = p[i++];
      if (s->hdr_len < 5) return n;
      h = s->hdr;
      carried = 1;
      s->hdr_len = 0;
    } else {
      h = p + i;
    }
    uint8_t type = h[0];
    int32_t len = (int32_t)be32(h + 1);
    if (len < 4 || (uint32_t)len > s->caps[type]) {
      flush_out(d);
      fail(l, s->idx, -1, type, len);
      return n;
    }
    uint32_t total = (uint32_t)len + 1;
    int cls = s->cls[type];
    if (cls == CL_PASS_LOG_PAYLOAD && total > MAX_LOGGED_PAYLOAD) cls = CL_JS;
    if (cls == CL_PASS || cls == CL_PASS_LOG || cls == CL_PASS_ROW) {
      if (cls == CL_PASS_ROW) l->rows_pending++;
      else if (cls == CL_PASS_LOG) { flush_rows(l); log_record(l, type, s->idx, NULL, 0, now_ms()); }
      if (carried) {
        memcpy(s->hdr_out, h, 5);
        emit(d, s->hdr_out, 5);
        flush_out(d);
        s->pass_left = total - 5;
      } else {
        uint32_t take = (n - i) < total ? (uint32_t)(n - i) : total;
        emit(d, p + i, take);
        s->pass_left = total - take;
        i += take;
      }
      continue;
    }
    /* a whole message is needed */
    if (!carried && n - i >= total) {
      whole_message(s, cls, p + i, total, 0);
      i += total;
      continue;
    }
    if (acc_reserve(s, total < 4096 ? total : 4096) < 0) { fail(l, s->idx, ENOMEM, 0, 0); return n; }
    memcpy(s->acc, h, 5);
    s->acc_len = 5;
    s->acc_total = total;
    if (!carried) i += 5;
  }
  return n;
}

/* Runs input held for side `s` while it waited on JavaScript. */
static void run_pending(side_t *s) {
  lane_t *l = s->lane;
  while (s->pend && !s->js_wait && !l->closed && !l->failed) {
    size_t used = process(s, s->pend + s->pend_off, s->pend_len - s->pend_off);
    s->pend_off += used;
    flush_out(&l->s[1 - s->idx]);
    if (s->pend_off >= s->pend_len) {
      free(s->pend);
      s->pend = NULL;
      s->pend_len = s->pend_off = 0;
    }
  }
}

static void run_deferred(lane_t *l) {
  while (l->deferred && l->in_cb == 0 && !l->closed) {
    l->deferred = 0;
    run_pending(&l->s[0]);
    run_pending(&l->s[1]);
  }
  update_polls(l);
}

/* ---------------------------------------------------------------------------------------------
 * Polling */

static int can_read(const side_t *s) {
  const lane_t *l = s->lane;
  if (l->failed || l->closed || s->eof) return 0;
  /* held by JavaScript: read ahead into pend (up to HOLD_CAP) so that a peer's disconnect is seen */
  if (s->js_wait || s->pend) return s->pend_len - s->pend_off < HOLD_CAP;
  return outq_empty(&l->s[1 - s->idx]);
}

static int pend_append(side_t *s, const uint8_t *p, size_t n) {
  if (s->pend_off > 0) {
    memmove(s->pend, s->pend + s->pend_off, s->pend_len - s->pend_off);
    s->pend_len -= s->pend_off;
    s->pend_off = 0;
  }
  uint8_t *q = realloc(s->pend, s->pend_len + n);
  if (!q) return -1;
  memcpy(q + s->pend_len, p, n);
  s->pend = q;
  s->pend_len += n;
  return 0;
}

static void update_polls(lane_t *l) {
  if (l->closed) return;
  for (int k = 0; k < 2; k++) {
    side_t *s = &l->s[k];
    int m = 0;
    if (can_read(s)) m |= UV_READABLE; /* never once failed */
    if (!outq_empty(s)) m |= UV_WRITABLE;
    if (m == s->mask) continue;
    s->mask = m;
    if (m) uv_poll_start(&s->poll, m, on_poll);
    else uv_poll_stop(&s->poll);
  }
}

static void on_readable(side_t *s) {
  lane_t *l = s->lane;
  ssize_t r;
  do r = read(s->fd, l->rbuf, READ_BUF); while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    fail(l, s->idx, errno, 0, 0);
    return;
  }
  if (r == 0) {
    s->eof = 1;
    fail(l, s->idx, 0, 0, 0);
    return;
  }
  s->bytes_read += (double)r;
  if (s->js_wait || s->pend) {
    if (pend_append(s, l->rbuf, (size_t)r) < 0) fail(l, s->idx, ENOMEM, 0, 0);
    else if (!s->js_wait) l->deferred = 1;
    return;
  }
  size_t used = process(s, l->rbuf, (size_t)r);
  flush_out(&l->s[1 - s->idx]);
  if (used < (size_t)r && !l->closed && !l->failed) {
    if (pend_append(s, l->rbuf + used, (size_t)r - used) < 0) fail(l, s->idx, ENOMEM, 0, 0);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  side_t *s = h->data;
  lane_t *l = s->lane;
  if (l->closed) return;
  if (status < 0) {
    fail(l, s->idx, -status, 0, 0);
    return;
  }
  if (events & UV_WRITABLE) write_queue(s);
  if ((events & UV_READABLE) && can_read(s)) on_readable(s);
  run_deferred(l);
}

/* ---------------------------------------------------------------------------------------------
 * Teardown */

static void maybe_free(lane_t *l) {
  if (l->handles_open > 0 || !l->finalized) return;
  for (int k = 0; k < 2; k++) {
    free(l->s[k].acc);
    free(l->s[k].pend);
    free(l->s[k].outq);
  }
  free(l);
}

static void on_handle_closed(uv_handle_t *h) {
  lane_t *l;
  if (h->type == UV_TIMER) {
    l = h->data;
  } else {
    side_t *s = h->data;
    l = s->lane;
    close(s->fd);
    s->fd = -1;
  }
  l->handles_open--;
  maybe_free(l);
}

static void lane_close(lane_t *l) {
  if (l->closed) return;
  /* what the peers have not taken yet gets one more try (a final error, a Terminate) */
  for (int k = 0; k < 2; k++) write_queue(&l->s[k]);
  l->closed = 1;
  uv_close((uv_handle_t *)&l->timer, on_handle_closed);
  for (int k = 0; k < 2; k++) if (l->s[k].inited) uv_close((uv_handle_t *)&l->s[k].poll, on_handle_closed);
  napi_env env = l->env;
  napi_async_destroy(env, l->actx);
  napi_delete_reference(env, l->on_message);
  napi_delete_reference(env, l->on_log);
  napi_delete_reference(env, l->on_close);
  if (l->log_ref) napi_delete_reference(env, l->log_ref);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  lane_t *l = data;
  l->finalized = 1;
  if (!l->closed) {
    /* the object was dropped without close(): no more calls into JavaScript */
    l->closed = 1;
    uv_close((uv_handle_t *)&l->timer, on_handle_closed);
    for (int k = 0; k < 2; k++) if (l->s[k].inited) uv_close((uv_handle_t *)&l->s[k].poll, on_handle_closed);
    return;
  }
  maybe_free(l);
}

/* ---------------------------------------------------------------------------------------------
 * JavaScript API */

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "fast lane: " #call " failed"); return NULL; } } while (0)

static lane_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || !data) {
    napi_throw_error(env, NULL, "fast lane: not a lane");
    return NULL;
  }
  return data;
}

/* The lane of a method called as lane.m(side, ...), and the side (or NULL, an exception thrown). */
static lane_t *unwrap_side(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, int *side) {
  lane_t *l = unwrap(env, info, argc, argv);
  if (!l) return NULL;
  int32_t k = -1;
  napi_get_value_int32(env, argv[0], &k);
  if (k != 0 && k != 1) {
    napi_throw_range_error(env, NULL, "fast lane: side must be 0 (client) or 1 (upstream)");
    return NULL;
  }
  *side = k;
  return l;
}

/* lane.write(side, buffer) -> true when the kernel took all of it */
static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], ret;
  int k;
  lane_t *l = unwrap_side(env, info, &argc, argv, &k);
  if (!l) return NULL;
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "fast lane: write needs a Buffer");
    return NULL;
  }
  side_t *d = &l->s[k];
  int all = 1;
  /* still written after the lane stopped reading (a FATAL for the client after a protocol error) */
  if (!l->closed && len) {
    flush_out(d);
    emit(d, data, len);
    flush_out(d);
    all = outq_empty(d);
    update_polls(l);
  }
  napi_get_boolean(env, all, &ret);
  return ret;
}

/* lane.resume(side): the message handed over from `side` is dealt with; read on */
static napi_value js_resume(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int k;
  lane_t *l = unwrap_side(env, info, &argc, argv, &k);
  if (!l || l->closed) return NULL;
  l->s[k].js_wait = 0;
  l->deferred = 1;
  if (l->in_cb == 0) run_deferred(l);
  return NULL;
}

/* lane.take() -> bytes of log to replay now (the log is then empty) */
static napi_value js_take(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value ret;
  lane_t *l = unwrap(env, info, &argc, NULL);
  if (!l) return NULL;
  flush_rows(l);
  uint32_t n = l->closed ? 0 : (uint32_t)l->log_len;
  l->log_len = 0;
  napi_create_uint32(env, n, &ret);
  return ret;
}

/* lane.bytesRead(side) -> bytes read from that side so far */
static napi_value js_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], ret;
  int k;
  lane_t *l = unwrap_side(env, info, &argc, argv, &k);
  if (!l) return NULL;
  napi_create_double(env, l->s[k].bytes_read, &ret);
  return ret;
}

/* lane.log() -> the Buffer the records are in (null before the first) */
static napi_value js_log(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value ret;
  lane_t *l = unwrap(env, info, &argc, NULL);
  if (!l) return NULL;
  if (l->closed || !l->log_ref) napi_get_null(env, &ret);
  else napi_get_reference_value(env, l->log_ref, &ret);
  return ret;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  lane_t *l = unwrap(env, info, &argc, NULL);
  if (!l) return NULL;
  lane_close(l);
  return NULL;
}

static int table_arg(napi_env env, napi_value v, napi_typedarray_type want, void *out, size_t bytes) {
  napi_typedarray_type t;
  size_t len;
  void *data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, &ab, &off) != napi_ok || t != want || len != 256) return -1;
  memcpy(out, data, bytes);
  return 0;
}

static napi_value get_named(napi_env env, napi_value obj, const char *name) {
  napi_value v = NULL;
  napi_get_named_property(env, obj, name, &v);
  return v;
}

/*
 * open(clientFd, upstreamFd, options) -> lane
 * options: { clientClasses: Uint8Array(256), clientCaps: Uint32Array(256), upstreamClasses,
 *            upstreamCaps, onMessage(side, buffer, logBytes, length) -> true when done (else resume()
 *            later; length >= 0: the frame is buffer[0, length), to be copied out at once; -1: buffer is
 *            the frame, the relay's own), onLog(logBytes),
 *            onClose(side, errno | 0 for end of stream | -1 for a bad length, type, length) }
 * The descriptors are duplicated: the caller keeps (and eventually closes) its own.
 */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "fast lane: open(clientFd, upstreamFd, options)");
    return NULL;
  }
  int32_t fds[2];
  CHECK(napi_get_value_int32(env, argv[0], &fds[0]));
  CHECK(napi_get_value_int32(env, argv[1], &fds[1]));
  lane_t *l = calloc(1, sizeof(lane_t));
  if (!l) { napi_throw_error(env, NULL, "fast lane: out of memory"); return NULL; }
  l->env = env;
  napi_value opts = argv[2];
  const char *cls_names[2] = { "clientClasses", "upstreamClasses" };
  const char *cap_names[2] = { "clientCaps", "upstreamCaps" };
  tables_t t;
  for (int k = 0; k < 2; k++) {
    if (table_arg(env, get_named(env, opts, cls_names[k]), napi_uint8_array, t.cls[k], 256) < 0 ||
        table_arg(env, get_named(env, opts, cap_names[k]), napi_uint32_array, t.caps[k], 256 * 4) < 0) {
      free(l);
      napi_throw_type_error(env, NULL, "fast lane: classes must be Uint8Array(256) and caps Uint32Array(256)");
      return NULL;
    }
  }
  instance_t *inst = NULL;
  napi_get_instance_data(env, (void **)&inst);
  const tables_t *shared = inst ? shared_tables(inst, &t) : NULL;
  if (!shared) {
    free(l);
    napi_throw_error(env, NULL, "fast lane: too many distinct message tables");
    return NULL;
  }
  for (int k = 0; k < 2; k++) {
    l->s[k].cls = shared->cls[k];
    l->s[k].caps = shared->caps[k];
  }
  napi_value fn_msg = get_named(env, opts, "onMessage"), fn_log = get_named(env, opts, "onLog"), fn_close = get_named(env, opts, "onClose");
  napi_valuetype t1, t2, t3;
  napi_typeof(env, fn_msg, &t1);
  napi_typeof(env, fn_log, &t2);
  napi_typeof(env, fn_close, &t3);
  if (t1 != napi_function || t2 != napi_function || t3 != napi_function) {
    free(l);
    napi_throw_type_error(env, NULL, "fast lane: onMessage, onLog and onClose must be functions");
    return NULL;
  }
  int dup_fds[2] = { -1, -1 };
  for (int k = 0; k < 2; k++) {
    dup_fds[k] = fcntl(fds[k], F_DUPFD_CLOEXEC, 0);
    if (dup_fds[k] < 0) {
      int e = errno;
      if (k == 1) close(dup_fds[0]);
      free(l);
      napi_throw_error(env, NULL, e == EBADF ? "fast lane: bad file descriptor" : "fast lane: cannot duplicate a descriptor");
      return NULL;
    }
  }
  l->rbuf = inst->rbuf;
  l->inst = inst;
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  napi_value cls;
  CHECK(napi_get_reference_value(env, inst->class_ref, &cls));
  CHECK(napi_new_instance(env, cls, 0, NULL, &self));
  CHECK(napi_create_reference(env, fn_msg, 1, &l->on_message));
  CHECK(napi_create_reference(env, fn_log, 1, &l->on_log));
  CHECK(napi_create_reference(env, fn_close, 1, &l->on_close));
  CHECK(napi_create_reference(env, self, 0, &l->resource));
  napi_value name;
  CHECK(napi_create_string_utf8(env, "PortcullisFastLane", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, self, name, &l->actx));
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  l->handles_open = 1;
  for (int k = 0; k < 2; k++) {
    side_t *s = &l->s[k];
    s->lane = l;
    s->idx = k;
    s->fd = dup_fds[k];
    s->poll.data = s;
    if (uv_poll_init(loop, &s->poll, s->fd) != 0) {
      /* cannot happen for a connected TCP socket; the handles opened so far close normally */
      close(s->fd);
      s->fd = -1;
      l->failed = 1;
      continue;
    }
    s->inited = 1;
    l->handles_open++;
  }
  CHECK(napi_wrap(env, self, l, finalize, NULL, NULL));
  if (l->failed) {
    lane_close(l);
    napi_throw_error(env, NULL, "fast lane: cannot poll the sockets");
    return NULL;
  }
  update_polls(l);
  return self;
}

static napi_value js_ctor(napi_env env, napi_callback_info info) {
  napi_value self;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  return self;
}

/*
 * trimHeap(): hands the C heap's free pages back to the kernel (glibc's malloc_trim). The gateway
 * calls it once when it goes quiet after work, right after a full garbage collection has freed the
 * Buffers that work left behind; without it glibc keeps most of those pages. Returns whether any
 * memory was released (false where the C library has no malloc_trim).
 */
static napi_value js_trim_heap(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
#ifdef __GLIBC__
  napi_get_boolean(env, malloc_trim(0) == 1, &v);
#else
  napi_get_boolean(env, false, &v);
#endif
  return v;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, v;
  instance_t *in = calloc(1, sizeof(instance_t));
  napi_value handoff;
  void *hdata;
  if (!in || napi_create_buffer(env, HANDOFF_CAP, &hdata, &handoff) != napi_ok || napi_create_reference(env, handoff, 1, &in->handoff_ref) != napi_ok ||
      napi_set_instance_data(env, in, free_instance, NULL) != napi_ok) {
    napi_throw_error(env, NULL, "fast lane: out of memory");
    return NULL;
  }
  in->handoff = hdata;
  napi_property_descriptor props[] = {
    { "write", NULL, js_write, NULL, NULL, NULL, napi_default, NULL },
    { "resume", NULL, js_resume, NULL, NULL, NULL, napi_default, NULL },
    { "take", NULL, js_take, NULL, NULL, NULL, napi_default, NULL },
    { "bytesRead", NULL, js_bytes, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
    { "log", NULL, js_log, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_value cls;
  if (napi_define_class(env, "FastLane", NAPI_AUTO_LENGTH, js_ctor, NULL, sizeof(props) / sizeof(props[0]), props, &cls) != napi_ok ||
      napi_create_reference(env, cls, 1, &in->class_ref) != napi_ok) {
    napi_throw_error(env, NULL, "fast lane: cannot define its class");
    return NULL;
  }
  napi_create_function(env, "open", NAPI_AUTO_LENGTH, js_open, NULL, &fn);
  napi_set_named_property(env, exports, "open", fn);
  napi_create_function(env, "trimHeap", NAPI_AUTO_LENGTH, js_trim_heap, NULL, &fn);
  napi_set_named_property(env, exports, "trimHeap", fn);
  napi_create_uint32(env, LOG_HEAD, &v);
  napi_set_named_property(env, exports, "LOG_HEAD", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
