/*
 * probe_gpu.h — what the CPU probe (probe.c) and the Vulkan probe
 * (probe_vulkan.c) share (internal).
 */
#ifndef QEIL_DEVICE_PROBE_GPU_H
#define QEIL_DEVICE_PROBE_GPU_H

#include "qeil/device.h"

/* 1: the device has memory of its own (a discrete GPU, resizable BAR or
 * not; a virtual/other device without host-visible device-local memory):
 * the profile gives it a pool and a link to the host's, and the probe
 * measures that link. 0: it shares the host's memory. */
int probe_gpu_own_memory(const qeil_probe_gpu *g);

#endif
