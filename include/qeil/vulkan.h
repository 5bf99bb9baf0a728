/*
 * qeil/vulkan.h — the Vulkan devices qeil can run on.
 *
 * qeil loads Vulkan at run time (libvulkan.so.1, or $QEIL_VULKAN_LIB): a
 * machine without it runs everything on the CPU, and qeil_vk_devices says
 * why there is no device. Device i is placement device "vk<i>"; this
 * version runs units on vk0 only (docs/vulkan.md).
 *
 *     qeil_vk_device d[QEIL_VK_MAX_DEVICES];
 *     size_t n = 0;
 *     if (qeil_vk_devices(ctx, d, QEIL_VK_MAX_DEVICES, &n) != QEIL_OK)
 *         printf("no Vulkan: %s\n", qeil_ctx_errmsg(ctx));
 *
 * Thread-safety: reentrant (each call loads and unloads its own instance).
 */
#ifndef QEIL_VULKAN_H
#define QEIL_VULKAN_H

#include <stddef.h>
#include <stdint.h>

#include "qeil/qeil.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QEIL_VK_MAX_DEVICES 16
#define QEIL_VK_MAX_HEAPS 16

typedef enum {
    QEIL_VK_DEVICE_OTHER = 0,
    QEIL_VK_DEVICE_INTEGRATED,
    QEIL_VK_DEVICE_DISCRETE,
    QEIL_VK_DEVICE_VIRTUAL,
    QEIL_VK_DEVICE_CPU
} qeil_vk_device_type;

typedef struct {
    char name[256];              /* VkPhysicalDeviceProperties.deviceName */
    qeil_vk_device_type type;
    uint32_t vendor_id, device_id;
    uint32_t api_major, api_minor, api_patch; /* Vulkan version the driver offers */
    uint32_t subgroup_size;      /* 0: not reported */
    uint32_t n_heaps;
    uint64_t heap_bytes[QEIL_VK_MAX_HEAPS];
    int heap_device_local[QEIL_VK_MAX_HEAPS];
    /* a memory type both device-local and host-visible/coherent: qeil's
     * buffers are there (else in host memory the device reads over its bus) */
    int unified_memory;
    uint64_t max_storage_buffer_B; /* largest buffer a shader binds (maxStorageBufferRange) */
    /* features: qeil's shaders use none beyond core Vulkan 1.1 with 32-bit
     * storage buffers; these are reported for the kernels to come */
    int shader_float16, shader_int8, storage_16bit, storage_8bit;
} qeil_vk_device;

/* "integrated", "discrete", "virtual", "cpu", "other". */
QEIL_API const char *qeil_vk_device_type_name(qeil_vk_device_type t);

/* Fill out[0..*n) with up to max devices (in the driver's order: index i
 * is "vk<i>"). No Vulkan loader, no driver or no device:
 * QEIL_ERR_UNSUPPORTED with the reason (n = 0). */
QEIL_API qeil_status qeil_vk_devices(qeil_ctx *ctx, qeil_vk_device *out, size_t max, size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_VULKAN_H */
