# Precompiled headers (option TDA_PCH), shared between targets with REUSE_FROM so that each is
# compiled once per build:
#   tda_model         <torch/torch.h>: the torch module itself, and every test or benchmark
#                     whose source includes <torch/torch.h>;
#   tda_test_support  GoogleTest, gRPC, Eigen, the standard headers the tests use and
#                     tests/test_support.h: every other test.
# A reused header must see the same compile flags; all of these link the same libraries, so
# they do. Without TDA_PCH every file parses its own headers (the same code compiles).
# ccache caches PCH builds only with this sloppiness (ccache manual, "Precompiled headers").
if(TDA_PCH AND CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
    CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
    ${CCACHE_PROGRAM})
endif()

# tda_precompile_torch(TARGET): TARGET's sources see the precompiled <torch/torch.h>.
function(tda_precompile_torch target)
  if(TDA_PCH)
    target_precompile_headers(${target} PRIVATE <torch/torch.h>)
  endif()
endfunction()

# tda_reuse_test_headers(TARGET SOURCE): TARGET reuses tda_model's PCH when SOURCE includes
# <torch/torch.h>, else tda_test_support's.
function(tda_reuse_test_headers target source)
  if(NOT TDA_PCH)
    return()
  endif()
  file(STRINGS ${source} torch_include REGEX "^#include (<torch/torch.h>|\"model/(torch_model|decoder_model).h\")")
  if(torch_include)
    target_precompile_headers(${target} REUSE_FROM tda_model)
  else()
    target_precompile_headers(${target} REUSE_FROM tda_test_support)
  endif()
endfunction()
