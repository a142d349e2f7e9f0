# Test: the objects compiled with -mavx2 (native/core/cpu/*_avx2.cpp) must define no weak or unique symbols.
#
# Why: an inline function or template instantiated in an AVX2 translation unit (std::vector growth, a header helper)
# is emitted as a weak symbol there AND in baseline files; the linker keeps one copy, possibly the AVX2-compiled one,
# and every caller then executes AVX2 instructions. On a CPU without AVX2 the prebuilt binary would die with an
# illegal instruction in code that looks portable. Keeping AVX2 files free of weak definitions rules that out.
#
# Invoked by ctest as: cmake -DNM=<nm> -DOBJECTS=<;-list> -P check_avx2_isolation.cmake
if(NOT OBJECTS)
  message(FATAL_ERROR "no object files given")
endif()
set(checked 0)
set(bad "")
foreach(obj IN LISTS OBJECTS)
  if(NOT obj MATCHES "_avx2\\.cpp\\.(o|obj)$")
    continue()
  endif()
  math(EXPR checked "${checked} + 1")
  execute_process(COMMAND ${NM} --defined-only ${obj} OUTPUT_VARIABLE symbols RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm failed on ${obj}")
  endif()
  string(REPLACE "\n" ";" lines "${symbols}")
  foreach(line IN LISTS lines)
    if(line MATCHES "^[0-9a-fA-F]* [WVu] (.*)$")
      list(APPEND bad "${obj}: ${CMAKE_MATCH_1}")
    endif()
  endforeach()
endforeach()
if(bad)
  string(REPLACE ";" "\n  " bad_text "${bad}")
  message(FATAL_ERROR "weak/unique symbols defined in AVX2 objects (move the code out of *_avx2.cpp or make it "
                      "file-local):\n  ${bad_text}")
endif()
message(STATUS "checked ${checked} AVX2 object files: no weak or unique symbols")
