# Fails the build when a source file includes a header of a layer above its own.
#   cmake -DSOURCE_DIR=<tree> -P check_layers.cmake
cmake_minimum_required(VERSION 3.25)
# The layers and what each may include (the order of design.md):
#   core                       core
#   ops                        core ops
#   nn, losses, dist           core ops and itself
#   data                       core data
# apps/, tests/, bench/ and examples/ sit on top and may include every layer.
set(allowed_core core)
set(allowed_ops core ops)
set(allowed_nn core ops nn)
set(allowed_losses core ops losses)
set(allowed_dist core ops dist)
set(allowed_data core data)
set(all_layers core ops nn losses dist data apps)

if(NOT SOURCE_DIR)
  message(FATAL_ERROR "check_layers.cmake: pass -DSOURCE_DIR=<source tree>")
endif()
set(violations "")
foreach(layer core ops nn losses dist data)
  file(GLOB_RECURSE files RELATIVE ${SOURCE_DIR}
    ${SOURCE_DIR}/${layer}/*.h ${SOURCE_DIR}/${layer}/*.cpp ${SOURCE_DIR}/${layer}/*.cu
    ${SOURCE_DIR}/${layer}/*.cuh)
  foreach(file IN LISTS files)
    file(STRINGS ${SOURCE_DIR}/${file} includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]")
    foreach(line IN LISTS includes)
      if(NOT line MATCHES "#[ \t]*include[ \t]*[\"<](kindling/)?([a-z_]+)/")
        continue()
      endif()
      set(target ${CMAKE_MATCH_2})
      if(target IN_LIST all_layers AND NOT target IN_LIST allowed_${layer})
        string(STRIP "${line}" line)
        list(JOIN allowed_${layer} ", " allowed)
        string(APPEND violations "\n  ${file}: ${line} (${layer} may include only: ${allowed})")
      endif()
    endforeach()
  endforeach()
endforeach()
if(violations)
  message(FATAL_ERROR "kindling layers point down only (docs/design.md, \"Layers\"); these includes "
                      "point up:${violations}")
endif()
