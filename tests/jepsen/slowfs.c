/*
 * slowfs: an LD_PRELOAD shim for the Jepsen suite's slow-disk nemesis.
 *
 * Every fsync, fdatasync and sync_file_range first sleeps for the number of
 * milliseconds written (as decimal text) in the file named by the
 * environment variable RD_JEPSEN_SLOW_FILE, then calls the real function.
 * A missing, empty or unreadable file, or 0, means no delay, so a node runs
 * with the shim loaded from its first start and the nemesis switches the
 * delay on and off by rewriting the file (tests/jepsen/nemesis.py). The
 * data is still synced: the shim only makes the disk slow, never unsafe.
 * When RD_JEPSEN_SLOW_COUNT names a file, every delayed call appends one
 * byte to it, so that the suite can tell how many syncs it slowed.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int fsync(int fd);
int fdatasync(int fd);
int sync_file_range(int fd, off_t off, off_t n, unsigned int flags);

/* The delay in ms read from the control file (0 on any problem). Raw
 * syscalls, so that nothing here reenters the interposed functions. */
static long delay_ms(void)
{
	const char *path = getenv("RD_JEPSEN_SLOW_FILE");
	char buf[32];
	long ms = 0;
	ssize_t n;
	int fd;

	if (path == NULL)
		return 0;
	fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = syscall(SYS_read, fd, buf, sizeof buf - 1);
	syscall(SYS_close, fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		ms = ms * 10 + (buf[i] - '0');
	return ms > 60000 ? 60000 : ms;
}

static void count(void)
{
	const char *path = getenv("RD_JEPSEN_SLOW_COUNT");
	int fd;

	if (path == NULL)
		return;
	fd = (int)syscall(SYS_openat, AT_FDCWD, path,
	                  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	(void)syscall(SYS_write, fd, "s", 1); /* a lost count only lowers the figure */
	syscall(SYS_close, fd);
}

static void slow(void)
{
	long ms = delay_ms();
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	if (ms <= 0)
		return;
	count();
	while (nanosleep(&ts, &ts) != 0)
		;
}

int fsync(int fd)
{
	slow();
	return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd)
{
	slow();
	return (int)syscall(SYS_fdatasync, fd);
}

int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
	slow();
	return (int)syscall(SYS_sync_file_range, fd, off, n, flags);
}
