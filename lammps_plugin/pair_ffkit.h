/* pair_style ffkit (plugin ffkitplugin.so): runs an ffkit artifact (TorchScript, LAMMPS calling convention, see
   docs/artifact.md) as a LAMMPS pair style. Strictly local model: one ghost shell of the model
   cutoff, full neighbour list, ghost forces returned by reverse communication (newton pair on).
   Two-layer message passing: ghosts two cutoffs deep, and the ghosts within one cutoff of a local
   atom are centres too (their own neighbour lists, REQ_GHOST).
   Artifacts with forward_pairs get pair vectors formed in double (never absolute coordinates in the
   model's dtype) and return dE/dr_ij, from which forces and virial are summed here in double.
   Artifacts that carry kernel.json run by default on the hand-written kernel (ffkit_kernel.h): same
   function, forces by an adjoint pass in double, no TorchScript in the MD step; a committee runs each
   member's kernel and averages ('path torchscript' runs the TorchScript model instead).
   A committee artifact (metadata "committee") also gives the spread of its members' forces: per atom
   (extract_peratom "force_std", for fix pair) and its global max and mean (pvector, for compute pair). */

#ifndef LMP_PAIR_FFKIT_H
#define LMP_PAIR_FFKIT_H

#include "ffkit_kernel.h"
#include "pair.h"

#include <torch/script.h>

#include <string>
#include <vector>

namespace LAMMPS_NS {

class PairFFKit : public Pair {
 public:
  PairFFKit(class LAMMPS *);
  ~PairFFKit() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  double single(int, int, int, int, double, double, double, double &) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;
  void *extract_peratom(const char *, int &) override;
  void *extract(const char *, int &) override;
  double memory_usage() override;

 private:
  // model and what its metadata.json says
  torch::jit::Module model;
  std::string model_file;
  std::vector<std::string> model_symbols;    // element symbols in model order
  std::vector<double> model_masses;          // their standard masses (g/mol), if the artifact has them
  void check_masses();
  double model_cutoff = 0.0;
  int model_layers = 1;    // cutoffs an atom's energy reaches: 1 strictly local, 2 message passing
  torch::ScalarType model_dtype = torch::kFloat64;
  bool pair_inputs = false;    // the artifact has forward_pairs: pair vectors are formed here, in double
  std::vector<FFKitKernel> kernels;    // the artifact's hand-written kernel(s): one, or one per committee member
  int path_mode = 0;           // 'path auto|kernel|torchscript': 0 kernel when carried, 1 kernel, 2 torchscript
  bool use_kernel = false;

  int *type2species = nullptr;    // LAMMPS type -> model species index, -1 for NULL
  int nthreads = 0;               // 0: not set by the 'threads' keyword
  int close_mode = 1;             // 'close off|warn|stop': what to do below the training's closest approach
  bool close_warned = false;      // 'warn' says it once per run
  std::vector<double> min_dist2;  // (S*S) squared closest approach in the training data; empty: unknown
  double energy_factor = 1.0;     // model eV -> LAMMPS energy units

  // per-step buffers, reused while sizes allow (no reallocation in the steady state)
  std::vector<int> compact_of;          // LAMMPS index -> model index, -1 if not in the graph
  std::vector<int> lammps_of;           // model index -> LAMMPS index
  std::vector<int64_t> species_buf;     // model index -> species index
  std::vector<unsigned char> reached;   // ghost (LAMMPS index - nlocal) -> reached by an edge
  std::vector<int64_t> edge_buf;        // [2, edge_capacity]: centres then neighbours
  std::vector<double> in64_buf;         // positions or pair vectors handed to float64 artifacts
  std::vector<float> in32_buf;          // the same for float32 artifacts
  std::vector<double> force_buf;        // [ncompact, 3]: forces summed from pair gradients, model units
  std::vector<double> force_parts;      // [chunks, ncompact, 3]: each edge chunk's share of force_buf
  std::vector<double> kernel_energy;    // the kernel's per-atom energies and dE/dr_ij [nedges, 3]
  std::vector<double> kernel_grad;
  std::vector<double> member_energy, member_grad, kernel_member_forces;    // committees on the kernel
  int64_t edge_capacity = 0;
  std::vector<int64_t> centre_offset;   // [inum + 1]: where each local centre's edges start
  std::vector<int> neighbour_lammps;    // LAMMPS index of each local centre's edge neighbour
  std::vector<int64_t> list_offset;     // [inum + 1]: where each centre's slot in `found` starts
  std::vector<int> found;               // neighbours within the model cutoff, in neighbour-list-sized slots
  std::vector<double> close_ratio;      // per local centre: smallest (r / closest in training)^2, and its j
  std::vector<int> close_neighbour;

  // committee artifacts: member forces, summed over ghosts by reverse communication, give the spread
  int committee_size = 0;          // members M; 0 for a single model (no extra work)
  int maxatom = 0;                 // rows of member_f and force_std
  int comm_member = 0;             // member whose forces the current reverse communication carries
  double **member_f = nullptr;     // [nmax][3M]: force of member m on atom i in member_f[i][3m..3m+2]
  double *force_std = nullptr;     // [nmax]: spread of the members' forces on each local atom
  // members that share their descriptors (the heads of one model) run on the kernel as one evaluation; their
  // own forces, and so the spread, cost an adjoint pass each and are made only on steps that use them: energy
  // steps (compute pair) and those fix pair triggers ('force_std 1' sets force_std_flag)
  bool shared_heads = false;
  int force_std_flag = 0;
  bool spread_step = true;         // this step computes the members' forces and the spread
  std::vector<double *> head_grad; // each head's dE/dr_ij, in member_grad's storage

  void allocate();
  void load_model(const std::string &file);
  int resolve_threads() const;
  int64_t build_graph(int &ncompact, int &nlocal_compact);
  template <class Visit> void for_model_neighbours(int i, Visit &&visit) const;
  void add_edges(int ci, int64_t &nedges, int64_t *centre, int64_t *neighbour);
  void report_close_contact(int i, int j);
  torch::Tensor model_input(const std::vector<double> &values, int64_t rows);
  torch::Tensor positions_tensor(int ncompact);
  void fill_pair_vectors(int64_t nedges);
  torch::Tensor pair_vectors_tensor(int64_t nedges);
  void choose_path(const std::string &kernel_text);
  void check_finite(const double *energy, const double *forces, int ncompact, int nlocal_compact);
  void tally_energy(const double *energy, int nlocal_compact);
  void run_model(int64_t nedges, int ncompact, int nlocal_compact, torch::Tensor &member_forces);
  void run_kernels(int64_t nedges, int ncompact, int nlocal_compact, torch::Tensor &member_forces);
  void run_pair_model(int64_t nedges, int ncompact, int nlocal_compact, torch::Tensor &member_forces);
  void force_spread(const torch::Tensor &member_forces, int ncompact);

  // pair_style hybridff (pair_ffkit_embedding.cpp): this style, inside LAMMPS's hybrid/overlay, removes the
  // MM interactions between ML atoms
  bool embedding = false;         // a sub-style of pair_style hybridff
  bool region_checked = false;    // special pairs (and, inside hybridff, bonded terms) checked this run
  bool extent_checked = false;    // with kspace: the ML region checked to lie within the Coulomb cutoff
  double cut_coulsq = 0.0;        // with kspace: squared Coulomb cutoff of the MM sub-styles
  void init_embedding();
  std::string ml_types() const;
  bool is_ml(tagint tag) const;
  void check_ml_region();
  void check_kspace_extent(bigint pairs_within);
  void remove_mm_inside_ml();
};

}    // namespace LAMMPS_NS

#endif
