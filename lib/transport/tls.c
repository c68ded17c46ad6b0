/*
 * TLS 1.3 for QUIC (RFC 9001) through wolfSSL.
 *
 * Happy path (mutual): both contexts trust the cluster CA and present this
 * node's certificate. The client offers ALPN "raftd/1" and names itself in
 * SNI as "raftd-node-<id>"; the server's SNI callback records that claim;
 * each side's verify callback, on the peer's leaf certificate, extracts the
 * node id (SAN DNS "raftd-node-<id>", else CN) and compares it with what it
 * expects: the client the node it dialed, the server the SNI claim.
 *
 * Failure modes: a refused check returns 0 from the callback, so wolfSSL
 * sends a fatal alert (bad_certificate, unknown_ca, certificate_expired,
 * unrecognized_name, no_application_protocol) and ngtcp2 turns it into a
 * CONNECTION_CLOSE with a crypto error (RFC 9001 §4.8). The reason is kept
 * in the rd_tls_peer for the caller's log line.
 *
 * Insecure mode: an ephemeral self-signed ECDSA certificate made at start,
 * no verification at all; identity is whatever the peer claims.
 */
#include "transport/tls.h"

#include <ngtcp2/ngtcp2_crypto_wolfssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include "util/err.h"
#include "util/log.h"

#define NODE_PREFIX "raftd-node-"

struct rd_tls {
	WOLFSSL_CTX *server;
	WOLFSSL_CTX *client;
	enum rd_tls_mode mode;
	uint64_t node_id;
	uint8_t alpn_wire[33]; /* length-prefixed, as ALPN travels */
	char alpn[33];
	char sni[40];                /* "raftd-node-<our id>" */
	uint8_t *eph_cert, *eph_key; /* insecure mode: DER, made once */
	size_t eph_cert_len, eph_key_len;
};

uint64_t rd_tls_parse_node_name(const char *s, size_t len)
{
	const size_t plen = sizeof NODE_PREFIX - 1;
	uint64_t id = 0;

	/* Exactly the prefix and canonical decimal digits, to the byte: no
	 * leading zero ("raftd-node-02" is not node 2), no NUL or suffix. */
	if (len <= plen || len > plen + 20 || memcmp(s, NODE_PREFIX, plen) != 0 ||
	    s[plen] == '0')
		return 0;
	for (size_t i = plen; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		if (id > (UINT64_MAX - 9) / 10)
			return 0;
		id = id * 10 + (uint64_t)(s[i] - '0');
	}
	return id;
}

static uint64_t asn1_node_id(WOLFSSL_ASN1_STRING *a)
{
	int len = a ? wolfSSL_ASN1_STRING_length(a) : 0;
	const unsigned char *d = a ? wolfSSL_ASN1_STRING_data(a) : NULL;

	return d != NULL && len > 0 ? rd_tls_parse_node_name((const char *)d, (size_t)len)
	                            : 0;
}

/* The one node id a certificate names, or 0 (with the reason in `why`):
 * DNS names of the subject alternative name only (RFC 6125 §6.4.4), the
 * subject CN only when the certificate has no SAN at all, and never two
 * different ids. Lengths come from the ASN.1 strings, not strlen. */
static uint64_t cert_node_id(WOLFSSL_X509 *x, const char **why)
{
	WOLFSSL_STACK *sans =
	    wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	WOLFSSL_X509_NAME *subj;
	uint64_t id = 0;
	int idx, next;

	*why = "certificate names no node (want SAN DNS or CN " NODE_PREFIX "<id>)";
	if (sans != NULL) {
		int n = wolfSSL_sk_GENERAL_NAME_num(sans);
		for (int i = 0; i < n; i++) {
			WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(sans, i);
			uint64_t v;
			if (gn == NULL ||
			    gn->type != 2 /* GEN_DNS, RFC 5280 dNSName [2] */)
				continue;
			v = asn1_node_id(gn->d.dNSName);
			if (v != 0 && id != 0 && v != id) {
				*why = "certificate names more than one node";
				id = 0;
				break;
			}
			if (v != 0)
				id = v;
		}
		wolfSSL_sk_GENERAL_NAME_pop_free(sans, wolfSSL_GENERAL_NAME_free);
		return id;
	}
	/* A SAN without DNS names (wolfSSL then builds no list): no CN. */
	if (wolfSSL_X509_get_ext_by_NID(x, NID_subject_alt_name, -1) >= 0)
		return 0;
	subj = wolfSSL_X509_get_subject_name(x);
	idx = wolfSSL_X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (idx < 0)
		return 0;
	next = wolfSSL_X509_NAME_get_index_by_NID(subj, NID_commonName, idx);
	if (next >= 0) {
		*why = "certificate has more than one CN";
		return 0;
	}
	return asn1_node_id(
	    wolfSSL_X509_NAME_ENTRY_get_data(wolfSSL_X509_NAME_get_entry(subj, idx)));
}

static const char *verify_error_text(int err)
{
	switch (err) {
	case ASN_AFTER_DATE_E:
		return "certificate expired";
	case ASN_BEFORE_DATE_E:
		return "certificate not yet valid";
	case ASN_NO_SIGNER_E:
		return "certificate not signed by the cluster CA (unknown CA)";
	case ASN_SIG_CONFIRM_E:
		return "certificate signature invalid";
	default:
		return wc_GetErrorString(err);
	}
}

/* Server: the client's SNI is the node id it claims. wolfSSL keeps the
 * received name because the server context answers SNI on mismatch. */
static uint64_t sni_claim(WOLFSSL *ssl)
{
	void *name = NULL;
	unsigned short n = wolfSSL_SNI_GetRequest(ssl, WOLFSSL_SNI_HOST_NAME, &name);

	return name ? rd_tls_parse_node_name(name, n) : 0;
}

static int verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *st)
{
	WOLFSSL *ssl = wolfSSL_X509_STORE_CTX_get_ex_data(st, 0);
	struct rd_tls_peer *p = ssl ? wolfSSL_get_app_data(ssl) : NULL;
	int depth = wolfSSL_X509_STORE_CTX_get_error_depth(st);
	WOLFSSL_X509 *x;
	const char *why = "";
	uint64_t id;

	if (p == NULL)
		return 0;
	if (!p->client) {
		p->expect_id = sni_claim(ssl);
		if (p->expect_id == 0 || p->expect_id == p->tls->node_id) {
			snprintf(p->reason, sizeof p->reason,
			         "client did not name itself as another node in SNI "
			         "(" NODE_PREFIX "<id>)");
			return 0;
		}
	}
	if (p->tls->mode == RD_TLS_INSECURE) {
		/* No verification at all: identity is the claim. */
		if (depth == 0)
			p->auth_id = p->expect_id;
		return 1;
	}
	if (!preverify) {
		snprintf(p->reason, sizeof p->reason, "%s (chain depth %d)",
		         verify_error_text(wolfSSL_X509_STORE_CTX_get_error(st)), depth);
		return 0;
	}
	if (depth != 0)
		return 1;
	x = wolfSSL_X509_STORE_CTX_get_current_cert(st);
	id = x ? cert_node_id(x, &why) : 0;
	if (id == 0) {
		snprintf(p->reason, sizeof p->reason, "%s", why);
		return 0;
	}
	if (id != p->expect_id && !(p->client && p->any)) {
		snprintf(p->reason, sizeof p->reason,
		         "certificate names node %llu but the peer %s node %llu",
		         (unsigned long long)id,
		         p->client ? "was dialed as" : "claims to be",
		         (unsigned long long)p->expect_id);
		return 0;
	}
	p->auth_id = id;
	return 1;
}

bool rd_tls_alpn_ok(struct rd_tls *t, WOLFSSL *ssl)
{
	char *name = NULL;
	unsigned short n = 0;

	if (wolfSSL_ALPN_GetProtocol(ssl, &name, &n) != WOLFSSL_SUCCESS || name == NULL)
		return false;
	return n == t->alpn_wire[0] && memcmp(name, t->alpn_wire + 1, n) == 0;
}

/* AES-GCM first where AES-NI makes it fast; ChaCha20-Poly1305 first
 * without it (it is faster in software). */
static const char *cipher_list(void)
{
	bool aesni = false;
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	aesni = __builtin_cpu_supports("aes");
#endif
	return aesni ? "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
	               "TLS13-CHACHA20-POLY1305-SHA256"
	             : "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:"
	               "TLS13-AES256-GCM-SHA384";
}

static int make_ephemeral(struct rd_tls *t, char *msg)
{
	WC_RNG rng;
	ecc_key key;
	Cert cert;
	uint8_t der[4096];
	int n, rv = RD_ETLS;

	if (wc_InitRng(&rng) != 0)
		return rd_errorf(msg, RD_ETLS, "insecure mode: no random source");
	if (wc_ecc_init(&key) != 0)
		goto err_after_rng;
	if (wc_ecc_make_key(&rng, 32, &key) != 0)
		goto err_after_key;
	wc_InitCert(&cert);
	snprintf(cert.subject.commonName, CTC_NAME_SIZE, NODE_PREFIX "%llu",
	         (unsigned long long)t->node_id);
	cert.sigType = CTC_SHA256wECDSA;
	cert.daysValid = 3650;
	cert.isCA = 0;
	if (wc_MakeCert(&cert, der, sizeof der, NULL, &key, &rng) < 0)
		goto err_after_key;
	n = wc_SignCert(cert.bodySz, cert.sigType, der, sizeof der, NULL, &key, &rng);
	if (n < 0)
		goto err_after_key;
	t->eph_cert = malloc((size_t)n);
	if (t->eph_cert == NULL)
		goto err_after_key;
	memcpy(t->eph_cert, der, (size_t)n);
	t->eph_cert_len = (size_t)n;
	n = wc_EccKeyToDer(&key, der, sizeof der);
	if (n < 0 || (t->eph_key = malloc((size_t)n)) == NULL)
		goto err_after_key;
	memcpy(t->eph_key, der, (size_t)n);
	t->eph_key_len = (size_t)n;
	rv = 0;
err_after_key:
	wc_ecc_free(&key);
err_after_rng:
	wc_FreeRng(&rng);
	if (rv != 0)
		rd_errorf(msg, rv, "insecure mode: cannot make an ephemeral certificate");
	return rv;
}

static int load_credentials(WOLFSSL_CTX *ctx, bool server, struct rd_tls *t,
                            const struct rd_transport_config *cfg, char *msg)
{
	if (t->mode == RD_TLS_INSECURE) {
		if (wolfSSL_CTX_use_certificate_buffer(
		        ctx, t->eph_cert, (long)t->eph_cert_len, WOLFSSL_FILETYPE_ASN1) !=
		        WOLFSSL_SUCCESS ||
		    wolfSSL_CTX_use_PrivateKey_buffer(
		        ctx, t->eph_key, (long)t->eph_key_len, WOLFSSL_FILETYPE_ASN1) !=
		        WOLFSSL_SUCCESS)
			return rd_errorf(msg, RD_ETLS,
			                 "insecure mode: ephemeral certificate refused");
		/* The server still asks for the client's (ephemeral) certificate:
		 * the verify callback is where it reads the client's claimed id. */
		if (server)
			wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, verify_cb);
		else
			wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
		return 0;
	}
	if (wolfSSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != WOLFSSL_SUCCESS)
		return rd_errorf(msg, RD_ETLS, "tls.ca %s: cannot load CA certificate",
		                 cfg->tls_ca);
	wolfSSL_CTX_set_verify(
	    ctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	if (!server && cfg->tls_omit_client_cert)
		return 0;
	if (wolfSSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != WOLFSSL_SUCCESS)
		return rd_errorf(msg, RD_ETLS, "tls.cert %s: cannot load certificate",
		                 cfg->tls_cert);
	if (wolfSSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, WOLFSSL_FILETYPE_PEM) !=
	    WOLFSSL_SUCCESS)
		return rd_errorf(msg, RD_ETLS, "tls.key %s: cannot load private key",
		                 cfg->tls_key);
	if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS)
		return rd_errorf(msg, RD_ETLS, "tls.key %s does not match tls.cert %s",
		                 cfg->tls_key, cfg->tls_cert);
	return 0;
}

static int build_ctx(struct rd_tls *t, bool server, const struct rd_transport_config *cfg,
                     WOLFSSL_CTX **out, char *msg)
{
	WOLFSSL_CTX *ctx;
	int rv;

	ctx = wolfSSL_CTX_new(server ? wolfTLSv1_3_server_method()
	                             : wolfTLSv1_3_client_method());
	if (ctx == NULL)
		return rd_errorf(msg, RD_ENOMEM, "wolfSSL_CTX_new failed");
	if ((server ? ngtcp2_crypto_wolfssl_configure_server_context(ctx)
	            : ngtcp2_crypto_wolfssl_configure_client_context(ctx)) != 0) {
		rv = rd_errorf(msg, RD_ETLS, "cannot configure wolfSSL for QUIC");
		goto err_after_ctx;
	}
	if (wolfSSL_CTX_set_cipher_list(ctx, cipher_list()) != WOLFSSL_SUCCESS) {
		rv = rd_errorf(msg, RD_ETLS, "cannot set the TLS 1.3 cipher suites");
		goto err_after_ctx;
	}
	if ((rv = load_credentials(ctx, server, t, cfg, msg)) != 0)
		goto err_after_ctx;
	/* No resumption and no 0-RTT, explicitly (the build has both): a
	 * resumed session would skip the certificate check that binds the node
	 * id, and 0-RTT data is replayable (RFC 9001 §4.6, RFC 8446 §8). */
	if (server && wolfSSL_CTX_set_max_early_data(ctx, 0) < 0) {
		rv = rd_errorf(msg, RD_ETLS, "cannot turn early data off");
		goto err_after_ctx;
	}
	wolfSSL_CTX_set_options(ctx, WOLFSSL_OP_NO_TICKET);
	if (server && wolfSSL_CTX_no_ticket_TLSv13(ctx) < 0) {
		rv = rd_errorf(msg, RD_ETLS, "cannot turn session tickets off");
		goto err_after_ctx;
	}
	if (server) {
		/* Any name the client sends is kept (and read in verify_cb). */
		if (wolfSSL_CTX_UseSNI(ctx, WOLFSSL_SNI_HOST_NAME, t->sni,
		                       (unsigned short)strlen(t->sni)) !=
		    WOLFSSL_SUCCESS) {
			rv = rd_errorf(msg, RD_ETLS, "cannot enable SNI");
			goto err_after_ctx;
		}
		wolfSSL_CTX_SNI_SetOptions(ctx, WOLFSSL_SNI_HOST_NAME,
		                           WOLFSSL_SNI_ANSWER_ON_MISMATCH);
	}
	*out = ctx;
	return 0;
err_after_ctx:
	wolfSSL_CTX_free(ctx);
	return rv;
}

/* A warning, not an error: the operator may be rotating certificates, and
 * peers will refuse a mismatched certificate anyway. */
static void check_own_cert(const struct rd_transport_config *cfg)
{
	WOLFSSL_X509 *x =
	    wolfSSL_X509_load_certificate_file(cfg->tls_cert, WOLFSSL_FILETYPE_PEM);
	const char *why;
	uint64_t id;

	if (x == NULL)
		return;
	id = cert_node_id(x, &why);
	if (id != cfg->node_id)
		rd_log_warn(
		    "transport: tls.cert names node %llu but this is node %llu; peers "
		    "will refuse it cert=%s",
		    (unsigned long long)id, (unsigned long long)cfg->node_id,
		    cfg->tls_cert);
	wolfSSL_X509_free(x);
}

static int build_both(struct rd_tls *t, const struct rd_transport_config *cfg, char *msg)
{
	WOLFSSL_CTX *s = NULL, *c = NULL;
	int rv;

	if ((rv = build_ctx(t, true, cfg, &s, msg)) != 0)
		return rv;
	if ((rv = build_ctx(t, false, cfg, &c, msg)) != 0) {
		wolfSSL_CTX_free(s);
		return rv;
	}
	if (t->mode == RD_TLS_MUTUAL && !cfg->tls_omit_client_cert)
		check_own_cert(cfg);
	/* Sessions hold a reference on their context (wolfSSL refcounts it), so
	 * connections made with the old credentials keep working. */
	if (t->server != NULL)
		wolfSSL_CTX_free(t->server);
	if (t->client != NULL)
		wolfSSL_CTX_free(t->client);
	t->server = s;
	t->client = c;
	return 0;
}

int rd_tls_new(struct rd_tls **out, const struct rd_transport_config *cfg, char *msg)
{
	struct rd_tls *t;
	size_t alen = strlen(cfg->alpn);
	int rv;

	if (alen == 0 || alen > 32)
		return rd_errorf(msg, RD_EINVAL, "ALPN must be 1..32 bytes");
	if (wolfSSL_Init() != WOLFSSL_SUCCESS)
		return rd_errorf(msg, RD_ETLS, "wolfSSL_Init failed");
	t = calloc(1, sizeof *t);
	if (t == NULL) {
		rv = rd_errorf(msg, RD_ENOMEM, "TLS state");
		goto err_after_init;
	}
	t->mode = cfg->tls_mode;
	t->node_id = cfg->node_id;
	t->alpn_wire[0] = (uint8_t)alen;
	memcpy(t->alpn_wire + 1, cfg->alpn, alen);
	memcpy(t->alpn, cfg->alpn, alen);
	snprintf(t->sni, sizeof t->sni, NODE_PREFIX "%llu",
	         (unsigned long long)cfg->node_id);
	if (t->mode == RD_TLS_INSECURE && (rv = make_ephemeral(t, msg)) != 0)
		goto err_after_alloc;
	if ((rv = build_both(t, cfg, msg)) != 0)
		goto err_after_alloc;
	*out = t;
	return 0;
err_after_alloc:
	free(t->eph_cert);
	free(t->eph_key);
	free(t);
err_after_init:
	wolfSSL_Cleanup();
	return rv;
}

/* A certificate manager trusting only `ca` (NULL on failure). */
static WOLFSSL_CERT_MANAGER *ca_manager(const char *ca)
{
	WOLFSSL_CERT_MANAGER *cm = wolfSSL_CertManagerNew();

	if (cm != NULL && wolfSSL_CertManagerLoadCA(cm, ca, NULL) != WOLFSSL_SUCCESS) {
		wolfSSL_CertManagerFree(cm);
		cm = NULL;
	}
	return cm;
}

/* Before new credentials replace working ones: the certificate names this
 * node, is within its dates and chains to the (new) CA, so that a reload
 * never swaps in something every peer would refuse. */
static int check_new_cert(const struct rd_transport_config *cfg, char *msg)
{
	WOLFSSL_CERT_MANAGER *cm = ca_manager(cfg->tls_ca);
	WOLFSSL_X509 *x;
	const char *why;
	uint64_t id;
	int rv;

	if (cm == NULL)
		return rd_errorf(msg, RD_ETLS, "tls.ca %s: cannot load CA certificate",
		                 cfg->tls_ca);
	rv = wolfSSL_CertManagerVerify(cm, cfg->tls_cert, WOLFSSL_FILETYPE_PEM);
	wolfSSL_CertManagerFree(cm);
	if (rv != WOLFSSL_SUCCESS)
		return rd_errorf(msg, RD_ETLS,
		                 "tls.cert %s does not verify against tls.ca %s: %s",
		                 cfg->tls_cert, cfg->tls_ca, verify_error_text(rv));
	x = wolfSSL_X509_load_certificate_file(cfg->tls_cert, WOLFSSL_FILETYPE_PEM);
	if (x == NULL)
		return rd_errorf(msg, RD_ETLS, "tls.cert %s: cannot load certificate",
		                 cfg->tls_cert);
	id = cert_node_id(x, &why);
	wolfSSL_X509_free(x);
	if (id != cfg->node_id)
		return rd_errorf(msg, RD_ETLS,
		                 "tls.cert %s names node %llu, not this node %llu (%s)",
		                 cfg->tls_cert, (unsigned long long)id,
		                 (unsigned long long)cfg->node_id, id ? "" : why);
	return 0;
}

int rd_tls_reload(struct rd_tls *t, const struct rd_transport_config *cfg, char *msg)
{
	int rv;

	if (cfg->tls_mode != t->mode)
		return rd_errorf(
		    msg, RD_EINVAL,
		    "tls.mode cannot change while running (%s -> %s): restart "
		    "the node",
		    t->mode == RD_TLS_MUTUAL ? "mutual" : "insecure",
		    cfg->tls_mode == RD_TLS_MUTUAL ? "mutual" : "insecure");
	if (t->mode == RD_TLS_MUTUAL && !cfg->tls_omit_client_cert &&
	    (rv = check_new_cert(cfg, msg)) != 0)
		return rv;
	return build_both(t, cfg, msg);
}

int rd_tls_peer_still_valid(struct rd_tls *t, WOLFSSL *ssl, const char *ca, char *msg)
{
	WOLFSSL_CERT_MANAGER *cm;
	WOLFSSL_X509 *x;
	const unsigned char *der;
	int n, rv;

	if (t->mode != RD_TLS_MUTUAL)
		return 0;
	x = wolfSSL_get_peer_certificate(ssl);
	if (x == NULL)
		return rd_errorf(msg, RD_ETLS, "no peer certificate kept");
	der = wolfSSL_X509_get_der(x, &n);
	cm = ca_manager(ca);
	rv = cm != NULL && der != NULL
	         ? wolfSSL_CertManagerVerifyBuffer(cm, der, n, WOLFSSL_FILETYPE_ASN1)
	         : WOLFSSL_FAILURE;
	if (cm != NULL)
		wolfSSL_CertManagerFree(cm);
	wolfSSL_X509_free(x);
	if (rv != WOLFSSL_SUCCESS)
		return rd_errorf(msg, RD_ETLS, "%s", verify_error_text(rv));
	return 0;
}

int64_t rd_tls_peer_not_after(WOLFSSL *ssl)
{
	WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(ssl);
	const WOLFSSL_ASN1_TIME *na;
	struct tm tm;
	int64_t when = -1;

	if (x == NULL)
		return -1;
	na = wolfSSL_X509_get_notAfter(x);
	memset(&tm, 0, sizeof tm);
	if (na != NULL && wolfSSL_ASN1_TIME_to_tm(na, &tm) == WOLFSSL_SUCCESS)
		when = (int64_t)timegm(&tm);
	wolfSSL_X509_free(x);
	return when;
}

void rd_tls_free(struct rd_tls *t)
{
	if (t == NULL)
		return;
	wolfSSL_CTX_free(t->server);
	wolfSSL_CTX_free(t->client);
	free(t->eph_cert);
	free(t->eph_key);
	free(t);
	wolfSSL_Cleanup();
}

WOLFSSL *rd_tls_session(struct rd_tls *t, struct rd_tls_peer *p)
{
	WOLFSSL *ssl = wolfSSL_new(p->client ? t->client : t->server);

	if (ssl == NULL)
		return NULL;
	p->tls = t;
	wolfSSL_set_app_data(ssl, p);
	if (p->client) {
		wolfSSL_set_connect_state(ssl);
		if (wolfSSL_UseALPN(ssl, t->alpn, (unsigned)strlen(t->alpn),
		                    WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS ||
		    wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, t->sni,
		                   (unsigned short)strlen(t->sni)) != WOLFSSL_SUCCESS) {
			wolfSSL_free(ssl);
			return NULL;
		}
		if (t->mode == RD_TLS_INSECURE)
			p->auth_id = p->expect_id; /* the server is not verified */
	} else {
		wolfSSL_set_accept_state(ssl);
		/* A client that offers no matching ALPN gets no_application_protocol. */
		if (wolfSSL_UseALPN(ssl, t->alpn, (unsigned)strlen(t->alpn),
		                    WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS) {
			wolfSSL_free(ssl);
			return NULL;
		}
	}
	return ssl;
}
