/* fib: a call-heavy guest for benchmarks. Computes fib(n) recursively
 * (n = argv[1], default 25) and prints "fib(25) = 75025". Every call is a
 * real call: fib is noinline and the combining add goes through a volatile,
 * so the compiler cannot turn the recursion into a loop. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) int fib(int n) {
  if (n < 2) {
    return n;
  }
  volatile int left = fib(n - 1);
  return left + fib(n - 2);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 25;
  printf("fib(%d) = %d\n", n, fib(n));
  return 0;
}
