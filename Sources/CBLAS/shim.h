#ifndef DEFORM_CBLAS_SHIM_H
#define DEFORM_CBLAS_SHIM_H
#include <cblas.h>
#include <lapacke.h>
#endif
