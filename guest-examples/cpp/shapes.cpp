// shapes: a C++ guest (no C++ standard library, only libc) whose function
// names are Itanium-mangled, for the SDK's demangler. Uses a namespace,
// classes with virtual methods, an overload and a template, and a manual
// span from the C header:
//
//   main -> shapes::total_area<shapes::Shape>(...) -> shapes::Circle::area() ...
//
// Manual span "measure" (tags count:3) around the sum. Output:
//   "total area: 39.14" then "scaled: 6". Exit code 0.
#include <stdio.h>

#include "../observe_api.h"

namespace shapes {

class Shape {
 public:
  virtual double area() const = 0;
};

class Circle : public Shape {
 public:
  explicit Circle(double r) : r_(r) {}
  __attribute__((noinline)) double area() const override { return 3.14 * r_ * r_; }

 private:
  double r_;
};

class Rect : public Shape {
 public:
  Rect(double w, double h) : w_(w), h_(h) {}
  __attribute__((noinline)) double area() const override { return w_ * h_; }

 private:
  double w_, h_;
};

template <typename T>
__attribute__((noinline)) double total_area(const T *const *items, int count) {
  double sum = 0;
  for (int i = 0; i < count; i++) sum += items[i]->area();
  return sum;
}

__attribute__((noinline)) int scale(int value, int factor) { return value * factor; }
__attribute__((noinline)) double scale(double value, double factor) { return value * factor; }

}  // namespace shapes

int main(int argc, char **argv) {
  (void)argv;
  shapes::Circle c(2.0);
  shapes::Rect r(3.0, 4.0);
  shapes::Rect s(1.0, 14.58);
  const shapes::Shape *items[] = {&c, &r, &s};

  span_enter("measure");
  span_tags("count:3");
  double total = shapes::total_area(items, 3);
  span_exit();

  printf("total area: %.2f\n", shapes::scale(total, 1.0));
  printf("scaled: %d\n", shapes::scale(argc + 1, 3));
  return 0;
}
