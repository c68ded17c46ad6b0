/* The error table: every code has a distinct name and a description, and the
 * message helpers carry context upward. */
#include <criterion/criterion.h>
#include <string.h>

#include "util/err.h"

Test(err, every_code_has_a_name_and_description)
{
	for (int c = 0; c < RD_ERR_COUNT; c++) {
		cr_assert_not_null(rd_strerror(c));
		cr_assert_neq(strcmp(rd_strerror(c), "unknown error"), 0, "code %d", c);
		for (int d = c + 1; d < RD_ERR_COUNT; d++)
			cr_assert_neq(strcmp(rd_errname(c), rd_errname(d)), 0, "%d vs %d",
			              c, d);
	}
	cr_assert_str_eq(rd_errname(RD_ECORRUPT), "ECORRUPT");
	cr_assert_str_eq(rd_strerror(RD_OK), "success");
}

Test(err, out_of_range_codes_are_unknown)
{
	cr_assert_str_eq(rd_strerror(-1), "unknown error");
	cr_assert_str_eq(rd_strerror(RD_ERR_COUNT), "unknown error");
	cr_assert_str_eq(rd_errname(9999), "EUNKNOWN");
}

Test(err, errorf_returns_code_and_prefix_adds_context)
{
	char msg[RD_ERRMSG_SIZE];
	cr_assert_eq(rd_errorf(msg, RD_EIO, "index %d", 17), RD_EIO);
	rd_errprefix(msg, "group %d: ", 3);
	cr_assert_str_eq(msg, "group 3: index 17");
	cr_assert_eq(rd_errorf(NULL, RD_EAGAIN, "ignored"), RD_EAGAIN);
}
