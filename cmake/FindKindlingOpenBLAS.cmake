# FindKindlingOpenBLAS: the pthreads OpenBLAS through its pkg-config file, as the imported target
# PkgConfig::OPENBLAS (kindling runs BLAS single-threaded inside its own thread pool; the OpenMP
# build would add a runtime whose idle threads spin against ours). Used by kindling's own build and
# by its installed package, so both link the same library.
find_package(PkgConfig REQUIRED)
if(NOT TARGET PkgConfig::OPENBLAS)
  pkg_check_modules(OPENBLAS QUIET IMPORTED_TARGET openblas)
endif()
include(FindPackageHandleStandardArgs)
if(TARGET PkgConfig::OPENBLAS)
  set(KindlingOpenBLAS_LINK_LIBRARIES PkgConfig::OPENBLAS)
endif()
find_package_handle_standard_args(KindlingOpenBLAS
  REQUIRED_VARS KindlingOpenBLAS_LINK_LIBRARIES
  REASON_FAILURE_MESSAGE "install libopenblas-dev (its pkg-config file openblas.pc was not found)")
