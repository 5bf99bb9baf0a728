/*
 * vk_devices.c — the Vulkan physical devices and what qeil uses of them
 * (qeil/vulkan.h).
 */
#include <string.h>

#include "backends/vulkan/vk_loader.h"
#include "qeil/vulkan.h"

const char *qeil_vk_device_type_name(qeil_vk_device_type t)
{
    switch (t) {
    case QEIL_VK_DEVICE_INTEGRATED: return "integrated";
    case QEIL_VK_DEVICE_DISCRETE: return "discrete";
    case QEIL_VK_DEVICE_VIRTUAL: return "virtual";
    case QEIL_VK_DEVICE_CPU: return "cpu";
    default: return "other";
    }
}

static qeil_vk_device_type map_type(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return QEIL_VK_DEVICE_INTEGRATED;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return QEIL_VK_DEVICE_DISCRETE;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return QEIL_VK_DEVICE_VIRTUAL;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return QEIL_VK_DEVICE_CPU;
    default: return QEIL_VK_DEVICE_OTHER;
    }
}

static void describe(const vk_api *a, VkPhysicalDevice pd, qeil_vk_device *d)
{
    memset(d, 0, sizeof *d);
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    a->GetPhysicalDeviceProperties2(pd, &p2);
    const VkPhysicalDeviceProperties *p = &p2.properties;
    memcpy(d->name, p->deviceName, sizeof d->name < sizeof p->deviceName ? sizeof d->name : sizeof p->deviceName);
    d->name[sizeof d->name - 1] = '\0';
    d->type = map_type(p->deviceType);
    d->vendor_id = p->vendorID;
    d->device_id = p->deviceID;
    d->api_major = VK_API_VERSION_MAJOR(p->apiVersion);
    d->api_minor = VK_API_VERSION_MINOR(p->apiVersion);
    d->api_patch = VK_API_VERSION_PATCH(p->apiVersion);
    d->subgroup_size = sg.subgroupSize;
    d->max_storage_buffer_B = p->limits.maxStorageBufferRange;

    VkPhysicalDeviceMemoryProperties mp;
    a->GetPhysicalDeviceMemoryProperties(pd, &mp);
    d->n_heaps = mp.memoryHeapCount < QEIL_VK_MAX_HEAPS ? mp.memoryHeapCount : QEIL_VK_MAX_HEAPS;
    for (uint32_t i = 0; i < d->n_heaps; i++) {
        d->heap_bytes[i] = mp.memoryHeaps[i].size;
        d->heap_device_local[i] = (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
    }
    const VkMemoryPropertyFlags uni = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
                                      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                      VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    for (uint32_t i = 0; i < mp.memoryTypeCount; i++)
        if ((mp.memoryTypes[i].propertyFlags & uni) == uni) d->unified_memory = 1;

    /* Vulkan 1.2 feature structs need a 1.2 device; the 1.1 ones are core */
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDevice8BitStorageFeatures s8 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
                                              .pNext = &f16};
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    if (p->apiVersion >= VK_API_VERSION_1_2) s16.pNext = &s8;
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &s16};
    a->GetPhysicalDeviceFeatures2(pd, &f2);
    d->storage_16bit = s16.storageBuffer16BitAccess != 0;
    if (p->apiVersion >= VK_API_VERSION_1_2) {
        d->storage_8bit = s8.storageBuffer8BitAccess != 0;
        d->shader_float16 = f16.shaderFloat16 != 0;
        d->shader_int8 = f16.shaderInt8 != 0;
    }
}

qeil_status qeil_vk_devices(qeil_ctx *ctx, qeil_vk_device *out, size_t max, size_t *n)
{
    if (!n || (!out && max)) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "vulkan devices: NULL argument");
    *n = 0;
    vk_api a;
    qeil_status st = vk_open(ctx, &a);
    if (st != QEIL_OK) return st;
    VkPhysicalDevice pd[QEIL_VK_MAX_DEVICES];
    uint32_t count = QEIL_VK_MAX_DEVICES;
    VkResult r = a.EnumeratePhysicalDevices(a.instance, &count, pd);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || count == 0) {
        vk_close(&a);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "vulkan: no Vulkan device (no driver installed? Debian's "
                             "mesa-vulkan-drivers has lavapipe, a CPU implementation)");
    }
    for (uint32_t i = 0; i < count && *n < max; i++) describe(&a, pd[i], &out[(*n)++]);
    vk_close(&a);
    return QEIL_OK;
}
