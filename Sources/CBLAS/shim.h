#ifndef DEFORM_CBLAS_SHIM_H
#define DEFORM_CBLAS_SHIM_H
#include <cblas.h>
#include <lapacke.h>
#ifdef __linux__
#include <malloc.h>  /* mallopt: keep large tensor buffers in the heap (see TensorStorage) */
#endif
#endif
