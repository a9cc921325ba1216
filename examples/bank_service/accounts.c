/*
 * accounts.c: the account endpoints. A request becomes a command or query
 * submitted to the runtime with a callback; the connection is suspended
 * until the callback (on an esr worker) has stored the outcome and resumed
 * it; the handler, called again, turns the outcome into the answer. No HTTP
 * thread ever waits for a command.
 */
#include <string.h>

#include <jansson.h>

#include "service.h"

/*
 * The outcome is in: wake the handler. The flag and the suspension are both
 * decided under the request's lock, so a connection is resumed only after
 * it was suspended, and never twice.
 */
static void finish(struct request *req)
{
	int resume;

	pthread_mutex_lock(&req->lock);
	req->done = 1;
	resume = req->suspended;
	req->suspended = 0;
	pthread_mutex_unlock(&req->lock);
	if (resume)
		MHD_resume_connection(req->conn);
}

/* A GET's query completed (on a worker). */
static void on_query_get(void *ctx, esr_status status, const esr_result *result)
{
	struct request *req = ctx;

	req->status = status;
	if (result != NULL)
		req->result = *result;
	finish(req);
}

/* A duplicate's balance query completed (on a worker). */
static void on_query_duplicate(void *ctx, esr_status status, const esr_result *result)
{
	struct request *req = ctx;

	(void)result; /* the answer keeps the original command's version */
	req->query_status = status;
	finish(req);
}

/*
 * A command completed (on a worker). A duplicate was not decided again, so
 * its balance is read by a query queued behind it; with the mailbox
 * configured to fail rather than wait, that submit never blocks the worker.
 */
static void on_command(void *ctx, esr_status status, const esr_result *result)
{
	struct request *req = ctx;
	esr_status st;

	req->status = status;
	if (result != NULL)
		req->result = *result;
	if (status == ESR_OK && result != NULL && result->duplicate) {
		st = esr_query_cb(req->svc->rt, BANK_TYPE, req->id, req->id_len, bank_read,
		                  &req->view, on_query_duplicate, req);
		if (st == ESR_OK)
			return;
		req->query_status = st;
	}
	finish(req);
}

/* The answer to a status other than ESR_OK (a submit's or a completion's). */
static enum MHD_Result answer_error(struct request *req, esr_status st,
                                    const esr_result *result)
{
	char text[ESR_CONFLICT_TEXT_MAX];

	if (result == NULL && (st == ESR_EREJECTED || st == ESR_ECONFLICT))
		return http_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, esr_strerror(st));
	switch (st) {
	case ESR_EREJECTED:
		return http_json(req, MHD_HTTP_UNPROCESSABLE_CONTENT,
		                 json_pack("{s:s,s:i,s:s}", "error",
		                           bank_rejection_text(result->rejection), "code",
		                           result->rejection, "reason",
		                           bank_rejection_reason(result->rejection)));
	case ESR_ECONFLICT:
		if (esr_conflict_format(&result->conflict, text, sizeof text) != ESR_OK)
			strcpy(text, esr_strerror(st));
		return http_error(req, MHD_HTTP_CONFLICT, text);
	case ESR_EBUSY:
		return http_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "account busy: mailbox full");
	case ESR_ESHUTDOWN:
		return http_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "stopping");
	case ESR_EUNKNOWN:
		return http_json(req, MHD_HTTP_SERVICE_UNAVAILABLE,
		                 json_pack("{s:s,s:s}", "error", esr_strerror(st), "outcome",
		                           "unknown"));
	case ESR_EINVAL:
	case ESR_ETOOBIG:
		return http_error(req, MHD_HTTP_BAD_REQUEST, esr_strerror(st));
	default:
		return http_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, esr_strerror(st));
	}
}

/* A command's 200: the balance its own events produced, or (duplicate) the
 * balance now with the original command's version. */
static enum MHD_Result answer_command(struct request *req)
{
	int dup = req->result.duplicate != 0;

	if (req->status != ESR_OK)
		return answer_error(req, req->status, &req->result);
	if (dup && req->query_status != ESR_OK)
		return answer_error(req, req->query_status, &req->result);
	return http_json(req, MHD_HTTP_OK,
	                 json_pack("{s:s%,s:I,s:I,s:b}", "account", req->id, req->id_len,
	                           "version", (json_int_t)req->result.version, "balance",
	                           (json_int_t)(dup ? req->view.balance
	                                            : req->cmd.balance_after),
	                           "duplicate", dup));
}

/* A GET's answer: 404 for an account never opened. */
static enum MHD_Result answer_get(struct request *req)
{
	if (req->status != ESR_OK)
		return answer_error(req, req->status, &req->result);
	if (!req->view.open)
		return http_error(req, MHD_HTTP_NOT_FOUND, "account not found");
	return http_json(req, MHD_HTTP_OK,
	                 json_pack("{s:s%,s:I,s:I,s:b}", "account", req->id, req->id_len,
	                           "version", (json_int_t)req->result.version, "balance",
	                           (json_int_t)req->view.balance, "open", 1));
}

static enum MHD_Result answer(struct request *req)
{
	req->pending = 0;
	if (req->route == ROUTE_ACCOUNT_GET)
		return answer_get(req);
	return answer_command(req);
}

/* After a submit: answer now if the callback already ran, else suspend
 * until it resumes the connection. */
static enum MHD_Result wait_or_answer(struct request *req)
{
	pthread_mutex_lock(&req->lock);
	if (!req->done) {
		req->suspended = 1;
		MHD_suspend_connection(req->conn);
		pthread_mutex_unlock(&req->lock);
		return MHD_YES;
	}
	pthread_mutex_unlock(&req->lock);
	return answer(req);
}

enum MHD_Result accounts_resumed(struct request *req)
{
	return wait_or_answer(req);
}

/* Ids travel in JSON answers and events: they must be UTF-8 text. */
static int id_is_text(const struct request *req)
{
	json_t *s = json_stringn(req->id, req->id_len);

	json_decref(s);
	return s != NULL;
}

/* Read {"amount": N}: 0 and *amount set, or an answer's message. */
static const char *parse_amount(const struct request *req, enum bank_kind kind,
                                int64_t *amount)
{
	json_error_t err;
	json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
	json_t *value = json_is_object(body) ? json_object_get(body, "amount") : NULL;
	const char *why = NULL;
	json_int_t v;

	if (body == NULL || !json_is_object(body))
		why = "malformed JSON: expected an object";
	else if (value == NULL)
		why = "missing amount";
	else if (!json_is_integer(value))
		why = "amount must be an integer";
	else if ((v = json_integer_value(value)) < 0 || (v == 0 && kind != BANK_OPEN))
		why = "amount must be positive";
	else if (v > BANK_AMOUNT_MAX)
		why = "amount over the limit of 1000000000000";
	else
		*amount = v;
	json_decref(body);
	return why;
}

enum MHD_Result accounts_post(struct request *req, enum bank_kind kind)
{
	esr_command_id cid = {req->key, req->key_len};
	const char *why;
	esr_status st;

	if (!id_is_text(req))
		return http_error(req, MHD_HTTP_BAD_REQUEST, "account id is not UTF-8 text");
	if ((why = parse_amount(req, kind, &req->cmd.amount)) != NULL)
		return http_error(req, MHD_HTTP_BAD_REQUEST, why);
	req->cmd.kind = kind;
	req->pending = 1;
	st = esr_submit_cb_id(req->svc->rt, BANK_TYPE, req->id, req->id_len, &req->cmd,
	                      req->key_len ? &cid : NULL, on_command, req);
	if (st != ESR_OK) {
		req->pending = 0;
		return answer_error(req, st, NULL);
	}
	return wait_or_answer(req);
}

enum MHD_Result accounts_get(struct request *req)
{
	esr_status st;

	if (!id_is_text(req))
		return http_error(req, MHD_HTTP_BAD_REQUEST, "account id is not UTF-8 text");
	req->pending = 1;
	st = esr_query_cb(req->svc->rt, BANK_TYPE, req->id, req->id_len, bank_read,
	                  &req->view, on_query_get, req);
	if (st != ESR_OK) {
		req->pending = 0;
		return answer_error(req, st, NULL);
	}
	return wait_or_answer(req);
}
