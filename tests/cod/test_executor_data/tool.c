/* tool: a small WASI command used by the tests in tests/cod/ and benchmarks/bench_executor.py.
 *   tool args ARG...        print argv, one per line (argv[0] first)
 *   tool env NAME...        print NAME=value (or NAME unset) for each NAME
 *   tool cat PATH           copy the file to stdout
 *   tool write PATH TEXT    write TEXT to PATH (exit 2 with the reason on stderr on failure)
 *   tool ls DIR             list the directory's entries, sorted by the caller
 *   tool exit N             print "bye N" to stderr and exit with N
 *   tool big N              write N bytes ('x') to stdout
 *   tool grow MIB           allocate 1 MiB blocks until MIB are held; exit 3 when one fails
 *   tool sleep MS           sleep MS milliseconds, then print "woke"
 *   tool spin               loop forever
 * Build: clang --target=wasm32-wasi -O1 -o tool.wasm tool.c -Wl,--strip-debug */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *volatile held[1024];

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: tool COMMAND ...\n");
    return 64;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "args")) {
    for (int i = 0; i < argc; i++) printf("%s\n", argv[i]);
  } else if (!strcmp(cmd, "env")) {
    for (int i = 2; i < argc; i++) {
      const char *v = getenv(argv[i]);
      if (v) printf("%s=%s\n", argv[i], v); else printf("%s unset\n", argv[i]);
    }
  } else if (!strcmp(cmd, "cat") && argc == 3) {
    FILE *f = fopen(argv[2], "rb");
    if (!f) { fprintf(stderr, "cannot open %s: %s\n", argv[2], strerror(errno)); return 2; }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    fclose(f);
  } else if (!strcmp(cmd, "write") && argc == 4) {
    FILE *f = fopen(argv[2], "wb");
    if (!f) { fprintf(stderr, "cannot open %s: %s\n", argv[2], strerror(errno)); return 2; }
    if (fputs(argv[3], f) < 0 || fclose(f) != 0) {
      fprintf(stderr, "cannot write %s: %s\n", argv[2], strerror(errno));
      return 2;
    }
  } else if (!strcmp(cmd, "ls") && argc == 3) {
    DIR *d = opendir(argv[2]);
    if (!d) { fprintf(stderr, "cannot list %s: %s\n", argv[2], strerror(errno)); return 2; }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) printf("%s\n", e->d_name);
    closedir(d);
  } else if (!strcmp(cmd, "exit") && argc == 3) {
    fprintf(stderr, "bye %s\n", argv[2]);
    return atoi(argv[2]);
  } else if (!strcmp(cmd, "big") && argc == 3) {
    long n = atol(argv[2]);
    for (long i = 0; i < n; i++) putchar('x');
  } else if (!strcmp(cmd, "grow") && argc == 3) {
    int mib = atoi(argv[2]);
    unsigned sum = 0;
    for (int i = 0; i < mib; i++) {
      char *p = malloc(1 << 20);
      if (!p) { fprintf(stderr, "allocation %d failed\n", i); return 3; }
      memset(p, i + 1, 1 << 20);
      held[i % 1024] = p;
      sum += (unsigned char)p[i];
    }
    printf("held %d MiB (%u)\n", mib, sum);
  } else if (!strcmp(cmd, "sleep") && argc == 3) {
    usleep((useconds_t)atol(argv[2]) * 1000);
    printf("woke\n");
  } else if (!strcmp(cmd, "spin")) {
    volatile unsigned long i = 0;
    for (;;) i++;
  } else {
    fprintf(stderr, "unknown command %s\n", cmd);
    return 64;
  }
  return 0;
}
