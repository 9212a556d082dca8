/* nested: a call chain main -> one -> two -> three -> printf.
 * Output: "Hello from three!" */
#include <stdio.h>

__attribute__((noinline)) void three(void) { printf("Hello from three!\n"); }

__attribute__((noinline)) void two(void) { three(); }

__attribute__((noinline)) void one(void) { two(); }

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  one();
  return 0;
}
