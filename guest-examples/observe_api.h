/*
 * observe_api.h - the Observe API for C guests (wasm32-wasi).
 *
 * The raw imports of the `dylibso:observe/api` namespace (see
 * shared/spec/observe-abi.md, section 2), plus small helpers that take
 * NUL-terminated C strings. Strings cross the boundary as (ptr, len): the
 * host never sees the terminating NUL.
 *
 *   span_enter("work");            open a span named "work"
 *   span_tags("user:42,tier:free"); tag the innermost open span
 *   metric_statsd("jobs.done:1|c");  one statsd line
 *   log_error("it broke");          also log_warn/info/debug/trace
 *   span_exit();                    close the innermost open span
 *
 * Header-only: every helper is `static inline`, nothing to link.
 */
#ifndef OBSERVE_API_H
#define OBSERVE_API_H

#include <stdint.h>
#include <string.h>

#define OBSERVE_API_IMPORT(name) \
  __attribute__((import_module("dylibso:observe/api"), import_name(name)))

/* Levels of `log`, as in the spec. */
enum observe_log_level {
  OBSERVE_LOG_ERROR = 1,
  OBSERVE_LOG_WARN = 2,
  OBSERVE_LOG_INFO = 3,
  OBSERVE_LOG_DEBUG = 4,
  OBSERVE_LOG_TRACE = 5,
};

/* Formats of `metric`, as in the spec. */
enum observe_metric_format {
  OBSERVE_METRIC_STATSD = 1,
};

#ifdef __cplusplus
extern "C" {
#endif

/* The raw imports. Pointers are offsets into the exported `memory`. */
OBSERVE_API_IMPORT("span-enter")
void observe_api_span_enter(const char *name, uint32_t name_len);

OBSERVE_API_IMPORT("span-exit")
void observe_api_span_exit(void);

OBSERVE_API_IMPORT("span-tags")
void observe_api_span_tags(const char *tags, uint32_t tags_len);

OBSERVE_API_IMPORT("metric")
void observe_api_metric(uint32_t format, const char *line, uint32_t line_len);

OBSERVE_API_IMPORT("log")
void observe_api_log(uint32_t level, const char *message, uint32_t message_len);

#ifdef __cplusplus
}
#endif

/* Helpers taking NUL-terminated strings. */
static inline void span_enter(const char *name) {
  observe_api_span_enter(name, (uint32_t)strlen(name));
}

static inline void span_exit(void) { observe_api_span_exit(); }

/* Comma-separated tags, each usually `key:value`. */
static inline void span_tags(const char *tags) {
  observe_api_span_tags(tags, (uint32_t)strlen(tags));
}

/* One statsd line, e.g. "vowels.count:1|c". */
static inline void metric_statsd(const char *line) {
  observe_api_metric(OBSERVE_METRIC_STATSD, line, (uint32_t)strlen(line));
}

static inline void log_message(enum observe_log_level level, const char *message) {
  observe_api_log((uint32_t)level, message, (uint32_t)strlen(message));
}

static inline void log_error(const char *m) { log_message(OBSERVE_LOG_ERROR, m); }
static inline void log_warn(const char *m) { log_message(OBSERVE_LOG_WARN, m); }
static inline void log_info(const char *m) { log_message(OBSERVE_LOG_INFO, m); }
static inline void log_debug(const char *m) { log_message(OBSERVE_LOG_DEBUG, m); }
static inline void log_trace(const char *m) { log_message(OBSERVE_LOG_TRACE, m); }

#endif /* OBSERVE_API_H */
