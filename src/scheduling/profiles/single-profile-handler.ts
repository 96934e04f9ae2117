/**
 * single-profile-handler: runs the config's only scheduling profile; its pick is the result.
 * This is what a config with one profile and no handler gets implicitly.
 */
import { z } from 'zod';
import type { PluginDefinition } from '../plugin-registry.js';
import type { ProfileHandler } from './profile-handler-types.js';

/** Plugin definition of `single-profile-handler` (no parameters). */
export const singleProfileHandlerPlugin: PluginDefinition<Record<string, never>> = {
  type: 'single-profile-handler',
  kind: 'profile-handler',
  description: 'runs the one scheduling profile of the config',
  params: z.strictObject({}),
  create(name): ProfileHandler {
    return { type: 'single-profile-handler', name, mode: 'single' };
  },
};
