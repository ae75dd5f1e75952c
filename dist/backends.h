// Internal to dist/: constructors of the MPI and NCCL communicators, compiled only when their library
// was found (KINDLING_WITH_MPI, KINDLING_WITH_NCCL); communicator.cpp picks among them.
#pragma once
#include "dist/communicator.h"

namespace kindling::dist {

#ifdef KINDLING_WITH_MPI
std::unique_ptr<Communicator> make_mpi_world();  // MPI_Init_thread, then MPI_COMM_WORLD
void mpi_finish(int exit_code);                  // MPI_Finalize, or MPI_Abort when non-zero
std::string mpi_library_version();
#endif
#ifdef KINDLING_WITH_NCCL
std::unique_ptr<Communicator> make_nccl(Communicator& world);  // its unique id broadcast over `world`
std::string nccl_library_version();
#endif

}  // namespace kindling::dist
