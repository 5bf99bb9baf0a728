/*
 * vk_loader.h — Vulkan loaded at run time (internal).
 *
 * qeil links no Vulkan library: vk_open() dlopens "libvulkan.so.1" (the
 * Khronos loader, Debian libvulkan1) and takes every entry point through
 * vkGetInstanceProcAddr, so the library and the CLI load and run on a
 * machine without Vulkan; the backend then reports itself unavailable with
 * the reason (no loader, no driver, no device). Like NVML in src/sense/.
 *
 *     vk_api api;
 *     if (vk_open(ctx, &api) != QEIL_OK) ...    // loader + instance
 *     api.EnumeratePhysicalDevices(api.instance, &n, NULL);
 *     vk_close(&api);
 */
#ifndef QEIL_BACKENDS_VK_LOADER_H
#define QEIL_BACKENDS_VK_LOADER_H

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include "qeil/qeil.h"

#define VK_FN_LIST(X)                                                                      \
    X(DestroyInstance) X(EnumeratePhysicalDevices) X(GetPhysicalDeviceProperties)          \
    X(GetPhysicalDeviceProperties2) X(GetPhysicalDeviceFeatures2)                          \
    X(GetPhysicalDeviceMemoryProperties) X(GetPhysicalDeviceQueueFamilyProperties)         \
    X(CreateDevice) X(DestroyDevice) X(GetDeviceQueue) X(DeviceWaitIdle)                   \
    X(CreateBuffer) X(DestroyBuffer) X(GetBufferMemoryRequirements) X(AllocateMemory)      \
    X(FreeMemory) X(BindBufferMemory) X(MapMemory) X(UnmapMemory)                          \
    X(CreateShaderModule) X(DestroyShaderModule) X(CreateDescriptorSetLayout)              \
    X(DestroyDescriptorSetLayout) X(CreatePipelineLayout) X(DestroyPipelineLayout)         \
    X(CreateComputePipelines) X(DestroyPipeline) X(CreateDescriptorPool)                   \
    X(DestroyDescriptorPool) X(ResetDescriptorPool) X(AllocateDescriptorSets)              \
    X(UpdateDescriptorSets) X(CreateCommandPool) X(DestroyCommandPool)                     \
    X(AllocateCommandBuffers) X(BeginCommandBuffer) X(EndCommandBuffer)                    \
    X(ResetCommandBuffer) X(CmdBindPipeline) X(CmdBindDescriptorSets) X(CmdPushConstants)  \
    X(CmdDispatch) X(CmdPipelineBarrier) X(QueueSubmit) X(CreateFence) X(DestroyFence)     \
    X(WaitForFences) X(ResetFences) X(CmdCopyBuffer) X(CmdFillBuffer)                      \
    X(CreateQueryPool) X(DestroyQueryPool) X(CmdResetQueryPool) X(CmdWriteTimestamp)       \
    X(GetQueryPoolResults)

typedef struct {
    void *lib;            /* dlopen handle */
    VkInstance instance;
    PFN_vkGetInstanceProcAddr GetInstanceProcAddr;
#define VK_FN_FIELD(name) PFN_vk##name name;
    VK_FN_LIST(VK_FN_FIELD)
#undef VK_FN_FIELD
} vk_api;

/* Load the loader (path: NULL = "libvulkan.so.1", or the environment's
 * QEIL_VULKAN_LIB when set) and create a Vulkan 1.1 instance. On failure
 * the api is closed and the context says why (QEIL_ERR_UNSUPPORTED). */
qeil_status vk_open(qeil_ctx *ctx, vk_api *api);
/* As vk_open, with an instance for Vulkan min(api_version, the loader's)
 * (at least 1.1): the probe asks for 1.3 so that a 1.2/1.3 device's core
 * features (shaderFloat16, shaderInt8) may be enabled. */
qeil_status vk_open_version(qeil_ctx *ctx, vk_api *api, uint32_t api_version);
void vk_close(vk_api *api); /* idempotent */

/* "VK_ERROR_OUT_OF_DEVICE_MEMORY" etc. */
const char *vk_result_str(VkResult r);

#endif /* QEIL_BACKENDS_VK_LOADER_H */
