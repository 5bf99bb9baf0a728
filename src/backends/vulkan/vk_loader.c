/*
 * vk_loader.c — dlopen of the Vulkan loader and the entry points qeil uses
 * (vk_loader.h).
 */
#include "backends/vulkan/vk_loader.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

const char *vk_result_str(VkResult r)
{
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    default: return "VkResult (other)";
    }
}

void vk_close(vk_api *api)
{
    if (!api) return;
    if (api->instance && api->DestroyInstance) api->DestroyInstance(api->instance, NULL);
    if (api->lib) dlclose(api->lib);
    memset(api, 0, sizeof *api);
}

qeil_status vk_open(qeil_ctx *ctx, vk_api *api)
{
    return vk_open_version(ctx, api, VK_API_VERSION_1_1);
}

qeil_status vk_open_version(qeil_ctx *ctx, vk_api *api, uint32_t api_version)
{
    memset(api, 0, sizeof *api);
    const char *env = getenv("QEIL_VULKAN_LIB");
    const char *path = env && *env ? env : "libvulkan.so.1";
    api->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!api->lib) {
        const char *why = dlerror();
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "vulkan: cannot load %s (%s)", path,
                             why ? why : "dlopen failed");
    }
    /* POSIX: a function pointer travels through void * (dlsym) */
    void *sym = dlsym(api->lib, "vkGetInstanceProcAddr");
    if (!sym) {
        vk_close(api);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "vulkan: %s has no vkGetInstanceProcAddr",
                             path);
    }
    memcpy(&api->GetInstanceProcAddr, &sym, sizeof sym);
    PFN_vkCreateInstance create =
        (PFN_vkCreateInstance)api->GetInstanceProcAddr(NULL, "vkCreateInstance");
    PFN_vkEnumerateInstanceVersion version =
        (PFN_vkEnumerateInstanceVersion)api->GetInstanceProcAddr(NULL, "vkEnumerateInstanceVersion");
    uint32_t ver = VK_API_VERSION_1_0;
    if (version) version(&ver);
    if (!create || ver < VK_API_VERSION_1_1) {
        vk_close(api);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "vulkan: the loader offers Vulkan %u.%u; qeil needs 1.1",
                             VK_API_VERSION_MAJOR(ver), VK_API_VERSION_MINOR(ver));
    }
    if (api_version < VK_API_VERSION_1_1) api_version = VK_API_VERSION_1_1;
    if (api_version > ver) api_version = ver;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "qeil",
                             .pEngineName = "qeil",
                             .apiVersion = api_version};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app};
    VkResult r = create(&ci, NULL, &api->instance);
    if (r != VK_SUCCESS) {
        api->instance = VK_NULL_HANDLE;
        vk_close(api);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "vulkan: vkCreateInstance failed (%s): no Vulkan driver?",
                             vk_result_str(r));
    }
#define VK_FN_LOAD(name)                                                                  \
    api->name = (PFN_vk##name)api->GetInstanceProcAddr(api->instance, "vk" #name);        \
    if (!api->name) {                                                                     \
        vk_close(api);                                                                    \
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "vulkan: entry point vk%s missing", \
                             #name);                                                      \
    }
    VK_FN_LIST(VK_FN_LOAD)
#undef VK_FN_LOAD
    return QEIL_OK;
}
