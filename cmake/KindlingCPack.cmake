# `cpack -G DEB` (or TGZ): one Debian package with the binary, the headers, the static library,
# the CMake package and the pkg-config file. It is a development package, so it depends on the -dev
# packages of what kindling::kindling links; the shared libraries the binary needs are added by
# dpkg-shlibdeps. Build it with -DKINDLING_NATIVE=OFF: -march=native would tie the library to the
# build machine's CPU.
include_guard(GLOBAL)
set(CPACK_PACKAGE_NAME kindling)
set(CPACK_PACKAGE_VENDOR "kindling")
set(CPACK_PACKAGE_CONTACT "kindling maintainers <kindling@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "deep learning framework written from scratch in C++20")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # kindling_0.2.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(kindling_deb_depends
  "libopenblas-dev, libopenblas0-pthread, zlib1g-dev, libfmt-dev, nlohmann-json3-dev, pkg-config")
if(KINDLING_CUDA)
  # The CUDA toolkit and cuDNN come from NVIDIA's apt repository, not Debian's.
  set(cuda_version ${CUDAToolkit_VERSION_MAJOR}-${CUDAToolkit_VERSION_MINOR})
  set(KINDLING_DEB_CUDA_DEPENDS
    "cuda-cudart-dev-${cuda_version}, libcublas-dev-${cuda_version}, \
libcudnn9-dev-cuda-${CUDAToolkit_VERSION_MAJOR}"
    CACHE STRING "Debian dependencies of a CUDA build of kindling (NVIDIA's package names)")
  string(APPEND kindling_deb_depends ", ${KINDLING_DEB_CUDA_DEPENDS}")
  # dpkg-shlibdeps fails on libraries no Debian package owns (a toolkit installed from NVIDIA's
  # runfile); the -dev packages above pull in the library's runtime, the binary adds ONNX's.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
  string(APPEND kindling_deb_depends ", libonnx1, libprotobuf32")
endif()
get_property(extra_deb_depends GLOBAL PROPERTY KINDLING_DEB_EXTRA_DEPENDS)
foreach(extra IN LISTS extra_deb_depends)
  string(APPEND kindling_deb_depends ", ${extra}")
endforeach()
set(CPACK_DEBIAN_PACKAGE_DEPENDS "${kindling_deb_depends}")
include(CPack)
