/* JSON string escaping for /status (RFC 8259 section 7): quotes, backslash
 * and control characters are escaped, valid UTF-8 passes through, invalid
 * UTF-8 (RFC 3629 section 3-4) becomes U+FFFD so the document always
 * parses. */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/admin.h"
#include "util/json.h"

static void put(void *ctx, const char *p, size_t n)
{
	evbuffer_add(ctx, p, n);
}

static void check_n(const char *in, size_t len, const char *want)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	rd_json_escape(in, len, RD_JSON_UTF8, put, b);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	cr_assert_str_eq(s, want);
	free(s);
	evbuffer_free(b);
}

static void check(const char *in, const char *want)
{
	check_n(in, strlen(in), want);
}

Test(json, plain_ascii_is_quoted)
{
	check("", "\"\"");
	check("node-1 ok", "\"node-1 ok\"");
}

Test(json, quotes_backslash_and_controls_are_escaped)
{
	check("a\"b\\c", "\"a\\\"b\\\\c\"");
	check("\n\r\t", "\"\\n\\r\\t\"");
	check("\x01\x1f", "\"\\u0001\\u001f\"");
	check_n("a\0b", 3, "\"a\\u0000b\"");
	check("/", "\"/\""); /* the solidus may stay as it is */
}

Test(json, valid_utf8_passes_through)
{
	check("caf\xc3\xa9", "\"caf\xc3\xa9\"");           /* U+00E9 */
	check("\xe2\x82\xac", "\"\xe2\x82\xac\"");         /* U+20AC */
	check("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""); /* U+1F600 */
}

Test(json, invalid_utf8_is_replaced)
{
	check("\xff", "\"\\ufffd\"");                       /* not a lead byte */
	check("a\xe2\x82", "\"a\\ufffd\\ufffd\"");          /* truncated */
	check("\xc0\xaf", "\"\\ufffd\\ufffd\"");            /* overlong '/' */
	check("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
	check("\xf4\x90\x80\x80x", "\"\\ufffd\\ufffd\\ufffd\\ufffdx\""); /* > U+10FFFF */
}

Test(json, null_string_is_null)
{
	struct evbuffer *b = evbuffer_new();
	char s[8] = "";
	rd_admin_json_string(b, NULL);
	evbuffer_remove(b, s, sizeof s - 1);
	cr_assert_str_eq(s, "null");
	evbuffer_free(b);
}
