# Checks that KINDLING_REQUIRE_CUDA=1 turns a GPU test's skip into a failure. One GPU test case of
# TEST_BINARY runs twice, without and with the variable. Where the plain run skips (no GPU), the
# required run must fail and say why; where a GPU is present, both runs must pass. Run as
#   cmake -DTEST_BINARY=<test_cuda> -P tests/require_cuda.cmake
set(test_case "cuda: reductions match the CPU and repeat bit for bit")
execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=KINDLING_REQUIRE_CUDA
                        ${TEST_BINARY} "--test-case=${test_case}"
                RESULT_VARIABLE plain_status OUTPUT_VARIABLE plain_output ERROR_VARIABLE plain_output)
execute_process(COMMAND ${CMAKE_COMMAND} -E env KINDLING_REQUIRE_CUDA=1
                        ${TEST_BINARY} "--test-case=${test_case}"
                RESULT_VARIABLE required_status
                OUTPUT_VARIABLE required_output ERROR_VARIABLE required_output)
if(NOT plain_status EQUAL 0)
  message(FATAL_ERROR "the plain run of '${test_case}' failed:\n${plain_output}")
endif()
string(FIND "${plain_output}" "skipped: no CUDA GPU" skipped_at)
if(skipped_at EQUAL -1)
  if(NOT required_status EQUAL 0)
    message(FATAL_ERROR "a GPU is present, yet KINDLING_REQUIRE_CUDA=1 failed the test:\n${required_output}")
  endif()
  message(STATUS "a GPU is present: '${test_case}' ran and passed with KINDLING_REQUIRE_CUDA=1")
  return()
endif()
if(required_status EQUAL 0)
  message(FATAL_ERROR "no GPU, yet KINDLING_REQUIRE_CUDA=1 passed '${test_case}':\n${required_output}")
endif()
string(FIND "${required_output}" "KINDLING_REQUIRE_CUDA is set but CUDA is unavailable: " named_at)
if(named_at EQUAL -1)
  message(FATAL_ERROR "KINDLING_REQUIRE_CUDA=1 failed '${test_case}' without saying why:\n${required_output}")
endif()
message(STATUS "no GPU: the plain run skipped '${test_case}' and KINDLING_REQUIRE_CUDA=1 failed it")
