/* JSON writer: structure, commas and escaping of arbitrary bytes. */
#include <criterion/criterion.h>

#include "util/json.h"

Test(json, nested_structure_and_escaping)
{
	struct rd_json j;
	rd_json_init(&j);
	rd_json_obj_begin(&j);
	rd_json_key(&j, "a");
	rd_json_u64(&j, 18446744073709551615ull);
	rd_json_key(&j, "b");
	rd_json_arr_begin(&j);
	rd_json_bool(&j, 1);
	rd_json_null(&j);
	rd_json_bytes(&j, (const uint8_t *)"q\"\\\n\x01\xff", 6);
	rd_json_arr_end(&j);
	rd_json_key(&j, "c");
	rd_json_obj_begin(&j);
	rd_json_obj_end(&j);
	rd_json_obj_end(&j);
	cr_assert_str_eq(j.buf, "{\"a\":18446744073709551615,\"b\":[true,null,"
	                        "\"q\\\"\\\\\\u000a\\u0001\\u00ff\"],\"c\":{}}");
	rd_json_free(&j);
}
