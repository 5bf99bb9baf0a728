/*
 * vk_util.c — Vulkan setup shared by the backend and the probe (vk_util.h).
 */
#include "backends/vulkan/vk_util.h"

#include <string.h>

uint32_t vk_compute_family(const vk_api *a, VkPhysicalDevice pd, VkQueueFamilyProperties *props)
{
    uint32_t nq = 0;
    a->GetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties qf[16];
    if (nq > 16) nq = 16;
    a->GetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf);
    for (uint32_t i = 0; i < nq; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            if (props) *props = qf[i];
            return i;
        }
    return UINT32_MAX;
}

uint32_t vk_find_mem_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits,
                          VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid, uint32_t heap)
{
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++)
        if (((bits >> i) & 1) && (mp->memoryTypes[i].propertyFlags & want) == want &&
            !(mp->memoryTypes[i].propertyFlags & avoid) &&
            (heap == UINT32_MAX || mp->memoryTypes[i].heapIndex == heap))
            return i;
    return UINT32_MAX;
}

VkResult vk_buffer_create(const vk_api *a, VkDevice dev, VkDeviceSize bytes,
                          VkBufferUsageFlags usage, VkBuffer *buf, VkMemoryRequirements *req)
{
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = bytes,
                             .usage = usage,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = a->CreateBuffer(dev, &bi, NULL, buf);
    if (r != VK_SUCCESS) {
        *buf = VK_NULL_HANDLE;
        return r;
    }
    a->GetBufferMemoryRequirements(dev, *buf, req);
    return VK_SUCCESS;
}

VkResult vk_buffer_back(const vk_api *a, VkDevice dev, VkBuffer buf, VkDeviceSize size,
                        uint32_t type, VkDeviceMemory *mem)
{
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = size,
                               .memoryTypeIndex = type};
    VkResult r = a->AllocateMemory(dev, &ai, NULL, mem);
    if (r != VK_SUCCESS) {
        *mem = VK_NULL_HANDLE;
        return r;
    }
    return a->BindBufferMemory(dev, buf, *mem, 0);
}

VkResult vk_make_layout(const vk_api *a, VkDevice dev, uint32_t n_bindings, uint32_t pc_bytes,
                        VkDescriptorSetLayout *dsl, VkPipelineLayout *pl)
{
    VkDescriptorSetLayoutBinding lb[16];
    if (n_bindings > 16) return VK_ERROR_INITIALIZATION_FAILED; /* an internal limit */
    for (uint32_t i = 0; i < n_bindings; i++)
        lb[i] = (VkDescriptorSetLayoutBinding){i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1,
                                               VK_SHADER_STAGE_COMPUTE_BIT, NULL};
    VkDescriptorSetLayoutCreateInfo li = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = n_bindings,
                                          .pBindings = lb};
    VkResult r = a->CreateDescriptorSetLayout(dev, &li, NULL, dsl);
    if (r != VK_SUCCESS) {
        *dsl = VK_NULL_HANDLE;
        return r;
    }
    VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, pc_bytes};
    VkPipelineLayoutCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = dsl,
                                     .pushConstantRangeCount = 1,
                                     .pPushConstantRanges = &pr};
    r = a->CreatePipelineLayout(dev, &pi, NULL, pl);
    if (r != VK_SUCCESS) *pl = VK_NULL_HANDLE;
    return r;
}

VkResult vk_make_pipeline(const vk_api *a, VkDevice dev, VkPipelineLayout pl, const uint32_t *code,
                          size_t bytes, VkPipeline *out)
{
    *out = VK_NULL_HANDLE;
    VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = bytes,
                                   .pCode = code};
    VkShaderModule m;
    VkResult r = a->CreateShaderModule(dev, &mi, NULL, &m);
    if (r != VK_SUCCESS) return r;
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = m,
                  .pName = "main"},
        .layout = pl};
    r = a->CreateComputePipelines(dev, VK_NULL_HANDLE, 1, &ci, NULL, out);
    a->DestroyShaderModule(dev, m, NULL);
    if (r != VK_SUCCESS) *out = VK_NULL_HANDLE;
    return r;
}

VkResult vk_make_commands(const vk_api *a, VkDevice dev, uint32_t family, uint32_t max_sets,
                          uint32_t n_bindings, vk_commands *out)
{
    memset(out, 0, sizeof *out);
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, max_sets * n_bindings};
    VkDescriptorPoolCreateInfo dpi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                      .maxSets = max_sets,
                                      .poolSizeCount = 1,
                                      .pPoolSizes = &ps};
    VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = family};
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkResult r;
    if ((r = a->CreateDescriptorPool(dev, &dpi, NULL, &out->dpool)) != VK_SUCCESS) {
        out->dpool = VK_NULL_HANDLE;
        return r;
    }
    if ((r = a->CreateCommandPool(dev, &cpi, NULL, &out->cpool)) != VK_SUCCESS) {
        out->cpool = VK_NULL_HANDLE;
        return r;
    }
    if ((r = a->CreateFence(dev, &fi, NULL, &out->fence)) != VK_SUCCESS) {
        out->fence = VK_NULL_HANDLE;
        return r;
    }
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = out->cpool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                       .commandBufferCount = 1};
    if ((r = a->AllocateCommandBuffers(dev, &cai, &out->cb)) != VK_SUCCESS) out->cb = VK_NULL_HANDLE;
    return r;
}

void vk_free_commands(const vk_api *a, VkDevice dev, vk_commands *c)
{
    if (c->fence) a->DestroyFence(dev, c->fence, NULL);
    if (c->cpool) a->DestroyCommandPool(dev, c->cpool, NULL); /* frees cb */
    if (c->dpool) a->DestroyDescriptorPool(dev, c->dpool, NULL);
    memset(c, 0, sizeof *c);
}
