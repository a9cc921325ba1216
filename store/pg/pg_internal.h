/*
 * store/pg/pg_internal.h: the PostgreSQL store's parts (include/esr/pg_store.h).
 * docs/architecture.md has the map.
 *
 *   pg_sql.c   the schema, its migrations, the statements and their binary
 *              parameters and results: everything that speaks SQL
 *   pg_conn.c  a connection: connect, prepare, run a pipeline without
 *              blocking on a full socket, fence a lost session
 *   pg_writer.c  the append queue and one thread per connection that sends
 *              batches and settles them after a fault
 *   pg.c       the store: open, the vtable, reads and versions over a pool
 *   pg_all.c   the global order: read_all, head, and waiting at the head
 *   pg_snapshot.c  snapshots and checkpoints, on the read pool
 */
#ifndef ESR_STORE_PG_INTERNAL_H
#define ESR_STORE_PG_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "esr/esr.h"
#include "esr/pg_store.h"

#define ESR__PG_SCHEMA_MAX 48
/* A batch's payload bytes at most (one parameter of its statement); one
 * append larger than this goes alone. */
#define ESR__PG_BATCH_BYTES ((size_t)64 << 20)
#define ESR__PG_WHY_MAX 256

/* The statement names every connection prepares. */
#define ESR__PG_STMT_BATCH "esr_append_batch"
#define ESR__PG_STMT_READ "esr_read"
#define ESR__PG_STMT_VERSION "esr_version"
#define ESR__PG_STMT_FIND "esr_find"
#define ESR__PG_STMT_ALL "esr_all"
#define ESR__PG_STMT_HEAD "esr_head"
#define ESR__PG_STMT_SNAP_SAVE "esr_snap_save"
#define ESR__PG_STMT_SNAP_LOAD "esr_snap_load"
#define ESR__PG_STMT_CP_SAVE "esr_cp_save"
#define ESR__PG_STMT_CP_LOAD "esr_cp_load"
#define ESR__PG_STMT_COMMAND "esr_command"

/* The append statement's first result column: the append's outcome (a
 * duplicate: one of its command ids is recorded, nothing stored). */
enum { ESR__PG_APPENDED = 0, ESR__PG_CONFLICT = 1, ESR__PG_DUPLICATE = 2 };

/*
 * One append, copied: the events' fields side by side, ready to encode. Its
 * owner is the queue (under pg_store.lock), then the one writer thread that
 * took it, which calls `done` exactly once and frees it; nobody else touches
 * it after the take, so its fields need no ordering of their own.
 */
struct esr__pg_append {
	struct esr__pg_append *next;
	esr_append_cb done;
	void *ctx;
	uint64_t expected;      /* ESR_VERSION_ANY or an exact version */
	uint64_t queued_ms;     /* when it was taken (for timeout_ms) */
	uint64_t token;         /* the commit token of its last send, its own: no
	                           other append, of any batch, has it */
	int in_doubt;           /* its commit was in flight when the connection
	                           broke: settle it by `token` */
	size_t bytes;           /* the payloads' */
	uint32_t n;
	uint32_t runs;          /* runs of one command id among the events */
	uint32_t type_len, id_len;
	const char *type;
	const uint8_t *id;
	const esr_event *events; /* n events; payloads and command ids point into
	                            this block */
	esr_append_result result;
};

/* --- pg_sql.c ----------------------------------------------------------- */

/* A schema name esr accepts: 1..ESR__PG_SCHEMA_MAX of [a-z0-9_], no leading digit. */
int esr__pg_schema_valid(const char *schema);

/*
 * Create or upgrade the tables in `schema`, under an advisory lock so that
 * processes starting together do it once. ESR_ENOTSUP if the database's
 * schema is newer than this build; ESR_EIO with the server's reason in why.
 */
esr_status esr__pg_migrate_conn(PGconn *c, const char *schema, char *why, size_t why_size);
/* The same, stopping at schema version `upto` (tests build a schema 1 with it). */
esr_status esr__pg_migrate_conn_to(PGconn *c, const char *schema, int upto, char *why,
                              size_t why_size);
esr_status esr__pg_drop_conn(PGconn *c, const char *schema, char *why, size_t why_size);

/* Prepare the statements on a fresh connection. */
esr_status esr__pg_prepare(PGconn *c, const char *schema, char *why, size_t why_size);

/*
 * The parameters of one append_batch statement (a whole batch: per append
 * its commit token, stream, expected version and number of events, then
 * every event's fields, then every run of events with one command id),
 * encoded in binary into a buffer the caller reuses: valid until the next
 * esr__pg_params_build on it. ESR_ETOOBIG if they do not fit libpq's lengths.
 */
#define ESR__PG_BATCH_PARAMS 15
struct esr__pg_params {
	char *buf;
	size_t cap;
	const char *values[ESR__PG_BATCH_PARAMS];
	int lengths[ESR__PG_BATCH_PARAMS];
	int formats[ESR__PG_BATCH_PARAMS];
};
/* How many runs of consecutive events with one command id events[0..n) has. */
uint32_t esr__pg_runs(const esr_event *events, uint32_t n);
esr_status esr__pg_params_build(struct esr__pg_params *p, struct esr__pg_append *const *list, size_t n);
void esr__pg_params_free(struct esr__pg_params *p);

/* Read row `row` of an append_batch result into a->result. ESR_EIO if it
 * is malformed. */
esr_status esr__pg_append_result(const PGresult *r, int row, struct esr__pg_append *a);

/* Big-endian integers, as PostgreSQL's binary format has them. */
uint64_t esr__pg_get64(const char *p);
void esr__pg_put64(char *p, uint64_t v);
void esr__pg_put32(char *p, uint32_t v);
uint32_t esr__pg_get32(const char *p);

/*
 * Whether a failed result means the session is gone: the connection is bad,
 * or the server said so (class 08, connection exception; 57P01..57P03, the
 * backend terminated or the server shutting down), which it may say before
 * libpq has noticed the socket close.
 */
int esr__pg_session_lost(PGconn *c, const PGresult *r);

/* Drop the server's notices (a library must not write to stderr). */
void esr__pg_quiet(PGconn *c);

/* libpq's message without its trailing newline, into why. */
void esr__pg_why(char *why, size_t size, const char *what, const char *message);

/* --- pg_conn.c ---------------------------------------------------------- */

struct esr__pg_conn {
	PGconn *pg;
	int64_t fence;        /* this session's advisory lock key (see pg_fence) */
	char why[ESR__PG_WHY_MAX]; /* the last failure, for stats and logs */
};

/*
 * A plain connection, notices dropped: ESR_EINVAL for a connection string
 * libpq cannot parse, ESR_EIO for a server that cannot be reached or refuses
 * (libpq's reason in why), ESR_ENOMEM. *out is NULL on failure.
 */
esr_status esr__pg_connect(const char *conninfo, PGconn **out, char *why, size_t why_size);

/*
 * Connect with conninfo (esr__pg_connect, and its errors), take the session's
 * fence lock and prepare the statements.
 */
esr_status esr__pg_conn_open(struct esr__pg_conn *c, const char *conninfo, const char *schema);
void esr__pg_conn_close(struct esr__pg_conn *c);

/*
 * Wait until the session holding fence `key` has ended, terminating it if it
 * lingers (a backend that lost its client may still be committing), so that
 * whatever that session's transaction did is final. ESR_EIO if it cannot.
 */
esr_status esr__pg_fence_wait(struct esr__pg_conn *c, int64_t key);

/*
 * Send a prepared pipeline and take its results, never blocking on a full
 * socket. `send` queues the statements (it is called once, in pipeline
 * mode); `take` is called with each statement's result in order. Returns:
 *   ESR_OK        the Sync came back: the transaction committed;
 *   ESR_ECANCELED a statement failed with the connection intact: the
 *                 transaction rolled back (c->why has the server's reason;
 *                 *sqlstate its code, "" if none);
 *   ESR_EIO       the connection broke before the statements were all
 *                 queued: nothing was committed;
 *   ESR_EUNKNOWN  the connection broke after the Sync was queued: the commit
 *                 may have happened.
 */
/*
 * For tests only: when nonzero, every Nth pipeline (counted over the whole
 * process) closes its socket as if the network had dropped the reply: in
 * turn before the Sync, right after sending, and after the whole answer
 * (pg_conn.c says which commits when). The store must settle which. Tests set it with ck_pr_store_uint; the writer threads read it
 * with ck_pr_load_uint once per pipeline, so a change lands at the next one.
 */
extern unsigned esr__pg_lose_reply_every;

typedef esr_status (*pg_send_fn)(void *ctx, PGconn *pg);
typedef void (*pg_take_fn)(void *ctx, size_t i, const PGresult *r);
esr_status esr__pg_pipeline(struct esr__pg_conn *c, pg_send_fn send, pg_take_fn take, void *ctx,
                       char sqlstate[6]);

/* --- the store (pg.c) and its writers (pg_writer.c) ------------------------ */

struct esr__pg_stats {
	uint64_t appends, events, conflicts, round_trips, reconnects, resolved, resent, failed;
};

struct esr__pooled {
	struct esr__pooled *next;
	struct esr__pg_conn conn;
};

struct esr__pg_store {
	char *conninfo;
	char schema[ESR__PG_SCHEMA_MAX + 1];
	esr_pg_store_options o;
	pthread_mutex_t lock; /* the queue and `stopping` */
	pthread_cond_t work;
	struct esr__pg_append *head, *tail;
	int stopping;
	uint64_t token_base, token_seq;
	struct esr__pg_worker *workers;
	unsigned nworkers;
	pthread_mutex_t pool_lock;
	struct esr__pooled *pool; /* idle read connections */
	struct esr__pg_stats stats;  /* ck_pr_faa_64 / ck_pr_load_64 */
	/* Waiting at the head (pg_all.c): the highest position this store's
	 * writers have committed, and how many callers sleep on `committed`. */
	uint64_t written;       /* ck_pr */
	unsigned waiters;       /* ck_pr, changed under wait_lock */
	pthread_mutex_t wait_lock;
	pthread_cond_t committed;
	/* Other processes' commits (pg_listen.c): a thread LISTENing, started
	 * by the first wait; close writes to listen_stop to end it. */
	int listening; /* ck_pr; set under wait_lock */
	pthread_t listener;
	int listen_stop[2];
};

struct esr__pg_worker {
	struct esr__pg_store *s;
	pthread_t thread;
	int started;
	struct esr__pg_conn conn;
	int64_t lost_fence; /* the broken session whose commit is in doubt; 0: none */
	unsigned backoff_ms;
	struct esr__pg_append **batch; /* 2 * batch_max: the second half is the sort's */
	size_t n;
	struct esr__pg_params params;
};

/* Add to a counter of s->stats. */
void esr__pg_count(uint64_t *field, uint64_t by);

/* A connection's thread: take, send and settle batches until stopping. */
void *esr__pg_worker_main(void *arg);

/*
 * Run a prepared statement (binary parameters and results) on a pooled read
 * connection, retried once on a fresh one if the session was lost, and hand
 * its result to fn (then cleared; fn may be NULL) after the connection is
 * back in the pool, so that fn may read again.
 */
esr_status esr__pg_run_then(struct esr__pg_store *s, const char *stmt, int nparams,
                       const char *const *values, const int *lengths,
                       esr_status (*fn)(const PGresult *r, void *ctx), void *ctx);

/*
 * Visit a read's rows: (version, event_type, payload, correlation,
 * causation, timestamp, position, command_id), after (stream_type, stream_id) when
 * stream is NULL (a global read). *last gets the position of the last event
 * the visitor accepted, and stays as it was if none was.
 */
esr_status esr__pg_visit_rows(const PGresult *r, const esr_stream_id *stream,
                         esr_visit_fn visit, void *ctx, uint64_t *last);

/* One int8 from the first row into *(uint64_t *)ctx; 0 if there is no row. */
esr_status esr__pg_one_int8(const PGresult *r, void *ctx);

/* pg_all.c: a writer committed positions up to `last`: wake who waits. */
void esr__pg_all_committed(struct esr__pg_store *s, uint64_t last);

esr_status esr__pg_read_all(void *impl, uint64_t from, size_t max, esr_visit_fn visit,
                       void *ctx, uint64_t *next);
esr_status esr__pg_head(void *impl, uint64_t *position);
esr_status esr__pg_wait(void *impl, uint64_t after, unsigned timeout_ms);

/* pg_listen.c: start the thread that turns other processes' commits into
 * esr__pg_all_committed (once; a failure leaves waits to their timeouts),
 * and stop it at close. */
void esr__pg_listen_start(struct esr__pg_store *s);
void esr__pg_listen_stop(struct esr__pg_store *s);

/* pg_snapshot.c */
esr_status esr__pg_snapshot_save(void *impl, const esr_stream_id *stream,
                            const esr_snapshot *snap);
esr_status esr__pg_snapshot_load(void *impl, const esr_stream_id *stream, esr_snapshot_fn fn,
                            void *ctx);
esr_status esr__pg_checkpoint_save(void *impl, const char *name, uint64_t position);
esr_status esr__pg_checkpoint_load(void *impl, const char *name, uint64_t *position);

#endif /* ESR_STORE_PG_INTERNAL_H */
