/* The tensor-message term of pair_style ffkit's hand-written kernel (ffkit.model.tensor_messages):
   forward and adjoint pass in double, on every centre of a two-layer graph.

   Each atom holds, per channel c, a 3x3 tensor kept as its nine parts [part][channel]: the scalar
   s (trace / 3), the vector w of the antisymmetric part (A_21 = w0, A_02 = w1, A_10 = w2) and five
   entries of the symmetric traceless part Q (q00, q11, q01, q02, q12; q22 = -q00 - q11). Channel
   mixings act on each part family (scalar, vector, symmetric) separately; matrix products assemble
   the 3x3 matrices. Three passes:
   1. every centre (local and ghost): the embedding X from its own edges, and Y = mix(X / (|X| + 1));
   2. local centres: messages M from the neighbours' Y, P = Y M + M Y, D = mix(P / (|P| + 1)),
      Z = X + D + D D, the invariants of X and Z, the atomic network, and the adjoint back to X, Y,
      M (and to the message radials: dE/dr_ij of the local edges);
   3. every centre: dE/dY gathered from the local atoms whose messages it feeds (through the reverse
      edges: full neighbour lists hold both directions), then the adjoint of the embedding to dE/dr_ij
      of its own edges.
   Each pass writes only its own centre's values and edges, so the result does not depend on the
   number of threads. */

#include "ffkit_kernel.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace LAMMPS_NS;

namespace {

constexpr int PARTS = 9;
constexpr int FAMILY[PARTS] = {0, 1, 1, 1, 2, 2, 2, 2, 2};    // scalar, antisymmetric, symmetric traceless

/* 3x3 matrix (row-major) of channel c from parts [9][C], and its adjoint: dE/dparts from dE/dx */
inline void assemble(const double *p, int C, int c, double *x)
{
  const double s = p[c], w0 = p[C + c], w1 = p[2 * C + c], w2 = p[3 * C + c];
  const double q00 = p[4 * C + c], q11 = p[5 * C + c], q01 = p[6 * C + c], q02 = p[7 * C + c], q12 = p[8 * C + c];
  x[0] = s + q00, x[1] = q01 - w2, x[2] = q02 + w1;
  x[3] = q01 + w2, x[4] = s + q11, x[5] = q12 - w0;
  x[6] = q02 - w1, x[7] = q12 + w0, x[8] = s - q00 - q11;
}

inline void assemble_adjoint(const double *g, int C, int c, double *dp)
{
  dp[c] += g[0] + g[4] + g[8];
  dp[C + c] += g[7] - g[5], dp[2 * C + c] += g[2] - g[6], dp[3 * C + c] += g[3] - g[1];
  dp[4 * C + c] += g[0] - g[8], dp[5 * C + c] += g[4] - g[8];
  dp[6 * C + c] += g[1] + g[3], dp[7 * C + c] += g[2] + g[6], dp[8 * C + c] += g[5] + g[7];
}

/* parts of a 3x3 matrix into channel c of p [9][C], and its adjoint: dE/dx from dE/dparts */
inline void split(const double *x, int C, int c, double *p)
{
  const double s = (x[0] + x[4] + x[8]) / 3.0;
  p[c] = s;
  p[C + c] = 0.5 * (x[7] - x[5]), p[2 * C + c] = 0.5 * (x[2] - x[6]), p[3 * C + c] = 0.5 * (x[3] - x[1]);
  p[4 * C + c] = x[0] - s, p[5 * C + c] = x[4] - s;
  p[6 * C + c] = 0.5 * (x[1] + x[3]), p[7 * C + c] = 0.5 * (x[2] + x[6]), p[8 * C + c] = 0.5 * (x[5] + x[7]);
}

inline void split_adjoint(const double *dp, int C, int c, double *g)
{
  const double ds = dp[c], dw0 = dp[C + c], dw1 = dp[2 * C + c], dw2 = dp[3 * C + c];
  const double dq00 = dp[4 * C + c], dq11 = dp[5 * C + c], dq01 = dp[6 * C + c], dq02 = dp[7 * C + c],
               dq12 = dp[8 * C + c];
  const double third = (ds - dq00 - dq11) / 3.0;
  g[0] = third + dq00, g[4] = third + dq11, g[8] = third;
  g[7] = 0.5 * (dw0 + dq12), g[5] = 0.5 * (dq12 - dw0);
  g[2] = 0.5 * (dw1 + dq02), g[6] = 0.5 * (dq02 - dw1);
  g[3] = 0.5 * (dw2 + dq01), g[1] = 0.5 * (dq01 - dw2);
}

/* c += a b + b a, of 3x3 matrices */
inline void product(const double *a, const double *b, double *c)
{
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      double sum = 0.0;
      for (int k = 0; k < 3; k++) sum += a[3 * i + k] * b[3 * k + j] + b[3 * i + k] * a[3 * k + j];
      c[3 * i + j] += sum;
    }
}

/* the adjoint of c = a b with respect to a and b, given g = dE/dc: da += g b^T, db += a^T g */
inline void product_adjoint(const double *a, const double *b, const double *g, double *da, double *db)
{
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      double sa = 0.0, sb = 0.0;
      for (int k = 0; k < 3; k++) {
        sa += g[3 * i + k] * b[3 * j + k];
        sb += a[3 * k + i] * g[3 * k + j];
      }
      da[3 * i + j] += sa;
      db[3 * i + j] += sb;
    }
}

/* |x|^2 (Frobenius) of channel c: 3 s^2 + |A|^2 + |Q|^2, with |A|^2 = 2 |w|^2 */
inline double anti2(const double *p, int C, int c)
{
  return 2.0 * (p[C + c] * p[C + c] + p[2 * C + c] * p[2 * C + c] + p[3 * C + c] * p[3 * C + c]);
}

inline double sym2(const double *p, int C, int c)
{
  const double q00 = p[4 * C + c], q11 = p[5 * C + c], q22 = -q00 - q11;
  return q00 * q00 + q11 * q11 + q22 * q22 +
         2.0 * (p[6 * C + c] * p[6 * C + c] + p[7 * C + c] * p[7 * C + c] + p[8 * C + c] * p[8 * C + c]);
}

inline double norm2(const double *p, int C, int c) { return 3.0 * p[c] * p[c] + anti2(p, C, c) + sym2(p, C, c); }

/* dp += the gradient of ga |A|^2 + gq |Q|^2 (+ gs * 3 s^2 for |x|^2: gs = gq = ga) */
inline void quadratic_adjoint(const double *p, int C, int c, double gs3, double ga, double gq, double *dp)
{
  const double q00 = p[4 * C + c], q11 = p[5 * C + c], q22 = -q00 - q11;
  dp[c] += 6.0 * gs3 * p[c];
  for (int k = 1; k <= 3; k++) dp[k * C + c] += 4.0 * ga * p[k * C + c];
  dp[4 * C + c] += 2.0 * gq * (q00 - q22), dp[5 * C + c] += 2.0 * gq * (q11 - q22);
  for (int k = 6; k <= 8; k++) dp[k * C + c] += 4.0 * gq * p[k * C + c];
}

/* out[part][l] = sum_k in[part][k] W_family[k][l] (ffkit.model.tensor_messages.PartMixing, W [3][C][C]), or with
   `adjoint` its adjoint out[part][k] = sum_l in[part][l] W_family[k][l], over the transposed matrices (W's second
   half) so that both run along contiguous rows */
void mix(const std::vector<double> &W, const double *in, int C, double *out, bool adjoint = false)
{
  for (int p = 0; p < PARTS; p++) {
    const double *w = W.data() + static_cast<std::size_t>((adjoint ? 3 : 0) + FAMILY[p]) * C * C;
    double *o = out + p * C;
    std::fill(o, o + C, 0.0);
    for (int k = 0; k < C; k++) {
      const double x = in[p * C + k];
      for (int l = 0; l < C; l++) o[l] += x * w[k * C + l];
    }
  }
}

/* sum_i f(i) for i < n, in eight partial sums (which the compiler keeps in one vector) added in a fixed order */
template <class F> inline double lane_sum(int n, F &&f)
{
  double part[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) part[j] += f(i + j);
  double sum = 0.0;
  for (; i < n; i++) sum += f(i);
  for (int j = 0; j < 8; j++) sum += part[j];
  return sum;
}

/* x / (|x| + 1) per channel (ffkit.model.tensor_messages.normalised); norms[c] = |x_c| kept for the adjoint */
void normalise(const double *x, int C, double *out, double *norms)
{
  for (int c = 0; c < C; c++) norms[c] = std::sqrt(norm2(x, C, c));
  for (int p = 0; p < PARTS; p++)
    for (int c = 0; c < C; c++) out[p * C + c] = x[p * C + c] / (norms[c] + 1.0);
}

/* dx += the adjoint of normalise at x, given dout; `along` holds C numbers of scratch */
void normalise_adjoint(const double *x, const double *norms, const double *dout, int C, double *dx, double *along)
{
  std::fill(along, along + C, 0.0);
  for (int p = 0; p < PARTS; p++)
    for (int c = 0; c < C; c++) {
      along[c] += dout[p * C + c] * x[p * C + c];
      dx[p * C + c] += dout[p * C + c] / (norms[c] + 1.0);
    }
  // d(1/(n+1))/dx = -dn/dx / (n+1)^2 and dn/dx = d|x|^2/dx / (2 n), whose weights of the parts quadratic_adjoint
  // knows; at x = 0 the term multiplies x, so it is 0
  for (int c = 0; c < C; c++) {
    const double n = norms[c], f = 1.0 / (n + 1.0);
    const double g = n > 0.0 ? -along[c] * f * f / (2.0 * n) : 0.0;
    quadratic_adjoint(x, C, c, g, g, g, dx);
  }
}

/* per channel: s, |A|^2 and |Q|^2 into features [3][C] (ffkit.model.tensor_messages.invariants) */
void invariants(const double *x, int C, double *features)
{
  for (int c = 0; c < C; c++) {
    features[c] = x[c];
    features[C + c] = anti2(x, C, c);
    features[2 * C + c] = sym2(x, C, c);
  }
}

void invariants_adjoint(const double *x, const double *g, int C, double *dx)
{
  for (int c = 0; c < C; c++) {
    dx[c] += g[c];
    quadratic_adjoint(x, C, c, 0.0, g[C + c], g[2 * C + c], dx);
  }
}

/* q00, q11, q01, q02, q12 of the symmetric traceless u u^T - 1/3 of a unit vector u (an edge's rank-2 part) */
inline void unit_outer(const double *u, double *q)
{
  q[0] = u[0] * u[0] - 1.0 / 3.0, q[1] = u[1] * u[1] - 1.0 / 3.0, q[2] = u[0] * u[1], q[3] = u[0] * u[2],
  q[4] = u[1] * u[2];
}

/* a centre's edges within the cutoff: their distances, unit vectors and Bessel basis (and d/dr) */
struct Edges {
  std::vector<int64_t> k;
  std::vector<double> r, u, basis, dbasis;    // [edge], [edge][3], [edge][basis]
};

/* radial channels [3][C] of edge q for element pair `pair` (ffkit.model.tensor_messages.EdgeRadials), and
   with DERIVATIVE their derivatives by r (one pass over the weights for both) */
template <bool DERIVATIVE>
void radials(const std::vector<double> &mix_w, const std::vector<double> &pair_w, int pair, const Edges &e, int q,
             int nb, int C3, double *__restrict R, double *__restrict dR = nullptr)
{
  const double *f = pair_w.data() + static_cast<std::size_t>(pair) * C3;
  const std::size_t row = static_cast<std::size_t>(q) * nb;
  const double *b = e.basis.data() + row, *db = e.dbasis.data() + row;
  const double *w = mix_w.data();
  for (int o = 0; o < C3; o++) {
    R[o] = b[0] * w[o];
    if constexpr (DERIVATIVE) dR[o] = db[0] * w[o];
  }
  for (int k = 1; k < nb; k++) {
    w = mix_w.data() + static_cast<std::size_t>(k) * C3;
    for (int o = 0; o < C3; o++) {
      R[o] += b[k] * w[o];
      if constexpr (DERIVATIVE) dR[o] += db[k] * w[o];
    }
  }
  for (int o = 0; o < C3; o++) {
    R[o] *= f[o];
    if constexpr (DERIVATIVE) dR[o] *= f[o];
  }
}

/* dE/dr_ij from dE/dr (along the unit vector) and dE/du (its component across it, over r) */
inline void add_edge_gradient(double dEdr, const double *du, const Edges &e, int q, double *grad)
{
  const double *u = &e.u[3 * q];
  const double along = du[0] * u[0] + du[1] * u[1] + du[2] * u[2], inv_r = 1.0 / e.r[q];
  for (int d = 0; d < 3; d++) grad[3 * e.k[q] + d] += dEdr * u[d] + (du[d] - along * u[d]) * inv_r;
}

}    // namespace

void FFKitKernel::tensor_messages(const TensorTerm &t, const double *vectors, const int64_t *species,
                                  const int64_t *neighbour, const int64_t *start, int ncentres, int nlocal,
                                  double *energy, double *grad) const
{
  const int C = t.channels, C3 = 3 * C, C9 = PARTS * C, nb = t.n_basis, S = n_species;
  const double inv_nb = t.inv_neighbors;
  const std::size_t N = static_cast<std::size_t>(ncentres), L = static_cast<std::size_t>(nlocal);
  // kept from pass 1 for passes 2 and 3 (every centre)
  std::vector<double> x0(N * C9), xhat(N * C), rstd(N), z1(N * 2 * C), gate(N * C3), mixed(N * C9), X(N * C9),
      xnorm(N * C), Y(N * C9);
  // from pass 2 for pass 3 (local centres): dE/dM, dE/dY through the product, dE/dX through the invariants and Z
  std::vector<double> dM(L * C9), dY_own(L * C9), dX_own(L * C9);
  const Layer &g1 = t.gates[0], &g2 = t.gates[1];
  // a centre's edges within the term's cutoff, their Bessel basis computed eight at a time
  auto edges_within = [&](int64_t i, Edges &e) {
    const double cut2 = t.cutoff * t.cutoff;
    e.k.clear();
    for (int64_t k = start[i]; k < start[i + 1]; k++) {
      const double *v = vectors + 3 * k;
      if (v[0] * v[0] + v[1] * v[1] + v[2] * v[2] < cut2) e.k.push_back(k);
    }
    const int n = static_cast<int>(e.k.size());
    e.r.resize(n), e.u.resize(3 * n), e.basis.resize(static_cast<std::size_t>(nb) * n), e.dbasis.resize(e.basis.size());
    v8d basis[64], dbasis[64];
    for (int q0 = 0; q0 < n; q0 += 8) {
      const int lanes = std::min(8, n - q0);
      v8d r = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};    // lanes past n: a harmless distance
      for (int l = 0; l < lanes; l++) {
        const double *v = vectors + 3 * e.k[q0 + l];
        r[l] = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
      }
      const v8d inv_r = 1.0 / r;
      t.lanes(r, inv_r, basis, dbasis);
      for (int l = 0; l < lanes; l++) {
        const int q = q0 + l;
        const double *v = vectors + 3 * e.k[q];
        e.r[q] = r[l];
        for (int d = 0; d < 3; d++) e.u[3 * q + d] = v[d] * inv_r[l];
        for (int b = 0; b < nb; b++) {
          e.basis[static_cast<std::size_t>(q) * nb + b] = basis[b][l];
          e.dbasis[static_cast<std::size_t>(q) * nb + b] = dbasis[b][l];
        }
      }
    }
  };

  // pass 1: embedding of every centre
  at::parallel_for(0, ncentres, 32, [&](int64_t first, int64_t last) {
    Edges e;
    std::vector<double> R(C3), h(C), a1(2 * C), nx(C9);
    for (int64_t i = first; i < last; i++) {
      edges_within(i, e);
      double *p0 = &x0[i * C9];
      const int si = static_cast<int>(species[i]);
      for (int q = 0; q < static_cast<int>(e.k.size()); q++) {
        radials<false>(t.embed_radial, t.embed_pair, si * S + static_cast<int>(species[neighbour[e.k[q]]]), e, q, nb,
                       C3, R.data());
        const double *u = &e.u[3 * q];
        double sym[5];
        unit_outer(u, sym);
        for (int c = 0; c < C; c++) {
          const double r0 = R[c], r1 = R[C + c], r2 = R[2 * C + c];
          p0[c] += r0;
          for (int d = 0; d < 3; d++) p0[(1 + d) * C + c] += r1 * u[d];
          for (int m = 0; m < 5; m++) p0[(4 + m) * C + c] += r2 * sym[m];
        }
      }
      for (int k = 0; k < C9; k++) p0[k] *= inv_nb;
      // layer norm of the channels' |x0|^2, then the gate network
      double mean = 0.0, var = 0.0;
      for (int c = 0; c < C; c++) mean += (h[c] = norm2(p0, C, c));
      mean /= C;
      for (int c = 0; c < C; c++) var += (h[c] - mean) * (h[c] - mean);
      const double rs = rstd[i] = 1.0 / std::sqrt(var / C + t.norm_eps);
      for (int c = 0; c < C; c++) {
        xhat[i * C + c] = (h[c] - mean) * rs;
        h[c] = xhat[i * C + c] * t.norm_weight[c] + t.norm_bias[c];
      }
      double *z = &z1[i * 2 * C], *gt = &gate[i * C3];
      const double *hin = h.data();
      g1.forward(&hin, 1, &z);
      for (int o = 0; o < 2 * C; o++) a1[o] = silu(z[o]);
      const double *ain = a1.data();
      g2.forward(&ain, 1, &gt);
      // X = gated mix of x0; Y = mix of X / (|X| + 1)
      double *mx = &mixed[i * C9], *x = &X[i * C9];
      mix(t.embed_mixing, p0, C, mx);
      for (int p = 0; p < PARTS; p++)
        for (int c = 0; c < C; c++) x[p * C + c] = mx[p * C + c] * gt[FAMILY[p] * C + c];
      normalise(x, C, nx.data(), &xnorm[i * C]);
      mix(t.pre_mixing, nx.data(), C, &Y[i * C9]);
    }
  });

  // pass 2: messages, product, invariants and the atomic network of the local centres, with the adjoint
  // back to X, Y and M (and the message radials' share of dE/dr_ij)
  at::parallel_for(0, nlocal, 32, [&](int64_t first, int64_t last) {
    Edges edges[ATOM_BLOCK];    // each atom's, from its messages to their adjoint
    Scratch s[ATOM_BLOCK];
    std::vector<double> R(C3), dR(C3), gR(C3);
    // per atom of the block: M, P / (|P| + 1) and |P|, D, Z (parts), P's matrices, the features
    std::vector<double> M(ATOM_BLOCK * C9), P(ATOM_BLOCK * C9), Pn(ATOM_BLOCK * C9), pnorm(ATOM_BLOCK * C),
        D(ATOM_BLOCK * C9), Z(ATOM_BLOCK * C9), DD(C9), dD(C9), dP(C9), dPn(C9), dZ(C9), dMat(27), along(C);
    double mat[4][9];
    const int F = 6 * C;
    for (int64_t i0 = first; i0 < last; i0 += ATOM_BLOCK) {
      const int count = static_cast<int>(std::min<int64_t>(ATOM_BLOCK, last - i0));
      double e_block[ATOM_BLOCK] = {};
      for (int b = 0; b < count; b++) {
        const int64_t i = i0 + b;
        const double *y = &Y[i * C9], *x = &X[i * C9];
        double *m = &M[b * C9];
        if (t.interactions > 0) {
          std::fill(m, m + C9, 0.0);
          Edges &e = edges[b];
          edges_within(i, e);
          const int si = static_cast<int>(species[i]);
          for (int q = 0; q < static_cast<int>(e.k.size()); q++) {
            radials<false>(t.message_radial, t.message_pair, si * S + static_cast<int>(species[neighbour[e.k[q]]]), e,
                           q, nb, C3, R.data());
            const double *yj = &Y[neighbour[e.k[q]] * C9];
            for (int p = 0; p < PARTS; p++) {
              const double *r = &R[FAMILY[p] * C];
              for (int c = 0; c < C; c++) m[p * C + c] += r[c] * yj[p * C + c];
            }
          }
          for (int k = 0; k < C9; k++) m[k] *= inv_nb;
        } else {
          std::copy(y, y + C9, m);
        }
        double *pp = &P[b * C9], *d = &D[b * C9], *z = &Z[b * C9];
        for (int c = 0; c < C; c++) {
          assemble(y, C, c, mat[0]);
          assemble(m, C, c, mat[1]);
          std::fill(mat[2], mat[2] + 9, 0.0);
          product(mat[0], mat[1], mat[2]);
          split(mat[2], C, c, pp);
        }
        normalise(pp, C, &Pn[b * C9], &pnorm[b * C]);
        mix(t.post_mixing, &Pn[b * C9], C, d);
        for (int c = 0; c < C; c++) {
          assemble(d, C, c, mat[0]);
          std::fill(mat[1], mat[1] + 9, 0.0);
          product(mat[0], mat[0], mat[1]);    // 2 D D
          for (int k = 0; k < 9; k++) mat[1][k] *= 0.5;
          split(mat[1], C, c, DD.data());
        }
        for (int k = 0; k < C9; k++) z[k] = x[k] + d[k] + DD[k];
        // the network's input: standardised invariants of X and Z (+ one-hot element)
        const std::vector<Layer> &net = t.net.networks[t.net.shared ? 0 : species[i]];
        s[b].a.resize(net.size());
        s[b].z.resize(net.size());
        std::vector<double> &in = s[b].a[0];
        in.assign(net[0].n_in, 0.0);
        invariants(x, C, in.data());
        invariants(z, C, in.data() + 3 * C);
        for (int f = 0; f < F; f++) in[f] = (in[f] - t.net.mean[f]) * t.net.inv_std[f];
        if (t.net.shared) in[F + species[i]] = 1.0;
      }
      readout(t.net, species + i0, count, e_block, s);
      for (int b = 0; b < count; b++) {
        const int64_t i = i0 + b;
        energy[i] += e_block[b];
        const double *y = &Y[i * C9], *x = &X[i * C9], *m = &M[b * C9], *d = &D[b * C9], *z = &Z[b * C9];
        std::vector<double> &g = s[b].g;
        for (int f = 0; f < F; f++) g[f] *= t.net.inv_std[f];
        double *dx = &dX_own[i * C9], *dy = &dY_own[i * C9], *dm = &dM[i * C9];
        std::fill(dx, dx + C9, 0.0);
        std::fill(dy, dy + C9, 0.0);
        std::fill(dm, dm + C9, 0.0);
        std::fill(dZ.begin(), dZ.end(), 0.0);
        invariants_adjoint(x, g.data(), C, dx);
        invariants_adjoint(z, g.data() + 3 * C, C, dZ.data());
        // Z = X + D + D D
        for (int k = 0; k < C9; k++) dx[k] += dZ[k];
        std::copy(dZ.begin(), dZ.end(), dD.begin());
        for (int c = 0; c < C; c++) {
          split_adjoint(dZ.data(), C, c, &dMat[0]);
          assemble(d, C, c, mat[0]);
          std::fill(&dMat[9], &dMat[18], 0.0);
          product_adjoint(mat[0], mat[0], &dMat[0], &dMat[9], &dMat[9]);
          assemble_adjoint(&dMat[9], C, c, dD.data());
        }
        // D = mix(P / (|P| + 1))
        mix(t.post_mixing, dD.data(), C, dPn.data(), true);
        std::fill(dP.begin(), dP.end(), 0.0);
        normalise_adjoint(&P[b * C9], &pnorm[b * C], dPn.data(), C, dP.data(), along.data());
        // P = Y M + M Y
        for (int c = 0; c < C; c++) {
          split_adjoint(dP.data(), C, c, &dMat[0]);
          assemble(y, C, c, mat[0]);
          assemble(m, C, c, mat[1]);
          std::fill(&dMat[9], &dMat[27], 0.0);
          product_adjoint(mat[0], mat[1], &dMat[0], &dMat[9], &dMat[18]);    // Y M
          product_adjoint(mat[1], mat[0], &dMat[0], &dMat[18], &dMat[9]);    // M Y
          assemble_adjoint(&dMat[9], C, c, dy);
          assemble_adjoint(&dMat[18], C, c, dm);
        }
        if (t.interactions == 0) {    // M = Y
          for (int k = 0; k < C9; k++) dy[k] += dm[k];
          continue;
        }
        // the message radials: dE/dR of each edge, times dR/dr
        const Edges &e = edges[b];
        const int si = static_cast<int>(species[i]);
        for (int q = 0; q < static_cast<int>(e.k.size()); q++) {
          radials<true>(t.message_radial, t.message_pair, si * S + static_cast<int>(species[neighbour[e.k[q]]]), e, q,
                        nb, C3, R.data(), dR.data());
          const double *yj = &Y[neighbour[e.k[q]] * C9];
          std::fill(gR.begin(), gR.end(), 0.0);
          for (int p = 0; p < PARTS; p++)
            for (int c = 0; c < C; c++) gR[FAMILY[p] * C + c] += dm[p * C + c] * yj[p * C + c];
          const double dEdr = lane_sum(C3, [&](int o) { return gR[o] * dR[o]; });
          const double none[3] = {0.0, 0.0, 0.0};
          add_edge_gradient(dEdr * inv_nb, none, e, q, grad);
        }
      }
    }
  });

  // pass 3: dE/dY of every centre (its own product, and the local atoms its messages reach), then back
  // through Y = mix(X / (|X| + 1)) and the embedding to dE/dr_ij of its edges
  at::parallel_for(0, ncentres, 32, [&](int64_t first, int64_t last) {
    Edges e;
    std::vector<double> R(C3), dR(C3), dy(C9), dnx(C9), dx(C9), dmx(C9), dp0(C9), dgate(C3), dz1(2 * C), da1(2 * C),
        dh(C), gR(C3), along(C);
    for (int64_t i = first; i < last; i++) {
      const bool local = i < nlocal;
      edges_within(i, e);
      const int n = static_cast<int>(e.k.size()), si = static_cast<int>(species[i]);
      if (local)
        std::copy(&dY_own[i * C9], &dY_own[i * C9] + C9, dy.begin());
      else
        std::fill(dy.begin(), dy.end(), 0.0);
      if (t.interactions > 0)    // M_j = sum_i R_ji Y_i over the edges j -> i, for the local j
        for (int q = 0; q < n; q++) {
          const int64_t j = neighbour[e.k[q]];
          if (j >= nlocal) continue;
          radials<false>(t.message_radial, t.message_pair, static_cast<int>(species[j]) * S + si, e, q, nb, C3,
                         R.data());
          const double *dm = &dM[j * C9];
          for (int p = 0; p < PARTS; p++) {
            const double *r = &R[FAMILY[p] * C];
            for (int c = 0; c < C; c++) dy[p * C + c] += inv_nb * r[c] * dm[p * C + c];
          }
        }
      const double *x = &X[i * C9], *p0 = &x0[i * C9], *mx = &mixed[i * C9], *gt = &gate[i * C3];
      mix(t.pre_mixing, dy.data(), C, dnx.data(), true);
      if (local)
        std::copy(&dX_own[i * C9], &dX_own[i * C9] + C9, dx.begin());
      else
        std::fill(dx.begin(), dx.end(), 0.0);
      normalise_adjoint(x, &xnorm[i * C], dnx.data(), C, dx.data(), along.data());
      // X = mixed x0, gated
      std::fill(dgate.begin(), dgate.end(), 0.0);
      for (int p = 0; p < PARTS; p++)
        for (int c = 0; c < C; c++) {
          dmx[p * C + c] = dx[p * C + c] * gt[FAMILY[p] * C + c];
          dgate[FAMILY[p] * C + c] += dx[p * C + c] * mx[p * C + c];
        }
      mix(t.embed_mixing, dmx.data(), C, dp0.data(), true);
      // the gate network and the layer norm, back to the channels' |x0|^2
      const double *gin = dgate.data();
      double *gout = da1.data();
      g2.adjoint(&gin, 1, &gout);
      const double *z = &z1[i * 2 * C];
      for (int o = 0; o < 2 * C; o++) dz1[o] = da1[o] * silu_slope(z[o]);
      gin = dz1.data();
      gout = dh.data();
      g1.adjoint(&gin, 1, &gout);
      const double *xh = &xhat[i * C];
      double mean_g = 0.0, mean_gx = 0.0;
      for (int c = 0; c < C; c++) {
        dh[c] *= t.norm_weight[c];
        mean_g += dh[c];
        mean_gx += dh[c] * xh[c];
      }
      mean_g /= C;
      mean_gx /= C;
      for (int c = 0; c < C; c++) {
        const double dn = rstd[i] * (dh[c] - mean_g - xh[c] * mean_gx);
        quadratic_adjoint(p0, C, c, dn, dn, dn, dp0.data());
      }
      // x0 = inv_nb sum_j [r0 1 + r1 skew(u) + r2 (u u^T - 1/3)]: each edge's dE/dR and dE/du
      for (int q = 0; q < n; q++) {
        radials<true>(t.embed_radial, t.embed_pair, si * S + static_cast<int>(species[neighbour[e.k[q]]]), e, q, nb,
                      C3, R.data(), dR.data());
        const double *u = &e.u[3 * q];
        double sym[5];
        unit_outer(u, sym);
        const double *gs = dp0.data(), *gw0 = gs + C, *gw1 = gs + 2 * C, *gw2 = gs + 3 * C, *gq00 = gs + 4 * C,
                     *gq11 = gs + 5 * C, *gq01 = gs + 6 * C, *gq02 = gs + 7 * C, *gq12 = gs + 8 * C;
        const double *r1 = R.data() + C, *r2 = R.data() + 2 * C;
        const double dEdr = lane_sum(C, [&](int c) {
          const double g1r = gw0[c] * u[0] + gw1[c] * u[1] + gw2[c] * u[2];
          const double g2r =
              gq00[c] * sym[0] + gq11[c] * sym[1] + gq01[c] * sym[2] + gq02[c] * sym[3] + gq12[c] * sym[4];
          return gs[c] * dR[c] + g1r * dR[C + c] + g2r * dR[2 * C + c];
        });
        const double du0 = lane_sum(C, [&](int c) {
          return r1[c] * gw0[c] + r2[c] * (2.0 * u[0] * gq00[c] + u[1] * gq01[c] + u[2] * gq02[c]);
        });
        const double du1 = lane_sum(C, [&](int c) {
          return r1[c] * gw1[c] + r2[c] * (2.0 * u[1] * gq11[c] + u[0] * gq01[c] + u[2] * gq12[c]);
        });
        const double du2 =
            lane_sum(C, [&](int c) { return r1[c] * gw2[c] + r2[c] * (u[0] * gq02[c] + u[1] * gq12[c]); });
        const double du[3] = {inv_nb * du0, inv_nb * du1, inv_nb * du2};
        add_edge_gradient(dEdr * inv_nb, du, e, q, grad);
      }
    }
  });
}
