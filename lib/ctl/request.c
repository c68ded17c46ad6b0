/* Client request decoding and self-made answers: see request.h. */
#include "ctl/request.h"

#include <stdlib.h>

#include "ctl/socket.h"
#include "util/err.h"
#include "util/pbbudget.h"

int rd_ctl_request_decode(const uint8_t *buf, size_t len, Raftd__ClientRequest **out,
                          char *msg)
{
	struct rd_pb_budget b;
	Raftd__ClientRequest *req;

	rd_pb_budget_init(&b, RD_CTL_DECODE_BUDGET(len));
	req = raftd__client_request__unpack(&b.a, len, buf);
	if (req == NULL && b.spent)
		return rd_errorf(
		    msg, RD_EPROTO,
		    "request of %zu bytes needs more than %zu bytes to decode", len,
		    RD_CTL_DECODE_BUDGET(len));
	if (req == NULL)
		return rd_errorf(msg, RD_EPROTO, "request does not decode");
	*out = req;
	return 0;
}

void rd_ctl_request_free(Raftd__ClientRequest *req)
{
	if (req != NULL)
		raftd__client_request__free_unpacked(req, NULL);
}

uint8_t *rd_ctl_error_response(uint64_t request_id, Raftd__ErrorCode code,
                               const char *text, size_t *len)
{
	Raftd__ClientResponse resp = RAFTD__CLIENT_RESPONSE__INIT;
	uint8_t *buf;

	resp.request_id = request_id;
	resp.error = code;
	resp.error_message = (char *)text;
	*len = raftd__client_response__get_packed_size(&resp);
	buf = malloc(*len ? *len : 1);
	if (buf != NULL)
		raftd__client_response__pack(&resp, buf);
	return buf;
}

void rd_ctl_reply_response(struct rd_ctl_conn *conn, Raftd__ClientResponse *resp)
{
	size_t len = raftd__client_response__get_packed_size(resp);
	uint8_t *buf = malloc(len ? len : 1);

	if (buf == NULL) {
		rd_ctl_release(conn);
		return;
	}
	raftd__client_response__pack(resp, buf);
	rd_ctl_reply(conn, buf, len);
	free(buf);
}

bool rd_ctl_request_is_write(Raftd__ClientRequest__OpCase op)
{
	return op == RAFTD__CLIENT_REQUEST__OP_PUT ||
	       op == RAFTD__CLIENT_REQUEST__OP_DELETE ||
	       op == RAFTD__CLIENT_REQUEST__OP_CAS ||
	       op == RAFTD__CLIENT_REQUEST__OP_PROPOSE ||
	       op == RAFTD__CLIENT_REQUEST__OP_META_PUT;
}
