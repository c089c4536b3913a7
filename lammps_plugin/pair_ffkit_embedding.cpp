/* pair_style hybridff: mechanical embedding, done by the ffkit sub-style of LAMMPS's own hybrid/overlay.

   The MM styles describe every atom, as in an all-MM run; the ffkit model replaces the MM
   interactions between two ML atoms (the types pair_coeff maps to elements), as GROMACS's NNPot
   does. Between each pair of ML atoms this removes what the MM styles computed for it, asked from
   the hybrid style's own single() (which sums exactly the sub-styles LAMMPS assigned to that type
   pair), and under Ewald or PPPM also the pair's share of the reciprocal-space sum, the way LAMMPS
   removes it for an excluded pair (GROMACS applies the same exclusion correction). Bonded terms inside
   the ML region cannot be removed this way: the style refuses to run while any exist and names the
   LAMMPS command that deletes them. ML-MM interactions stay MM. */

#include "pair_ffkit.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "kspace.h"
#include "neigh_list.h"
#include "update.h"
#include "utils.h"

#include <cmath>
#include <cstring>

using namespace LAMMPS_NS;

/* called by init_style: the ffkit style runs inside pair_style hybridff, and what the run needs */
void PairFFKit::init_embedding()
{
  embedding = force->pair != this && utils::strmatch(force->pair_style, "^hybridff");
  region_checked = false;
  extent_checked = false;
  if (!embedding) return;
  if (force->pair_match("ffkit", 1) != this)
    error->all(FLERR, "pair_style hybridff: use the ffkit sub-style once (one model is the ML region)");
  KSpace *kspace = force->kspace;
  if (kspace) {
    if (!atom->q_flag)
      error->all(FLERR, "pair_style hybridff: kspace_style {} needs charges, but the atom style has none",
                 force->kspace_style);
    if (kspace->msmflag || kspace->dispersionflag || kspace->tip4pflag || !(kspace->ewaldflag || kspace->pppmflag))
      error->all(FLERR,
                 "pair_style hybridff: kspace_style {} is not supported; the reciprocal-space share of ML-ML "
                 "pairs is removed for Coulomb Ewald and PPPM only (ewald, pppm; no msm, dispersion or tip4p)",
                 force->kspace_style);
    int dim = 0;
    auto *cut = static_cast<double *>(force->pair->extract("cut_coul", dim));
    if (!cut || dim != 0)
      error->all(FLERR, "pair_style hybridff: kspace_style {} is set but no MM sub-style reports a Coulomb "
                 "cutoff (cut_coul); add a coul/long style, e.g. lj/cut/coul/long", force->kspace_style);
    cut_coulsq = (*cut) * (*cut);
  }
  if (comm->me == 0)
    utils::logmesg(lmp, "pair_style hybridff: MM interactions between ML atoms (types {}) are replaced by '{}'{}\n",
                   ml_types(), model_file, kspace ? ", their kspace share included" : "");
}

/* "1 2 3": the atom types pair_coeff maps to model elements */
std::string PairFFKit::ml_types() const
{
  std::string types;
  for (int t = 1; t <= atom->ntypes; t++)
    if (type2species[t] >= 0) types += (types.empty() ? "" : " ") + std::to_string(t);
  return types;
}

bool PairFFKit::is_ml(tagint tag) const
{
  const int m = atom->map(tag);
  if (m < 0)
    error->one(FLERR, "pair_style hybridff: atom {} of a bonded term is not on this rank or its ghosts", tag);
  return type2species[atom->type[m]] >= 0;
}

/* Once per run (ghosts must exist). Every ffkit style: ML atoms that are special neighbours with zero
   factors are missing from the neighbour lists (without kspace), so the model would not see them.
   Inside hybridff: no bonded term and no special pair may lie inside the ML region (removing the MM
   interactions there is exact only then); bonds across the boundary are kept and said so. */
void PairFFKit::check_ml_region()
{
  region_checked = true;
  const int nlocal = atom->nlocal;
  const int *type = atom->type;
  // [inside ML: bonds, angles, dihedrals, impropers, ML-ML special pairs | bonds crossing the boundary]
  bigint local[6] = {0, 0, 0, 0, 0, 0};
  if (atom->molecular != Atom::ATOMIC) {
    const tagint *tag = atom->tag;
    // with 'newton_bond on' each term is stored once; with off, with each of its atoms: then a bond is
    // counted where its smaller ID is local, any other term where its second atom is
    auto count = [&](int k, int i, int n, int **types, std::initializer_list<tagint **> atoms) {
      for (int b = 0; b < n; b++) {
        if (types[i][b] <= 0) continue;    // turned off by 'delete_bonds ... multi' without 'remove'
        if (!force->newton_bond && tag[i] != atoms.begin()[1][i][b]) continue;
        int ml = 0;
        for (tagint **a : atoms) ml += is_ml(a[i][b]) ? 1 : 0;
        if (ml == static_cast<int>(atoms.size())) local[k]++;
        else if (ml > 0 && k == 0) local[5]++;
      }
    };
    for (int i = 0; i < nlocal; i++) {
      if (atom->bond_atom) {
        for (int b = 0; b < atom->num_bond[i]; b++) {
          if (atom->bond_type[i][b] <= 0 || (!force->newton_bond && tag[i] > atom->bond_atom[i][b])) continue;
          const bool a = type2species[type[i]] >= 0, c = is_ml(atom->bond_atom[i][b]);
          if (a && c) local[0]++;
          else if (a != c) local[5]++;
        }
      }
      if (atom->angle_atom1)
        count(1, i, atom->num_angle[i], atom->angle_type, {atom->angle_atom1, atom->angle_atom2, atom->angle_atom3});
      if (atom->dihedral_atom1)
        count(2, i, atom->num_dihedral[i], atom->dihedral_type,
              {atom->dihedral_atom1, atom->dihedral_atom2, atom->dihedral_atom3, atom->dihedral_atom4});
      if (atom->improper_atom1)
        count(3, i, atom->num_improper[i], atom->improper_type,
              {atom->improper_atom1, atom->improper_atom2, atom->improper_atom3, atom->improper_atom4});
      if (atom->nspecial && type2species[type[i]] >= 0)
        for (int s = 0; s < atom->nspecial[i][2]; s++) {
          const int level = s < atom->nspecial[i][0] ? 1 : s < atom->nspecial[i][1] ? 2 : 3;
          const bool unseen = !force->kspace && force->special_lj[level] == 0.0 && force->special_coul[level] == 0.0;
          if ((embedding || unseen) && is_ml(atom->special[i][s])) local[4]++;
        }
    }
  }
  bigint total[6];
  MPI_Allreduce(local, total, 6, MPI_LMP_BIGINT, MPI_SUM, world);
  if (!embedding) {
    if (total[4] > 0)
      error->all(FLERR,
                 "pair_style ffkit: {} pair(s) of ML atoms are special neighbours, and special_bonds lj/coul 0.0 "
                 "removes bonded pairs from the neighbor list, so the model would not see them; use e.g. "
                 "'special_bonds lj/coul 1.0e-100 1.0e-100 1.0e-100' (MM styles then see a factor of ~0), or "
                 "pair_style hybridff for ML/MM", total[4] / 2);
    return;
  }
  if (total[0] + total[1] + total[2] + total[3] + total[4] > 0)
    error->all(FLERR,
               "pair_style hybridff: the ML region (atom types {}) still has MM bonded terms inside it ({} bonds, "
               "{} angles, {} dihedrals, {} impropers; {} special-neighbour pairs); the model replaces them, so "
               "delete them first: 'group ml type {}' then 'delete_bonds ml multi remove special'",
               ml_types(), total[0], total[1], total[2], total[3], total[4] / 2, ml_types());
  if (total[5] > 0 && comm->me == 0)
    error->warning(FLERR,
                   "pair_style hybridff: {} bond(s) cross the ML/MM boundary; they are kept as MM (as GROMACS "
                   "does), and the model sees no link atoms: cut through non-polar bonds only", total[5]);
}

/* Under kspace, every pair of ML atoms must be one neighbour pair within the Coulomb cutoff (the
   reciprocal share of pairs beyond it, or of periodic images, cannot be removed pair by pair). */
void PairFFKit::check_kspace_extent(bigint pairs_within)
{
  bigint ml_local = 0, ml_total = 0, found = 0;
  for (int i = 0; i < atom->nlocal; i++)
    if (type2species[atom->type[i]] >= 0) ml_local++;
  MPI_Allreduce(&ml_local, &ml_total, 1, MPI_LMP_BIGINT, MPI_SUM, world);
  MPI_Allreduce(&pairs_within, &found, 1, MPI_LMP_BIGINT, MPI_SUM, world);
  if (found != ml_total * (ml_total - 1))
    error->all(FLERR,
               "pair_style hybridff: with kspace_style {} the ML region must lie within the Coulomb cutoff {:.8} "
               "(each of its {} atoms seeing every other once): found {} ML-ML neighbour pairs instead of {}; "
               "use a smaller ML region, a larger cutoff or a larger box",
               force->kspace_style, std::sqrt(cut_coulsq), ml_total, found, ml_total * (ml_total - 1));
}

/* Subtract, for every pair of ML atoms, what the MM sub-styles and kspace computed for it. Full
   neighbour list: each pair is seen from both atoms, so each side removes the force on its own
   local atom and half the energy and virial. */
void PairFFKit::remove_mm_inside_ml()
{
  double **x = atom->x, **f = atom->f;
  const int *type = atom->type;
  const double *q = atom->q;
  Pair *mm = force->pair;
  bigint pairs_within = 0;
  bool unassigned_coulomb = false;

  single_enable = 1;    // hybrid's single() asks every sub-style of the type pair, this one included (0)
  for (int ii = 0; ii < list->inum; ii++) {
    const int i = list->ilist[ii];
    const int itype = type[i];
    if (type2species[itype] < 0) continue;
    const int *jlist = list->firstneigh[i];
    for (int jj = 0; jj < list->numneigh[i]; jj++) {
      int j = jlist[jj];
      const double factor_lj = force->special_lj[sbmask(j)], factor_coul = force->special_coul[sbmask(j)];
      j &= NEIGHMASK;
      const int jtype = type[j];
      if (type2species[jtype] < 0) continue;
      const double del[3] = {x[i][0] - x[j][0], x[i][1] - x[j][1], x[i][2] - x[j][2]};
      const double rsq = del[0] * del[0] + del[1] * del[1] + del[2] * del[2];
      // The MM styles' energy of the pair is C(factor_coul) + L(factor_lj) with L(0) = 0, and C(0) is what
      // they compute for an excluded pair: 0 with cut-off Coulomb, minus the pair's reciprocal-space share
      // with coul/long. Removing C(factor_coul) - C(0) and L(factor_lj) removes the pair from the MM
      // energy, kspace included, exactly as LAMMPS's own exclusions do; the parts go to ecoul and evdwl.
      double f_none = 0.0, f_coul = 0.0, f_lj = 0.0;
      const double e_none = mm->single(i, j, itype, jtype, rsq, 0.0, 0.0, f_none);
      const double e_coul = mm->single(i, j, itype, jtype, rsq, factor_coul, 0.0, f_coul) - e_none;
      const double e_lj = mm->single(i, j, itype, jtype, rsq, 0.0, factor_lj, f_lj) - e_none;
      f_coul -= f_none;
      f_lj -= f_none;
      if (force->kspace && rsq < cut_coulsq) {
        pairs_within++;
        if (e_none == 0.0 && q[i] != 0.0 && q[j] != 0.0) unassigned_coulomb = true;
      }
      const double fpair = f_coul + f_lj;
      for (int d = 0; d < 3; d++) f[i][d] -= fpair * del[d];
      const double v[6] = {0.5 * fpair * del[0] * del[0], 0.5 * fpair * del[1] * del[1], 0.5 * fpair * del[2] * del[2],
                           0.5 * fpair * del[0] * del[1], 0.5 * fpair * del[0] * del[2], 0.5 * fpair * del[1] * del[2]};
      if (eflag_global) {
        eng_vdwl -= 0.5 * e_lj;
        eng_coul -= 0.5 * e_coul;
      }
      if (eflag_atom) eatom[i] -= 0.5 * (e_lj + e_coul);
      if (vflag_global)
        for (int m = 0; m < 6; m++) virial[m] -= v[m];
      if (vflag_atom)
        for (int m = 0; m < 6; m++) vatom[i][m] -= v[m];
    }
  }
  single_enable = 0;
  if (unassigned_coulomb)
    error->one(FLERR,
               "pair_style hybridff: with kspace_style {} the Coulomb sub-style must also be assigned to the ML-ML "
               "type pairs (e.g. 'pair_coeff * * lj/cut/coul/long ...'): hybridff removes their kspace share "
               "through it", force->kspace_style);
  if (force->kspace && !extent_checked) {
    extent_checked = true;
    check_kspace_extent(pairs_within);
  }
}

/* Reached only from remove_mm_inside_ml() through the hybrid style's single(): the model's energy
   is many-body, so it contributes nothing pairwise and stays outside what is removed. */
double PairFFKit::single(int, int, int, int, double, double, double, double &fforce)
{
  fforce = 0.0;
  return 0.0;
}
