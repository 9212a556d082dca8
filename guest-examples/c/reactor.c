/* reactor: a WASI reactor (-mexec-model=reactor). The host runs
 * `_initialize` once, then calls the exports as often as it likes:
 *
 *   add(a, b) -> a + b                      span "add", a debug log
 *   count_vowels(ptr, len) -> vowels        span "count_vowels", tag len:<n>,
 *                                           an info log, a statsd metric
 *   guest_alloc(size) -> ptr                where the host writes strings
 *   guest_free(ptr)
 *
 * `_initialize` runs the constructor below: span "init" with an info log
 * "reactor initialized". Nothing is printed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../observe_api.h"

#define EXPORT(name) __attribute__((export_name(name)))

static int calls;

__attribute__((constructor)) static void init(void) {
  span_enter("init");
  log_info("reactor initialized");
  span_exit();
}

__attribute__((noinline)) static int is_vowel(char c) {
  switch (c | 0x20) { /* lower case for letters */
    case 'a': case 'e': case 'i': case 'o': case 'u':
      return 1;
  }
  return 0;
}

EXPORT("add") int32_t add(int32_t a, int32_t b) {
  span_enter("add");
  log_debug("adding");
  calls++;
  span_exit();
  return a + b;
}

EXPORT("count_vowels") int32_t count_vowels(const char *text, int32_t len) {
  char buf[64];
  int32_t count = 0;
  span_enter("count_vowels");
  snprintf(buf, sizeof buf, "len:%d", (int)len);
  span_tags(buf);
  for (int32_t i = 0; i < len; i++) {
    count += is_vowel(text[i]);
  }
  calls++;
  snprintf(buf, sizeof buf, "counted %d vowels (call %d)", (int)count, calls);
  log_info(buf);
  metric_statsd("reactor.count_vowels:1|c");
  span_exit();
  return count;
}

EXPORT("guest_alloc") void *guest_alloc(int32_t size) { return malloc((size_t)size); }

EXPORT("guest_free") void guest_free(void *ptr) { free(ptr); }
