/* The QUIC stack that `make deps` builds: wolfSSL with QUIC support and
 * ngtcp2 with its wolfSSL crypto backend, linked statically. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/quic.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_wolfssl.h>

#include <criterion/criterion.h>

#ifndef WOLFSSL_QUIC
#error "wolfSSL was built without QUIC"
#endif

Test(deps, wolfssl_quic_context_is_usable_by_ngtcp2)
{
	WOLFSSL_CTX *ctx;
	WOLFSSL *ssl;

	cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
	ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
	cr_assert_not_null(ctx);
	cr_assert_eq(ngtcp2_crypto_wolfssl_configure_client_context(ctx), 0);
	ssl = wolfSSL_new(ctx);
	cr_assert_not_null(ssl);
	/* configure_client_context installed ngtcp2's QUIC method: the handle is
	 * a QUIC one now. */
	cr_assert(wolfSSL_is_quic(ssl));
	wolfSSL_free(ssl);
	wolfSSL_CTX_free(ctx);
	wolfSSL_Cleanup();
}

Test(deps, ngtcp2_version)
{
	const ngtcp2_info *info = ngtcp2_version(0);
	cr_assert_not_null(info);
	cr_assert_str_eq(info->version_str, "0.12.1");
}
