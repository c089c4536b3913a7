/* The hand-written kernel of pair_style ffkit: the spline pair table, the 3-body moment term, the
   many-body term (ffkit.model.tabulated, ffkit.model.descriptor_terms) and the equivariant tensor-message
   term (ffkit.model.tensor_messages; ffkit_tensor_kernel.cpp) evaluated in double with forces from a
   hand-written adjoint pass, no autograd and no TorchScript in the MD step. Its parameters come
   from the artifact's kernel.json (ffkit.model.kernel_export); the TorchScript model in the same
   artifact computes the same function (tests/test_lammps_kernel.py). */

#ifndef LMP_FFKIT_KERNEL_H
#define LMP_FFKIT_KERNEL_H

#include "json.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace LAMMPS_NS {

class FFKitKernel {
 public:
  /* read kernel.json; throws std::runtime_error naming the field that is wrong */
  void load(const json &spec);
  bool loaded() const { return n_species > 0; }
  /* whether this object was compiled with OpenMP: without it at::parallel_for runs its loops serial */
  static bool threaded();
  std::string describe() const;

  /* Per-atom energies (eV) of centres 0..nlocal-1 and dE/dr_ij (eV/A, written to grad[3 * nedges]) for
     pair vectors r_ij = vectors[k] (A) of edges (centre[k], neighbour[k]), grouped by centre in
     ascending order, as pair_style ffkit builds them. Centres are shared among torch's threads
     (pair_style ffkit threads N). A model with a tensor-message term (two layers) also takes the
     edges of the ghost centres, numbered from nlocal on, after the local centres' edges. */
  void evaluate(const double *vectors, const int64_t *species, const int64_t *centre, const int64_t *neighbour,
                int64_t nedges, int nlocal, double *energy, double *grad) const;

  /* Whether two kernel.json members differ only in their atomic networks (each ML term's readout
     'networks' and 'output_scale'): the heads of one multi-head model, whose descriptors one
     evaluation serves (evaluate_heads). */
  static bool same_descriptors(const json &a, const json &b);

  /* A committee of `heads`, kernels with this one's descriptors (same_descriptors), as `evaluate`
     does for each member and then averages, but with every descriptor computed once: the members'
     mean per-atom energies and dE/dr_ij (one adjoint pass, of the mean network gradient); with
     head_grad (one array of 3 * nedges per head), each member's own dE/dr_ij too (one more
     adjoint pass per member but the first, whose follows from the mean's and the others'). The
     mean is the same bits with or without head_grad. */
  void evaluate_heads(const std::vector<FFKitKernel> &heads, const double *vectors, const int64_t *species,
                      const int64_t *centre, const int64_t *neighbour, int64_t nedges, int nlocal, double *energy,
                      double *grad, double *const *head_grad) const;

 private:
  struct PairTable {
    double cutoff = 0.0, r_first = 0.0, spacing = 0.0;
    int n_knots = 0;
    std::vector<double> coefficients;    // [(a * S + b) * n_knots + k][4]
  };
  /* a dense layer: weight [n_out][n_in] and its transpose [n_in][n_out] (forward products vectorise), held
     in float when every weight is a float32 value (float32 artifacts: the same sums, half the memory the
     products stream), else in double; only one of the two pairs is filled */
  struct Layer {
    int n_in = 0, n_out = 0;
    std::vector<double> bias;
    std::vector<double> weight, weight_t;
    std::vector<float> weight_f, weight_t_f;
    bool single() const { return !weight_f.empty(); }
    void forward(const double *const *x, int count, double *const *z) const;     // z_b = W x_b + bias
    void adjoint(const double *const *g, int count, double *const *gin) const;   // gin_b = W^T g_b
  };
  struct Readout {    // ffkit.model.readout.ElementNetworks
    bool shared = false;
    std::vector<double> mean, inv_std;   // feature standardisation
    double output_scale = 1.0;
    std::vector<std::vector<Layer>> networks;    // one per element, or one shared (one-hot input)
  };
  typedef double v8d __attribute__((vector_size(64)));
  /* ffkit.model.radial.BesselBasis: sqrt(2/r_c) sin(n w r) / r times the polynomial envelope */
  struct Bessel {
    double cutoff = 0.0, prefactor = 0.0, frequency = 0.0, p = 6.0;
    int p_int = -1;                               // the envelope's power if it is an integer
    std::vector<double> frequencies, detune;    // Bessel n w_1 + detune_n (rounding of stored frequencies)
    int n_basis = 0;
    void load_basis(const json &term, const std::string &where);
    /* basis[b] and dbasis[b] / dr at eight distances r (and their 1 / r), one in each lane */
    void lanes(const v8d &r, const v8d &inv_r, v8d *basis, v8d *dbasis) const;
  };
  struct MomentTerm : Bessel {    // a three_body term, or a many_body one (n_coupled > 0)
    int n_channels = 0, l_max = 0, n_groups = 1, n_mono = 0, n_features = 0;
    std::vector<double> radial;          // [pair][n_basis][n_channels * n_groups], / mean neighbour count
    std::vector<int> exponents;          // [n_mono][3]
    std::vector<double> mono_weight;     // multinomial weights of the rank contractions
    std::vector<int> group_of;           // radial block each monomial's moment uses
    std::vector<int> rank_start;         // [l_max + 2]
    bool canonical = false;              // exponents in ffkit's order: the fixed-size kernels apply
    int n_three = 0;                     // features of the 3-body part (the first ones)
    int n_coupled = 0;                   // many_body: channels of the 4-body invariants (0: a three_body term)
    std::vector<double> mix_vector, mix_tensor;    // [n_coupled][n_channels]
    int vector_index[3] = {0, 0, 0}, matrix_index[9] = {};    // monomial of x_a, and of x_a x_b
    Readout net;
  };
  struct TensorTerm : Bessel {    // a tensor_messages term (ffkit.model.tensor_messages.TensorMessagesML)
    int channels = 0, interactions = 1;
    double inv_neighbors = 1.0, norm_eps = 1e-5;
    std::vector<double> embed_radial, message_radial;    // [basis][3 C]: the Bessel mix of each part's channels
    std::vector<double> embed_pair, message_pair;    // [element pair][3 C]: each pair's factors
    std::vector<double> norm_weight, norm_bias;    // the layer norm of the embedding's channel norms
    std::vector<Layer> gates;    // C -> 2 C (SiLU) -> 3 C: the embedding's gate of each part and channel
    std::vector<double> embed_mixing, pre_mixing, post_mixing;    // [family][C][C], then each transposed
    Readout net;
  };
  /* the networks' activation, SiLU z sigmoid(z), and its slope */
  static double silu(double z) { return z * (1.0 / (1.0 + std::exp(-z))); }
  static double silu_slope(double z)
  {
    const double sg = 1.0 / (1.0 + std::exp(-z));
    return sg * (1.0 + z * (1.0 - sg));
  }
  static constexpr int ATOM_BLOCK = 8;    // centres whose networks run together (readout)
  /* buffers of one centre's 3-body evaluation and of any term's atomic networks (each thread has ATOM_BLOCK) */
  struct Scratch {
    int n = 0;    // edges within the term's cutoff
    std::vector<int64_t> edge;
    std::vector<double> radial, dradial_dr;    // [edge][channel]
    std::vector<v8d> unit_t, inv_r_t, powers_t, mono_t;    // [batch of eight edges][component], the edge in the lane
    std::vector<double> moments_t, gram, dmoments_t;    // moments [m][c], a rank's Gram matrix, their adjoint [m][c]
    std::vector<std::vector<double>> z, a;    // each layer's pre-activation and input
    std::vector<double> g, gin, g_mean;    // dE/d(network input), a layer's adjoint, the heads' mean of g
    std::vector<double> v, T, Tv, TT, dv, dT;    // the 4-body part: mixed vectors, matrices, products, adjoints
  };
  struct Heads {    // evaluate_heads' members and where their own gradients go (nullptr: the mean only)
    const std::vector<FFKitKernel> *kernels;
    double *const *grad;
  };

  void run(const double *vectors, const int64_t *species, const int64_t *centre, const int64_t *neighbour,
           int64_t nedges, int nlocal, double *energy, double *grad, const Heads *heads) const;

  int n_species = 0;
  std::vector<double> reference;
  std::vector<PairTable> tables;
  std::vector<MomentTerm> moment_terms;
  std::vector<TensorTerm> tensor_terms;
  std::vector<std::string> term_names;

  /* a tensor-message term on every centre (ghost centres: their states feed local atoms' messages),
     adding to the energies of the nlocal local centres and to dE/dr_ij of every edge (ffkit_tensor_kernel.cpp) */
  void tensor_messages(const TensorTerm &t, const double *vectors, const int64_t *species, const int64_t *neighbour,
                       const int64_t *start, int ncentres, int nlocal, double *energy, double *grad) const;

  void pair_table(const PairTable &t, int si, const double *vectors, const int64_t *species,
                  const int64_t *neighbour, int64_t begin, int64_t end, double &energy, double *grad) const;
  template <int KC, int LC, int GC>
  void moment_block(const MomentTerm &t, int64_t i0, int count, const double *vectors, const int64_t *species,
                    const int64_t *neighbour, const int64_t *start, double *energy, double *grad, Scratch *s) const;
  template <int KC, int LC, int GC>
  void heads_block(std::size_t ti, const Heads &heads, int64_t i0, int count, const double *vectors,
                   const int64_t *species, const int64_t *neighbour, const int64_t *start, double *energy,
                   double *grad, Scratch *s) const;
  template <int KC, int LC, int GC>
  void moment_features(const MomentTerm &t, int si, const double *vectors, const int64_t *species,
                       const int64_t *neighbour, int64_t begin, int64_t end, Scratch &s) const;
  static Layer load_layer(const json &layer, const std::string &where, int n_in);
  static Readout load_readout(const json &term, const std::string &where, int n_features, int S);
  void readout(const Readout &r, const int64_t *species, int count, double *energy, Scratch *s) const;
  template <int KC, int LC, int GC>
  void moment_adjoint(const MomentTerm &t, Scratch &s, double *grad) const;
  void four_body(const MomentTerm &t, const double *mt, double *features, Scratch &s) const;
  void four_body_adjoint(const MomentTerm &t, const double *g, const double *inv_std, double *dmt, Scratch &s) const;
};

}    // namespace LAMMPS_NS

#endif
