/* hello: the spec's reference loop (section 5). main calls printf 10 times
 * and malloc(192 KiB) 10 times; the blocks are kept (never freed), so the
 * allocator has to grow memory. Output: "Hello, World! 0" .. "Hello, World! 9". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 10
#define BLOCK (192 * 1024)

static char *blocks[ROUNDS];

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  for (int i = 0; i < ROUNDS; i++) {
    printf("Hello, World! %d\n", i);
    blocks[i] = malloc(BLOCK);
    if (blocks[i] == NULL) {
      return 1;
    }
    memset(blocks[i], i, BLOCK); /* touch it, so it is not optimised away */
  }
  return blocks[ROUNDS - 1][BLOCK - 1] == ROUNDS - 1 ? 0 : 2;
}
