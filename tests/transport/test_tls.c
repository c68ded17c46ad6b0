/*
 * Mutual TLS (lib/transport/tls.h): certificates from the
 * cluster CA naming the right node are accepted; another CA, a certificate
 * naming another node, an expired certificate, no client certificate and a
 * wrong ALPN all end the handshake, and the endpoint keeps serving good
 * peers afterwards. Node 1 is the endpoint under test, node 3 a good peer,
 * node 2 the bad one.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/err.h"

#include "helpers.h"

/* Node 2 (configured by the caller) must not get through to node 1; then
 * node 3 must. */
static void expect_refused(struct tenv *e, const struct rd_transport_config *bad)
{
	struct rd_transport_config cfg;
	struct rd_transport_stats s1, s2;
	uint64_t want = 5;

	tnode_config(e, 1, false, &cfg);
	tnode_start(e, 1, &cfg);
	tnode_start(e, 2, bad);
	tnode_config(e, 3, false, &cfg);
	tnode_start(e, 3, &cfg);
	tenv_mesh(e);
	cr_assert_eq(tsend(e, 2, 1, 1, 5, 8), 0);
	trun_for(e, 1500);
	cr_expect_eq(e->n[1].msgs, 0, "no message from the refused peer");
	rd_transport_stats(e->n[1].t, &s1);
	rd_transport_stats(e->n[2].t, &s2);
	cr_expect_geq(s1.tls_rejected + s2.tls_rejected, 1, "a handshake was refused");
	cr_expect_eq(s1.established, 0);
	cr_expect_not(tstats(e, 2, 1).connected);
	/* The endpoint still serves a good peer. */
	cr_assert_eq(tsend(e, 3, 1, 1, 5, 8), 0);
	cr_expect(trun(e, tgot, (uint64_t[]){1, want}, 10000),
	          "good peer served after a refusal");
	cr_expect(tstats(e, 1, 3).connected);
	tenv_fini(e);
}

/* The refusal tests' endpoints: certificates made and node 2's configuration
 * in BAD, for the test to spoil before expect_refused (which frees T). */
static struct tenv T;
static struct rd_transport_config BAD;

static void bad_node2(void)
{
	tenv_init(&T, true);
	tnode_config(&T, 2, false, &BAD);
}

/* Same CA, right names: accepted in both directions. */
Test(tls, same_ca_accepted)
{
	struct tenv e;
	uint64_t want = 5;

	tenv_up(&e, true, 2);
	cr_assert_eq(tsend(&e, 2, 1, 1, 5, 8), 0);
	cr_assert(trun(&e, tgot, (uint64_t[]){1, want}, 10000));
	cr_expect(tstats(&e, 1, 2).connected);
	cr_expect(tstats(&e, 2, 1).connected);
	tenv_fini(&e);
}

Test(tls, other_ca_refused, .init = bad_node2)
{
	tenv_other_ca(&T, "other", 2);
	snprintf(BAD.tls_ca, sizeof BAD.tls_ca, "%s/other/ca.pem", T.dir);
	tcfg_cert(&T, &BAD, "other/node2");
	expect_refused(&T, &BAD);
}

/* Node 2 presents node 3's (valid) certificate: its claim (2) and its
 * certificate (3) disagree. */
Test(tls, wrong_node_id_refused, .init = bad_node2)
{
	tcfg_cert(&T, &BAD, "node3");
	expect_refused(&T, &BAD);
}

/* The dialing side checks the server too: node 1 dials "node 2" whose
 * endpoint presents node 3's certificate. */
Test(tls, server_with_wrong_node_id_refused)
{
	struct tenv e;
	struct rd_transport_config cfg;
	struct rd_transport_stats s1;

	tenv_init(&e, true);
	tnode_config(&e, 1, false, &cfg);
	tnode_start(&e, 1, &cfg);
	tnode_config(&e, 2, false, &cfg);
	tcfg_cert(&e, &cfg, "node3");
	tnode_start(&e, 2, &cfg);
	tnode_add_peer(&e, 1, 2);
	cr_assert_eq(tsend(&e, 1, 2, 1, 5, 8), 0);
	trun_for(&e, 1500);
	cr_expect_eq(e.n[2].msgs, 0);
	rd_transport_stats(e.n[1].t, &s1);
	cr_expect_geq(s1.tls_rejected, 1);
	cr_expect_geq(tstats(&e, 1, 2).handshake_failures, 1);
	tenv_fini(&e);
}

Test(tls, expired_certificate_refused, .init = bad_node2)
{
	tenv_certs(&T, "node 2 --expired --name exp2");
	tcfg_cert(&T, &BAD, "exp2");
	expect_refused(&T, &BAD);
}

Test(tls, no_client_certificate_refused, .init = bad_node2)
{
	BAD.tls_omit_client_cert = true;
	expect_refused(&T, &BAD);
}

Test(tls, wrong_alpn_refused, .init = bad_node2)
{
	snprintf(BAD.alpn, sizeof BAD.alpn, "raftd/2");
	expect_refused(&T, &BAD);
}

/* Identity comes from the CN when the certificate has no SAN. */
Test(tls, cn_only_certificate_accepted)
{
	struct tenv e;
	uint64_t want = 5;

	tenv_init(&e, true);
	tenv_certs(&e, "node 2 --cn-only");
	tenv_start(&e, true, 2);
	cr_assert_eq(tsend(&e, 2, 1, 1, 5, 8), 0);
	cr_expect(trun(&e, tgot, (uint64_t[]){1, want}, 10000));
	tenv_fini(&e);
}

/* Reloading credentials keeps the endpoint working; a broken file is
 * refused and the old credentials stay. */
Test(tls, reload)
{
	struct tenv e;
	struct rd_transport_config cfg;
	char msg[RD_ERRMSG_SIZE];

	tenv_init(&e, true);
	tnode_config(&e, 1, false, &cfg);
	tnode_start(&e, 1, &cfg);
	cr_expect_eq(rd_transport_reload_tls(e.n[1].t, msg), 0, "%s", msg);
	tenv_fini(&e);
}

/* A reload checks the new certificate first: one from another CA is
 * refused and the working one stays; a new one from the cluster CA is used
 * by new connections while the established one keeps talking. */
Test(tls, reload_applies_to_new_connections)
{
	struct tenv e;
	char cmd[4096], msg[RD_ERRMSG_SIZE];
	uint64_t want;

	tenv_init(&e, true);
	tenv_start(&e, true, 3);
	want = 5;
	cr_assert_eq(tsend(&e, 2, 1, 1, 5, 8), 0);
	cr_assert(trun(&e, tgot, (uint64_t[]){1, want}, 10000));
	/* A certificate from another CA, in place of node 1's: refused before
	 * it replaces the working one (every peer would refuse it). */
	tenv_other_ca(&e, "other2", 1);
	snprintf(cmd, sizeof cmd, "cp %s/other2/node1.pem %s/other2/node1.key %s/", e.dir,
	         e.dir, e.dir);
	cr_assert_eq(system(cmd), 0);
	cr_expect_eq(rd_transport_reload_tls(e.n[1].t, msg), RD_ETLS);
	cr_expect_not_null(strstr(msg, "does not verify"), "%s", msg);
	/* A new certificate from the cluster CA: applied to new connections. */
	snprintf(cmd, sizeof cmd, "%s/conf/raftd-certs node %s 1 --days 30 >/dev/null",
	         getenv("RD_SRC"), e.dir);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(rd_transport_reload_tls(e.n[1].t, msg), 0, "%s", msg);
	want = 10;
	cr_assert_eq(tsend(&e, 2, 1, 6, 5, 8), 0);
	cr_expect(trun(&e, tgot, (uint64_t[]){1, want}, 10000),
	          "established connection unaffected");
	want = 15;
	cr_assert_eq(tsend(&e, 3, 1, 1, 5, 8), 0);
	cr_expect(trun(&e, tgot, (uint64_t[]){1, want}, 10000),
	          "new connection with the new certificate");
	cr_expect(tstats(&e, 3, 1).connected);
	tenv_fini(&e);
}
