// An ops file that includes only core: allowed.
#include "core/tensor.h"
