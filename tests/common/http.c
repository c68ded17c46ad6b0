#include "common/http.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int rd_t_tcp_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(0x7f000001)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int rd_t_http_raw(int port, const char *req, char *out, size_t size)
{
	int fd = rd_t_tcp_connect(port), code = 0;
	size_t got = 0;
	ssize_t r;

	if (fd < 0)
		return -1;
	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (got + 1 < size && (r = read(fd, out + got, size - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(fd);
	sscanf(out, "HTTP/1.1 %d", &code);
	return code;
}

int rd_t_http_get(int port, const char *path, char *out, size_t size)
{
	char req[256];

	snprintf(req, sizeof req,
	         "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	return rd_t_http_raw(port, req, out, size);
}
