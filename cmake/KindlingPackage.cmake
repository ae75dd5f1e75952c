# How kindling is installed and consumed: `cmake --install`, the CMake package
# (kindlingConfig.cmake, its version file, the exported target kindling::kindling), the
# pkg-config file and the Debian package of `cpack -G DEB`. docs/library.md is the user's side.
#
# The library targets are listed in the global property KINDLING_EXPORTED_LIBRARIES
# (kindling_export_library): one static library per layer (kindling::core, kindling::ops, ...) and
# kindling::kindling, the one name users write, an INTERFACE library that links them all.
#
# Every dependency the build used is recorded with kindling_export_dependency(<find_dependency
# arguments>) where it is found, and becomes a find_dependency() line of the installed package, so
# optional ones (CUDA, cuDNN, MPI, NCCL) follow the build. A find module the call needs
# (cmake/Find<Name>.cmake) is installed beside the package.
include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

function(kindling_export_dependency)
  list(JOIN ARGN " " arguments)
  set_property(GLOBAL APPEND_STRING PROPERTY KINDLING_CONFIG_DEPENDENCIES
    "find_dependency(${arguments})\n")
endfunction()

function(kindling_export_library target)
  set_property(GLOBAL APPEND PROPERTY KINDLING_EXPORTED_LIBRARIES ${target})
endfunction()

# Headers keep the source layout under include/kindling/; they include each other as
# "core/tensor.h", so include/kindling is on the include path as well as include/ (for
# <kindling/nn/models.h>). In the build tree, <kindling/...> resolves through a link to the source.
function(kindling_library_includes target)
  set(build_include_dir ${PROJECT_BINARY_DIR}/include)
  file(MAKE_DIRECTORY ${build_include_dir})
  if(NOT EXISTS ${build_include_dir}/kindling)
    file(CREATE_LINK ${PROJECT_SOURCE_DIR} ${build_include_dir}/kindling SYMBOLIC)
  endif()
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}> $<BUILD_INTERFACE:${build_include_dir}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/kindling>)
endfunction()

function(kindling_install_package)
  set(package_dir ${CMAKE_INSTALL_LIBDIR}/cmake/kindling)
  get_property(libraries GLOBAL PROPERTY KINDLING_EXPORTED_LIBRARIES)
  install(TARGETS ${libraries} EXPORT kindlingTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  if(TARGET kindling)
    # The installed binary keeps the build's library directories (openblas-pthread first, the
    # CUDA toolkit's), so it loads the same OpenBLAS and CUDA libraries as in the build tree.
    set_target_properties(kindling PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
    install(TARGETS kindling RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
  # Every header of the library's folders, sub-folders included (ops/cuda only in a CUDA build).
  file(GLOB_RECURSE headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}
    ${PROJECT_SOURCE_DIR}/core/*.h ${PROJECT_SOURCE_DIR}/ops/*.h ${PROJECT_SOURCE_DIR}/nn/*.h
    ${PROJECT_SOURCE_DIR}/losses/*.h ${PROJECT_SOURCE_DIR}/data/*.h ${PROJECT_SOURCE_DIR}/dist/*.h)
  foreach(header IN LISTS headers)
    if(header MATCHES "^ops/cuda/" AND NOT KINDLING_CUDA)
      continue()
    endif()
    get_filename_component(dir ${header} DIRECTORY)
    install(FILES ${PROJECT_SOURCE_DIR}/${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kindling/${dir})
  endforeach()
  install(EXPORT kindlingTargets NAMESPACE kindling:: DESTINATION ${package_dir})

  get_property(KINDLING_CONFIG_DEPENDENCIES GLOBAL PROPERTY KINDLING_CONFIG_DEPENDENCIES)
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/kindlingConfig.cmake.in
    ${PROJECT_BINARY_DIR}/kindlingConfig.cmake INSTALL_DESTINATION ${package_dir})
  # 0.x: a minor version may change the API, so 0.2 accepts 0.2.* only.
  write_basic_package_version_file(${PROJECT_BINARY_DIR}/kindlingConfigVersion.cmake
    COMPATIBILITY SameMinorVersion)
  file(GLOB find_modules ${PROJECT_SOURCE_DIR}/cmake/Find*.cmake)
  install(FILES ${PROJECT_BINARY_DIR}/kindlingConfig.cmake ${PROJECT_BINARY_DIR}/kindlingConfigVersion.cmake
    ${find_modules} DESTINATION ${package_dir})

  # pkg-config: the static library needs its dependencies on the link line, so they are Requires.
  set(KINDLING_PC_REQUIRES "openblas zlib fmt nlohmann_json")
  # The layers top down, as a static link needs them; the --undefined keeps the object that
  # registers the backends (ops/backends.cpp), which nothing else references.
  set(KINDLING_PC_LIBS "-Wl,--undefined=kindling_backends_registered -lkindling_losses -lkindling_nn")
  string(APPEND KINDLING_PC_LIBS " -lkindling_dist -lkindling_data -lkindling_ops -lkindling_core -pthread")
  set(KINDLING_PC_CFLAGS "")
  if(KINDLING_CUDA)
    get_filename_component(cudnn_dir ${CUDNN_LIBRARY} DIRECTORY)
    string(APPEND KINDLING_PC_LIBS " -L${CUDAToolkit_LIBRARY_DIR}")
    if(NOT cudnn_dir STREQUAL CUDAToolkit_LIBRARY_DIR)
      string(APPEND KINDLING_PC_LIBS " -L${cudnn_dir}")
    endif()
    string(APPEND KINDLING_PC_LIBS " -lcudart -lcublas -lcudnn")
    string(APPEND KINDLING_PC_CFLAGS "-I${CUDAToolkit_INCLUDE_DIRS}")
  endif()
  get_property(extra_pc_libs GLOBAL PROPERTY KINDLING_PC_EXTRA_LIBS)
  string(APPEND KINDLING_PC_LIBS " ${extra_pc_libs}")
  # The prefix is found from the file's own place, so `cmake --install --prefix P` works anywhere.
  file(RELATIVE_PATH KINDLING_PC_PREFIX /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/kindling.pc.in ${PROJECT_BINARY_DIR}/kindling.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/kindling.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()
