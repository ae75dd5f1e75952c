#include "core/tensor.h"
#include <doctest/doctest.h>
using namespace kindling;
TEST_CASE("smoke") { CHECK(zeros({2, 3}).numel() == 6); }
