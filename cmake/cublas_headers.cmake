# Where the CUDA backend finds cuBLASLt's headers (cuda/gemm.cu). Only the headers are needed at build time: the
# library is dlopen'ed at run time (cuda/gemm.h), so a toolkit with nvcc and the runtime alone can build the backend.
#
# Looked for, in order:
#   1. SHOWO2_CUBLAS_INCLUDE_DIR (CMake cache variable, or the environment variable of that name): a directory with
#      cublasLt.h, e.g. <site-packages>/nvidia/cu13/include of an installed `nvidia-cublas` wheel;
#   2. the CUDA toolkit's include directory (toolkits with cuBLAS installed);
#   3. with SHOWO2_FETCH_CUBLAS_HEADERS=ON (the default): headers extracted from the `nvidia-cublas` wheel
#      (version SHOWO2_CUBLAS_WHEEL_VERSION) by tools/fetch_cublas_headers.sh into <build>/_deps/cublas, once.
# showo2_find_cublas_headers(<found_var>) sets <found_var>, SHOWO2_CUBLAS_INCLUDE_DIR and, when nothing was found,
# SHOWO2_CUBLAS_HEADERS_HELP (what to do).
set(SHOWO2_CUBLAS_INCLUDE_DIR "$ENV{SHOWO2_CUBLAS_INCLUDE_DIR}" CACHE PATH
    "Directory holding cublasLt.h (empty: the CUDA toolkit's, else fetched from the nvidia-cublas wheel)")
option(SHOWO2_FETCH_CUBLAS_HEADERS "Fetch cuBLASLt headers from the nvidia-cublas wheel when no other copy is found" ON)
set(SHOWO2_CUBLAS_WHEEL_VERSION "13.1.1.3" CACHE STRING "nvidia-cublas wheel version the headers are fetched from")

function(showo2_find_cublas_headers found_var)
  set(candidates "")
  if(SHOWO2_CUBLAS_INCLUDE_DIR)
    list(APPEND candidates "${SHOWO2_CUBLAS_INCLUDE_DIR}")
  endif()
  list(APPEND candidates ${CUDAToolkit_INCLUDE_DIRS} "${CMAKE_BINARY_DIR}/_deps/cublas/include")
  foreach(dir ${candidates})
    if(EXISTS "${dir}/cublasLt.h")
      set(SHOWO2_CUBLAS_INCLUDE_DIR "${dir}" CACHE PATH "Directory holding cublasLt.h" FORCE)
      set(${found_var} ON PARENT_SCOPE)
      message(STATUS "showo2: cuBLASLt headers in ${dir}")
      return()
    endif()
  endforeach()
  if(SHOWO2_FETCH_CUBLAS_HEADERS)
    execute_process(
      COMMAND bash "${CMAKE_SOURCE_DIR}/tools/fetch_cublas_headers.sh" "${CMAKE_BINARY_DIR}/_deps/cublas"
              "${SHOWO2_CUBLAS_WHEEL_VERSION}"
      RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND EXISTS "${CMAKE_BINARY_DIR}/_deps/cublas/include/cublasLt.h")
      set(SHOWO2_CUBLAS_INCLUDE_DIR "${CMAKE_BINARY_DIR}/_deps/cublas/include" CACHE PATH
          "Directory holding cublasLt.h" FORCE)
      set(${found_var} ON PARENT_SCOPE)
      message(STATUS "showo2: cuBLASLt headers fetched into ${SHOWO2_CUBLAS_INCLUDE_DIR}")
      return()
    endif()
  endif()
  set(${found_var} OFF PARENT_SCOPE)
  set(SHOWO2_CUBLAS_HEADERS_HELP
      "the CUDA backend needs cuBLASLt's headers (cublasLt.h) and none were found (looked in: ${candidates}). Set SHOWO2_CUBLAS_INCLUDE_DIR to a directory holding them (e.g. <site-packages>/nvidia/cu13/include after `pip install nvidia-cublas`), install the CUDA toolkit's cuBLAS, or allow SHOWO2_FETCH_CUBLAS_HEADERS to download the nvidia-cublas wheel."
      PARENT_SCOPE)
endfunction()
