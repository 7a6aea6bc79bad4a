# OpenBLAS, for the index scan's batched GEMM (src/index/block_scorer.cc) and its thread control
# (src/model/model.cc): the same library LibTorch loads through libblas.so.3. Defines BLAS::BLAS
# and OPENBLAS_INCLUDE_DIR (OpenBLAS's own cblas.h, which declares openblas_set_num_threads).
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_path(OPENBLAS_INCLUDE_DIR openblas_config.h
          PATH_SUFFIXES x86_64-linux-gnu/openblas-pthread openblas-pthread openblas REQUIRED)
