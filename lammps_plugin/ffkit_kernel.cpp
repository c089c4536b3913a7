/* pair_style ffkit's hand-written kernel: see ffkit_kernel.h. */

#include "ffkit_kernel.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <type_traits>

using namespace LAMMPS_NS;

namespace {

[[noreturn]] void fail(const std::string &where, const std::string &what)
{
  throw std::runtime_error("kernel.json: " + where + ": " + what);
}

const json &field(const json &object, const char *key, const std::string &where)
{
  if (!object.is_object() || !object.contains(key)) fail(where, std::string("no '") + key + "' field");
  return object[key];
}

double number(const json &object, const char *key, const std::string &where)
{
  const json &v = field(object, key, where);
  if (!v.is_number()) fail(where, std::string("'") + key + "' must be a number, not " + v.dump());
  return v.get<double>();
}

int integer(const json &object, const char *key, const std::string &where, int lowest)
{
  const json &v = field(object, key, where);
  if (!v.is_number_integer() || v.get<int>() < lowest)
    fail(where, std::string("'") + key + "' must be an integer >= " + std::to_string(lowest) + ", not " + v.dump());
  return v.get<int>();
}

/* base64 (RFC 4648, with padding) -> bytes; false on any character outside the alphabet */
bool base64_decode(const std::string &text, std::vector<unsigned char> &out)
{
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (text.size() % 4 != 0) return false;
  out.clear();
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    unsigned int word = 0;
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      const char c = text[i + k];
      std::size_t digit = 0;
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        pad++;
      } else {
        digit = alphabet.find(c);
        if (digit == std::string::npos || pad > 0) return false;
      }
      word = (word << 6) | static_cast<unsigned int>(digit);
    }
    for (int k = 0; k < 3 - pad; k++) out.push_back(static_cast<unsigned char>((word >> (16 - 8 * k)) & 0xff));
  }
  return true;
}

const bool little_endian = [] {
  const uint32_t probe = 1;
  unsigned char first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}();

/* an array of `count` numbers: {"dtype": "float32" | "float64", "base64": little-endian bytes} (version 2),
   or a JSON list of numbers (version 1) */
std::vector<double> numbers(const json &object, const char *key, const std::string &where, std::size_t count)
{
  const json &v = field(object, key, where);
  if (v.is_object()) {
    const json &dtype = field(v, "dtype", where + " '" + key + "'");
    const json &text = field(v, "base64", where + " '" + key + "'");
    if (!(dtype == "float32" || dtype == "float64") || !text.is_string())
      fail(where, std::string("'") + key + "' must have 'dtype' float32 or float64 and a 'base64' string");
    std::vector<unsigned char> bytes;
    if (!base64_decode(text.get<std::string>(), bytes))
      fail(where, std::string("'") + key + "' holds invalid base64");
    const std::size_t width = dtype == "float32" ? 4 : 8;
    if (bytes.size() != count * width)
      fail(where, std::string("'") + key + "' must hold " + std::to_string(count) + " numbers, not " +
                      (bytes.size() % width ? std::to_string(bytes.size()) + " bytes" : std::to_string(bytes.size() / width)));
    if (!little_endian) fail(where, "this plugin reads little-endian arrays only on a little-endian machine");
    std::vector<double> out(count);
    for (std::size_t k = 0; k < count; k++) {
      if (width == 4) {
        float x;
        std::memcpy(&x, bytes.data() + 4 * k, 4);
        out[k] = x;
      } else {
        std::memcpy(&out[k], bytes.data() + 8 * k, 8);
      }
      if (!std::isfinite(out[k])) fail(where, std::string("'") + key + "' holds a non-finite number");
    }
    return out;
  }
  if (!v.is_array() || v.size() != count)
    fail(where, std::string("'") + key + "' must hold " + std::to_string(count) + " numbers, not " +
                    (v.is_array() ? std::to_string(v.size()) : v.dump()));
  std::vector<double> out;
  out.reserve(count);
  for (const auto &x : v) {
    if (!x.is_number()) fail(where, std::string("'") + key + "' holds a non-number: " + x.dump());
    out.push_back(x.get<double>());
  }
  return out;
}

constexpr int n_monomials(int l_max) { return (l_max + 1) * (l_max + 2) * (l_max + 3) / 6; }
constexpr int BASIS_LIMIT = 64, CHANNEL_LIMIT = 64, GROUP_LIMIT = 8, MONOMIAL_LIMIT = n_monomials(GROUP_LIMIT - 1);

/* x^a y^b z^c of every rank up to LC, in ffkit.model.moments.monomials order, known to the compiler */
template <int LC> struct MonomialTable {
  int e[n_monomials(LC)][3];
  constexpr MonomialTable() : e()
  {
    int m = 0;
    for (int l = 0; l <= LC; l++)
      for (int a = l; a >= 0; a--)
        for (int b = l - a; b >= 0; b--, m++) {
          e[m][0] = a;
          e[m][1] = b;
          e[m][2] = l - a - b;
        }
  }
};

/* per-edge array sizes of the moment kernel: exact for a fixed size (KC channels, l_max LC, GC radial
   groups), else the limits */
template <int KC, int LC, int GC> struct EdgeSizes {
  static constexpr int radial = KC > 0 ? KC * GC : CHANNEL_LIMIT * GROUP_LIMIT;
  static constexpr int mono = KC > 0 ? n_monomials(LC) : MONOMIAL_LIMIT;
};

/* Dense products of a block of atoms: z_b = bias + W x_b for each of `count` atoms b, W stored
   [n_in][n_out] (bias may be null: zero). Each pass over W serves up to eight atoms, so the matrix,
   which the products stream from cache (1130 x 128 in `accurate`, more than this CPU's L2 in both
   orientations), is read once per eight atoms instead of once per atom (2-3x faster in a
   micro-benchmark of that layer). The sums of a tile of B outputs stay in vector registers. W holds
   doubles, or floats when every weight is a float32 value (float32 artifacts): each is widened
   exactly, so the sums are the same, and the matrix is half the size. Every output is bias + x_0 w_0 + x_1 w_1 + ... in that order,
   whatever the block, so an atom's result does not depend on its neighbours in the block (nor on
   the number of threads, which decides the blocks). */
typedef double v8d __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));

template <typename W> inline v8d load8(const W *w)
{
  if constexpr (sizeof(W) == sizeof(float)) {
    v8f f;
    std::memcpy(&f, w, sizeof f);
    return __builtin_convertvector(f, v8d);
  } else {
    v8d d;
    std::memcpy(&d, w, sizeof d);
    return d;
  }
}

template <int NB, int B, typename W>
int dense_tiles(const W *__restrict wt, const double *__restrict bias, const double *const *x, int n_in, int n_out,
                int o0, double *const *z)
{
  constexpr int V = B / 8;
  for (; o0 + B <= n_out; o0 += B) {
    v8d acc[NB][V];
    for (int v = 0; v < V; v++) {
      v8d start = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
      if (bias) std::memcpy(&start, bias + o0 + 8 * v, sizeof start);
      for (int b = 0; b < NB; b++) acc[b][v] = start;
    }
    for (int j = 0; j < n_in; j++) {
      const W *w = wt + static_cast<std::size_t>(j) * n_out + o0;
      v8d wj[V];
      for (int v = 0; v < V; v++) wj[v] = load8(w + 8 * v);
      for (int b = 0; b < NB; b++) {
        const double xb = x[b][j];
        for (int v = 0; v < V; v++) acc[b][v] += xb * wj[v];
      }
    }
    for (int b = 0; b < NB; b++)
      for (int v = 0; v < V; v++) std::memcpy(z[b] + o0 + 8 * v, &acc[b][v], sizeof(v8d));
  }
  return o0;
}

/* NB atoms: tiles of 8 outputs (32 for one atom, then 8: four and one vector chains; a tile of 16
   outputs for eight atoms was 20 % slower), then the last outputs (one, for the energy) atom by atom
   with eight partial sums */
template <int NB, typename W>
void dense_atoms(const W *__restrict wt, const double *__restrict bias, const double *const *x, int n_in, int n_out,
                 double *const *z)
{
  int o0 = 0;
  if constexpr (NB == 1) o0 = dense_tiles<1, 32>(wt, bias, x, n_in, n_out, 0, z);
  o0 = dense_tiles<NB, 8>(wt, bias, x, n_in, n_out, o0, z);
  for (int b = 0; b < NB; b++) {
    const double *xb = x[b];
    for (int o = o0; o < n_out; o++) {
      double part[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
      int j = 0;
      for (; j + 8 <= n_in; j += 8)
        for (int c = 0; c < 8; c++) part[c] += xb[j + c] * static_cast<double>(wt[static_cast<std::size_t>(j + c) * n_out + o]);
      double sum = bias ? bias[o] : 0.0;
      for (int c = 0; c < 8; c++) sum += part[c];
      for (; j < n_in; j++) sum += xb[j] * static_cast<double>(wt[static_cast<std::size_t>(j) * n_out + o]);
      z[b][o] = sum;
    }
  }
}

template <typename W>
void dense(const W *wt, const double *bias, const double *const *x, int count, int n_in, int n_out, double *const *z)
{
  int b = 0;
  for (; b + 8 <= count; b += 8) dense_atoms<8>(wt, bias, x + b, n_in, n_out, z + b);
  for (; b + 4 <= count; b += 4) dense_atoms<4>(wt, bias, x + b, n_in, n_out, z + b);
  for (; b < count; b++) dense_atoms<1>(wt, bias, x + b, n_in, n_out, z + b);
}

}    // namespace

void FFKitKernel::Layer::forward(const double *const *x, int count, double *const *z) const
{
  if (single())
    dense(weight_t_f.data(), bias.data(), x, count, n_in, n_out, z);
  else
    dense(weight_t.data(), bias.data(), x, count, n_in, n_out, z);
}

void FFKitKernel::Layer::adjoint(const double *const *g, int count, double *const *gin) const
{
  if (single())
    dense(weight_f.data(), nullptr, g, count, n_out, n_in, gin);
  else
    dense(weight.data(), nullptr, g, count, n_out, n_in, gin);
}


/* a dense layer (ffkit.model.kernel_export: n_in, n_out, weight [n_out][n_in], bias) taking n_in inputs */
FFKitKernel::Layer FFKitKernel::load_layer(const json &layer, const std::string &where, int n_in)
{
  Layer l;
  l.n_in = integer(layer, "n_in", where, 1);
  l.n_out = integer(layer, "n_out", where, 1);
  if (l.n_in != n_in) fail(where, "a layer takes " + std::to_string(l.n_in) + " inputs, expected " + std::to_string(n_in));
  l.weight = numbers(layer, "weight", where, static_cast<std::size_t>(l.n_in) * l.n_out);
  l.bias = numbers(layer, "bias", where, l.n_out);
  l.weight_t.resize(l.weight.size());
  for (int o = 0; o < l.n_out; o++)
    for (int j = 0; j < l.n_in; j++) l.weight_t[static_cast<std::size_t>(j) * l.n_out + o] = l.weight[o * l.n_in + j];
  if (std::all_of(l.weight.begin(), l.weight.end(),
                  [](double w) { return static_cast<double>(static_cast<float>(w)) == w; })) {
    l.weight_f.assign(l.weight.begin(), l.weight.end());
    l.weight_t_f.assign(l.weight_t.begin(), l.weight_t.end());
    std::vector<double>().swap(l.weight);
    std::vector<double>().swap(l.weight_t);
  }
  return l;
}

/* an ML term's atomic networks (ffkit.model.kernel_export._readout) on n_features features */
FFKitKernel::Readout FFKitKernel::load_readout(const json &term, const std::string &where, int n_features, int S)
{
  Readout t;
  const std::string rwhere = where + " readout";
  const json &readout = field(term, "readout", where);
  const json &shared = field(readout, "shared", rwhere);
  if (!shared.is_boolean()) fail(rwhere, "'shared' must be true or false");
  t.shared = shared.get<bool>();
  t.mean = numbers(readout, "feature_mean", rwhere, n_features);
  t.inv_std = numbers(readout, "feature_std", rwhere, n_features);
  for (auto &x : t.inv_std) {
    if (!(x > 0.0)) fail(rwhere, "'feature_std' must be positive");
    x = 1.0 / x;
  }
  t.output_scale = number(readout, "output_scale", rwhere);
  const json &nets = field(readout, "networks", rwhere);
  const std::size_t n_nets = t.shared ? 1 : S;
  if (!nets.is_array() || nets.size() != n_nets)
    fail(rwhere, "'networks' must hold " + std::to_string(n_nets) + " network(s)");
  for (const auto &net : nets) {
    std::vector<Layer> layers;
    int n_in = n_features + (t.shared ? S : 0);
    if (!net.is_array() || net.empty()) fail(rwhere, "each network must be a non-empty list of layers");
    for (const auto &layer : net) {
      layers.push_back(load_layer(layer, rwhere, n_in));
      n_in = layers.back().n_out;
    }
    if (n_in != 1) fail(rwhere, "a network must end with one output (the atom's energy)");
    t.networks.push_back(std::move(layers));
  }
  return t;
}

void FFKitKernel::load(const json &spec)
{
  if (!spec.is_object() || !spec.contains("format") || spec["format"] != "ffkit-kernel")
    fail("top level", "'format' is not \"ffkit-kernel\"");
  if (integer(spec, "version", "top level", 1) > 2)
    fail("top level", "'version' is " + spec["version"].dump() + "; this plugin reads versions 1 and 2");
  const int S = integer(spec, "n_species", "top level", 1);
  reference = numbers(spec, "reference_energies", "top level", S);
  tables.clear();
  moment_terms.clear();
  tensor_terms.clear();
  term_names.clear();
  const json &terms = field(spec, "terms", "top level");
  if (!terms.is_array()) fail("top level", "'terms' must be a list");
  for (const auto &term : terms) {
    const std::string name = term.contains("name") && term["name"].is_string() ? term["name"].get<std::string>()
                                                                               : "?";
    const std::string where = "term '" + name + "'";
    const json &type = field(term, "type", where);
    if (type == "pair_table") {
      PairTable t;
      t.cutoff = number(term, "cutoff", where);
      t.r_first = number(term, "r_first", where);
      t.spacing = number(term, "spacing", where);
      t.n_knots = integer(term, "n_knots", where, 2);
      if (t.spacing <= 0.0 || t.cutoff <= t.r_first) fail(where, "spacing must be > 0 and cutoff > r_first");
      t.coefficients = numbers(term, "coefficients", where, static_cast<std::size_t>(S) * S * t.n_knots * 4);
      tables.push_back(std::move(t));
    } else if (type == "three_body" || type == "many_body") {
      MomentTerm t;
      t.n_channels = integer(term, "n_channels", where, 1);
      t.l_max = integer(term, "l_max", where, 0);
      t.n_groups = integer(term, "n_groups", where, 1);
      if (t.n_groups != 1 && t.n_groups != t.l_max + 1) fail(where, "'n_groups' must be 1 or l_max + 1");
      if (t.n_channels > CHANNEL_LIMIT || t.l_max + 1 > GROUP_LIMIT)
        fail(where, "this kernel takes at most 64 channels and l_max 7");
      t.load_basis(term, where);
      const int K = t.n_channels, KG = K * t.n_groups;
      const double inv_neighbors = number(term, "inv_neighbors", where);
      const std::vector<double> w =
          numbers(term, "radial_weights", where, static_cast<std::size_t>(t.n_basis) * S * S * KG);
      t.radial.resize(w.size());
      for (int pair = 0; pair < S * S; pair++)    // [basis][pair][channel] -> [pair][basis][channel]
        for (int b = 0; b < t.n_basis; b++)
          for (int c = 0; c < KG; c++)
            t.radial[(static_cast<std::size_t>(pair) * t.n_basis + b) * KG + c] =
                w[static_cast<std::size_t>(b) * S * S * KG + pair * KG + c] * inv_neighbors;
      const json &exps = field(term, "monomial_exponents", where);
      if (!exps.is_array()) fail(where, "'monomial_exponents' must be a list of [a, b, c]");
      t.n_mono = static_cast<int>(exps.size());
      std::vector<int> ranks;
      for (const auto &e : exps) {
        if (!e.is_array() || e.size() != 3) fail(where, "'monomial_exponents' must be [a, b, c] lists");
        int rank = 0;
        for (int d = 0; d < 3; d++) {
          if (!e[d].is_number_integer() || e[d].get<int>() < 0) fail(where, "exponents must be integers >= 0");
          t.exponents.push_back(e[d].get<int>());
          rank += t.exponents.back();
        }
        if ((!ranks.empty() && rank < ranks.back()) || rank > t.l_max)
          fail(where, "'monomial_exponents' must be ordered by rank, each <= l_max");
        ranks.push_back(rank);
        t.group_of.push_back(t.n_groups == 1 ? 0 : rank);
      }
      if (ranks.empty() || ranks.front() != 0 || ranks.back() != t.l_max)
        fail(where, "'monomial_exponents' must run from rank 0 to l_max");
      t.canonical = true;    // the order the fixed-size kernels assume (MonomialTable)
      for (int m = 0, l = 0; l <= t.l_max; l++)
        for (int a = l; a >= 0; a--)
          for (int b = l - a; b >= 0; b--, m++)
            if (m >= t.n_mono || t.exponents[3 * m] != a || t.exponents[3 * m + 1] != b) t.canonical = false;
      for (int l = 0; l <= t.l_max + 1; l++)
        t.rank_start.push_back(static_cast<int>(std::count_if(ranks.begin(), ranks.end(), [l](int r) { return r < l; })));
      t.mono_weight = numbers(term, "monomial_weights", where, t.n_mono);
      t.n_three = K + (t.l_max + 1) * K * (K + 1) / 2;
      t.n_features = t.n_three;
      if (type == "many_body") {    // 4-body invariants of channel-mixed rank-1 vectors and rank-2 matrices
        if (t.l_max < 2) fail(where, "a many_body term needs 'l_max' >= 2 (its 4-body part uses rank-2 moments)");
        const int nc = t.n_coupled = integer(term, "n_coupled", where, 1);
        t.mix_vector = numbers(term, "mix_vector", where, static_cast<std::size_t>(nc) * K);
        t.mix_tensor = numbers(term, "mix_tensor", where, static_cast<std::size_t>(nc) * K);
        t.n_features += 2 * nc * nc * nc;
        auto monomial = [&](int a, int b, int c) {
          for (int m = 0; m < t.n_mono; m++)
            if (t.exponents[3 * m] == a && t.exponents[3 * m + 1] == b && t.exponents[3 * m + 2] == c) return m;
          fail(where, "'monomial_exponents' lacks a monomial of rank 1 or 2");
        };
        for (int a = 0; a < 3; a++) {
          t.vector_index[a] = monomial(a == 0, a == 1, a == 2);
          for (int b = 0; b < 3; b++)
            t.matrix_index[3 * a + b] = monomial((a == 0) + (b == 0), (a == 1) + (b == 1), (a == 2) + (b == 2));
        }
      }
      t.net = load_readout(term, where, t.n_features, S);
      moment_terms.push_back(std::move(t));
    } else if (type == "tensor_messages") {
      TensorTerm t;
      t.load_basis(term, where);
      const int C = t.channels = integer(term, "channels", where, 1);
      t.interactions = integer(term, "interactions", where, 0);
      if (t.interactions > 1) fail(where, "'interactions' must be 0 or 1");
      t.inv_neighbors = number(term, "inv_neighbors", where);
      auto radials = [&](const char *key, std::vector<double> &mix, std::vector<double> &pair) {
        const json &r = field(term, key, where);
        const std::string rwhere = where + " " + key;
        const std::vector<double> w = numbers(r, "mix", rwhere, static_cast<std::size_t>(3) * C * t.n_basis);
        mix.resize(w.size());    // [3 C][basis] -> [basis][3 C]
        for (int o = 0; o < 3 * C; o++)
          for (int b = 0; b < t.n_basis; b++) mix[b * 3 * C + o] = w[o * t.n_basis + b];
        pair = numbers(r, "pair_factors", rwhere, static_cast<std::size_t>(S) * S * 3 * C);
      };
      radials("embed_radials", t.embed_radial, t.embed_pair);
      if (t.interactions > 0) radials("message_radials", t.message_radial, t.message_pair);
      const json &norm = field(term, "embed_norm", where);
      t.norm_weight = numbers(norm, "weight", where + " embed_norm", C);
      t.norm_bias = numbers(norm, "bias", where + " embed_norm", C);
      t.norm_eps = number(norm, "eps", where + " embed_norm");
      const json &gates = field(term, "embed_gates", where);
      if (!gates.is_array() || gates.size() != 2) fail(where, "'embed_gates' must hold two layers (C -> 2 C -> 3 C)");
      t.gates.push_back(load_layer(gates[0], where + " embed_gates", C));
      t.gates.push_back(load_layer(gates[1], where + " embed_gates", t.gates[0].n_out));
      if (t.gates[1].n_out != 3 * C) fail(where, "'embed_gates' must end with 3 * channels outputs");
      for (auto [key, w] : {std::pair{"embed_mixing", &t.embed_mixing}, std::pair{"pre_mixing", &t.pre_mixing},
                            std::pair{"post_mixing", &t.post_mixing}})
      {
        *w = numbers(term, key, where, static_cast<std::size_t>(3) * C * C);
        w->resize(6 * C * C);    // the adjoint's products run over the transposed matrices
        for (int f = 0; f < 3; f++)
          for (int k = 0; k < C; k++)
            for (int l = 0; l < C; l++) (*w)[(3 + f) * C * C + l * C + k] = (*w)[f * C * C + k * C + l];
      }
      t.net = load_readout(term, where, 6 * C, S);
      tensor_terms.push_back(std::move(t));
    } else {
      fail(where, "type " + type.dump() + " has no kernel in this plugin (kernels: pair_table, three_body, many_body, "
                  "tensor_messages)");
    }
    term_names.push_back(name + " (" + type.get<std::string>() + ")");
  }
  n_species = S;
}

void FFKitKernel::Bessel::load_basis(const json &term, const std::string &where)
{
  cutoff = number(term, "cutoff", where);
  n_basis = integer(term, "n_basis", where, 1);
  if (n_basis > BASIS_LIMIT) fail(where, "'n_basis' is at most 64 in this kernel");
  prefactor = number(term, "bessel_prefactor", where);
  p = number(term, "envelope_p", where);
  if (p >= 1.0 && p == std::floor(p) && p < 64.0) p_int = static_cast<int>(p);
  frequencies = numbers(term, "bessel_frequencies", where, n_basis);
  frequency = frequencies[0];
  // frequencies are n w up to their rounding (a float32 buffer): sin(n w r) by rotation, then corrected
  detune.clear();
  for (int b = 0; b < n_basis; b++) {
    detune.push_back(frequencies[b] - (b + 1) * frequency);
    if (std::fabs(detune.back()) * cutoff > 1e-4) fail(where, "'bessel_frequencies' must be n * pi / cutoff for n = 1, 2, ...");
  }
}

void FFKitKernel::Bessel::lanes(const v8d &r, const v8d &inv_r, v8d *basis, v8d *dbasis) const
{
  const double inv_cut = 1.0 / cutoff;
  const double A = 0.5 * (p + 1.0) * (p + 2.0), B = p * (p + 2.0), C = 0.5 * p * (p + 1.0);
  v8d s1, c1;
  for (int e = 0; e < 8; e++) {
    s1[e] = std::sin(frequency * r[e]);
    c1[e] = std::cos(frequency * r[e]);
  }
  // polynomial envelope and its derivative
  const v8d x = r * inv_cut;
  v8d xpm1 = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
  if (p_int > 0)
    for (int q = 1; q < p_int; q++) xpm1 *= x;
  else
    for (int e = 0; e < 8; e++) xpm1[e] = std::pow(x[e], p - 1.0);
  const v8d xp = xpm1 * x;
  const v8d env = 1.0 - A * xp + B * xp * x - C * xp * x * x;
  const v8d denv = (-A * p * xpm1 + B * (p + 1.0) * xp - C * (p + 2.0) * xp * x) * inv_cut;
  // Bessel functions sin(n w r) / r by rotation: one sin and one cos per edge
  v8d sn = s1, cn = c1;
  for (int b = 0; b < n_basis; b++) {
    // sin and cos of (n w + detune) r from those of n w r: detune * r < 1e-4, so two terms are exact
    const v8d dt = detune[b] * r, keep = 1.0 - 0.5 * dt * dt;
    const v8d sb = sn * keep + cn * dt, cb = cn * keep - sn * dt;
    const v8d val = prefactor * sb * inv_r;
    const v8d dval = prefactor * (frequencies[b] * cb - sb * inv_r) * inv_r;
    basis[b] = val * env;
    dbasis[b] = dval * env + val * denv;
    const v8d next = sn * c1 + cn * s1;
    cn = cn * c1 - sn * s1;
    sn = next;
  }
}

bool FFKitKernel::threaded()
{
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

std::string FFKitKernel::describe() const
{
  std::string out;
  for (const auto &name : term_names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

bool FFKitKernel::same_descriptors(const json &a, const json &b)
{
  auto descriptors = [](json spec) {
    if (spec.is_object() && spec.contains("terms") && spec["terms"].is_array())
      for (auto &term : spec["terms"])
        if (term.is_object() && term.contains("readout") && term["readout"].is_object()) {
          term["readout"].erase("networks");
          term["readout"].erase("output_scale");
        }
    return spec;
  };
  return descriptors(a) == descriptors(b);
}

void FFKitKernel::evaluate(const double *vectors, const int64_t *species, const int64_t *centre,
                           const int64_t *neighbour, int64_t nedges, int nlocal, double *energy, double *grad) const
{
  run(vectors, species, centre, neighbour, nedges, nlocal, energy, grad, nullptr);
}

void FFKitKernel::evaluate_heads(const std::vector<FFKitKernel> &heads, const double *vectors,
                                 const int64_t *species, const int64_t *centre, const int64_t *neighbour,
                                 int64_t nedges, int nlocal, double *energy, double *grad,
                                 double *const *head_grad) const
{
  for (const auto &h : heads)
    if (h.moment_terms.size() != moment_terms.size() || !h.tensor_terms.empty())
      throw std::runtime_error("kernel: the heads of a committee must have this kernel's terms, and no tensor messages");
  const Heads members{&heads, head_grad};
  run(vectors, species, centre, neighbour, nedges, nlocal, energy, grad, &members);
  if (!head_grad) return;
  // the adjoint pass is linear in the network gradient, so the mean's is the mean of the heads': the first
  // head's follows from the others' without an adjoint pass of its own
  const std::size_t M = heads.size();
  at::parallel_for(0, 3 * nedges, 16384, [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; k++) {
      double others = 0.0;
      for (std::size_t m = 1; m < M; m++) others += head_grad[m][k];
      head_grad[0][k] = static_cast<double>(M) * grad[k] - others;
    }
  });
}

void FFKitKernel::run(const double *vectors, const int64_t *species, const int64_t *centre,
                      const int64_t *neighbour, int64_t nedges, int nlocal, double *energy, double *grad,
                      const Heads *heads) const
{
  // edges of centre i are [start[i], start[i + 1]): checked, then found by bisection, both in parallel;
  // a tensor-message term also has ghost centres (numbered from nlocal on), whose edges come last
  const int ncentres = tensor_terms.empty() || nedges == 0 ? nlocal : std::max<int>(nlocal, centre[nedges - 1] + 1);
  bool grouped = true;
  at::parallel_for(0, nedges, 16384, [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; k++)
      if (centre[k] < 0 || centre[k] >= ncentres || (k > 0 && centre[k - 1] > centre[k]))
        __atomic_store_n(&grouped, false, __ATOMIC_RELAXED);
  });
  if (!grouped)
    throw std::runtime_error(tensor_terms.empty() ? "kernel: edges are not grouped by local centre in ascending order"
                                                  : "kernel: edges are not grouped by centre in ascending order");
  std::vector<int64_t> start(ncentres + 1);
  at::parallel_for(0, ncentres + 1, 1024, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; i++) start[i] = std::lower_bound(centre, centre + nedges, i) - centre;
  });
  std::fill(grad + 3 * start[nlocal], grad + 3 * nedges, 0.0);    // ghost centres' edges: tensor terms add to them

  at::parallel_for(0, nlocal, 64, [&](int64_t first, int64_t last) {
    Scratch s[ATOM_BLOCK];
    for (int64_t i0 = first; i0 < last; i0 += ATOM_BLOCK) {
      const int count = static_cast<int>(std::min<int64_t>(ATOM_BLOCK, last - i0));
      double e[ATOM_BLOCK];
      for (int b = 0; b < count; b++) {
        const int64_t i = i0 + b;
        const int si = static_cast<int>(species[i]);
        e[b] = reference[si];
        std::fill(grad + 3 * start[i], grad + 3 * start[i + 1], 0.0);    // the terms add to it
        for (const auto &t : tables) pair_table(t, si, vectors, species, neighbour, start[i], start[i + 1], e[b], grad);
        if (heads && heads->grad)    // every member has the shared pair terms (the first: evaluate_heads)
          for (std::size_t m = 1; m < heads->kernels->size(); m++)
            std::copy(grad + 3 * start[i], grad + 3 * start[i + 1], heads->grad[m] + 3 * start[i]);
      }
      for (std::size_t ti = 0; ti < moment_terms.size(); ti++) {
        const MomentTerm &t = moment_terms[ti];
        const int64_t *st = start.data();
        // instantiated for the tiers' sizes, whose per-edge accumulators then live in vector registers
#define FFKIT_TERM_BLOCK(KC, LC, GC)                                                                       \
  (heads ? heads_block<KC, LC, GC>(ti, *heads, i0, count, vectors, species, neighbour, st, e, grad, s)     \
         : moment_block<KC, LC, GC>(t, i0, count, vectors, species, neighbour, st, e, grad, s))
        if (t.canonical && t.n_groups == 1 && t.n_channels == 8 && t.l_max == 3)    // fast
          FFKIT_TERM_BLOCK(8, 3, 1);
        else if (t.canonical && t.n_groups == 1 && t.n_channels == 16 && t.l_max == 4)    // balanced
          FFKIT_TERM_BLOCK(16, 4, 1);
        else if (t.canonical && t.n_groups == 5 && t.n_channels == 16 && t.l_max == 4)    // accurate
          FFKIT_TERM_BLOCK(16, 4, 5);
        else
          FFKIT_TERM_BLOCK(0, 0, 0);
#undef FFKIT_TERM_BLOCK
      }
      std::copy(e, e + count, energy + i0);
    }
  });
  for (const auto &t : tensor_terms)
    tensor_messages(t, vectors, species, neighbour, start.data(), ncentres, nlocal, energy, grad);
}

/* The atomic networks of a block of centres (s[b]: centre b, its species species[b]): energy[b] +=
   the network's output, and s[b].g = dE/d(its input). Centres that share a network go through each
   layer together (one pass over the weights for up to ATOM_BLOCK of them). */
void FFKitKernel::readout(const Readout &t, const int64_t *species, int count, double *energy, Scratch *s) const
{
  const double *in[ATOM_BLOCK];
  double *out[ATOM_BLOCK];
  int member[ATOM_BLOCK];
  for (int k = 0; k < static_cast<int>(t.networks.size()); k++) {
    int nm = 0;
    for (int b = 0; b < count; b++)
      if ((t.shared ? 0 : species[b]) == k) member[nm++] = b;
    if (nm == 0) continue;
    const std::vector<Layer> &net = t.networks[k];
    const int nlayers = static_cast<int>(net.size());
    for (int L = 0; L < nlayers; L++) {    // SiLU between layers
      for (int q = 0; q < nm; q++) {
        Scratch &sb = s[member[q]];
        sb.z[L].resize(net[L].n_out);
        in[q] = sb.a[L].data();
        out[q] = sb.z[L].data();
      }
      net[L].forward(in, nm, out);
      if (L + 1 == nlayers) break;
      for (int q = 0; q < nm; q++) {
        Scratch &sb = s[member[q]];
        sb.a[L + 1].resize(net[L].n_out);
        for (int o = 0; o < net[L].n_out; o++) sb.a[L + 1][o] = silu(sb.z[L][o]);
      }
    }
    for (int q = 0; q < nm; q++) {
      energy[member[q]] += s[member[q]].z[nlayers - 1][0] * t.output_scale;
      s[member[q]].g.assign(1, t.output_scale);
    }
    // adjoint pass: dE/d(input), through each layer's transpose (its row-major weight) and SiLU'
    for (int L = nlayers - 1; L >= 0; L--) {
      for (int q = 0; q < nm; q++) {
        Scratch &sb = s[member[q]];
        sb.gin.resize(net[L].n_in);
        in[q] = sb.g.data();
        out[q] = sb.gin.data();
      }
      net[L].adjoint(in, nm, out);
      for (int q = 0; q < nm; q++) {
        Scratch &sb = s[member[q]];
        if (L > 0) {
          const std::vector<double> &zp = sb.z[L - 1];
          for (int j = 0; j < net[L].n_in; j++) sb.gin[j] *= silu_slope(zp[j]);
        }
        sb.g.swap(sb.gin);
      }
    }
  }
}

/* phi_ab(r) as ffkit.model.tabulated.TabulatedPair: half of each directed edge's value to its centre */
void FFKitKernel::pair_table(const PairTable &t, int si, const double *vectors, const int64_t *species,
                             const int64_t *neighbour, int64_t begin, int64_t end, double &energy,
                             double *grad) const
{
  const double cut2 = t.cutoff * t.cutoff, inv_spacing = 1.0 / t.spacing;
  for (int64_t k = begin; k < end; k++) {
    const double *v = vectors + 3 * k;
    const double r2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
    if (r2 >= cut2) continue;
    const double r = std::sqrt(r2);
    const double x = (r - t.r_first) * inv_spacing;
    const int interval = static_cast<int>(std::clamp(std::floor(x), 0.0, static_cast<double>(t.n_knots - 1)));
    const double u = x - interval;
    const double *c = t.coefficients.data() +
                      (static_cast<std::size_t>(si * n_species + species[neighbour[k]]) * t.n_knots + interval) * 4;
    double phi, dphi;
    if (x >= 0.0) {
      phi = ((c[3] * u + c[2]) * u + c[1]) * u + c[0];
      dphi = ((3.0 * c[3] * u + 2.0 * c[2]) * u + c[1]) * inv_spacing;
    } else if (c[1] < 0.0) {    // below the first knot, a repulsive pair continues as a / r + b
      const double a = -c[1] * inv_spacing * t.r_first * t.r_first;
      phi = a / r + (c[0] - a / t.r_first);
      dphi = -a / r2;
    } else {
      phi = c[0] + c[1] * u;
      dphi = c[1] * inv_spacing;
    }
    energy += 0.5 * phi;
    const double scale = 0.5 * dphi / r;
    for (int d = 0; d < 3; d++) grad[3 * k + d] += scale * v[d];
  }
}

/* ffkit.model.invariants.four_body of one centre's moments mt [m][c]: v_k.T_l.v_m, then tr(T_k T_l T_m), for
   the channel-mixed rank-1 vectors v and rank-2 matrices T (kept in s for the adjoint) */
void FFKitKernel::four_body(const MomentTerm &t, const double *mt, double *features, Scratch &s) const
{
  const int K = t.n_channels, nc = t.n_coupled;
  s.v.assign(3 * nc, 0.0);
  s.T.assign(9 * nc, 0.0);
  for (int j = 0; j < nc; j++)
    for (int k = 0; k < K; k++) {
      const double wv = t.mix_vector[j * K + k], wt = t.mix_tensor[j * K + k];
      for (int a = 0; a < 3; a++) s.v[3 * j + a] += wv * mt[t.vector_index[a] * K + k];
      for (int ab = 0; ab < 9; ab++) s.T[9 * j + ab] += wt * mt[t.matrix_index[ab] * K + k];
    }
  s.Tv.resize(3 * nc * nc);    // [l][m][a] = (T_l v_m)_a
  s.TT.resize(9 * nc * nc);    // [k][l] = T_k T_l
  for (int l = 0; l < nc; l++)
    for (int m = 0; m < nc; m++) {
      const double *T = &s.T[9 * l], *v = &s.v[3 * m], *T2 = &s.T[9 * m];
      for (int a = 0; a < 3; a++) {
        s.Tv[3 * (l * nc + m) + a] = T[3 * a] * v[0] + T[3 * a + 1] * v[1] + T[3 * a + 2] * v[2];
        for (int c = 0; c < 3; c++)
          s.TT[9 * (l * nc + m) + 3 * a + c] = T[3 * a] * T2[c] + T[3 * a + 1] * T2[3 + c] + T[3 * a + 2] * T2[6 + c];
      }
    }
  const int n3 = nc * nc * nc;
  for (int k = 0, f = 0; k < nc; k++)
    for (int l = 0; l < nc; l++)
      for (int m = 0; m < nc; m++, f++) {
        const double *v = &s.v[3 * k], *tv = &s.Tv[3 * (l * nc + m)], *tt = &s.TT[9 * (k * nc + l)], *T = &s.T[9 * m];
        features[f] = v[0] * tv[0] + v[1] * tv[1] + v[2] * tv[2];
        double trace = 0.0;    // tr((T_k T_l) T_m), T_m symmetric
        for (int ab = 0; ab < 9; ab++) trace += tt[ab] * T[ab];
        features[n3 + f] = trace;
      }
}

/* The adjoint of four_body: dE/d(features) g (standardised: times inv_std) added to dE/d(moments) dmt [m][c] */
void FFKitKernel::four_body_adjoint(const MomentTerm &t, const double *g, const double *inv_std, double *dmt,
                                    Scratch &s) const
{
  const int K = t.n_channels, nc = t.n_coupled, n3 = nc * nc * nc;
  s.dv.assign(3 * nc, 0.0);
  s.dT.assign(9 * nc, 0.0);
  for (int k = 0, f = 0; k < nc; k++)
    for (int l = 0; l < nc; l++)
      for (int m = 0; m < nc; m++, f++) {
        // v_k.T_l.v_m: T symmetric, so d/dv_k = T_l v_m, d/dv_m = T_l v_k, d/dT_l = v_k v_m^T
        const double gv = g[f] * inv_std[f];
        const double *vk = &s.v[3 * k], *vm = &s.v[3 * m], *tlm = &s.Tv[3 * (l * nc + m)],
                     *tlk = &s.Tv[3 * (l * nc + k)];
        double *dT = &s.dT[9 * l];
        for (int a = 0; a < 3; a++) {
          s.dv[3 * k + a] += gv * tlm[a];
          s.dv[3 * m + a] += gv * tlk[a];
          for (int b = 0; b < 3; b++) dT[3 * a + b] += gv * vk[a] * vm[b];
        }
        // tr(T_k T_l T_m): d/dT_k = (T_l T_m)^T = T_m T_l, d/dT_l = T_k T_m, d/dT_m = T_l T_k
        const double gt = g[n3 + f] * inv_std[n3 + f];
        const double *mlp = &s.TT[9 * (m * nc + l)], *kmp = &s.TT[9 * (k * nc + m)], *lkp = &s.TT[9 * (l * nc + k)];
        for (int ab = 0; ab < 9; ab++) {
          s.dT[9 * k + ab] += gt * mlp[ab];
          s.dT[9 * l + ab] += gt * kmp[ab];
          s.dT[9 * m + ab] += gt * lkp[ab];
        }
      }
  for (int j = 0; j < nc; j++)
    for (int k = 0; k < K; k++) {
      const double wv = t.mix_vector[j * K + k], wt = t.mix_tensor[j * K + k];
      for (int a = 0; a < 3; a++) dmt[t.vector_index[a] * K + k] += wv * s.dv[3 * j + a];
      for (int ab = 0; ab < 9; ab++) dmt[t.matrix_index[ab] * K + k] += wt * s.dT[9 * j + ab];
    }
}

/* ffkit.model.descriptor_terms.ThreeBodyML (and ManyBodyML, with four_body), centre by centre: the
   moments M_mc = sum_j R_c(r_ij) mono_m(r^_ij) and their rank contractions (moment_features), the
   atomic network on a block of centres (readout), and the adjoint pass back to dE/dr_ij
   (moment_adjoint). Instantiated for the tiers' sizes (KC channels, l_max LC, GC radial groups),
   whose per-edge accumulators then live in vector registers, and once for any size (KC = 0). */
template <int KC, int LC, int GC>
void FFKitKernel::moment_features(const MomentTerm &t, int si, const double *vectors, const int64_t *species,
                                  const int64_t *neighbour, int64_t begin, int64_t end, Scratch &s) const
{
  constexpr bool fixed = KC > 0;
  constexpr int KMAX = fixed ? KC : CHANNEL_LIMIT;
  const int K = fixed ? KC : t.n_channels, G = fixed ? GC : t.n_groups, KG = K * G;
  const int L1 = fixed ? LC + 1 : t.l_max + 1, M = fixed ? n_monomials(LC) : t.n_mono, nb = t.n_basis;
  static constexpr MonomialTable<LC> table{};
  // where rank l's monomials start, and each monomial's exponents: compile-time for a fixed size
  auto rank_start = [&](int l) { return fixed ? n_monomials(l - 1) : t.rank_start[l]; };
  auto exponents = [&](int m) -> const int * { return fixed ? table.e[m] : &t.exponents[3 * m]; };
  const std::size_t n_max = static_cast<std::size_t>(end - begin);
  // each buffer as large as this centre and this term need (a model may have terms of other sizes)
  const std::size_t batches = (n_max + 7) / 8;
  auto fit = [](auto &buffer, std::size_t size) {
    if (buffer.size() < size) buffer.resize(size);
  };
  fit(s.edge, n_max);
  fit(s.radial, KG * n_max);
  fit(s.dradial_dr, KG * n_max);
  fit(s.unit_t, 3 * batches);
  fit(s.inv_r_t, batches);
  fit(s.powers_t, 3 * L1 * batches);
  fit(s.mono_t, M * batches);
  s.moments_t.resize(static_cast<std::size_t>(M) * K);
  double *mt = s.moments_t.data();
  const double cut2 = t.cutoff * t.cutoff;

  // pass 1: the edges within the cutoff, then eight of them at a time, one in each lane of a vector:
  // distance, envelope, Bessel basis, powers and monomials (kept in that layout for the moments and
  // the adjoint); then each edge's radial channels from its element pair's weights
  int n = 0;
  for (int64_t k = begin; k < end; k++) {
    const double *v = vectors + 3 * k;
    if (v[0] * v[0] + v[1] * v[1] + v[2] * v[2] < cut2) s.edge[n++] = k;
  }
  v8d basis[BASIS_LIMIT], dbasis[BASIS_LIMIT];
  for (int q0 = 0; q0 < n; q0 += 8) {
    v8d *u = &s.unit_t[3 * (q0 / 8)], *pw = &s.powers_t[3 * L1 * (q0 / 8)], *mono = &s.mono_t[M * (q0 / 8)];
    const int lanes = std::min(8, n - q0);
    v8d v[3] = {{1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0}};    // lanes past n: a harmless unit vector
    for (int e = 0; e < lanes; e++)
      for (int d = 0; d < 3; d++) v[d][e] = vectors[3 * s.edge[q0 + e] + d];
    const v8d r2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
    v8d r;
    for (int e = 0; e < 8; e++) r[e] = std::sqrt(r2[e]);
    const v8d inv_r = s.inv_r_t[q0 / 8] = 1.0 / r;
    for (int d = 0; d < 3; d++) u[d] = v[d] * inv_r;
    t.lanes(r, inv_r, basis, dbasis);
    for (int d = 0; d < 3; d++) {
      pw[d * L1] = v8d{1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
      for (int q = 1; q < L1; q++) pw[d * L1 + q] = pw[d * L1 + q - 1] * u[d];
    }
    for (int m = 0; m < M; m++) {
      const int *ex = exponents(m);
      mono[m] = pw[ex[0]] * pw[L1 + ex[1]] * pw[2 * L1 + ex[2]];
    }
    for (int e = 0; e < lanes; e++) {
      const int q = q0 + e;
      const double *W =
          t.radial.data() + static_cast<std::size_t>(si * n_species + species[neighbour[s.edge[q]]]) * nb * KG;
      double radial[EdgeSizes<KC, LC, GC>::radial] = {}, dradial[EdgeSizes<KC, LC, GC>::radial] = {};
      for (int b = 0; b < nb; b++) {
        const double *w = W + b * KG, bb = basis[b][e], db = dbasis[b][e];
        for (int c = 0; c < KG; c++) {
          radial[c] += bb * w[c];
          dradial[c] += db * w[c];
        }
      }
      std::copy(radial, radial + KG, &s.radial[KG * q]);
      std::copy(dradial, dradial + KG, &s.dradial_dr[KG * q]);
    }
  }
  // moments M[m][c] = sum over edges of mono[m] R[c]: four monomials at a time, their sums in registers
  for (int m0 = 0; m0 < M; m0 += 4) {
    const int mb = std::min(4, M - m0);
    double acc[4][KMAX] = {};
    for (int q = 0; q < n; q++) {
      const v8d *mono = &s.mono_t[M * (q / 8) + m0];
      for (int j = 0; j < 4; j++) {
        if (j >= mb) break;
        const double mm = mono[j][q % 8], *rg = &s.radial[KG * q] + (G == 1 ? 0 : t.group_of[m0 + j] * K);
        for (int c = 0; c < K; c++) acc[j][c] += mm * rg[c];
      }
    }
    for (int j = 0; j < mb; j++) std::copy(acc[j], acc[j] + K, mt + (m0 + j) * K);
  }

  // invariants: rank-0 moments, then each rank's channel Gram matrix (upper triangle)
  const int F = t.n_features;
  const std::vector<Layer> &net = t.net.networks[t.net.shared ? 0 : si];
  const int nlayers = static_cast<int>(net.size());
  s.a.resize(nlayers);
  s.z.resize(nlayers);
  std::vector<double> &x0 = s.a[0];
  x0.assign(net[0].n_in, 0.0);
  for (int c = 0; c < K; c++) x0[c] = mt[c];    // rank 0: the monomial 1
  s.gram.resize(static_cast<std::size_t>(K) * K);
  int idx = K;
  for (int l = 0; l < L1; l++) {
    std::fill(s.gram.begin(), s.gram.end(), 0.0);
    for (int m = rank_start(l); m < rank_start(l + 1); m++)
      for (int a = 0; a < K; a++) {
        const double wa = t.mono_weight[m] * mt[m * K + a];
        double *row = &s.gram[a * K];
        for (int b = 0; b < K; b++) row[b] += wa * mt[m * K + b];
      }
    for (int a = 0; a < K; a++)
      for (int b = a; b < K; b++) x0[idx++] = s.gram[a * K + b];
  }
  if (t.n_coupled > 0) four_body(t, mt, x0.data() + t.n_three, s);
  // the atomic network's input: standardised features (+ one-hot element)
  for (int f = 0; f < F; f++) x0[f] = (x0[f] - t.net.mean[f]) * t.net.inv_std[f];
  if (t.net.shared) x0[F + si] = 1.0;
  s.n = n;
}

template <int KC, int LC, int GC>
void FFKitKernel::moment_adjoint(const MomentTerm &t, Scratch &s, double *grad) const
{
  constexpr bool fixed = KC > 0;
  constexpr int KMAX = fixed ? KC : CHANNEL_LIMIT;
  const int K = fixed ? KC : t.n_channels, G = fixed ? GC : t.n_groups, KG = K * G;
  const int L1 = fixed ? LC + 1 : t.l_max + 1, M = fixed ? n_monomials(LC) : t.n_mono;
  static constexpr MonomialTable<LC> table{};
  // where rank l's monomials start, and each monomial's exponents: compile-time for a fixed size
  auto rank_start = [&](int l) { return fixed ? n_monomials(l - 1) : t.rank_start[l]; };
  auto exponents = [&](int m) -> const int * { return fixed ? table.e[m] : &t.exponents[3 * m]; };
  const int n = s.n;
  if (n == 0) return;    // no neighbours: moments do not depend on any pair vector
  const double *mt = s.moments_t.data();
  int idx = K;
  // dE/d(moments) [m][c]: each rank's Gram adjoint S_l (symmetric) times the moments
  std::vector<double> &dmt = s.dmoments_t;
  dmt.assign(static_cast<std::size_t>(M) * K, 0.0);
  for (int c = 0; c < K; c++) dmt[c] = s.g[c] * t.net.inv_std[c];
  for (int l = 0; l < L1; l++) {
    std::fill(s.gram.begin(), s.gram.end(), 0.0);
    for (int a = 0; a < K; a++)
      for (int b = a; b < K; b++, idx++) {
        const double gf = s.g[idx] * t.net.inv_std[idx];
        s.gram[a * K + b] += gf;
        s.gram[b * K + a] += gf;
      }
    for (int m = rank_start(l); m < rank_start(l + 1); m++) {
      double acc[KMAX];
      for (int a = 0; a < K; a++) acc[a] = dmt[m * K + a];
      for (int b = 0; b < K; b++) {
        const double wb = t.mono_weight[m] * mt[m * K + b];
        const double *row = &s.gram[b * K];
        for (int a = 0; a < K; a++) acc[a] += wb * row[a];
      }
      for (int a = 0; a < K; a++) dmt[m * K + a] = acc[a];
    }
  }
  if (t.n_coupled > 0) four_body_adjoint(t, s.g.data() + t.n_three, t.net.inv_std.data() + t.n_three, dmt.data(), s);

  // pass 2: each edge's share, through its radial channels and monomials, to dE/dr_ij, eight edges at a
  // time, one in each lane of a vector: the per-atom adjoints dmt are broadcast, every product is a full
  // vector, and every edge's sums run in the same order (in a last, partial batch the lanes past the
  // edges carry zero radial functions and write nothing)
  constexpr int RAD = EdgeSizes<KC, LC, GC>::radial, MONO = EdgeSizes<KC, LC, GC>::mono;
  const int groups = G == 1 ? 1 : L1;    // monomials sharing radial functions: all of them, or each rank
  for (int q0 = 0; q0 < n; q0 += 8) {
    const int lanes = std::min(8, n - q0);
    const v8d *mono = &s.mono_t[M * (q0 / 8)], *pw = &s.powers_t[3 * L1 * (q0 / 8)], *u = &s.unit_t[3 * (q0 / 8)];
    const v8d inv_r = s.inv_r_t[q0 / 8];
    v8d radial[RAD] = {}, dradial[RAD] = {};
    for (int e = 0; e < lanes; e++)    // component-major: the edge is the lane
      for (int c = 0; c < KG; c++) {
        radial[c][e] = s.radial[KG * q0 + KG * e + c];
        dradial[c][e] = s.dradial_dr[KG * q0 + KG * e + c];
      }
    v8d dr = {}, g_mono[MONO] = {};
    for (int gi = 0; gi < groups; gi++) {
      const int m0 = G == 1 ? 0 : rank_start(gi), m1 = G == 1 ? M : rank_start(gi + 1), off = G == 1 ? 0 : gi * K;
      for (int c = 0; c < K; c++) {    // dE/dR_c: the group's monomials times dmt[m][c], then times dR_c/dr
        v8d g_radial = {};
        for (int m = m0; m < m1; m++) g_radial += mono[m] * dmt[m * K + c];
        dr += g_radial * dradial[off + c];
      }
      for (int m = m0; m < m1; m++)    // dE/dmono_m: the group's radial channels times dmt[m][c]
        for (int c = 0; c < K; c++) g_mono[m] += radial[off + c] * dmt[m * K + c];
    }
    v8d du[3] = {};
    for (int m = 0; m < M; m++) {
      const int *x = exponents(m);
      const v8d px = pw[x[0]], py = pw[L1 + x[1]], pz = pw[2 * L1 + x[2]], gm = g_mono[m];
      if (x[0] > 0) du[0] += gm * static_cast<double>(x[0]) * pw[x[0] - 1] * py * pz;
      if (x[1] > 0) du[1] += gm * static_cast<double>(x[1]) * px * pw[L1 + x[1] - 1] * pz;
      if (x[2] > 0) du[2] += gm * static_cast<double>(x[2]) * px * py * pw[2 * L1 + x[2] - 1];
    }
    const v8d along = du[0] * u[0] + du[1] * u[1] + du[2] * u[2];
    for (int e = 0; e < lanes; e++) {
      const int64_t k = s.edge[q0 + e];
      for (int d = 0; d < 3; d++) grad[3 * k + d] += dr[e] * u[d][e] + (du[d][e] - along[e] * u[d][e]) * inv_r[e];
    }
  }
}

/* the term on centres i0 .. i0 + count - 1 (count <= ATOM_BLOCK), s[b] holding centre i0 + b */
template <int KC, int LC, int GC>
void FFKitKernel::moment_block(const MomentTerm &t, int64_t i0, int count, const double *vectors,
                               const int64_t *species, const int64_t *neighbour, const int64_t *start, double *energy,
                               double *grad, Scratch *s) const
{
  for (int b = 0; b < count; b++)
    moment_features<KC, LC, GC>(t, static_cast<int>(species[i0 + b]), vectors, species, neighbour, start[i0 + b],
                                start[i0 + b + 1], s[b]);
  readout(t.net, species + i0, count, energy, s);
  for (int b = 0; b < count; b++) moment_adjoint<KC, LC, GC>(t, s[b], grad);
}

/* moment term ti of every head on centres i0 .. i0 + count - 1: the features once, each head's
   networks (the heads after the first: their own adjoint pass when heads.grad asks for it), then one
   adjoint pass of the mean network gradient for the mean dE/dr_ij */
template <int KC, int LC, int GC>
void FFKitKernel::heads_block(std::size_t ti, const Heads &heads, int64_t i0, int count, const double *vectors,
                              const int64_t *species, const int64_t *neighbour, const int64_t *start,
                              double *energy, double *grad, Scratch *s) const
{
  const MomentTerm &t = moment_terms[ti];
  for (int b = 0; b < count; b++)
    moment_features<KC, LC, GC>(t, static_cast<int>(species[i0 + b]), vectors, species, neighbour, start[i0 + b],
                                start[i0 + b + 1], s[b]);
  const std::size_t M = heads.kernels->size();
  double sum[ATOM_BLOCK] = {};
  for (std::size_t m = 0; m < M; m++) {
    readout((*heads.kernels)[m].moment_terms[ti].net, species + i0, count, sum, s);
    for (int b = 0; b < count; b++) {
      std::vector<double> &mean = s[b].g_mean;
      if (m == 0) mean.assign(s[b].g.size(), 0.0);
      for (std::size_t j = 0; j < mean.size(); j++) mean[j] += s[b].g[j];
      if (heads.grad && m > 0) moment_adjoint<KC, LC, GC>(t, s[b], heads.grad[m]);    // head 0: evaluate_heads
    }
  }
  const double inv = 1.0 / static_cast<double>(M);
  for (int b = 0; b < count; b++) {
    energy[b] += sum[b] * inv;
    for (auto &x : s[b].g_mean) x *= inv;
    s[b].g.swap(s[b].g_mean);
    moment_adjoint<KC, LC, GC>(t, s[b], grad);
  }
}
