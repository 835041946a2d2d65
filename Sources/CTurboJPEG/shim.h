#ifndef DEFORM_CTURBOJPEG_SHIM_H
#define DEFORM_CTURBOJPEG_SHIM_H
/* TurboJPEG reports errors through return codes, so Swift calls it directly. */
#include <turbojpeg.h>
#endif
