/*
 * vk_util.h — Vulkan setup shared by the backend (backend_vulkan.c) and
 * the probe (src/device/probe_vulkan.c) (internal): the compute queue
 * family, memory types, a buffer with its memory, the layout of N storage
 * buffers plus push constants, compute pipelines from SPIR-V, and the
 * command resources of one queue. Each returns the VkResult (or
 * UINT32_MAX for a lookup that finds nothing); the callers word their own
 * errors. What a helper created before failing is left in *out for the
 * caller's teardown (handles not created are VK_NULL_HANDLE).
 *
 *     uint32_t fam = vk_compute_family(a, pd, &qf);
 *     vk_make_layout(a, dev, 6, 128, &dsl, &pl);
 *     vk_make_pipeline(a, dev, pl, spv, sizeof spv, &pipe);
 *     vk_make_commands(a, dev, fam, 1024, 6, &cmd);
 *     vk_buffer_create(a, dev, bytes, usage, &buf, &req);
 *     vk_buffer_back(a, dev, buf, req.size, vk_find_mem_type(&mp, req.memoryTypeBits,
 *                    want, 0, UINT32_MAX), &mem);
 */
#ifndef QEIL_BACKENDS_VK_UTIL_H
#define QEIL_BACKENDS_VK_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "backends/vulkan/vk_loader.h"

/* The first queue family of pd with compute (its properties in *props,
 * which may be NULL), or UINT32_MAX. */
uint32_t vk_compute_family(const vk_api *a, VkPhysicalDevice pd, VkQueueFamilyProperties *props);

/* The first memory type allowed by `bits` (a memoryTypeBits mask; UINT32_MAX:
 * any) with every flag of `want`, none of `avoid`, on heap `heap`
 * (UINT32_MAX: any), or UINT32_MAX. */
uint32_t vk_find_mem_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits,
                          VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid, uint32_t heap);

/* A buffer of `bytes` with `usage` (exclusive to one queue), and what its
 * memory must be (*req). *buf is VK_NULL_HANDLE on failure. */
VkResult vk_buffer_create(const vk_api *a, VkDevice dev, VkDeviceSize bytes,
                          VkBufferUsageFlags usage, VkBuffer *buf, VkMemoryRequirements *req);
/* Allocate `size` bytes of memory type `type` and bind buf to it; *mem
 * is VK_NULL_HANDLE when the allocation failed (a failed bind leaves it
 * for the caller to free). */
VkResult vk_buffer_back(const vk_api *a, VkDevice dev, VkBuffer buf, VkDeviceSize size,
                        uint32_t type, VkDeviceMemory *mem);

/* A descriptor set layout of n_bindings storage buffers (bindings 0..n-1,
 * compute) and a pipeline layout of that one set and pc_bytes of push
 * constants. */
VkResult vk_make_layout(const vk_api *a, VkDevice dev, uint32_t n_bindings, uint32_t pc_bytes,
                        VkDescriptorSetLayout *dsl, VkPipelineLayout *pl);

/* A compute pipeline of layout pl from SPIR-V (entry point "main"); *out
 * is VK_NULL_HANDLE on failure. */
VkResult vk_make_pipeline(const vk_api *a, VkDevice dev, VkPipelineLayout pl, const uint32_t *code,
                          size_t bytes, VkPipeline *out);

/* The command resources of one compute queue. */
typedef struct {
    VkDescriptorPool dpool; /* max_sets sets of n_bindings storage buffers */
    VkCommandPool cpool;    /* on the family, command buffers resettable */
    VkCommandBuffer cb;     /* one primary command buffer */
    VkFence fence;          /* unsignalled */
} vk_commands;

VkResult vk_make_commands(const vk_api *a, VkDevice dev, uint32_t family, uint32_t max_sets,
                          uint32_t n_bindings, vk_commands *out);
/* Destroy what vk_make_commands created (NULL handles skipped). */
void vk_free_commands(const vk_api *a, VkDevice dev, vk_commands *c);

#endif /* QEIL_BACKENDS_VK_UTIL_H */
