// Row kernels for probes that pass over their features one row at a time: a float32 feature
// row against float64 weights, every product and sum in float64 (and dot_rows, two rows of one
// type).
//
// The logistic probe's objective reads each training row once per evaluation and computes both
// its logits (dot) and its share of the gradient (axpy) while the row is in cache. The sums run
// in a fixed order of sixteen partial sums, so the loops vectorize and give the same bits with or
// without AVX2: each function is built for both and the CPU picks at load time (no fused
// multiply-add, which would change the rounding).
// Threads: pure functions.
#pragma once

#include <cstddef>

namespace kgain {

// sum_j x[j] * w[j]
__attribute__((target_clones("avx2", "default"))) static inline double dot(const float* x, const double* w,
                                                                           std::size_t n) {
  double lanes[16] = {0};  // four AVX2 registers: four independent chains of additions
  std::size_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (std::size_t l = 0; l < 16; ++l) lanes[l] += static_cast<double>(x[j + l]) * w[j + l];
  double tail = 0;
  for (; j < n; ++j) tail += static_cast<double>(x[j]) * w[j];
  for (std::size_t l = 0; l < 8; ++l) lanes[l] += lanes[l + 8];
  return (((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))) + tail;
}

// g[j] += a * x[j]
__attribute__((target_clones("avx2", "default"))) static inline void axpy(double a, const float* x, double* g,
                                                                          std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) g[j] += a * static_cast<double>(x[j]);
}

// out[c] = dot(x, w + c * stride, n) for c < k, bit for bit, with each element of x read and
// converted once for all k (a multinomial objective's k logits of one row).
__attribute__((target_clones("avx2", "default"))) static inline void dots(const float* x, const double* w,
                                                                          std::size_t stride, std::size_t k,
                                                                          std::size_t n, double* out) {
  constexpr std::size_t kColumns = 4;  // accumulators of four columns: 16 AVX2 registers
  for (std::size_t c0 = 0; c0 < k; c0 += kColumns) {
    const std::size_t columns = k - c0 < kColumns ? k - c0 : kColumns;
    double lanes[kColumns][16] = {};
    std::size_t j = 0;
    for (; j + 16 <= n; j += 16) {
      double row[16];
      for (std::size_t l = 0; l < 16; ++l) row[l] = static_cast<double>(x[j + l]);
      for (std::size_t c = 0; c < columns; ++c) {
        const double* wc = w + (c0 + c) * stride + j;
        for (std::size_t l = 0; l < 16; ++l) lanes[c][l] += row[l] * wc[l];
      }
    }
    for (std::size_t c = 0; c < columns; ++c) {
      const double* wc = w + (c0 + c) * stride;
      double tail = 0;
      for (std::size_t t = j; t < n; ++t) tail += static_cast<double>(x[t]) * wc[t];
      double* lc = lanes[c];
      for (std::size_t l = 0; l < 8; ++l) lc[l] += lc[l + 8];
      out[c0 + c] = (((lc[0] + lc[4]) + (lc[1] + lc[5])) + ((lc[2] + lc[6]) + (lc[3] + lc[7]))) + tail;
    }
  }
}

// sum_j a[j] * b[j] for two rows of one type (float or double, summed in that type): eight
// running sums (so that the loop vectorizes; one chain of dependent additions costs four cycles
// an element), added in a fixed order. For triangular solves and residuals on rows in memory.
template <typename T>
static inline T dot_rows(const T* a, const T* b, std::size_t n) {
  T lanes[8] = {0};
  std::size_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (std::size_t q = 0; q < 8; ++q) lanes[q] += a[j + q] * b[j + q];
  T tail = 0;
  for (; j < n; ++j) tail += a[j] * b[j];
  return (((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))) + tail;
}

}  // namespace kgain
