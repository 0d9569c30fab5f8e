// gram: X^T X of float32 rows, through BLAS's symmetric rank-k update when the process has one.
//
// Why: a Gram matrix (ridge's normal equations, the logistic probe's curvature) is the largest
// product a linear probe forms, n d^2 multiply-adds on a wide tap; a general matrix product
// computes both triangles (2 n d^2), ssyrk one. LibTorch does not expose syrk, so the CBLAS entry
// point is looked up in the process (LibTorch loaded its BLAS; Debian's OpenBLAS exports it);
// without one, the general product gives the same matrix.
// Threads: pure; the lookup is done once, thread-safely.
#pragma once

#include <dlfcn.h>

#include <algorithm>
#include <cstdint>

#include <ATen/ATen.h>

namespace kgain {

namespace gram_detail {
using Ssyrk = void (*)(int order, int uplo, int trans, int n, int k, float alpha, const float* a, int lda, float beta,
                       float* c, int ldc);
inline Ssyrk ssyrk() {
  static const Ssyrk found = reinterpret_cast<Ssyrk>(::dlsym(RTLD_DEFAULT, "cblas_ssyrk"));
  return found;
}

// Copies the upper triangle of the row-major [d, d] matrix g onto its lower one, in 32 x 32
// tiles so that the column-wise reads stay in cache (a whole-matrix transpose and add took
// longer than a small Gram product itself).
inline void mirror_upper(float* g, std::int64_t d) {
  constexpr std::int64_t tile = 32;
  for (std::int64_t i0 = 0; i0 < d; i0 += tile)
    for (std::int64_t j0 = 0; j0 <= i0; j0 += tile)
      for (std::int64_t i = i0; i < std::min(d, i0 + tile); ++i)
        for (std::int64_t j = j0; j < std::min(i, j0 + tile); ++j) g[i * d + j] = g[j * d + i];
}
}  // namespace gram_detail

// rows: float32 [n, d] (made contiguous here if they are not). Returns X^T X, float32 [d, d],
// both triangles filled.
inline at::Tensor gram(const at::Tensor& rows_in) {
  TORCH_CHECK(rows_in.dim() == 2 && rows_in.scalar_type() == at::kFloat, "kgain::gram: float32 [n, d] rows expected");
  const at::Tensor rows = rows_in.contiguous();
  const auto syrk = gram_detail::ssyrk();
  const std::int64_t n = rows.size(0), d = rows.size(1);
  if (!syrk || n == 0 || n > (1ll << 30) || d > (1ll << 30)) return rows.t().mm(rows);
  at::Tensor g = at::empty({d, d}, at::kFloat);  // beta = 0: BLAS writes the upper triangle without reading it
  constexpr int row_major = 101, upper = 121, transposed = 112;  // CBLAS's enum values
  syrk(row_major, upper, transposed, static_cast<int>(d), static_cast<int>(n), 1.0f, rows.data_ptr<float>(),
       static_cast<int>(d), 0.0f, g.data_ptr<float>(), static_cast<int>(d));
  gram_detail::mirror_upper(g.data_ptr<float>(), d);
  return g;
}

}  // namespace kgain
