/*
 * version.c - the version libvectord was built as (vectord/version.h), for
 * a program to compare with the headers it was compiled against.
 */
#include "vectord/version.h"

uint32_t vd_version(void)
{
    return VECTORD_VERSION_NUM;
}

const char *vd_version_string(void)
{
    return VECTORD_VERSION;
}
