/* attacker: a WASI command that tries to reach past its sandbox, for tests/security/.
 * It runs the steps given as arguments, separated by "+", and prints one line per
 * step: "ok STEP" or "fail STEP: reason". It always exits 0 unless told otherwise.
 *   symlink TARGET LINK    create LINK pointing at TARGET
 *   link OLD NEW           hard link
 *   write PATH TEXT        create/truncate PATH and write TEXT
 *   cat PATH               print the file's contents on one line ("ok cat PATH: ...")
 *   mkdir PATH
 *   rm PATH                unlink a file or symlink
 *   rename OLD NEW
 *   deep DIR N             N nested directories "dd" under DIR, a file "leaf" at the bottom
 *   many DIR N             N empty files in DIR
 *   flip PATH TARGET N     N times (0: for ever): PATH is a directory, then a link to TARGET
 *   exit N                 exit with code N
 * Build: clang --target=wasm32-wasi -O1 -o attacker.wasm attacker.c -Wl,--strip-debug */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int report(const char *step, const char *arg, int rc) {
  if (rc == 0) printf("ok %s %s\n", step, arg);
  else printf("fail %s %s: %s\n", step, arg, strerror(errno));
  return rc;
}

static void cat(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) { report("cat", path, -1); return; }
  char buf[256];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  for (size_t i = 0; i < n; i++) if (buf[i] == '\n') buf[i] = ' ';
  printf("ok cat %s: %s\n", path, buf);
  fclose(f);
}

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int rc = fputs(text, f) < 0 ? -1 : 0;
  if (fclose(f) != 0) rc = -1;
  return rc;
}

static int deep(const char *dir, int n) {
  if (chdir(dir) != 0) return -1;
  for (int i = 0; i < n; i++) {
    if (mkdir("dd", 0755) != 0 && errno != EEXIST) return -1;
    if (chdir("dd") != 0) return -1;
  }
  return write_file("leaf", "bottom");
}

static int many(const char *dir, int n) {
  char path[512];
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/f%d", dir, i);
    if (write_file(path, "") != 0) return -1;
  }
  return 0;
}

static int flip(const char *path, const char *target, long n) {
  char real[512];
  snprintf(real, sizeof real, "%s.real", path);
  if (mkdir(real, 0755) != 0 && errno != EEXIST) return -1;
  for (long i = 0; n == 0 || i < n; i++) {
    if (rename(real, path) != 0) return -1;      /* a directory ... */
    if (rename(path, real) != 0) return -1;
    if (symlink(target, path) != 0) return -1;   /* ... then a link out */
    if (unlink(path) != 0) return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  int i = 1;
  while (i < argc) {
    int end = i;
    while (end < argc && strcmp(argv[end], "+")) end++;
    int n = end - i;
    const char *cmd = argv[i];
    const char *a = n > 1 ? argv[i + 1] : "";
    const char *b = n > 2 ? argv[i + 2] : "";
    if (!strcmp(cmd, "symlink") && n == 3) report(cmd, b, symlink(a, b));
    else if (!strcmp(cmd, "link") && n == 3) report(cmd, b, link(a, b));
    else if (!strcmp(cmd, "write") && n == 3) report(cmd, a, write_file(a, b));
    else if (!strcmp(cmd, "cat") && n == 2) cat(a);
    else if (!strcmp(cmd, "mkdir") && n == 2) report(cmd, a, mkdir(a, 0755));
    else if (!strcmp(cmd, "rm") && n == 2) report(cmd, a, unlink(a));
    else if (!strcmp(cmd, "rename") && n == 3) report(cmd, b, rename(a, b));
    else if (!strcmp(cmd, "deep") && n == 3) report(cmd, a, deep(a, atoi(b)));
    else if (!strcmp(cmd, "many") && n == 3) report(cmd, a, many(a, atoi(b)));
    else if (!strcmp(cmd, "flip") && n == 4) report(cmd, a, flip(a, b, atol(argv[i + 3])));
    else if (!strcmp(cmd, "exit") && n == 2) { fflush(stdout); return atoi(a); }
    else { printf("bad step %s (%d words)\n", cmd, n); return 64; }
    i = end + 1;
  }
  return 0;
}
