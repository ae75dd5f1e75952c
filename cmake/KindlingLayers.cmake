# kindling_add_layer(<name> SOURCES <globs> [CUDA_SOURCES <globs>] [EXCLUDE <regex>] [DEPENDS <targets>])
# One layer of the library: the static library kindling_<name> (libkindling_<name>.a, exported as
# kindling::<name>) from the sources the globs find, linking PUBLIC only the layers it DEPENDS on.
# CUDA_SOURCES join it in a CUDA build. Every layer waits for the include check
# (cmake/check_layers.cmake), which runs on every build.
include_guard(GLOBAL)

if(NOT TARGET kindling_layer_check)
  add_custom_target(kindling_layer_check
    COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
            -P ${PROJECT_SOURCE_DIR}/cmake/check_layers.cmake
    COMMENT "Checking that every include points down the layers" VERBATIM)
endif()

function(kindling_add_layer name)
  cmake_parse_arguments(PARSE_ARGV 1 layer "" "EXCLUDE" "SOURCES;CUDA_SOURCES;DEPENDS")
  set(target kindling_${name})
  list(TRANSFORM layer_SOURCES PREPEND ${PROJECT_SOURCE_DIR}/)
  file(GLOB sources CONFIGURE_DEPENDS ${layer_SOURCES})
  if(KINDLING_CUDA AND layer_CUDA_SOURCES)
    list(TRANSFORM layer_CUDA_SOURCES PREPEND ${PROJECT_SOURCE_DIR}/)
    file(GLOB cuda_sources CONFIGURE_DEPENDS ${layer_CUDA_SOURCES})
    list(APPEND sources ${cuda_sources})
  endif()
  if(layer_EXCLUDE)
    list(FILTER sources EXCLUDE REGEX "${layer_EXCLUDE}")
  endif()
  add_library(${target} STATIC ${sources})
  add_library(kindling::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  add_dependencies(${target} kindling_layer_check)
  kindling_export_library(${target})
  kindling_library_includes(${target})
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${KINDLING_WARNINGS}>)
  target_link_libraries(${target} PUBLIC ${layer_DEPENDS})
  if(KINDLING_CUDA)
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xcompiler=-Wall,-Wextra>)
    # fmt 9 turns FMT_CONSTEXPR off under nvcc but keeps FMT_CONSTEXPR20 on, which breaks C++20 builds.
    target_compile_definitions(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:FMT_USE_CONSTEXPR=1>)
    set_target_properties(${target} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
  endif()
endfunction()
