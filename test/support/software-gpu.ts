import { existsSync } from 'node:fs';

/** SwiftShader's Vulkan driver, which Debian's chromium ships: a software GPU adapter for tests. */
export const swiftShaderIcd = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * The environment under which Dawn finds SwiftShader (and no other driver, so tests see the same
 * adapter everywhere); `.ci/run` installs chromium and libvulkan1. A test that can't have it fails
 * saying what to install rather than passing by skipping.
 */
export function softwareGpuEnvironment(): Record<string, string> {
  if (!existsSync(swiftShaderIcd))
    throw new Error(`${swiftShaderIcd} is missing: apt-get install -y chromium libvulkan1`);
  // The Vulkan loader reads VK_DRIVER_FILES first, VK_ICD_FILENAMES on older loaders.
  return { VK_ICD_FILENAMES: swiftShaderIcd, VK_DRIVER_FILES: swiftShaderIcd };
}
