/* features: real compiler output that uses the post-MVP instructions the
 * instrumenter must carry through: SIMD (-msimd128, auto-vectorised loops
 * and wasm_simd128.h intrinsics), bulk memory (memory.copy/fill for
 * memcpy/memset), non-trapping float-to-int conversions, sign extension,
 * and a br_table from a dense switch. Built with -O2.
 *
 * Output, exit code 0:
 *   dot: 6111.0
 *   sum4: 36
 *   saturate: 2147483647 -2147483648 0
 *   sext: -128 -32768
 *   classify: 9 letters, 2 digits, 2 spaces, 2 other
 *   copy: checksum 8256
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wasm_simd128.h>

#define N 64

static float xs[N], ys[N];
static unsigned char src[256], dst[256];

__attribute__((noinline)) float dot(const float *a, const float *b, int n) {
  float sum = 0;
  for (int i = 0; i < n; i++) sum += a[i] * b[i];
  return sum;
}

__attribute__((noinline)) int32_t sum4(const int32_t *v) {
  v128_t a = wasm_v128_load(v);
  v128_t b = wasm_v128_load(v + 4);
  v128_t s = wasm_i32x4_add(a, b);
  s = wasm_i32x4_add(s, wasm_i32x4_shuffle(s, s, 2, 3, 0, 1));
  s = wasm_i32x4_add(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
  return wasm_i32x4_extract_lane(s, 0);
}

__attribute__((noinline)) int32_t saturate(double d) {
  return __builtin_wasm_trunc_saturate_s_i32_f64(d);
}

__attribute__((noinline)) int32_t sext8(int32_t x) { return (int8_t)x; }
__attribute__((noinline)) int32_t sext16(int32_t x) { return (int16_t)x; }

enum kind { LETTER, DIGIT, SPACE, OTHER };

__attribute__((noinline)) enum kind classify(char c) {
  switch (c) {
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      return DIGIT;
    case ' ': case '\t': case '\n':
      return SPACE;
    default:
      return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ? LETTER : OTHER;
  }
}

__attribute__((noinline)) unsigned copy_and_sum(void) {
  for (int i = 0; i < 256; i++) src[i] = (unsigned char)i;
  memcpy(dst, src, 128);
  memset(dst + 128, 1, 128);
  unsigned sum = 0;
  for (int i = 0; i < 256; i++) sum += dst[i];
  return sum;
}

int main(int argc, char **argv) {
  (void)argv;
  for (int i = 0; i < N; i++) {
    xs[i] = (float)(i + argc - 1);
    ys[i] = (float)(i % 7);
  }
  printf("dot: %.1f\n", dot(xs, ys, N));

  int32_t v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  printf("sum4: %d\n", sum4(v));

  volatile double big = 1e20, small = -1e20, nan = __builtin_nan("");
  printf("saturate: %d %d %d\n", saturate(big), saturate(small), saturate(nan));
  printf("sext: %d %d\n", sext8(0x80), sext16(0x8000));

  int counts[4] = {0, 0, 0, 0};
  const char *text = "Hello 42 wasm!?";
  for (const char *p = text; *p; p++) counts[classify(*p)]++;
  printf("classify: %d letters, %d digits, %d spaces, %d other\n", counts[LETTER], counts[DIGIT],
         counts[SPACE], counts[OTHER]);
  printf("copy: checksum %u\n", copy_and_sum());
  return 0;
}
