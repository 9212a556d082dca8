/* vowels: manual spans, tags, a statsd metric and an error log (spec
 * section 5). Counts the vowels of "Hello World" (3) and reports it:
 *
 *   run
 *     printf       tags vowels:3, input:hello-world     (prints "Vowels: 3")
 *     write_stat
 *       statsd     metric vowels.count:1|c
 *     write_log
 *       log_write  log ERROR "Vowels Counted: 3"
 *
 * The C functions count_vowels/emit_stat/emit_log add automatic spans
 * around those once the module is instrumented. */
#include <stdio.h>

#include "../observe_api.h"

__attribute__((noinline)) int count_vowels(const char *text) {
  int count = 0;
  for (const char *p = text; *p; p++) {
    switch (*p) {
      case 'a': case 'e': case 'i': case 'o': case 'u':
      case 'A': case 'E': case 'I': case 'O': case 'U':
        count++;
    }
  }
  return count;
}

__attribute__((noinline)) void emit_stat(void) {
  span_enter("write_stat");
  span_enter("statsd");
  metric_statsd("vowels.count:1|c");
  span_exit();
  span_exit();
}

__attribute__((noinline)) void emit_log(int count) {
  char message[64];
  span_enter("write_log");
  span_enter("log_write");
  snprintf(message, sizeof message, "Vowels Counted: %d", count);
  log_error(message);
  span_exit();
  span_exit();
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  char tags[64];
  span_enter("run");
  int count = count_vowels("Hello World");

  span_enter("printf");
  snprintf(tags, sizeof tags, "vowels:%d,input:hello-world", count);
  span_tags(tags);
  printf("Vowels: %d\n", count);
  span_exit();

  emit_stat();
  emit_log(count);
  span_exit();
  return 0;
}
