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

#include <ATen/ATen.h>

namespace kgain {

namespace gram_detail {
using Ssyrk = void (*)(int order, int uplo, int trans, int n, int k, float alpha, const float* a, int lda, float beta,
                       float* c, int ldc);
inline Ssyrk ssyrk() {
  static const Ssyrk found = reinterpret_cast<Ssyrk>(::dlsym(RTLD_DEFAULT, "cblas_ssyrk"));
  return found;
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
  at::Tensor g = at::zeros({d, d}, at::kFloat);
  constexpr int row_major = 101, upper = 121, transposed = 112;  // CBLAS's enum values
  syrk(row_major, upper, transposed, static_cast<int>(d), static_cast<int>(n), 1.0f, rows.data_ptr<float>(),
       static_cast<int>(d), 0.0f, g.data_ptr<float>(), static_cast<int>(d));
  return g.triu() + g.triu(1).t();
}

}  // namespace kgain
