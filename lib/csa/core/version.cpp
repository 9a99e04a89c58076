// The only translation unit that sees the version and git commit (see lib/CMakeLists.txt).
#include <string>

#include "csa_git_commit.h"  // generated: CSA_GIT_COMMIT (cmake/csa_git_commit.cmake)

namespace csa {
std::string csa_version() { return CSA_VERSION; }
std::string csa_git_commit() { return CSA_GIT_COMMIT; }
}  // namespace csa
