/* trap: opens a manual span "risky", then traps (unreachable) three calls
 * deep: main -> outer -> middle -> inner -> unreachable. Prints
 * "about to trap" (flushed) first; never returns normally. */
#include <stdio.h>

#include "../observe_api.h"

__attribute__((noinline)) void inner(int depth) {
  if (depth > 0) {
    __builtin_trap();
  }
}

__attribute__((noinline)) void middle(int depth) { inner(depth + 1); }

__attribute__((noinline)) void outer(int depth) { middle(depth + 1); }

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  printf("about to trap\n");
  fflush(stdout);
  span_enter("risky");
  span_tags("expect:trap");
  outer(0);
  span_exit(); /* never reached */
  printf("not reached\n");
  return 0;
}
