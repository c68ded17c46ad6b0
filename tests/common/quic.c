#include "common/quic.h"

#include <criterion/criterion.h>
#include <stdlib.h>

size_t rd_t_junk_initial(uint8_t *p, size_t size)
{
	size_t n = 0, rest;

	cr_assert_geq(size, 1200);
	p[n++] = 0xc3; /* long header, fixed bit, Initial, 4-byte packet number */
	p[n++] = 0, p[n++] = 0, p[n++] = 0, p[n++] = 1;
	p[n++] = 8;
	for (int i = 0; i < 8; i++)
		p[n++] = (uint8_t)rand();
	p[n++] = 8;
	for (int i = 0; i < 8; i++)
		p[n++] = (uint8_t)rand();
	p[n++] = 0; /* no token */
	rest = 1200 - n - 2;
	p[n++] = (uint8_t)(0x40 | rest >> 8);
	p[n++] = (uint8_t)rest;
	while (n < 1200)
		p[n++] = (uint8_t)rand();
	return n;
}
