/* kitchensink: the Observe API wrapped in helper functions of the guest's own,
 * the common pattern in real guests. Once instrumented, the helpers get
 * function spans too, so each manual span opens inside one function
 * (custom_span_enter) and closes inside another (custom_span_exit):
 *
 *   main
 *     custom_span_enter
 *     run                              (manual: opened above, closed below)
 *       run_steps
 *         "printf"                     (manual)
 *           printf                     prints "Hello from Wasm!"
 *         "write_stat"                 (manual)
 *           write_stat
 *             "statsd"                 (manual) metric vowels.count:1|c
 *         "write_log"                  (manual)
 *           write_log
 *             "log_write"              (manual) log ERROR "Vowels Counted: 3"
 *     custom_span_exit
 *
 * with no error on the trace. */
#include <stdio.h>

#include "../observe_api.h"

__attribute__((noinline)) void custom_span_enter(const char *name) {
  observe_api_span_enter(name, (uint32_t)strlen(name));
}

__attribute__((noinline)) void custom_span_exit(void) { observe_api_span_exit(); }

__attribute__((noinline)) void write_stat(void) {
  static const char stat[] = "vowels.count:1|c";
  custom_span_enter("statsd");
  observe_api_metric(OBSERVE_METRIC_STATSD, stat, (uint32_t)strlen(stat));
  custom_span_exit();
}

__attribute__((noinline)) void write_log(void) {
  static const char message[] = "Vowels Counted: 3";
  custom_span_enter("log_write");
  observe_api_log(OBSERVE_LOG_ERROR, message, (uint32_t)strlen(message));
  custom_span_exit();
}

__attribute__((noinline)) void run_steps(void) {
  custom_span_enter("printf");
  printf("Hello from Wasm!\n");
  custom_span_exit();

  custom_span_enter("write_stat");
  write_stat();
  custom_span_exit();

  custom_span_enter("write_log");
  write_log();
  custom_span_exit();
}

int main(void) {
  custom_span_enter("run");
  run_steps();
  custom_span_exit();
  return 0;
}
