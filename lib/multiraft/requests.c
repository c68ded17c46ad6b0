/*
 * Local client requests (proto/raftd.proto ClientRequest) -> the node.
 * Data requests need readiness; status, groups, members, ready and
 * shutdown are always answered. Malformed frames get an INVALID response
 * and are counted; the connection stays usable.
 */
#include <stdlib.h>
#include <string.h>

#include "ctl/request.h"
#include "ctl/socket.h"
#include "cluster/members.h"
#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "storage/kv.h"
#include "transport/wire.h"
#include "util/err.h"
#include "util/log.h"

/* Reply target for local clients: ud is the connection. */
static void reply_client(void *ud, uint64_t request_id, const struct rd_result *res)
{
	struct rd_ctl_conn *conn = ud;
	Raftd__ClientResponse resp = RAFTD__CLIENT_RESPONSE__INIT;
	Raftd__ValueResult val = RAFTD__VALUE_RESULT__INIT;
	Raftd__IndexResult idx = RAFTD__INDEX_RESULT__INIT;
	uint8_t stackbuf[512], *buf = stackbuf;
	size_t len;

	resp.request_id = request_id;
	resp.error = (Raftd__ErrorCode)res->code;
	resp.error_message = (char *)(res->message != NULL ? res->message : "");
	resp.leader_hint = res->leader_hint;
	if (res->has_value) {
		val.found = res->found;
		val.value.data = (uint8_t *)res->value;
		val.value.len = res->value_len;
		resp.result_case = RAFTD__CLIENT_RESPONSE__RESULT_VALUE;
		resp.value = &val;
	} else if (res->index != 0) {
		idx.group = res->group;
		idx.index = res->index;
		resp.result_case = RAFTD__CLIENT_RESPONSE__RESULT_INDEX;
		resp.index = &idx;
	}
	len = raftd__client_response__get_packed_size(&resp);
	if (len > sizeof stackbuf) {
		buf = malloc(len);
		if (buf == NULL) {
			rd_ctl_release(conn);
			return;
		}
	}
	raftd__client_response__pack(&resp, buf);
	rd_ctl_reply(conn, buf, len);
	if (buf != stackbuf)
		free(buf);
}

static void reply_code(struct rd_ctl_conn *conn, uint64_t id, int code,
                       const char *message)
{
	struct rd_result r = {.code = code, .message = message};
	reply_client(conn, id, &r);
}

static uint64_t deadline(const struct rd_node *n, const Raftd__ClientRequest *req)
{
	uint32_t ms = req->deadline_ms ? req->deadline_ms : n->cfg.request_timeout_ms;
	return rd_clock_now_ns() + (uint64_t)ms * 1000000ull;
}

/* Encode a KV command and submit it as a write to `group`. */
/* Encode a KV command, with the request's client session (kv.h: the
 * session travels inside the command, so a forwarded write carries it to
 * the leader's state machine unchanged), and submit it as a write to
 * `group`. */
static void submit_write(struct rd_node *n, struct rd_ctl_conn *conn,
                         const Raftd__ClientRequest *req, uint64_t group,
                         struct rd_kv_cmd *cmd)
{
	struct rd_waiter *w;
	int err;

	if (req->client_id != 0 && req->sequence == 0) {
		reply_code(conn, req->request_id, RAFTD__ERROR_CODE__INVALID,
		           "a request with a client_id needs a sequence from 1");
		return;
	}
	cmd->client_id = req->client_id;
	cmd->sequence = req->client_id != 0 ? req->sequence : 0;
	w = rd_waiter_new_write(reply_client, conn, req->request_id, deadline(n, req),
	                        group, cmd, &err);
	if (w == NULL && err == RD_ENOMEM) {
		reply_code(conn, req->request_id, RAFTD__ERROR_CODE__INTERNAL,
		           "out of memory");
		return;
	}
	if (w == NULL) {
		reply_code(conn, req->request_id, RAFTD__ERROR_CODE__INVALID,
		           "key must be 1..4096 bytes and value at most 1 MiB");
		return;
	}
	rd_node_submit(n, w);
}

static void submit_read(struct rd_node *n, struct rd_ctl_conn *conn,
                        const Raftd__ClientRequest *req, uint64_t group,
                        const ProtobufCBinaryData *key, bool stale)
{
	struct rd_waiter *w;

	if (key->len == 0 || key->len > RD_KV_KEY_MAX) {
		reply_code(conn, req->request_id, RAFTD__ERROR_CODE__INVALID,
		           "key must be 1..4096 bytes");
		return;
	}
	w = rd_waiter_new(RD_WAIT_FORWARD, reply_client, conn, req->request_id,
	                  deadline(n, req));
	if (w == NULL || (w->data = malloc(key->len)) == NULL) {
		free(w);
		reply_code(conn, req->request_id, RAFTD__ERROR_CODE__INTERNAL,
		           "out of memory");
		return;
	}
	memcpy(w->data, key->data, key->len);
	w->len = key->len;
	w->group = group;
	w->op = stale ? RD_OP_STALE_READ : RD_OP_READ;
	rd_node_submit(n, w);
}

static uint64_t group_of_key(const struct rd_node *n, const ProtobufCBinaryData *key)
{
	return rd_routing_group_of(&n->topo.routing, rd_kv_vshard(key->data, key->len));
}

/* submit_write of the key-value command `op` on `key` (and `value`, NULL
 * for none), with what *cmd already holds (a CAS's expectation). */
static void submit_kv(struct rd_node *n, struct rd_ctl_conn *conn,
                      const Raftd__ClientRequest *req, uint64_t group,
                      struct rd_kv_cmd *cmd, uint8_t op, const ProtobufCBinaryData *key,
                      const ProtobufCBinaryData *value)
{
	cmd->op = op;
	cmd->key = key->data;
	cmd->key_len = (uint32_t)key->len;
	if (value != NULL) {
		cmd->value = value->data;
		cmd->value_len = (uint32_t)value->len;
	}
	submit_write(n, conn, req, group, cmd);
}

/* Every group's state machine keeps its replicas' incarnations under the
 * reserved prefix (cluster/members.h): clients write no key there. */
static bool refuse_reserved(struct rd_ctl_conn *conn, const Raftd__ClientRequest *req,
                            const ProtobufCBinaryData *key)
{
	if (!rd_members_reserved(key->data, key->len))
		return false;
	reply_code(conn, req->request_id, RAFTD__ERROR_CODE__INVALID,
	           "keys that start with a NUL byte and \"raftd/member/\" hold "
	           "replica identities and are written by raftd only");
	return true;
}

static void data_request(struct rd_node *n, struct rd_ctl_conn *conn,
                         const Raftd__ClientRequest *req)
{
	struct rd_kv_cmd cmd = {0};

	if ((req->op_case == RAFTD__CLIENT_REQUEST__OP_PUT &&
	     refuse_reserved(conn, req, &req->put->key)) ||
	    (req->op_case == RAFTD__CLIENT_REQUEST__OP_DELETE &&
	     refuse_reserved(conn, req, &req->delete_->key)) ||
	    (req->op_case == RAFTD__CLIENT_REQUEST__OP_CAS &&
	     refuse_reserved(conn, req, &req->cas->key)))
		return;
	switch (req->op_case) {
	case RAFTD__CLIENT_REQUEST__OP_PUT:
		submit_kv(n, conn, req, group_of_key(n, &req->put->key), &cmd, RD_KV_PUT,
		          &req->put->key, &req->put->value);
		return;
	case RAFTD__CLIENT_REQUEST__OP_DELETE:
		submit_kv(n, conn, req, group_of_key(n, &req->delete_->key), &cmd,
		          RD_KV_DELETE, &req->delete_->key, NULL);
		return;
	case RAFTD__CLIENT_REQUEST__OP_CAS:
		cmd.has_expected = !req->cas->expected_absent;
		cmd.expected = req->cas->expected.data;
		cmd.expected_len = (uint32_t)req->cas->expected.len;
		submit_kv(n, conn, req, group_of_key(n, &req->cas->key), &cmd, RD_KV_CAS,
		          &req->cas->key, &req->cas->value);
		return;
	case RAFTD__CLIENT_REQUEST__OP_PROPOSE:
		if (req->propose->vshard >= RD_VSHARDS) {
			reply_code(conn, req->request_id, RAFTD__ERROR_CODE__INVALID,
			           "vshard must be 0..1023");
			return;
		}
		cmd.op = RD_KV_RAW;
		cmd.value = req->propose->data.data;
		cmd.value_len = (uint32_t)req->propose->data.len;
		submit_write(n, conn, req,
		             rd_routing_group_of(&n->topo.routing, req->propose->vshard),
		             &cmd);
		return;
	case RAFTD__CLIENT_REQUEST__OP_META_PUT:
		if (rd_members_reserved(req->meta_put->key.data,
		                        req->meta_put->key.len)) {
			reply_code(
			    conn, req->request_id, RAFTD__ERROR_CODE__INVALID,
			    "keys that start with a NUL byte and \"raftd/member/\" "
			    "hold the member table and are written by raftd only");
			return;
		}
		submit_kv(n, conn, req, 0, &cmd, RD_KV_PUT, &req->meta_put->key,
		          &req->meta_put->value);
		return;
	case RAFTD__CLIENT_REQUEST__OP_SEND:
		rd_node_envelope_send(n, conn, req, deadline(n, req));
		return;
	case RAFTD__CLIENT_REQUEST__OP_HANDLE:
		rd_node_envelope_handle(n, conn, req);
		return;
	case RAFTD__CLIENT_REQUEST__OP_GET:
		submit_read(n, conn, req, group_of_key(n, &req->get->key), &req->get->key,
		            req->get->stale);
		return;
	case RAFTD__CLIENT_REQUEST__OP_META_GET:
		submit_read(n, conn, req, 0, &req->meta_get->key, req->meta_get->stale);
		return;
	case RAFTD__CLIENT_REQUEST__OP_BACKUP:
		rd_backup_start(n, conn, req);
		return;
	default:
		reply_code(conn, req->request_id, RAFTD__ERROR_CODE__INVALID,
		           "unknown request");
	}
}

static void ready_request(struct rd_node *n, struct rd_ctl_conn *conn,
                          const Raftd__ClientRequest *req)
{
	struct rd_waiter *w;

	if (n->ready) {
		reply_code(conn, req->request_id, RAFTD__ERROR_CODE__OK, NULL);
		return;
	}
	w = rd_waiter_new(RD_WAIT_READY, reply_client, conn, req->request_id,
	                  rd_clock_now_ns() + (uint64_t)req->deadline_ms * 1000000ull);
	if (w == NULL) {
		reply_code(conn, req->request_id, RAFTD__ERROR_CODE__INTERNAL,
		           "out of memory");
		return;
	}
	rd_waitq_push(&n->ready_waiters, w);
}

static void transfer_request(struct rd_node *n, struct rd_ctl_conn *conn,
                             const Raftd__ClientRequest *req)
{
	struct rd_group *g = rd_node_group(n, req->transfer_leader->group);
	int rv;

	if (g == NULL) {
		reply_code(conn, req->request_id, RAFTD__ERROR_CODE__NOT_FOUND,
		           "group not hosted on this node");
		return;
	}
	if (rd_health_peer_slow(n, req->transfer_leader->node_id)) {
		reply_code(conn, req->request_id, rd_err_to_wire(RD_EBUSY),
		           "the target reports a slow disk and takes no leadership");
		return;
	}
	rv = rd_raft_transfer_leader(g->raft, req->transfer_leader->node_id);
	if (rv == RD_ENOTLEADER) {
		struct rd_result r = {.code = rd_err_to_wire(rv),
		                      .leader_hint = rd_raft_leader(g->raft),
		                      .message = "ask the group's leader"};
		reply_client(conn, req->request_id, &r);
		return;
	}
	if (rv != 0) {
		reply_code(conn, req->request_id, rd_err_to_wire(rv),
		           rv == RD_EBUSY ? "a transfer is already in progress"
		                          : "the target is not a voter of the group");
		return;
	}
	rd_log_info("leadership transfer started group=%llu to=%llu",
	            (unsigned long long)g->id,
	            (unsigned long long)req->transfer_leader->node_id);
	rd_node_touch(n, g);
	rd_node_wake(n);
	reply_code(conn, req->request_id, RAFTD__ERROR_CODE__OK, NULL);
}

/* A request that needs a ready node: answer SHUTTING_DOWN or NOT_READY
 * and return true when this node cannot serve it now. */
static bool refused_unready(struct rd_node *n, struct rd_ctl_conn *conn, uint64_t id)
{
	if (n->stopping)
		reply_code(conn, id, RAFTD__ERROR_CODE__SHUTTING_DOWN,
		           "node is shutting down");
	else if (!n->ready)
		reply_code(conn, id, RAFTD__ERROR_CODE__NOT_READY,
		           "node has not caught up with the metadata group yet");
	else
		return false;
	return true;
}

void rd_requests_on_frame(void *ud, struct rd_ctl_conn *conn, const uint8_t *frame,
                          size_t len)
{
	struct rd_node *n = ud;
	Raftd__ClientRequest *req = NULL;
	Raftd__ClientResponse resp = RAFTD__CLIENT_RESPONSE__INIT;
	char msg[RD_ERRMSG_SIZE];

	if (rd_ctl_request_decode(frame, len, &req, msg) != 0) {
		n->loop.malformed_client++;
		rd_log_warn("ctl: malformed request pid=%d uid=%u bytes=%zu: %s",
		            (int)rd_ctl_conn_pid(conn), (unsigned)rd_ctl_conn_uid(conn),
		            len, msg);
		reply_code(conn, 0, RAFTD__ERROR_CODE__INVALID, msg);
		return;
	}
	resp.request_id = req->request_id;
	switch (req->op_case) {
	case RAFTD__CLIENT_REQUEST__OP_STATUS:
		rd_requests_status(n, &resp, rd_ctl_reply_response, conn);
		break;
	case RAFTD__CLIENT_REQUEST__OP_GROUPS:
		rd_requests_groups(n, &resp, rd_ctl_reply_response, conn);
		break;
	case RAFTD__CLIENT_REQUEST__OP_MEMBERS:
		rd_requests_members(n, &resp, rd_ctl_reply_response, conn);
		break;
	case RAFTD__CLIENT_REQUEST__OP_READY:
		ready_request(n, conn, req);
		break;
	case RAFTD__CLIENT_REQUEST__OP_SHUTDOWN:
		reply_code(conn, req->request_id, RAFTD__ERROR_CODE__OK, NULL);
		rd_log_notice("shutdown requested by client pid=%d uid=%u",
		              (int)rd_ctl_conn_pid(conn),
		              (unsigned)rd_ctl_conn_uid(conn));
		rd_node_shutdown(n);
		break;
	case RAFTD__CLIENT_REQUEST__OP_TRANSFER_LEADER:
		rd_log_notice("leadership transfer requested by client pid=%d uid=%u",
		              (int)rd_ctl_conn_pid(conn),
		              (unsigned)rd_ctl_conn_uid(conn));
		transfer_request(n, conn, req);
		break;
	case RAFTD__CLIENT_REQUEST__OP_MEMBERS_ADD:
	case RAFTD__CLIENT_REQUEST__OP_MEMBERS_REMOVE:
	case RAFTD__CLIENT_REQUEST__OP_MEMBERS_PROMOTE:
		rd_log_notice("membership change requested by client pid=%d uid=%u",
		              (int)rd_ctl_conn_pid(conn),
		              (unsigned)rd_ctl_conn_uid(conn));
		rd_membership_request(n, reply_client, conn, req);
		break;
	case RAFTD__CLIENT_REQUEST__OP_CREDIT:
		rd_subs_credit(n, conn, req);
		break;
	case RAFTD__CLIENT_REQUEST__OP_SUBSCRIBE:
		if (!refused_unready(n, conn, req->request_id))
			rd_subs_subscribe(n, conn, req);
		break;
	case RAFTD__CLIENT_REQUEST__OP_DELIVERY_REPLY:
		rd_node_envelope_reply(n, conn, req);
		break;
	case RAFTD__CLIENT_REQUEST__OP__NOT_SET:
		n->loop.malformed_client++;
		reply_code(conn, req->request_id, RAFTD__ERROR_CODE__INVALID,
		           "no operation set");
		break;
	default:
		if (refused_unready(n, conn, req->request_id))
			break;
		if (rd_ctl_request_is_write(req->op_case) &&
		    rd_ctl_conn_first_write(conn))
			rd_log_info("ctl: writes from client pid=%d uid=%u",
			            (int)rd_ctl_conn_pid(conn),
			            (unsigned)rd_ctl_conn_uid(conn));
		data_request(n, conn, req);
		break;
	}
	rd_ctl_request_free(req);
}
