/* pair_style ffkit: see pair_ffkit.h and lammps_plugin/README.md. */

#include "pair_ffkit.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "json.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

using namespace LAMMPS_NS;

static constexpr int ARTIFACT_FORMAT_VERSION = 1;

/* the informative line of a torch error: TorchScript puts its traceback first and the error last */
static std::string torch_reason(const std::exception &e)
{
  const auto *c10_error = dynamic_cast<const c10::Error *>(&e);
  std::string text = c10_error ? c10_error->what_without_backtrace() : e.what();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  const auto last = text.rfind('\n');
  return last == std::string::npos ? text : text.substr(last + 1);
}

PairFFKit::PairFFKit(LAMMPS *lmp) : Pair(lmp)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;    // virial summed here from the model's own forces
  centroidstressflag = CENTROID_NOTAVAIL;
  unit_convert_flag = utils::NOCONVERT;
  pvector = new double[2]{0.0, 0.0};    // committee: max and mean force spread (nextra = 2)
}

PairFFKit::~PairFFKit()
{
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    delete[] type2species;
  }
  delete[] pvector;
  memory->destroy(cutghost);
  memory->destroy(member_f);
  memory->destroy(force_std);
}

void PairFFKit::allocate()
{
  allocated = 1;
  const int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  type2species = new int[n];
  for (int i = 0; i < n; i++) {
    type2species[i] = -1;
    for (int j = 0; j < n; j++) setflag[i][j] = 0;
  }
}

/* pair_style ffkit [threads N] [close off|warn|stop] [path auto|kernel|torchscript] */
void PairFFKit::settings(int narg, char **arg)
{
  nthreads = 0;
  close_mode = 1;
  path_mode = 0;
  int iarg = 0;
  while (iarg < narg) {
    if (strcmp(arg[iarg], "threads") == 0) {
      if (iarg + 1 >= narg) error->all(FLERR, "pair_style ffkit: 'threads' needs a value, e.g. 'threads 2'");
      nthreads = utils::inumeric(FLERR, arg[iarg + 1], false, lmp);
      if (nthreads < 1) error->all(FLERR, "pair_style ffkit: 'threads {}' must be at least 1", arg[iarg + 1]);
      iarg += 2;
    } else if (strcmp(arg[iarg], "close") == 0) {
      const std::string mode = iarg + 1 < narg ? arg[iarg + 1] : "";
      if (mode == "off") close_mode = 0;
      else if (mode == "warn") close_mode = 1;
      else if (mode == "stop") close_mode = 2;
      else error->all(FLERR, "pair_style ffkit: 'close' takes off, warn or stop, not '{}'", mode);
      iarg += 2;
    } else if (strcmp(arg[iarg], "path") == 0) {
      const std::string mode = iarg + 1 < narg ? arg[iarg + 1] : "";
      if (mode == "auto") path_mode = 0;
      else if (mode == "kernel") path_mode = 1;
      else if (mode == "torchscript") path_mode = 2;
      else error->all(FLERR, "pair_style ffkit: 'path' takes auto, kernel or torchscript, not '{}'", mode);
      iarg += 2;
    } else {
      error->all(FLERR,
                 "pair_style ffkit: unknown keyword '{}' (keywords: 'threads N', 'close off|warn|stop', "
                 "'path auto|kernel|torchscript')", arg[iarg]);
    }
  }
}

/* pair_coeff * * model.pt El1 El2 ...  (one element or NULL per atom type, in type order) */
void PairFFKit::coeff(int narg, char **arg)
{
  const int ntypes = atom->ntypes;
  if (narg < 3)
    error->all(FLERR, "pair_coeff for ffkit: expected '* * model.pt' followed by {} element name(s)", ntypes);
  // LAMMPS itself refuses anything but '* *' for one_coeff styles like this one
  if (narg != 3 + ntypes)
    error->all(FLERR,
               "pair_coeff for ffkit: {} element name(s) given after '{}' but the system has {} atom "
               "type(s); give one element (or NULL) per atom type, in type order", narg - 3, arg[2], ntypes);

  if (!allocated) allocate();
  load_model(arg[2]);

  std::string known;
  for (const auto &s : model_symbols) known += (known.empty() ? "" : " ") + s;
  for (int itype = 1; itype <= ntypes; itype++) {
    const char *element = arg[2 + itype];
    type2species[itype] = -1;
    if (strcmp(element, "NULL") == 0) continue;
    for (std::size_t s = 0; s < model_symbols.size(); s++)
      if (model_symbols[s] == element) type2species[itype] = static_cast<int>(s);
    if (type2species[itype] < 0)
      error->all(FLERR, "pair_coeff for ffkit: element '{}' (atom type {}) is not in model '{}', whose elements are: {}",
                 element, itype, model_file, known);
  }
  for (int i = 1; i <= ntypes; i++)
    for (int j = 1; j <= ntypes; j++) setflag[i][j] = (type2species[i] >= 0 && type2species[j] >= 0) ? 1 : 0;
}

/* load the artifact and refuse anything that is not an ffkit LAMMPS artifact this plugin reads */
void PairFFKit::load_model(const std::string &file)
{
  FILE *probe = fopen(file.c_str(), "rb");
  if (!probe) error->all(FLERR, "pair_style ffkit: cannot open model file '{}': {}", file, utils::getsyserror());
  fclose(probe);

  torch::jit::ExtraFilesMap extra{{"metadata.json", ""}, {"kernel.json", ""}};
  try {
    model = torch::jit::load(file, torch::kCPU, extra);
  } catch (const std::exception &e) {
    error->all(FLERR,
               "pair_style ffkit: '{}' is not a readable TorchScript file ({}); pass an artifact written "
               "by 'ffkit compile'", file, torch_reason(e));
  }
  model.eval();
  model_file = file;
  const std::string &text = extra["metadata.json"];
  if (text.empty())
    error->all(FLERR,
               "pair_style ffkit: '{}' has no metadata.json inside: it is a TorchScript file but not an ffkit "
               "artifact; write one with 'ffkit compile'", file);

  json meta;
  try {
    meta = json::parse(text);
  } catch (const std::exception &e) {
    error->all(FLERR, "pair_style ffkit: metadata.json in '{}' is not valid JSON: {}", file, e.what());
  }
  auto field = [&](const char *key) -> const json & {
    if (!meta.is_object() || !meta.contains(key))
      error->all(FLERR, "pair_style ffkit: metadata.json in '{}' has no '{}' field; recompile with 'ffkit compile'",
                 file, key);
    return meta[key];
  };
  auto text_field = [&](const json &value, const char *key) -> std::string {
    if (!value.is_string())
      error->all(FLERR, "pair_style ffkit: metadata.json in '{}': '{}' must be a string", file, key);
    return value.get<std::string>();
  };

  if (!meta.is_object() || !meta.contains("format") || !meta["format"].is_string() ||
      meta["format"].get<std::string>() != "ffkit-artifact")
    error->all(FLERR,
               "pair_style ffkit: '{}' is not an ffkit artifact (metadata.json 'format' is not "
               "\"ffkit-artifact\"); write one with 'ffkit compile'", file);
  const json &version = field("format_version");
  if (!version.is_number_integer() || version.get<int>() != ARTIFACT_FORMAT_VERSION)
    error->all(FLERR,
               "pair_style ffkit: '{}' has artifact format_version {} but this plugin reads version {}; "
               "recompile the model with the installed ffkit ('ffkit compile') or install the ffkit that wrote it",
               file, version.dump(), ARTIFACT_FORMAT_VERSION);
  const std::string engine = text_field(field("engine"), "engine");
  if (engine != "lammps")
    error->all(FLERR,
               "pair_style ffkit: '{}' is an artifact for engine '{}' (metadata.json 'engine'), not for LAMMPS; "
               "compile a LAMMPS artifact of the model with 'ffkit compile'", file, engine);

  const json &units = field("units");
  const std::string energy_unit = units.is_object() && units.contains("energy") ? units["energy"].dump() : "?";
  const std::string length_unit = units.is_object() && units.contains("length") ? units["length"].dump() : "?";
  if (energy_unit != "\"eV\"" || length_unit != "\"angstrom\"")
    error->all(FLERR, "pair_style ffkit: '{}' uses units energy {} length {}; this plugin reads eV and angstrom",
               file, energy_unit, length_unit);

  const std::string dtype = text_field(field("dtype"), "dtype");
  if (dtype == "float64")
    model_dtype = torch::kFloat64;
  else if (dtype == "float32")
    model_dtype = torch::kFloat32;
  else
    error->all(FLERR, "pair_style ffkit: '{}' has dtype '{}'; expected float32 or float64", file, dtype);

  const json &cutoff = field("cutoff");
  if (!cutoff.is_number() || cutoff.get<double>() <= 0.0)
    error->all(FLERR, "pair_style ffkit: '{}' has cutoff {}; expected a positive number of angstrom", file,
               cutoff.dump());
  model_cutoff = cutoff.get<double>();

  // a message-passing model (layers 2) needs the ghosts within the cutoff of a local atom to be
  // centres too, with neighbour lists of their own: two cutoffs of ghosts (docs/design.md §2)
  model_layers = 1;
  if (meta.contains("layers")) {
    const json &layers = meta["layers"];
    if (!layers.is_number_integer() || layers.get<int>() < 1 || layers.get<int>() > 2)
      error->all(FLERR,
                 "pair_style ffkit: '{}' has 'layers' = {} in metadata.json; this pair style runs strictly local "
                 "models (1) and two-layer message passing (2)", file, layers.dump());
    model_layers = layers.get<int>();
  }

  const json &symbols = field("species_symbols");
  if (!symbols.is_array() || symbols.empty())
    error->all(FLERR, "pair_style ffkit: '{}': 'species_symbols' must be a non-empty list of element symbols", file);
  model_symbols.clear();
  for (const auto &s : symbols) model_symbols.push_back(text_field(s, "species_symbols"));
  min_dist2.clear();
  if (meta.contains("min_distances") && meta["min_distances"].is_object()) {
    const std::size_t n = model_symbols.size();
    min_dist2.assign(n * n, 0.0);
    for (const auto &item : meta["min_distances"].items()) {
      const std::string &pair = item.key();
      const std::size_t dash = pair.find('-');
      if (dash == std::string::npos || !item.value().is_number()) continue;
      for (std::size_t a = 0; a < n; a++)
        for (std::size_t b = 0; b < n; b++)
          if (model_symbols[a] == pair.substr(0, dash) && model_symbols[b] == pair.substr(dash + 1))
            min_dist2[a * n + b] = min_dist2[b * n + a] = item.value().get<double>() * item.value().get<double>();
    }
  }
  model_masses.clear();
  if (meta.contains("species_masses") && meta["species_masses"].is_array() &&
      meta["species_masses"].size() == model_symbols.size())
    for (const auto &m : meta["species_masses"])
      if (m.is_number()) model_masses.push_back(m.get<double>());

  committee_size = 0;
  if (meta.contains("committee")) {
    const json &committee = meta["committee"];
    if (!committee.is_object() || !committee.contains("size") || !committee["size"].is_number_integer() ||
        committee["size"].get<int>() < 2)
      error->all(FLERR,
                 "pair_style ffkit: metadata.json in '{}': 'committee' must be an object with an integer 'size' "
                 ">= 2, not {}; recompile the committee with 'ffkit compile'", file, committee.dump());
    if (!model.find_method("forward_committee"))
      error->all(FLERR,
                 "pair_style ffkit: '{}' declares a committee of {} models (metadata.json 'committee') but has no "
                 "forward_committee method (docs/artifact.md); recompile the committee with 'ffkit compile'",
                 file, committee["size"].dump());
    committee_size = committee["size"].get<int>();
    if (model_layers > 1)
      error->all(FLERR, "pair_style ffkit: '{}' is a committee of message-passing models, which this pair style "
                 "does not run: run one member here, and the committee from Python (ffkit.calculator."
                 "FFKitCalculator, or as the teacher of 'ffkit distill --sampler MEMBER')", file);
  }
  pair_inputs = model.find_method("forward_pairs").has_value();
  if (model_layers > 1 && !pair_inputs)
    error->all(FLERR,
               "pair_style ffkit: '{}' is a message-passing model without forward_pairs (written by an earlier "
               "ffkit); recompile its checkpoint with 'ffkit compile'", file);
  nextra = committee_size > 0 ? 2 : 0;
  // member forces travel one member (3 values per atom) per reverse communication: pair hybrid fixes
  // its communication sizes at pair_style time, before pair_coeff says how many members there are,
  // and 3 values per atom is what every LAMMPS comm buffer holds anyway (forces)
  comm_reverse = committee_size > 0 ? 3 : 0;
  memory->destroy(member_f);
  memory->destroy(force_std);
  maxatom = 0;

  // parameters become constants: 2-10% less CPU per step measured on the fast/accurate tiers
  try {
    std::optional<std::vector<std::string>> keep;    // exported methods freezing would drop
    if (committee_size > 0) keep = std::vector<std::string>{"forward_committee"};
    else if (pair_inputs) keep = std::vector<std::string>{"forward_pairs"};
    model = torch::jit::freeze(model, keep);
  } catch (const std::exception &e) {
    if (comm->me == 0)
      error->warning(FLERR, "pair_style ffkit: running '{}' unfrozen (torch::jit::freeze failed: {})", file,
                     torch_reason(e));
  }

  choose_path(extra["kernel.json"]);
  if (comm->me == 0)
    utils::logmesg(lmp, "pair_style ffkit: {} ({}tier {}, elements {}, cutoff {} A, {}; {})\n", file,
                   committee_size > 0 ? fmt::format("committee of {} models, ", committee_size) : "",
                   meta.contains("tier") ? meta["tier"].dump() : "?", symbols.dump(), model_cutoff, dtype,
                   use_kernel ? "hand-written kernel, double: " + kernels[0].describe() +
                                    (shared_heads ? "; the members share their descriptors" : "")
                              : "TorchScript");
}

/* The kernel runs what the artifact's kernel.json describes (a committee's: each member's), unless
   'path torchscript' asks otherwise; 'path kernel' refuses an artifact without one. */
void PairFFKit::choose_path(const std::string &kernel_text)
{
  kernels.clear();
  use_kernel = false;
  shared_heads = false;
  if (!kernel_text.empty() && path_mode != 2) {
    try {
      const json spec = json::parse(kernel_text);
      const bool committee = spec.is_object() && spec.contains("committee");
      if (committee != (committee_size > 0) ||
          (committee && (!spec["committee"].is_array() || static_cast<int>(spec["committee"].size()) != committee_size)))
        throw std::runtime_error(fmt::format("kernel.json: 'committee' must list the {} members metadata.json "
                                             "declares, and only a committee has one", committee_size));
      for (const json &member : committee ? spec["committee"] : json::array({spec})) {
        kernels.emplace_back();
        kernels.back().load(member);
      }
      shared_heads = committee && std::all_of(spec["committee"].begin(), spec["committee"].end(), [&](const json &m) {
        return FFKitKernel::same_descriptors(spec["committee"][0], m);
      });
    } catch (const std::exception &e) {
      error->all(FLERR, "pair_style ffkit: '{}': {}; recompile it with 'ffkit compile' (or run 'path torchscript')",
                 model_file, e.what());
    }
    use_kernel = true;
  }
  if (path_mode == 1 && !use_kernel)
    error->all(FLERR,
               "pair_style ffkit: 'path kernel' but '{}' carries no kernel.json (metadata 'paths'); kernels exist "
               "for models of pair terms, the 3-body, the many-body and the tensor-message term (tiers mm, fast, "
               "balanced, accurate, equivariant, and committees without a message-passing member): recompile "
               "with 'ffkit compile', or use 'path auto'", model_file);
}

/* A type whose mass is nearer another of the model's elements than its own was mapped to the wrong
   element (pair_coeff elements not in type order): refused before the run loses atoms. Isotopes
   pass (deuterium, 2.0, is still nearer H than C). */
void PairFFKit::check_masses()
{
  if (model_masses.size() != model_symbols.size() || model_masses.size() < 2 || !atom->mass) return;
  std::string elements;
  for (const auto &symbol : model_symbols) elements += (elements.empty() ? "" : " ") + symbol;
  for (int itype = 1; itype <= atom->ntypes; itype++) {
    const int s = type2species[itype];
    if (s < 0 || !atom->mass_setflag[itype]) continue;
    const double m = atom->mass[itype];  // g/mol in both metal and real units
    std::size_t nearest = 0;
    for (std::size_t k = 1; k < model_masses.size(); k++)
      if (std::fabs(std::log(m / model_masses[k])) < std::fabs(std::log(m / model_masses[nearest]))) nearest = k;
    if (nearest != static_cast<std::size_t>(s))
      error->all(FLERR,
                 "pair_coeff ffkit: atom type {} has mass {} but is mapped to element {} (mass {:.3f}); that mass "
                 "is {}'s ({:.3f}): give the elements in atom-type order in pair_coeff (model elements: {})",
                 itype, m, model_symbols[s], model_masses[s], model_symbols[nearest], model_masses[nearest], elements);
  }
}

int PairFFKit::resolve_threads() const
{
  if (nthreads > 0) return nthreads;
  if (const char *value = getenv("FFKIT_NUM_THREADS"); value && *value) {
    char *end = nullptr;
    const long n = strtol(value, &end, 10);
    if (n < 1 || *end != '\0')
      error->all(FLERR, "pair_style ffkit: environment variable FFKIT_NUM_THREADS='{}' is not a positive thread "
                 "count", value);
    return static_cast<int>(n);
  }
  // LAMMPS's own OpenMP threads per rank: 'package omp N', '-pk omp N' or OMP_NUM_THREADS, so the
  // neighbour-list builds of the OPENMP package and this style share one setting
  return std::max(1, comm->nthreads);
}

void PairFFKit::init_style()
{
  if (strcmp(update->unit_style, "metal") == 0)
    energy_factor = 1.0;
  else if (strcmp(update->unit_style, "real") == 0)
    energy_factor = utils::get_conversion_factor(utils::ENERGY, utils::METAL2REAL);
  else
    error->all(FLERR,
               "pair_style ffkit supports 'units metal' and 'units real' (the model works in eV and angstrom); "
               "this input uses 'units {}'", update->unit_style);

  if (force->newton_pair == 0)
    error->all(FLERR,
               "pair_style ffkit requires 'newton on' (newton pair on): forces on ghost atoms are returned "
               "by reverse communication");

  init_embedding();
  check_masses();
  close_warned = false;
  ghostneigh = model_layers > 1 ? 1 : 0;
  if (ghostneigh && !cutghost) memory->create(cutghost, atom->ntypes + 1, atom->ntypes + 1, "pair:cutghost");
  if (ghostneigh) {
    // ghosts layers x cutoff deep (plus the skin), while every neighbour list stays one cutoff long
    if (comm->mode != Comm::SINGLE)
      error->all(FLERR, "pair_style ffkit: '{}' is a {}-layer model, which needs 'comm_modify mode single' "
                 "(its ghosts reach {} cutoffs)", model_file, model_layers, model_layers);
    const double halo = model_layers * model_cutoff + neighbor->skin;
    if (comm->cutghostuser < halo) {
      comm->cutghostuser = halo;
      if (comm->me == 0)
        utils::logmesg(lmp, "pair_style ffkit: communication cutoff set to {:.8} for a {}-layer model\n", halo,
                       model_layers);
    }
  }
  neighbor->add_request(this, ghostneigh ? NeighConst::REQ_FULL | NeighConst::REQ_GHOST : NeighConst::REQ_FULL);

  const int threads = resolve_threads();
  at::set_num_threads(threads);
  if (comm->me == 0) utils::logmesg(lmp, "pair_style ffkit: {} torch thread(s) per MPI rank\n", threads);
#ifdef _OPENMP
  constexpr bool style_threaded = true;
#else
  constexpr bool style_threaded = false;
#endif
  // at::parallel_for's OpenMP pragmas are compiled into each of our objects: without -fopenmp they run serial
  if (threads > 1 && !(style_threaded && FFKitKernel::threaded()) && comm->me == 0)
    error->warning(FLERR, "pair_style ffkit: this plugin was built without OpenMP, so its loops run on one "
                   "thread whatever the thread count; rebuild it with a compiler that supports -fopenmp");
}

/* Neighbour lists are one cutoff long, for local atoms and (message passing) for ghosts too
   (cutghost); init_style has LAMMPS communicate ghosts model_layers cutoffs deep. */
double PairFFKit::init_one(int i, int j)
{
  if (setflag[i][j] == 0) error->all(FLERR, "All pair coeffs are not set");
  if (ghostneigh) cutghost[i][j] = cutghost[j][i] = model_cutoff;
  return model_cutoff;
}

/* Compact graph of the atoms the model sees: mapped local atoms first (LAMMPS order), then the
   ghosts that are neighbours within the model cutoff; edges i (local) -> j within the cutoff.
   Returns the number of edges; edge_buf holds [centres | neighbours], each of that length. */
int64_t PairFFKit::build_graph(int &ncompact, int &nlocal_compact)
{
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const int *type = atom->type;

  if (static_cast<int>(compact_of.size()) < nall) compact_of.resize(nall);
  std::fill(compact_of.begin(), compact_of.begin() + nall, -1);
  lammps_of.clear();
  species_buf.clear();
  for (int i = 0; i < nlocal; i++) {
    const int s = type2species[type[i]];
    if (s < 0) continue;
    compact_of[i] = static_cast<int>(lammps_of.size());
    lammps_of.push_back(i);
    species_buf.push_back(s);
  }
  nlocal_compact = static_cast<int>(lammps_of.size());

  const int inum = list->inum;
  const int *ilist = list->ilist;
  const int *numneigh = list->numneigh;
  const int ncentres_lammps = inum + (model_layers > 1 ? list->gnum : 0);
  // each local centre's slot in `found` is as long as its neighbour list; ghost centres (message passing)
  // add theirs to the edge capacity
  list_offset.resize(inum + 1);
  list_offset[0] = 0;
  for (int ii = 0; ii < inum; ii++) list_offset[ii + 1] = list_offset[ii] + numneigh[ilist[ii]];
  int64_t capacity = list_offset[inum];
  for (int ii = inum; ii < ncentres_lammps; ii++) capacity += numneigh[ilist[ii]];
  if (capacity > edge_capacity) {
    edge_capacity = capacity;
    edge_buf.resize(2 * capacity);
  }
  int64_t *centre = edge_buf.data();
  int64_t *neighbour = edge_buf.data() + capacity;

  const bool watch = close_mode > 0 && !min_dist2.empty();
  double closest = 1.0;  // smallest (r / closest approach in training)^2 seen in this step
  int close_i = -1, close_j = -1;
  const int nspecies = static_cast<int>(model_symbols.size());

  // local centres' edges, found (one distance pass, into each centre's slot of its neighbour-list
  // length) and then packed in parallel (threads N); the ghosts they reach are numbered afterwards in
  // LAMMPS order, so the graph is the same for any number of threads
  centre_offset.assign(inum + 1, 0);
  found.resize(list_offset[inum]);
  if (watch) {
    close_ratio.assign(inum, 1.0);
    close_neighbour.assign(inum, -1);
  }
  at::parallel_for(0, inum, 256, [&](int64_t first, int64_t last) {
    for (int64_t ii = first; ii < last; ii++) {
      const int i = ilist[ii];
      if (compact_of[i] < 0) continue;
      const int64_t si = species_buf[compact_of[i]];
      int *slot = found.data() + list_offset[ii];
      int64_t n = 0;
      for_model_neighbours(i, [&](int j, int s, double r2) {
        slot[n++] = j;
        const double known = watch ? min_dist2[si * nspecies + s] : 0.0;
        if (known > 0.0 && r2 < close_ratio[ii] * known) {
          close_ratio[ii] = r2 / known;
          close_neighbour[ii] = j;
        }
      });
      centre_offset[ii + 1] = n;
    }
  });
  for (int ii = 0; ii < inum; ii++) {
    centre_offset[ii + 1] += centre_offset[ii];
    if (watch && close_neighbour[ii] >= 0 && close_ratio[ii] < closest) {
      closest = close_ratio[ii];
      close_i = ilist[ii];
      close_j = close_neighbour[ii];
    }
  }
  int64_t nedges = centre_offset[inum];
  neighbour_lammps.resize(nedges);
  at::parallel_for(0, inum, 256, [&](int64_t first, int64_t last) {
    for (int64_t ii = first; ii < last; ii++) {
      const int ci = compact_of[ilist[ii]];
      if (ci < 0) continue;
      const int64_t k = centre_offset[ii], n = centre_offset[ii + 1] - k;
      std::copy(found.data() + list_offset[ii], found.data() + list_offset[ii] + n, neighbour_lammps.data() + k);
      std::fill(centre + k, centre + k + n, ci);
    }
  });
  // the ghosts the edges reach, marked in parallel and numbered after the locals in LAMMPS order
  reached.assign(nall - nlocal, 0);
  at::parallel_for(0, nedges, 16384, [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; k++)
      if (neighbour_lammps[k] >= nlocal) __atomic_store_n(&reached[neighbour_lammps[k] - nlocal], 1, __ATOMIC_RELAXED);
  });
  for (int j = nlocal; j < nall; j++)
    if (reached[j - nlocal]) {
      compact_of[j] = static_cast<int>(lammps_of.size());
      lammps_of.push_back(j);
      species_buf.push_back(type2species[type[j]]);
    }
  at::parallel_for(0, nedges, 16384, [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; k++) neighbour[k] = compact_of[neighbour_lammps[k]];
  });
  if (close_i >= 0) report_close_contact(close_i, close_j);

  // message passing: the ghosts found so far (within one cutoff of a local atom, numbered right after
  // the locals, as the model expects) are centres too; their neighbours beyond become outer ghosts
  if (model_layers > 1) {
    const int nfirst = static_cast<int>(lammps_of.size());
    for (int ci = nlocal_compact; ci < nfirst; ci++)
      add_edges(ci, nedges, centre, neighbour);
  }
  if (nedges < capacity) std::memmove(centre + nedges, neighbour, nedges * sizeof(int64_t));
  ncompact = static_cast<int>(lammps_of.size());
  return nedges;
}

/* visit(j, species of j, r^2) for each neighbour j of LAMMPS atom i that is of a model type and within
   the model cutoff, in neighbour-list order */
template <class Visit> void PairFFKit::for_model_neighbours(int i, Visit &&visit) const
{
  const int *type = atom->type;
  double **x = atom->x;
  const double cut2 = model_cutoff * model_cutoff;
  const double xi = x[i][0], yi = x[i][1], zi = x[i][2];
  const int *jlist = list->firstneigh[i];
  const int jnum = list->numneigh[i];
  for (int jj = 0; jj < jnum; jj++) {
    const int j = jlist[jj] & NEIGHMASK;
    const int s = type2species[type[j]];
    if (s < 0) continue;
    const double dx = x[j][0] - xi, dy = x[j][1] - yi, dz = x[j][2] - zi;
    const double r2 = dx * dx + dy * dy + dz * dz;
    if (r2 < cut2) visit(j, s, r2);
  }
}

/* Edges from graph atom ci (LAMMPS atom lammps_of[ci]; the ghost centres of message passing, whose
   close contacts their owners report) to each model-type neighbour within the model cutoff; neighbours
   not yet in the graph are appended to it. */
void PairFFKit::add_edges(int ci, int64_t &nedges, int64_t *centre, int64_t *neighbour)
{
  for_model_neighbours(lammps_of[ci], [&](int j, int s, double) {
    int cj = compact_of[j];
    if (cj < 0) {
      cj = compact_of[j] = static_cast<int>(lammps_of.size());
      lammps_of.push_back(j);
      species_buf.push_back(s);
    }
    centre[nedges] = ci;
    neighbour[nedges] = cj;
    nedges++;
  });
}

/* Two atoms closer than any pair of their elements in the training data: the model extrapolates
   there ('close warn' says so once, 'close stop' ends the run). */
void PairFFKit::report_close_contact(int i, int j)
{
  double **x = atom->x;
  const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
  const int si = type2species[atom->type[i]], sj = type2species[atom->type[j]];
  const std::string what = fmt::format(
      "pair_style ffkit: atoms {} ({}) and {} ({}) are {:.4f} A apart at step {}, closer than any {}-{} pair in "
      "the model's training data ({:.4f} A): the model extrapolates there", atom->tag[i], model_symbols[si],
      atom->tag[j], model_symbols[sj], std::sqrt(dx * dx + dy * dy + dz * dz), update->ntimestep, model_symbols[si],
      model_symbols[sj], std::sqrt(min_dist2[si * model_symbols.size() + sj]));
  if (close_mode == 2) error->one(FLERR, "{} ('close stop'; 'close warn' lets the run go on)", what);
  if (!close_warned) error->warning(FLERR, "{}; further close contacts are not reported ('close stop' ends the run)",
                                    what);
  close_warned = true;
}

/* values (double, rows x 3) as a tensor of the model's dtype; float32 models get a rounded copy */
torch::Tensor PairFFKit::model_input(const std::vector<double> &values, int64_t rows)
{
  if (model_dtype == torch::kFloat64)
    return torch::from_blob(const_cast<double *>(values.data()), {rows, 3}, torch::kFloat64);
  in32_buf.resize(3 * rows);
  for (int64_t k = 0; k < 3 * rows; k++) in32_buf[k] = static_cast<float>(values[k]);
  return torch::from_blob(in32_buf.data(), {rows, 3}, torch::kFloat32);
}

torch::Tensor PairFFKit::positions_tensor(int ncompact)
{
  double **x = atom->x;
  in64_buf.resize(3 * ncompact);
  for (int k = 0; k < ncompact; k++)
    for (int d = 0; d < 3; d++) in64_buf[3 * k + d] = x[lammps_of[k]][d];
  return model_input(in64_buf, ncompact);
}

/* r_ij = x_j - x_i of every edge, subtracted in double into in64_buf: only these short vectors are
   rounded to a float32 model's dtype, so the answer does not depend on where the system sits in the box */
void PairFFKit::fill_pair_vectors(int64_t nedges)
{
  double **x = atom->x;
  const int64_t *centre = edge_buf.data();
  const int64_t *neighbour = edge_buf.data() + nedges;
  in64_buf.resize(3 * nedges);
  at::parallel_for(0, nedges, 4096, [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; k++) {
      const int i = lammps_of[centre[k]], j = lammps_of[neighbour[k]];
      for (int d = 0; d < 3; d++) in64_buf[3 * k + d] = x[j][d] - x[i][d];
    }
  });
}

torch::Tensor PairFFKit::pair_vectors_tensor(int64_t nedges)
{
  fill_pair_vectors(nedges);
  return model_input(in64_buf, nedges);
}

void PairFFKit::check_finite(const double *energy, const double *forces, int ncompact, int nlocal_compact)
{
  auto stop = [&](const char *what, int k) {
    const int i = lammps_of[k];
    error->one(FLERR,
               "pair_style ffkit: the model returned a non-finite {} for atom {} (type {}) at step {}; run "
               "stopped (atoms too close or far outside the training data?)",
               what, atom->tag[i], atom->type[i], update->ntimestep);
  };
  for (int k = 0; k < nlocal_compact; k++)
    if (!std::isfinite(energy[k])) stop("energy", k);
  for (int k = 0; k < ncompact; k++)
    if (!std::isfinite(forces[3 * k]) || !std::isfinite(forces[3 * k + 1]) || !std::isfinite(forces[3 * k + 2]))
      stop("force", k);
}

void PairFFKit::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);

  int ncompact = 0, nlocal_compact = 0;
  const int64_t nedges = build_graph(ncompact, nlocal_compact);
  torch::Tensor member_forces;    // committee: [M, ncompact, 3]
  // the same decision on every rank: eflag_global and fix pair's trigger are global
  spread_step = committee_size > 0 && (!(use_kernel && shared_heads) || eflag_global || force_std_flag);
  if (nlocal_compact > 0) run_model(nedges, ncompact, nlocal_compact, member_forces);
  if (!region_checked) check_ml_region();
  if (embedding) remove_mm_inside_ml();
  // every rank takes part: the spread needs a reverse communication and, for compute pair, reductions
  if (spread_step) force_spread(member_forces, ncompact);
}

void PairFFKit::tally_energy(const double *energy, int nlocal_compact)
{
  if (!eflag_either) return;
  double esum = 0.0;
  for (int k = 0; k < nlocal_compact; k++) {
    esum += energy[k];
    if (eflag_atom) eatom[lammps_of[k]] += energy_factor * energy[k];
  }
  if (eflag_global) eng_vdwl += energy_factor * esum;
}

/* The kernel(s) on the double pair vectors: per-atom energies and dE/dr_ij in kernel_energy and
   kernel_grad; for a committee their means over the members, and each member's forces (model units,
   [M, ncompact, 3]) for the spread (a committee of heads: on spread steps only). */
void PairFFKit::run_kernels(int64_t nedges, int ncompact, int nlocal_compact, torch::Tensor &member_forces)
{
  fill_pair_vectors(nedges);
  const int M = static_cast<int>(kernels.size());
  const int64_t *centre = edge_buf.data(), *neighbour = edge_buf.data() + nedges;
  auto guarded = [&](auto &&evaluate) {
    try {
      evaluate();
    } catch (const std::exception &ex) {
      error->one(FLERR, "pair_style ffkit: kernel of '{}' failed at step {}: {}", model_file, update->ntimestep,
                 ex.what());
    }
  };
  auto add_member_forces = [&](int m, const double *g) {    // member m's forces from its dE/dr_ij
    double *fm = kernel_member_forces.data() + static_cast<std::size_t>(m) * 3 * ncompact;
    for (int64_t k = 0; k < nedges; k++)
      for (int d = 0; d < 3; d++) {
        fm[3 * centre[k] + d] += g[3 * k + d];
        fm[3 * neighbour[k] + d] -= g[3 * k + d];
      }
  };
  if (shared_heads) {    // one evaluation of the descriptors for every head; the heads' own forces on spread steps
    kernel_energy.resize(nlocal_compact);
    kernel_grad.resize(3 * nedges);
    if (spread_step) {
      member_grad.resize(static_cast<std::size_t>(M) * 3 * nedges);
      head_grad.resize(M);
      for (int m = 0; m < M; m++) head_grad[m] = member_grad.data() + static_cast<std::size_t>(m) * 3 * nedges;
    }
    guarded([&] {
      kernels[0].evaluate_heads(kernels, in64_buf.data(), species_buf.data(), centre, neighbour, nedges,
                                nlocal_compact, kernel_energy.data(), kernel_grad.data(),
                                spread_step ? head_grad.data() : nullptr);
    });
    if (!spread_step) return;
    kernel_member_forces.assign(static_cast<std::size_t>(M) * 3 * ncompact, 0.0);
    for (int m = 0; m < M; m++) add_member_forces(m, head_grad[m]);
    member_forces = torch::from_blob(kernel_member_forces.data(), {M, ncompact, 3}, torch::kFloat64);
    return;
  }
  if (committee_size > 0) {    // the members' sums
    kernel_energy.assign(nlocal_compact, 0.0);
    kernel_grad.assign(3 * nedges, 0.0);
    kernel_member_forces.assign(static_cast<std::size_t>(M) * 3 * ncompact, 0.0);
  } else {    // the kernel writes every value
    kernel_energy.resize(nlocal_compact);
    kernel_grad.resize(3 * nedges);
  }
  for (int m = 0; m < M; m++) {
    double *e = kernel_energy.data(), *g = kernel_grad.data();
    if (committee_size > 0) {
      member_energy.resize(nlocal_compact);
      member_grad.resize(3 * nedges);
      e = member_energy.data();
      g = member_grad.data();
    }
    guarded([&] {
      kernels[m].evaluate(in64_buf.data(), species_buf.data(), centre, neighbour, nedges, nlocal_compact, e, g);
    });
    if (committee_size == 0) continue;
    for (int k = 0; k < nlocal_compact; k++) kernel_energy[k] += e[k];
    for (int64_t k = 0; k < 3 * nedges; k++) kernel_grad[k] += g[k];
    add_member_forces(m, g);
  }
  if (committee_size == 0) return;
  const double inv = 1.0 / M;
  for (auto &x : kernel_energy) x *= inv;
  for (auto &x : kernel_grad) x *= inv;
  member_forces = torch::from_blob(kernel_member_forces.data(), {M, ncompact, 3}, torch::kFloat64);
}

/* Models on the kernel or with forward_pairs: per-atom energies and dE/dr_ij from either; forces
   F_i += dE/dr_ij, F_j -= dE/dr_ij and the virial -r_ij (x) dE/dr_ij (per atom: half to i, half
   to j) are summed here in double, from the double pair vectors. */
void PairFFKit::run_pair_model(int64_t nedges, int ncompact, int nlocal_compact, torch::Tensor &member_forces)
{
  const double *e = nullptr, *g = nullptr;
  torch::Tensor energy, grad;    // the TorchScript path's results, alive while they are read
  if (use_kernel) {
    run_kernels(nedges, ncompact, nlocal_compact, member_forces);
    e = kernel_energy.data();
    g = kernel_grad.data();
  } else {
    std::vector<torch::jit::IValue> inputs{
        pair_vectors_tensor(nedges), torch::from_blob(species_buf.data(), {ncompact}, torch::kInt64),
        torch::from_blob(edge_buf.data(), {2, nedges}, torch::kInt64), static_cast<int64_t>(nlocal_compact)};
    try {
      auto out = model.get_method("forward_pairs")(inputs).toTuple();
      energy = out->elements().at(0).toTensor().to(torch::kFloat64).contiguous();
      grad = out->elements().at(1).toTensor().to(torch::kFloat64).contiguous();
    } catch (const std::exception &ex) {
      error->one(FLERR, "pair_style ffkit: model '{}' failed at step {}: {}", model_file, update->ntimestep,
                 torch_reason(ex));
    }
    if (energy.numel() != nlocal_compact || grad.dim() != 2 || grad.size(0) != nedges || grad.size(1) != 3)
      error->one(FLERR,
                 "pair_style ffkit: model '{}' returned energy {} / pair gradients {} for {} local atoms and {} "
                 "pairs; expected [{}] / [{}, 3] (docs/artifact.md)", model_file, c10::str(energy.sizes()),
                 c10::str(grad.sizes()), nlocal_compact, nedges, nlocal_compact, nedges);
    e = energy.data_ptr<double>();
    g = grad.data_ptr<double>();
  }

  const int64_t *centre = edge_buf.data();
  const int64_t *neighbour = edge_buf.data() + nedges;
  const double *r = in64_buf.data();    // the double pair vectors pair_vectors_tensor formed
  // each of P edge chunks sums into its own force copy and virial, and the copies are added in chunk
  // order: P depends on the number of edges only, so any number of threads gives the same bits
  constexpr int64_t max_chunks = 8;
  const int64_t P = std::clamp<int64_t>(nedges / 16384, 1, max_chunks), n3 = 3 * static_cast<int64_t>(ncompact);
  force_parts.resize(P * n3);
  double vparts[max_chunks][6] = {};
  at::parallel_for(0, P, 1, [&](int64_t first, int64_t last) {
    for (int64_t p = first; p < last; p++) {
      double *fp = force_parts.data() + p * n3, *vp = vparts[p];
      std::fill(fp, fp + n3, 0.0);
      for (int64_t k = nedges * p / P; k < nedges * (p + 1) / P; k++) {
        const double *gk = g + 3 * k, *rk = r + 3 * k;
        for (int d = 0; d < 3; d++) {
          fp[3 * centre[k] + d] += gk[d];
          fp[3 * neighbour[k] + d] -= gk[d];
        }
        vp[0] -= rk[0] * gk[0];
        vp[1] -= rk[1] * gk[1];
        vp[2] -= rk[2] * gk[2];
        vp[3] -= rk[0] * gk[1];
        vp[4] -= rk[0] * gk[2];
        vp[5] -= rk[1] * gk[2];
      }
    }
  });
  force_buf.resize(n3);
  at::parallel_for(0, n3, 8192, [&](int64_t first, int64_t last) {
    for (int64_t x = first; x < last; x++) {
      double sum = force_parts[x];
      for (int64_t p = 1; p < P; p++) sum += force_parts[p * n3 + x];
      force_buf[x] = sum;
    }
  });
  double v[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  for (int64_t p = 0; p < P; p++)
    for (int m = 0; m < 6; m++) v[m] += vparts[p][m];
  if (vflag_atom) {
    const double half = 0.5 * energy_factor;
    for (int64_t k = 0; k < nedges; k++) {
      const double *gk = g + 3 * k, *rk = r + 3 * k;
      const double w[6] = {-rk[0] * gk[0], -rk[1] * gk[1], -rk[2] * gk[2],
                           -rk[0] * gk[1], -rk[0] * gk[2], -rk[1] * gk[2]};
      double *vi = vatom[lammps_of[centre[k]]], *vj = vatom[lammps_of[neighbour[k]]];
      for (int m = 0; m < 6; m++) {
        vi[m] += half * w[m];
        vj[m] += half * w[m];
      }
    }
  }
  check_finite(e, force_buf.data(), ncompact, nlocal_compact);
  tally_energy(e, nlocal_compact);
  double **f = atom->f;
  for (int k = 0; k < ncompact; k++)
    for (int d = 0; d < 3; d++) f[lammps_of[k]][d] += energy_factor * force_buf[3 * k + d];
  if (vflag_global)
    for (int m = 0; m < 6; m++) virial[m] += energy_factor * v[m];
}

void PairFFKit::run_model(int64_t nedges, int ncompact, int nlocal_compact, torch::Tensor &member_forces)
{
  if (use_kernel || (pair_inputs && committee_size == 0))
    return run_pair_model(nedges, ncompact, nlocal_compact, member_forces);
  const bool want_atom_virial = vflag_atom != 0;
  std::vector<torch::jit::IValue> inputs{
      positions_tensor(ncompact), torch::from_blob(species_buf.data(), {ncompact}, torch::kInt64),
      torch::from_blob(edge_buf.data(), {2, nedges}, torch::kInt64), static_cast<int64_t>(nlocal_compact),
      want_atom_virial};

  torch::Tensor energy, forces, atom_virial;
  try {
    auto out = model.get_method(committee_size > 0 ? "forward_committee" : "forward")(inputs).toTuple();
    energy = out->elements().at(0).toTensor().to(torch::kFloat64).contiguous();
    forces = out->elements().at(1).toTensor().to(torch::kFloat64).contiguous();
    if (want_atom_virial) atom_virial = out->elements().at(2).toTensor().to(torch::kFloat64).contiguous();
    if (committee_size > 0) member_forces = out->elements().at(3).toTensor().to(torch::kFloat64).contiguous();
  } catch (const std::exception &e) {
    error->one(FLERR, "pair_style ffkit: model '{}' failed at step {}: {}", model_file, update->ntimestep,
               torch_reason(e));
  }
  if (energy.numel() != nlocal_compact || forces.dim() != 2 || forces.size(0) != ncompact || forces.size(1) != 3 ||
      (want_atom_virial && (atom_virial.dim() != 2 || atom_virial.size(0) != ncompact || atom_virial.size(1) != 6)))
    error->one(FLERR,
               "pair_style ffkit: model '{}' returned energy {} / forces {} for {} local and {} total atoms; "
               "expected [{}] / [{}, 3] (docs/artifact.md)", model_file, c10::str(energy.sizes()), c10::str(forces.sizes()),
               nlocal_compact, ncompact, nlocal_compact, ncompact);
  if (committee_size > 0 &&
      (member_forces.dim() != 3 || member_forces.size(0) != committee_size || member_forces.size(1) != ncompact ||
       member_forces.size(2) != 3))
    error->one(FLERR,
               "pair_style ffkit: committee '{}' returned member forces {} for {} atoms; expected [{}, {}, 3] "
               "(metadata.json 'committee' size {}, docs/artifact.md)", model_file,
               c10::str(member_forces.sizes()), ncompact, committee_size, ncompact, committee_size);

  const double *e = energy.data_ptr<double>();
  const double *fm = forces.data_ptr<double>();
  check_finite(e, fm, ncompact, nlocal_compact);

  tally_energy(e, nlocal_compact);
  const double ef = energy_factor;    // length is angstrom in both metal and real

  double **f = atom->f;
  double **x = atom->x;
  double v[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  for (int k = 0; k < ncompact; k++) {
    const int i = lammps_of[k];
    const double fx = ef * fm[3 * k], fy = ef * fm[3 * k + 1], fz = ef * fm[3 * k + 2];
    f[i][0] += fx;
    f[i][1] += fy;
    f[i][2] += fz;
    v[0] += x[i][0] * fx;
    v[1] += x[i][1] * fy;
    v[2] += x[i][2] * fz;
    v[3] += x[i][0] * fy;
    v[4] += x[i][0] * fz;
    v[5] += x[i][1] * fz;
  }
  if (vflag_global)
    for (int m = 0; m < 6; m++) virial[m] += v[m];
  if (want_atom_virial) {
    const double *va = atom_virial.data_ptr<double>();
    for (int k = 0; k < ncompact; k++)
      for (int m = 0; m < 6; m++) vatom[lammps_of[k]][m] += ef * va[6 * k + m];
  }
}

/* Committee force spread. A member's force on an atom is complete only after the contributions on
   its ghost images are summed, so member forces go through their own reverse communication first;
   then, per local atom, std_i = sqrt( sum_m |F_i^m - <F_i>|^2 / (3M) ) (population std over members,
   RMS over components; DeePMD's max_devi_f is sqrt(3) times this), in LAMMPS force units. */
void PairFFKit::force_spread(const torch::Tensor &member_forces, int ncompact)
{
  const int ncols = 3 * committee_size;
  if (atom->nmax > maxatom) {
    maxatom = atom->nmax;
    memory->destroy(member_f);
    memory->destroy(force_std);
    memory->create(member_f, maxatom, ncols, "pair:member_f");
    memory->create(force_std, maxatom, "pair:force_std");
  }
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  if (nall > 0) std::fill(member_f[0], member_f[0] + static_cast<size_t>(nall) * ncols, 0.0);
  if (ncompact > 0) {
    const double *mf = member_forces.data_ptr<double>();
    for (int m = 0; m < committee_size; m++)
      for (int k = 0; k < ncompact; k++)
        for (int d = 0; d < 3; d++)
          member_f[lammps_of[k]][3 * m + d] = energy_factor * mf[(static_cast<int64_t>(m) * ncompact + k) * 3 + d];
  }
  for (comm_member = 0; comm_member < committee_size; comm_member++) comm->reverse_comm(this);

  const int *type = atom->type;
  double local_max = 0.0, local_sum[2] = {0.0, 0.0};    // sum of spreads, number of model atoms
  for (int i = 0; i < nlocal; i++) {
    force_std[i] = 0.0;
    if (type2species[type[i]] < 0) continue;
    double squares = 0.0;
    for (int d = 0; d < 3; d++) {
      double mean = 0.0;
      for (int m = 0; m < committee_size; m++) mean += member_f[i][3 * m + d];
      mean /= committee_size;
      for (int m = 0; m < committee_size; m++) {
        const double dev = member_f[i][3 * m + d] - mean;
        squares += dev * dev;
      }
    }
    force_std[i] = std::sqrt(squares / ncols);
    local_max = std::max(local_max, force_std[i]);
    local_sum[0] += force_std[i];
    local_sum[1] += 1.0;
  }

  // compute pair sums pvector over ranks: rank 0 holds the global values, the others zero
  if (eflag_global) {
    double global_max = 0.0, global_sum[2] = {0.0, 0.0};
    MPI_Allreduce(&local_max, &global_max, 1, MPI_DOUBLE, MPI_MAX, world);
    MPI_Allreduce(local_sum, global_sum, 2, MPI_DOUBLE, MPI_SUM, world);
    const bool root = comm->me == 0;
    pvector[0] = root ? global_max : 0.0;
    pvector[1] = root && global_sum[1] > 0.0 ? global_sum[0] / global_sum[1] : 0.0;
  }
}

/* forces of member comm_member on ghosts -> their owners */
int PairFFKit::pack_reverse_comm(int n, int first, double *buf)
{
  int m = 0;
  for (int i = first; i < first + n; i++)
    for (int d = 0; d < 3; d++) buf[m++] = member_f[i][3 * comm_member + d];
  return m;
}

void PairFFKit::unpack_reverse_comm(int n, int *list, double *buf)
{
  int m = 0;
  for (int k = 0; k < n; k++)
    for (int d = 0; d < 3; d++) member_f[list[k]][3 * comm_member + d] += buf[m++];
}

/* fix pair ID all N ffkit force_std 0: the per-atom committee spread */
void *PairFFKit::extract_peratom(const char *name, int &ncol)
{
  if (strcmp(name, "force_std") != 0) return nullptr;
  if (committee_size == 0)
    error->all(FLERR,
               "pair_style ffkit: per-atom 'force_std' needs a committee artifact in pair_coeff (write one with "
               "'ffkit compile m1.pt m2.pt ... --out committee.pt'); {}", model_file.empty() ?
               "no model is loaded yet (put fix pair after pair_coeff)" : fmt::format("'{}' holds one model", model_file));
  ncol = 0;
  return force_std;
}

/* fix pair ID all N ffkit force_std 1: fix pair sets force_std_flag on its steps, so that a committee of
   heads makes its members' forces there (other committees make them every step) */
void *PairFFKit::extract(const char *name, int &dim)
{
  dim = 0;
  if (strcmp(name, "force_std_flag") == 0) return &force_std_flag;
  return nullptr;
}

double PairFFKit::memory_usage()
{
  return Pair::memory_usage() + static_cast<double>(maxatom) * (3 * committee_size + 1) * sizeof(double);
}
