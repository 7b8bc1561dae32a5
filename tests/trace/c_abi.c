/* A C program on libaio's ABI, linked against libaiopp-trace.so at build time (no dlopen):
 * the declarations below are written from the ABI (libaio's io_context_t is an opaque
 * pointer, its struct iocb and struct io_event have the kernel's layout), and the linker binds
 * io_getevents to its default version, LIBAIO_0.4. Reads FILE's first 8 KiB twice through
 * 2 requests, checks the data and libaio's -errno convention.
 *   trace_c_abi FILE
 * Prints "c abi ok" and exits 0, or one line per failed check and exits 1. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct io_context* io_context_t;
int io_setup(int maxevents, io_context_t* ctxp);
int io_destroy(io_context_t ctx);
int io_submit(io_context_t ctx, long nr, struct iocb* ios[]);
int io_getevents(io_context_t ctx, long min_nr, long nr, struct io_event* events, struct timespec* timeout);
int io_cancel(io_context_t ctx, struct iocb* iocb, struct io_event* evt);

static int failures;
static void check(int ok, const char* what) {
  if (!ok) {
    printf("FAIL: %s\n", what);
    ++failures;
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: trace_c_abi FILE\n");
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) return 2;
  static char want[8192], got[2][4096];
  check(pread(fd, want, sizeof want, 0) == (ssize_t)sizeof want, "pread of the first 8 KiB");

  io_context_t ctx = 0;
  check(io_setup(8, &ctx) == 0 && ctx != 0, "io_setup");
  struct iocb cbs[2];
  struct iocb* ptrs[2] = {&cbs[0], &cbs[1]};
  for (int i = 0; i < 2; ++i) {
    memset(&cbs[i], 0, sizeof cbs[i]);
    cbs[i].aio_fildes = (unsigned)fd;
    cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
    cbs[i].aio_buf = (unsigned long)got[i];
    cbs[i].aio_nbytes = sizeof got[i];
    cbs[i].aio_offset = (long long)i * 4096;
    cbs[i].aio_data = (unsigned long)i + 100;
  }
  for (int round = 0; round < 2; ++round) {
    memset(got, 0, sizeof got);
    check(io_submit(ctx, 2, ptrs) == 2, "io_submit of 2");
    struct io_event ev[2];
    struct timespec sec = {5, 0};
    int n = 0;
    while (n < 2) {
      int r = io_getevents(ctx, 1, 2 - n, ev + n, &sec);
      if (r <= 0) break;
      n += r;
    }
    check(n == 2, "io_getevents reaps both");
    for (int i = 0; i < n; ++i) {
      int k = (int)(ev[i].data - 100);
      check(k >= 0 && k < 2 && ev[i].obj == (unsigned long)&cbs[k] && ev[i].res == 4096, "event matches its iocb");
    }
    check(memcmp(got, want, sizeof want) == 0, "the data read is the file's");
  }
  errno = 4242;
  struct iocb bad = cbs[0];
  bad.aio_fildes = 9999;
  struct iocb* badp = &bad;
  check(io_submit(ctx, 1, &badp) == -EBADF, "io_submit on a bad fd is -EBADF");
  check(errno == 4242, "errno is left alone");
  check(io_destroy(ctx) == 0, "io_destroy");
  close(fd);
  if (failures == 0) printf("c abi ok\n");
  return failures == 0 ? 0 : 1;
}
