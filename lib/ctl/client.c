/*
 * The client's side of the local socket: requests packed into frames.
 * Failure modes: out of memory (RD_ENOMEM, nothing written) and the
 * write's own (util/frame.c), after which the connection is unusable.
 */
#include "ctl/client.h"

#include <stdlib.h>

#include "util/err.h"
#include "util/frame.h"

int rd_ctl_send_request(int fd, const Raftd__ClientRequest *req)
{
	size_t len = raftd__client_request__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	int rv;

	if (buf == NULL)
		return RD_ENOMEM;
	raftd__client_request__pack(req, buf);
	rv = rd_frame_write_fd(fd, buf, len);
	free(buf);
	return rv;
}

int rd_ctl_send_credit(int fd, uint64_t request_id, uint64_t subscription,
                       uint32_t credit)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__CreditRequest c = RAFTD__CREDIT_REQUEST__INIT;

	c.subscription = subscription;
	c.credit = credit;
	req.request_id = request_id;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_CREDIT;
	req.credit = &c;
	return rd_ctl_send_request(fd, &req);
}
