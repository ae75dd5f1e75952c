// A core file that includes a layer above it: cmake/check_layers.cmake must reject this tree.
#include "ops/conv.h"
